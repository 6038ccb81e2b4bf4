"""Benchmark of the RaTag S2 kernels against the numpy implementation of the same algorithm.

On one set of simulated FastFrame frames (default: 988 frames × 100 000 int8 samples, i.e.
2 GS/s × 50 µs from t = −10 µs, an S1 spike, a smeared 10 µs S2 box after a 13.2 µs drift, X-ray
pulses in 20% of the frames, noise) it times, best of several runs:

- ``kernel``: pass 1 (:func:`wavedqm.kernels.s2.frame_features`) + pass 2
  (:func:`wavedqm.kernels.s2.area_pass`: S2 areas and X-ray classification), all numba
  threads, after warm-up; ``kernel_1thread``: the same on one thread;
- ``numpy``: ``tests/s2_reference.py``, the spec's steps frame by frame (float64 mV,
  ``np.convolve``, ``np.trapezoid``), with the same set-level inputs.

The set statistics between the passes (S1 time, S2 window) are computed once with
``wavedqm.analysis.ratag`` from the kernel's pass 1 and are not timed. The two
implementations are checked to agree on these data (up to frames where quantised samples put
a smoothed value exactly on a threshold: both float evaluations are then right to rounding;
their number is reported). Throughput: frames/s and GB/s of raw
samples (bytes of the sample array / time). Usage::

    python benchmarks/bench_s2.py [--frames 988] [--samples 100000] [--dtype int8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, "") and "wavedqm" not in sys.modules:
    # run as a script from a source checkout: make the package importable
    sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "tests"))  # the numpy reference lives beside the tests

from wavedqm.analysis import ratag as R  # noqa: E402
from wavedqm.kernels import s2  # noqa: E402

import s2_reference as ref  # noqa: E402

DT_US = 0.0005
"""2 GS/s."""
T0_US = -10.0
SCALE_V = {"int8": 4e-4, "int16": 5e-5}
"""Volts per count: 8-bit scope at ~100 mV full scale; 16-bit at ~3 V."""
CHUNK = 52


def make_raw(n_frames: int, n_samples: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Simulated frames of a 200 V gate set (drift 13.2 µs), generated in chunks."""
    raw = np.empty((n_frames, n_samples), dtype)
    scale = None
    for c in range(0, n_frames, CHUNK):
        m = min(CHUNK, n_frames - c)
        syn = ref.make_frames(
            m,
            n_samples,
            dtype=np.dtype(dtype).type,
            dt_us=DT_US,
            t0_us=T0_US,
            scale_v=SCALE_V[dtype],
            offset_v=0.0,
            s1_us=-1.5,
            s2_start_us=-1.5 + 13.2,
            seed=seed + c,
        )
        raw[c : c + m] = syn.raw
        scale = syn.scale
    return raw, scale


def _differ(a: np.ndarray, b: np.ndarray, rtol: float = 0.0) -> int:
    """Frames where two per-frame results differ (NaN equals NaN)."""
    same = np.isclose(a, b, rtol=rtol, atol=0.0, equal_nan=True) | (a == b)
    return int(np.count_nonzero(~same))


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(
    n_frames: int = 988,
    n_samples: int = 100_000,
    dtype: str = "int8",
    repeats: int = 5,
    numpy_repeats: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Time kernels and numpy on the same frames; figures in frames/s, GB/s and ratios."""
    raw, scale = make_raw(n_frames, n_samples, dtype, seed)
    params = s2.S2Params()
    phys = R.set_physics(R.parse_set_name("FieldScan_Gate0200_Anode2100"))
    t_drift = phys.time_drift
    s2.warm_up((np.dtype(dtype).type,))

    feats = s2.frame_features(raw, scale, t_drift, params)
    s1 = R.s1_statistics(feats.t_s1_us)
    windows = R.s2_window_statistics(feats.t_s2_start_us, feats.t_s2_end_us, s1.t_s1 + t_drift)
    window = R.integration_window(windows)
    assert window is not None, "no S2 window in the simulated frames"
    t_s2 = windows.start.median

    def kernel_pass1() -> object:
        return s2.frame_features(raw, scale, t_drift, params)

    def kernel_pass2() -> object:
        return s2.area_pass(raw, scale, window, s1.t_s1, t_s2, params)

    t_k1 = best_time(kernel_pass1, repeats)
    t_k2 = best_time(kernel_pass2, repeats)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t_k1_1 = best_time(kernel_pass1, repeats)
        t_k2_1 = best_time(kernel_pass2, repeats)
    finally:
        numba.set_num_threads(threads)

    t_n1 = t_n2 = float("inf")
    out: dict[str, Any] = {}
    for _ in range(numpy_repeats):
        t0 = time.perf_counter()
        out["features"] = ref.frame_features(raw, scale, t_drift, params)
        t1 = time.perf_counter()
        out["areas"] = ref.s2_areas(raw, scale, window, params)
        out["xray"] = ref.xray_classify(raw, scale, s1.t_s1, t_s2, params)
        t2 = time.perf_counter()
        t_n1, t_n2 = min(t_n1, t1 - t0), min(t_n2, t2 - t1)

    # the two implementations agree on these data, but for rounding-level ties: quantised
    # samples can put a smoothed value exactly on a threshold in real arithmetic, where the
    # two float evaluations (running sum vs np.convolve) may fall either side
    k2 = kernel_pass2()
    differ = {
        name: _differ(getattr(feats, name), getattr(out["features"], name))
        for name in ("t_s1_us", "t_s2_start_us", "t_s2_end_us")
    }
    differ["s2_area_mv_us"] = _differ(k2.s2_area_mv_us, out["areas"], rtol=1e-9)
    differ["xray_reason"] = _differ(k2.xray.reason, out["xray"][1])
    for name, n_diff in differ.items():
        assert n_diff <= max(1, n_frames // 100), f"{name}: {n_diff} frames differ from numpy"

    nbytes = raw.nbytes
    t_kernel, t_kernel_1, t_numpy = t_k1 + t_k2, t_k1_1 + t_k2_1, t_n1 + t_n2
    seconds = {
        "kernel": t_kernel,
        "kernel_pass1": t_k1,
        "kernel_pass2": t_k2,
        "kernel_1thread": t_kernel_1,
        "numpy": t_numpy,
        "numpy_pass1": t_n1,
        "numpy_pass2": t_n2,
    }
    return {
        "n_frames": n_frames,
        "n_samples": n_samples,
        "dtype": dtype,
        "sample_bytes": nbytes,
        "numba_threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "xray_counts": k2.xray.counts(),
        "frames_differing_from_numpy": differ,
        "seconds": seconds,
        "frames_per_s": {k: n_frames / v for k, v in seconds.items()},
        "gbps": {k: nbytes / v / 1e9 for k, v in seconds.items()},
        "ratio_kernel_over_numpy": t_numpy / t_kernel,
        "ratio_kernel_1thread_over_numpy": t_numpy / t_kernel_1,
        "ratio_pass1_over_numpy": t_n1 / t_k1,
        "ratio_pass2_over_numpy": t_n2 / t_k2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=988)
    parser.add_argument("--samples", type=int, default=100_000, help="samples per frame")
    parser.add_argument("--dtype", choices=sorted(SCALE_V), default="int8")
    parser.add_argument("--repeats", type=int, default=5, help="kernel runs (best kept)")
    parser.add_argument("--numpy-repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    res = run(args.frames, args.samples, args.dtype, args.repeats, args.numpy_repeats)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"{res['n_frames']} frames × {res['n_samples']} {res['dtype']} samples "
        f"({res['sample_bytes'] / 1e6:.0f} MB), {res['numba_threads']} numba threads, "
        f"{res['cpu_count']} CPUs"
    )
    for name, sec in res["seconds"].items():
        print(
            f"  {name:15s} {res['frames_per_s'][name]:10.0f} frames/s "
            f"{res['gbps'][name]:7.2f} GB/s {sec * 1e3:9.1f} ms"
        )
    print(f"  kernel / numpy             {res['ratio_kernel_over_numpy']:8.1f} x")
    print(f"  kernel (1 thread) / numpy  {res['ratio_kernel_1thread_over_numpy']:8.1f} x")
    print(f"  pass 1 / numpy pass 1      {res['ratio_pass1_over_numpy']:8.1f} x")
    print(f"  pass 2 / numpy pass 2      {res['ratio_pass2_over_numpy']:8.1f} x")


if __name__ == "__main__":
    main()
