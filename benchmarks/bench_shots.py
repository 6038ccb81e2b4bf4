"""Benchmark of the shot path on a 4-channel shot of 1 M samples per channel (CSV, 77 MB).

Times, best of ``repeats`` (the same file, the page cache warm), in one run:

- ``bare_read``: the file's bytes (``Path.read_bytes``): the I/O floor;
- ``read_shot``: :func:`wavedqm.formats.shots.read_shot` (pyarrow.csv, checks included);
- ``pandas_c``: ``pandas.read_csv(engine="c")``, the usual anchor (when pandas is installed);
- ``np_loadtxt``: ``numpy.loadtxt`` (once: it is slow);
- ``metrics``: the eight metrics and four flags of the four channels
  (:func:`wavedqm.analysis.shots.channel_metrics`: numba passes + scipy FFT);
- ``metrics_threads``: the same, the channels on one thread per core (as the processor does);
- ``metrics_numpy``: the same metrics with plain numpy (``tests/shot_reference.py``);
- ``fft_only``: the dominant-frequency FFTs alone (most of the metrics' time: the ratio
  without them says what the numba passes gain over numpy);
- ``processor``: the whole shot processor on the file (read, metrics, flags, state, JSON,
  CSV, Prometheus; drawings off, they run on their own thread): "metrics out" after the file
  is complete.

Usage::

    python benchmarks/bench_shots.py [--samples 1000000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import shot_reference
from wavedqm.analysis.shots import (
    ChannelRules,
    channel_metrics,
    dominant_frequency,
    shot_channels,
)
from wavedqm.config import Config
from wavedqm.formats.shots import read_shot
from wavedqm.kernels.shots import warm_up
from wavedqm.processors.router import Router
from wavedqm.simulate.shots import shot_waveforms, write_shot_csv


def _best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(n_samples: int = 1_000_000, repeats: int = 3) -> dict[str, Any]:
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        folder.mkdir()
        path = folder / "shot_0001.csv"
        t, x, _ = shot_waveforms(3, n_samples, 4e-3 / n_samples, np.random.default_rng(0), None)
        write_shot_csv(path, t, x)
        size_mb = path.stat().st_size / 1e6
        r: dict[str, Any] = {"samples_per_channel": n_samples, "channels": len(x),
                             "csv_mb": round(size_mb, 1)}  # fmt: skip
        r["bare_read_s"] = _best(path.read_bytes, repeats)
        r["read_shot_s"] = _best(lambda: read_shot(path), repeats)
        try:
            import pandas as pd

            r["pandas_c_s"] = _best(lambda: pd.read_csv(path, engine="c"), repeats)
        except ImportError:
            r["pandas_c_s"] = None
        r["np_loadtxt_s"] = _best(lambda: np.loadtxt(path, delimiter=",", skiprows=1), 1)
        shot = read_shot(path)
        dt = shot.dt_s
        rules = ChannelRules()

        def ours() -> None:
            for name, y in shot.channels.items():
                channel_metrics(name, shot.t, y, rules, dt)

        def plain() -> None:
            for y in shot.channels.values():
                shot_reference.metrics(shot.t, y)

        r["metrics_s"] = _best(ours, repeats)
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            rule_map = dict.fromkeys(shot.channels, rules)
            r["metrics_threads_s"] = _best(
                lambda: shot_channels(shot.t, shot.channels, rule_map, dt, pool), repeats
            )
        r["metrics_numpy_s"] = _best(plain, repeats)
        r["fft_only_s"] = _best(
            lambda: [dominant_frequency(y, dt) for y in shot.channels.values()], repeats
        )
        cfg = Config().with_overrides(
            output={"dir": str(Path(tmp) / "out"), "state_dir": str(Path(tmp) / "state"),
                    "reports": False},
            shots={"plots": False},
        )  # fmt: skip
        with Router(cfg) as router:
            router.route(path)  # warm (imports, first state folder)
            r["processor_s"] = _best(lambda: router.route(path), repeats)
    r["read_vs_bare_read"] = round(r["read_shot_s"] / r["bare_read_s"], 2)
    if r["pandas_c_s"]:
        r["pandas_vs_read_shot"] = round(r["pandas_c_s"] / r["read_shot_s"], 2)
    r["loadtxt_vs_read_shot"] = round(r["np_loadtxt_s"] / r["read_shot_s"], 2)
    r["numpy_vs_metrics"] = round(r["metrics_numpy_s"] / r["metrics_s"], 2)
    r["numpy_vs_metrics_threads"] = round(r["metrics_numpy_s"] / r["metrics_threads_s"], 2)
    r["numpy_vs_metrics_without_fft"] = round(
        (r["metrics_numpy_s"] - r["fft_only_s"]) / (r["metrics_s"] - r["fft_only_s"]), 2
    )
    r["csv_mb_per_s"] = round(size_mb / r["read_shot_s"], 1)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.samples, args.repeats)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key:30s} {value}")


if __name__ == "__main__":
    sys.exit(main())
