"""Benchmark of the fused light kernel against the old tool's numpy features() and np.sum.

On the same random, realistic int16 waveforms (baseline around -28000 ADC16, noise, pulses)
it times, best of several runs:

- ``kernel``: :func:`wavedqm.kernels.light.light_features` after warm-up, all numba threads;
- ``kernel_1thread``: the same with ``numba.set_num_threads(1)`` (per-core figure);
- ``numpy_seed``: the old tool's numpy ``features()`` (seed 002, section 6) in ADC16 units,
  with the float64 temporaries it builds (``wf - baseline[..., None]`` twice);
- ``np_sum``: ``np.sum(samples, dtype=np.int64)``, a plain memory-bandwidth pass (numpy
  widens int16 to int64 in buffered chunks, so on fast memory it is below memory speed);
- ``np_max``: ``np.max(samples)``, a SIMD int16 reduction, closer to raw memory speed.

Throughput is GB/s of int16 samples (bytes of the sample array / time). Usage::

    python benchmarks/bench_kernel.py [--events 200] [--repeats 5] [--json]
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

if __package__ in (None, "") and "wavedqm" not in sys.modules:
    # run as a script from a source checkout: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavedqm import constants as C
from wavedqm.kernels.light import light_features, warm_up

SHAPE = (C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS, 1000)
PED = C.PEDESTAL_SAMPLES
PTP = float(C.PTP_THRESHOLD_ADC16)
CLIP = C.LIGHT_CLIP_LEVEL_ADC16


def make_samples(n_events: int, seed: int = 0) -> np.ndarray:
    """Realistic light waveforms, int16 ADC16 ``(n_events, 8, 64, 1000)``."""
    rng = np.random.default_rng(seed)
    n_adcs, n_channels, n_samples = SHAPE
    base = rng.integers(-28500, -27500, size=(1, n_adcs, n_channels, 1), dtype=np.int16)
    samples = rng.integers(-60, 61, size=(n_events, *SHAPE), dtype=np.int16)
    samples += base
    # a pulse in ~20% of the waveforms, a few clipped ones
    pulse = np.zeros(n_samples, np.float32)
    pulse[300:400] = np.exp(-np.arange(100) / 25.0)
    hit = rng.random((n_events, n_adcs, n_channels)) < 0.2
    amp = rng.uniform(300, 20000, size=int(hit.sum())).astype(np.float32)
    samples[hit] += (amp[:, None] * pulse).astype(np.int16)
    clipped = rng.random((n_events, n_adcs, n_channels)) < 0.002
    samples[clipped, 300:320] = CLIP
    return samples


def seed_features(
    wv: np.ndarray, event_mask: np.ndarray | None, ths: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The old tool's numpy ``features()`` (seed 002 section 6), units ADC16 (no conversion)."""
    sel = wv[event_mask] if event_mask is not None else wv
    wf = sel  # to_units(sel, ADC16) is the identity
    noise = np.std(wf[..., :50], axis=-1)
    baseline = np.mean(wf[..., :50], axis=-1)
    max_val = np.max(wf - baseline[..., None], axis=-1)
    clipped = np.any(wf >= (C.ADC14_MAX - 1) * C.ADC14_TO_ADC16, axis=-1)
    negs = np.any(wf - baseline[..., None] < -ths[None, :, None, None], axis=-1)
    return wf, noise, baseline, max_val, clipped, negs


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(n_events: int = 200, repeats: int = 5, numpy_repeats: int = 2, seed: int = 0) -> dict:
    """Time the three implementations on the same data; returns figures in GB/s and ratios."""
    samples = make_samples(n_events, seed)
    nbytes = samples.nbytes
    ths = np.full(C.LIGHT_N_ADCS, PTP)
    warm_up()

    feats = light_features(samples, PED, PTP, CLIP)
    t_kernel = best_time(lambda: light_features(samples, PED, PTP, CLIP, out=feats), repeats)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t_kernel_1 = best_time(lambda: light_features(samples, PED, PTP, CLIP, out=feats), repeats)
    finally:
        numba.set_num_threads(threads)
    t_sum = best_time(lambda: np.sum(samples, dtype=np.int64), repeats)
    t_max = best_time(lambda: np.max(samples), repeats)

    result: dict[str, Any] = {}
    t_numpy = float("inf")
    for _ in range(numpy_repeats):
        t0 = time.perf_counter()
        result["seed"] = seed_features(samples, None, ths)
        t_numpy = min(t_numpy, time.perf_counter() - t0)
    # the two implementations agree on these data
    _, noise, baseline, max_val, clipped, negs = result.pop("seed")
    assert np.array_equal(feats.baseline, baseline.astype(np.float32))
    assert np.allclose(feats.noise, noise, rtol=1e-6, atol=1e-6)
    assert np.array_equal(feats.max_above_baseline, max_val.astype(np.float32))
    assert np.array_equal(feats.clipped, clipped) and np.array_equal(feats.negative, negs)
    del noise, baseline, max_val, clipped, negs

    def gbps(t: float) -> float:
        return nbytes / t / 1e9

    return {
        "n_events": n_events,
        "sample_bytes": nbytes,
        "numba_threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "seconds": {
            "kernel": t_kernel,
            "kernel_1thread": t_kernel_1,
            "numpy_seed": t_numpy,
            "np_sum": t_sum,
            "np_max": t_max,
        },
        "gbps": {
            "kernel": gbps(t_kernel),
            "kernel_1thread": gbps(t_kernel_1),
            "numpy_seed": gbps(t_numpy),
            "np_sum": gbps(t_sum),
            "np_max": gbps(t_max),
        },
        "ratio_kernel_over_numpy": t_numpy / t_kernel,
        "ratio_kernel_1thread_over_numpy": t_numpy / t_kernel_1,
        "ratio_kernel_over_np_sum": t_sum / t_kernel,
        "ratio_kernel_1thread_over_np_sum": t_sum / t_kernel_1,
        "ratio_kernel_1thread_over_np_max": t_max / t_kernel_1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events (1 MB each)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (best kept)")
    parser.add_argument("--numpy-repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    res = run(args.events, args.repeats, args.numpy_repeats)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"{res['n_events']} events, {res['sample_bytes'] / 1e6:.0f} MB of int16 samples, "
        f"{res['numba_threads']} numba threads, {res['cpu_count']} CPUs"
    )
    for name, rate in res["gbps"].items():
        print(f"  {name:15s} {rate:8.2f} GB/s   {res['seconds'][name] * 1e3:9.1f} ms")
    print(f"  kernel / numpy_seed        {res['ratio_kernel_over_numpy']:8.1f} x")
    print(f"  kernel (1 thread) / numpy  {res['ratio_kernel_1thread_over_numpy']:8.1f} x")
    print(f"  kernel / np.sum            {res['ratio_kernel_over_np_sum']:8.2f} x")
    print(f"  kernel (1 thread) / np.sum {res['ratio_kernel_1thread_over_np_sum']:8.2f} x")
    print(f"  kernel (1 thread) / np.max {res['ratio_kernel_1thread_over_np_max']:8.2f} x")


if __name__ == "__main__":
    main()
