"""Benchmark of the power-spectra kernel and of its per-file cost in the accumulator.

On realistic int16 light waveforms (8 ADCs × 64 channels × 1000 samples, 1 MB per event;
baseline around −28000 ADC16, noise, pulses) it times, best of several runs, as seconds per
1000 events (1 GB of samples):

- ``kernel_active``: :func:`wavedqm.kernels.spectra.power_spectra` on the 384 active
  channels, one ``scipy.fft`` worker (the default), streamed in reader-sized batches of 32
  events cycled over a few distinct batches (no unrealistically warm cache);
- ``kernel_active_2workers``: the same with ``workers=2``;
- ``kernel_all_channels``: all 512 channels (what the channel mask saves);
- ``numpy_seed``: the old tool's ``spectra`` (seed 002, section 6): ``scipy.fft.rfft`` of the
  int16 array, i.e. float64 of every channel, ``/ (S/2 + 1)``, ``2 * np.abs(X)**2``; timed on
  fewer events (it needs 16 B per sample of complex128 output) and scaled to 1000;
- ``accumulator_file``: :class:`wavedqm.analysis.spectra.SpectraAccumulator` with the default
  ``max_events`` over a file of ``file_events`` events (``expected_events`` given: only the
  picked events are transformed) — ``add`` over every batch plus ``result`` (quantiles, ROIs):
  the cost per file that the pipeline pays;
- ``result_<m>``: ``result()`` alone for m kept events (median/16%/84% of 384 × 501 bins).

Usage::

    python benchmarks/bench_spectra.py [--events 1000] [--repeats 3] [--json]
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

import numpy as np
import scipy.fft

if __package__ in (None, "") and "wavedqm" not in sys.modules:
    # run as a script from a source checkout: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.spectra import SpectraAccumulator
from wavedqm.config import LightConfig
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.spectra import power_spectra, warm_up

N_SAMPLES = 1000
BATCH_EVENTS = 32
"""Events per batch: the reader's default 32 MiB of samples."""
N_DISTINCT = 4
"""Distinct batches cycled (128 MB): more than the 32 MB L3 cache."""


def make_batch(n_events: int, seed: int) -> np.ndarray:
    """Realistic light waveforms, int16 ADC16 ``(n_events, 8, 64, 1000)``."""
    rng = np.random.default_rng(seed)
    shape = (n_events, C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS, N_SAMPLES)
    base = rng.integers(-28500, -27500, size=(1, *shape[1:3], 1), dtype=np.int16)
    samples = rng.integers(-8, 9, size=shape, dtype=np.int16)
    samples += base
    pulse = (np.exp(-np.arange(100) / 25.0) * 5000).astype(np.int16)
    hit = rng.random(shape[:3]) < 0.2
    samples[hit, 300:400] += pulse
    return samples


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time of this process (all its threads) over ``repeats``
    runs, in s. On a shared machine the CPU time is the steadier figure."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def stream(batches: list[np.ndarray], n_events: int, fn: Callable[[np.ndarray], object]) -> None:
    """Call ``fn`` on ``n_events`` events in batches, cycling over the distinct ``batches``."""
    done, i = 0, 0
    while done < n_events:
        batch = batches[i % len(batches)]
        take = min(batch.shape[0], n_events - done)
        fn(batch[:take])
        done += take
        i += 1


def seed_spectra(wf_adc16: np.ndarray) -> np.ndarray:
    """The old tool's ``spectra`` (its ``np.nanmedian`` over events left out: timed apart)."""
    fft_n = scipy.fft.rfft(wf_adc16, axis=-1) / (N_SAMPLES / 2 + 1)
    return 2 * np.abs(fft_n) ** 2


def run(
    n_events: int = 1000,
    repeats: int = 3,
    seed_events: int = 64,
    file_events: int = 1000,
    max_events: int = C.SPECTRA_MAX_EVENTS,
) -> dict[str, Any]:
    """Time the kernel and the accumulator; figures in seconds per 1000 events / per file."""
    active = ChannelMap.from_config(LightConfig()).active
    batches = [make_batch(BATCH_EVENTS, seed) for seed in range(N_DISTINCT)]
    warm_up()
    scale = 1000 / n_events

    def kernel(channels: np.ndarray | None, workers: int | None) -> Callable[[], None]:
        out = np.empty(
            (BATCH_EVENTS, 384 if channels is not None else 512, N_SAMPLES // 2 + 1), np.float32
        )

        def call(b: np.ndarray) -> None:
            dst = out[: b.shape[0]]
            if channels is None:
                dst = dst.reshape(b.shape[0], C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS, -1)
            power_spectra(b, out=dst, workers=workers, channels=channels)

        return lambda: stream(batches, n_events, call)

    timings: dict[str, tuple[float, float]] = {
        "kernel_active": best_time(kernel(active, None), repeats),
        "kernel_active_2workers": best_time(kernel(active, 2), repeats),
        "kernel_all_channels": best_time(kernel(None, None), repeats),
    }
    # the old tool on fewer events (float64 + complex128 of everything), scaled to 1000
    seed_data = np.concatenate(batches)[:seed_events]
    timings["numpy_seed"] = best_time(lambda: seed_spectra(seed_data), repeats)
    per_1000 = {
        name: {
            "wall": t[0] * (1000 / seed_events if name == "numpy_seed" else scale),
            "cpu": t[1] * (1000 / seed_events if name == "numpy_seed" else scale),
        }
        for name, t in timings.items()
    }
    # agreement with the float64 spec formula on the same data: AC bins relative to the
    # spectrum's largest AC bin, the DC bin (baseline) relative to itself
    ours = power_spectra(seed_data[:4], channels=active)
    theirs = seed_spectra(seed_data[:4].astype(np.float64) * 2.0 / C.LIGHT_ADC16_MAX)[:, active]
    ac_max = theirs[..., 1:].max(axis=-1, keepdims=True)
    dev_ac = float((np.abs(ours[..., 1:] - theirs[..., 1:]) / ac_max).max())
    dev_dc = float((np.abs(ours[..., 0] - theirs[..., 0]) / theirs[..., 0]).max())

    # the per-file cost: file_events events streamed, max_events of them transformed
    def one_file() -> SpectraAccumulator:
        acc = SpectraAccumulator(
            C.LIGHT_N_ADCS,
            C.LIGHT_N_CHANNELS,
            N_SAMPLES,
            C.LIGHT_SAMPLE_PERIOD_US,
            max_events,
            active,
            expected_events=file_events,
        )
        first = 0
        while first < file_events:
            b = batches[(first // BATCH_EVENTS) % N_DISTINCT]
            n = min(BATCH_EVENTS, file_events - first)
            acc.add(
                WaveformBatch(
                    samples=b[:n],
                    valid=None,
                    trig_type=np.zeros(n, np.uint8),
                    time_s=np.zeros(n),
                    first_event=first,
                )
            )
            first += n
        acc.result()
        return acc

    per_file = {"accumulator_file": best_time(one_file, repeats)}
    store_bytes = one_file().nbytes
    for m in sorted({64, 100, max_events}):
        acc = SpectraAccumulator(
            C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS, N_SAMPLES, C.LIGHT_SAMPLE_PERIOD_US, m, active
        )
        while not acc.full:
            for b in batches:
                acc.add(WaveformBatch(b, None, np.zeros(len(b), np.uint8), np.zeros(len(b)), 0))
        per_file[f"result_{m}"] = best_time(acc.result, repeats)

    cpu = {name: t["cpu"] for name, t in per_1000.items()}
    return {
        "n_events": n_events,
        "sample_bytes_per_1000_events": 1000 * batches[0][0].nbytes,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.machine(),
        "seconds_per_1000_events": per_1000,
        "ratio_numpy_seed_over_kernel_cpu": cpu["numpy_seed"] / cpu["kernel_active"],
        "ratio_all_channels_over_active_cpu": cpu["kernel_all_channels"] / cpu["kernel_active"],
        "max_deviation_ac_rel_ac_max": dev_ac,
        "max_deviation_dc_rel": dev_dc,
        "file_events": file_events,
        "max_events": max_events,
        "accumulator_store_bytes": store_bytes,
        "seconds_per_file": {k: {"wall": w, "cpu": c} for k, (w, c) in per_file.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events timed (1 MB each)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    parser.add_argument("--seed-events", type=int, default=64, help="events for the old tool")
    parser.add_argument("--file-events", type=int, default=1000, help="events per file")
    parser.add_argument("--max-events", type=int, default=C.SPECTRA_MAX_EVENTS)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    res = run(args.events, args.repeats, args.seed_events, args.file_events, args.max_events)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"{res['n_events']} events timed, {res['cpu_count']} CPUs, load average "
        f"{res['load_average'][0]:.1f}; seconds per 1000 events (1 GB of int16 samples):"
    )
    for name, t in res["seconds_per_1000_events"].items():
        print(f"  {name:24s} wall {t['wall']:7.3f} s   cpu {t['cpu']:7.3f} s")
    print(f"  numpy_seed / kernel_active (cpu)   {res['ratio_numpy_seed_over_kernel_cpu']:6.1f} x")
    print(
        f"  all channels / active (cpu)        {res['ratio_all_channels_over_active_cpu']:6.2f} x"
    )
    print(
        f"  max |ours - float64|: AC bins {res['max_deviation_ac_rel_ac_max']:.1e} of the AC max,"
        f" DC bin {res['max_deviation_dc_rel']:.1e} relative"
    )
    print(
        f"per file of {res['file_events']} events, {res['max_events']} spectra kept "
        f"({res['accumulator_store_bytes'] / 1e6:.0f} MB):"
    )
    for name, t in res["seconds_per_file"].items():
        print(f"  {name:24s} wall {t['wall']:7.3f} s   cpu {t['cpu']:7.3f} s")


if __name__ == "__main__":
    main()
