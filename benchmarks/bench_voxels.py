"""Benchmark of the voxel kernel and of the charge processor, ratios measured in one run.

On N simulated hits (uniform in a 124 × 124 × 130 cm box, 2 cm voxels: 62 × 62 × 65 grid,
5% outside, gamma-distributed Q), best of ``repeats``:

- ``kernel_serial`` / ``kernel_parallel``: :class:`wavedqm.kernels.voxels.VoxelAccumulator`
  fill (count, double-double ΣQ, Welford M2) on one thread / every numba thread;
- ``histogramdd_count`` + ``histogramdd_weighted``: ``numpy.histogramdd`` for the count and
  for ΣQ (two passes; it gives no variance);
- ``boost_mean``: boost-histogram with ``Mean`` storage (count, mean, variance), its
  single-thread fill (skipped when boost-histogram is not installed: ``pip install .[bench]``);
- ``file``: the charge processor on a simulated file of ``file_hits`` hits (hits read, voxel
  fill, run state, voxels.h5; plots off) against a bare h5py read of the hits' x, y, z, Q.

Usage::

    python benchmarks/bench_voxels.py [--hits 5000000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wavedqm.kernels.voxels import VoxelAccumulator
from wavedqm.kernels.voxels import warm_up as warm_up_voxels

ORIGIN, SIZE, SHAPE = (-62.0, -62.0, -65.0), (2.0, 2.0, 2.0), (62, 62, 65)


def _hits(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    lo, hi = np.array(ORIGIN), np.array(ORIGIN) + np.array(SIZE) * np.array(SHAPE)
    xyz = rng.uniform(lo - 3, hi + 3, (n, 3))
    return xyz[:, 0].copy(), xyz[:, 1].copy(), xyz[:, 2].copy(), rng.gamma(2.0, 10.0, n)


def _best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _kernel(n: int, repeats: int) -> dict[str, Any]:
    x, y, z, q = _hits(n)
    warm_up_voxels()
    edges = [np.linspace(o, o + s * k, k + 1) for o, s, k in zip(ORIGIN, SIZE, SHAPE, strict=True)]
    sample = np.stack([x, y, z], 1)

    def fill(parallel: bool) -> None:
        acc = VoxelAccumulator(ORIGIN, SIZE, SHAPE, threads=None if parallel else 1)
        acc.fill(x, y, z, q, parallel=parallel)

    out: dict[str, Any] = {"hits": n}
    t = {
        "kernel_serial": _best(lambda: fill(False), repeats),
        "kernel_parallel": _best(lambda: fill(True), repeats),
        "histogramdd_count": _best(lambda: np.histogramdd(sample, bins=edges), repeats),
        "histogramdd_weighted": _best(
            lambda: np.histogramdd(sample, bins=edges, weights=q), repeats
        ),
    }
    try:
        import boost_histogram as bh

        axes = [
            bh.axis.Regular(k, o, o + s * k) for o, s, k in zip(ORIGIN, SIZE, SHAPE, strict=True)
        ]

        def boost() -> None:
            h = bh.Histogram(*axes, storage=bh.storage.Mean())
            h.fill(x, y, z, sample=q)

        t["boost_mean"] = _best(boost, repeats)
    except ImportError:
        out["boost_mean"] = "not installed (pip install .[bench])"
    for name, seconds in t.items():
        out[f"{name}_mhits_s"] = round(n / seconds / 1e6, 1)
    numpy_both = t["histogramdd_count"] + t["histogramdd_weighted"]
    out["ratio_serial_vs_histogramdd_count+weighted"] = round(numpy_both / t["kernel_serial"], 1)
    out["ratio_parallel_vs_histogramdd_count+weighted"] = round(
        numpy_both / t["kernel_parallel"], 1
    )
    if "boost_mean" in t:
        out["ratio_serial_vs_boost_mean"] = round(t["boost_mean"] / t["kernel_serial"], 2)
        out["ratio_parallel_vs_boost_mean"] = round(t["boost_mean"] / t["kernel_parallel"], 2)
    return out


def _file(n_hits: int, repeats: int) -> dict[str, Any]:
    from wavedqm.config import Config
    from wavedqm.processors.charge import ChargeProcessor
    from wavedqm.processors.registry import REGISTRY, build
    from wavedqm.processors.router import Router

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run" / "bench.FLOW.hdf5"
        path.parent.mkdir()
        x, y, z, q = _hits(n_hits, seed=2)
        dtype = np.dtype([("x", "f8"), ("y", "f8"), ("z", "f8"), ("Q", "f8"), ("is_disabled", "?")])
        rows = np.zeros(n_hits, dtype)
        rows["x"], rows["y"], rows["z"], rows["Q"] = x, y, z, q
        with h5py.File(path, "w") as f:
            f.create_dataset("charge/calib_prompt_hits/data", data=rows, chunks=(65536,))
            bounds = np.zeros(1, [("data", "<f4", (2, 3)), ("filled", "?")])
            bounds["data"][0] = [ORIGIN, np.array(ORIGIN) + np.array(SIZE) * np.array(SHAPE)]
            bounds["filled"] = True
            f.create_dataset("geometry_info/det_bounds/data", data=bounds)
        cfg = Config().with_overrides(
            output={"dir": f"{tmp}/out", "state_dir": f"{tmp}/state", "reports": False},
            charge={"plots": False},
        )

        def bare() -> None:
            with h5py.File(path, "r") as f:
                d = f["charge/calib_prompt_hits/data"]
                for a in range(0, n_hits, 1 << 20):
                    d.fields(["x", "y", "z", "Q"])[a : a + (1 << 20)]

        router = Router(cfg)
        reg = next(r for r in REGISTRY if r.name == "charge")
        proc = build(reg, router.context)
        assert isinstance(proc, ChargeProcessor)
        t_bare = _best(bare, repeats)
        t_proc = _best(lambda: proc.process(path), repeats)
        router.close()
    return {
        "file_hits": n_hits,
        "bare_h5py_read_s": round(t_bare, 3),
        "charge_processor_s": round(t_proc, 3),
        "ratio_processor_vs_bare_read": round(t_proc / t_bare, 2),
        "processor_mhits_s": round(n_hits / t_proc / 1e6, 1),
    }


def run(n_hits: int = 5_000_000, repeats: int = 3, file_hits: int = 5_000_000) -> dict[str, Any]:
    return _kernel(n_hits, repeats) | _file(file_hits, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hits", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.hits, args.repeats, args.hits)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key:48s} {value}")


if __name__ == "__main__":
    sys.exit(main())
