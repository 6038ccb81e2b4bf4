"""Power spectra of raw light waveforms: int16 ADC16 samples -> float32 power per bin (V²).

Normalisation (spec: light-dqm.md, as the old tool's ``spectra``), for a waveform of ``S``
samples ``x`` in volts::

    X = rfft(x) / (S/2 + 1)          # S/2 is a true division for odd S, as in the old tool
    power = 2 |X|²                   # V², S//2 + 1 bins, frequencies rfftfreq(S, period)

so a sine of amplitude ``A`` V centred on bin ``k`` (0 < k < S/2) gives
``2 (A·(S/2) / (S/2 + 1))²`` at bin ``k`` (≈ 2A² for large S), a constant ``c`` V gives
``2 (c·S / (S/2 + 1))²`` in the DC bin, and a single sample of ``v`` V gives the flat
spectrum ``2 (v / (S/2 + 1))²``.

Volts are ``ADC16 × adc_range_v / adc16_full_scale`` with the **2.0 V** range (spec:
flow-hdf5.md; the old tool slipped to 1.0 V in its conversion, a factor 4 in power).
Nothing is subtracted from the result: the DC bin holds the baseline (2 (S·mean/(S/2+1))²,
≈ 23 V² for a −28000 ADC16 baseline), as in the old tool.

How: the waveforms wanted (all, or a subset of events and of channels, e.g. the 384 active
ones of 512) are gathered by a numba kernel into a float32 buffer of at most
:data:`BLOCK_BYTES`, transformed with ``scipy.fft.rfft`` in single precision (complex64), and
a second numba kernel writes ``factor · (re² + im²)`` (float64, stored as float32) with
``factor = 2 (adc_range_v / adc16_full_scale)² / (S/2 + 1)²``: the conversion to volts is
folded into the normalisation instead of rounding every sample. For precision the gather
removes each waveform's rounded integer mean (``x − round(mean)`` is an exact integer, so
exact in float32) and keeps the exact int64 sum: a constant only changes the DC bin, which
is written from that sum. The float32 FFT's rounding error is then relative to the noise,
not to the ~1000× larger baseline. Measured against float64 numpy on waveforms at −28000
ADC16 with 1–300 counts of white noise: every bin within 6e-6 of the spectrum's median
(noise) level, the DC bin within 5e-8 relative; converting to float32 volts first, without
the offset, is off by up to 2–8% of the noise level for quiet (1–4 count) channels.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.fft

from wavedqm import constants as C

BLOCK_BYTES = 2 * 2**20
"""Size bound of the float32 buffer gathered and transformed at a time (at least one event;
the complex64 FFT output is about as big): the working memory does not grow with the batch,
and buffers that stay in cache are faster — CPU time per event of 384 channels measured
0.55–0.6 ms with 1–2 MiB blocks, 0.8 ms with 16 MiB, 0.87 ms with 64 MiB."""

DEFAULT_WORKERS = 1
"""``scipy.fft`` workers when none is given. The FFT is ~70% of the time (~0.4 ms per event
of 384 waveforms); the gather and power kernels are serial numba (``nogil``, ~0.1 ms per event
each). Serial on purpose: numba's OpenMP threads spin-wait after a parallel region and then
competed with the FFT for the 2 cores (measured: CPU time twice the wall time, no gain).
``workers=2`` made the kernel 1.5× faster in wall time on an idle machine
(benchmarks/bench_spectra.py), but in the pipeline the reader's prefetch and inflate threads
use the other core, and the per-file cost is bounded by the events kept: one worker leaves
that core to the reader. Pass ``workers=2`` or ``-1`` (every core) when it is free."""


def n_bins(n_samples: int) -> int:
    """Bins of the one-sided spectrum of ``n_samples`` samples: ``S//2 + 1``."""
    return n_samples // 2 + 1


def frequencies_mhz(
    n_samples: int, sample_period_us: float = C.LIGHT_SAMPLE_PERIOD_US
) -> np.ndarray:
    """Bin frequencies in MHz (float64, ``S//2 + 1``): ``rfftfreq(S, period)``, 0 to 31.25 MHz
    in steps of 62.5 kHz for 1000 samples of 0.016 µs."""
    return scipy.fft.rfftfreq(int(n_samples), d=float(sample_period_us))


def power_factor(n_samples: int, adc_range_v: float, adc16_full_scale: float) -> float:
    """``2 (adc_range_v / adc16_full_scale)² / (S/2 + 1)²``: power in V² of one bin per
    ``|rfft(ADC16 counts)|²``."""
    volts_per_count = float(adc_range_v) / float(adc16_full_scale)
    return 2.0 * volts_per_count**2 / (n_samples / 2 + 1) ** 2


@numba.njit(cache=True, nogil=True)
def _gather(
    flat: np.ndarray, events: np.ndarray, channels: np.ndarray, buf: np.ndarray, sums: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``buf[i, j, :] = float32(x - round(mean x))`` with ``x = flat[events[i], channels[j]]``,
    exact (integers below 2^17); ``sums[i, j] = Σx`` exactly (int64): the DC term."""
    n_ev, n_ch, n_samples = buf.shape
    for r in range(n_ev * n_ch):
        i = r // n_ch
        j = r - i * n_ch
        src = flat[events[i], channels[j]]
        dst = buf[i, j]
        total = np.int64(0)
        for s in range(n_samples):
            total += np.int64(src[s])
        offset = np.int32(np.round(total / n_samples))
        for s in range(n_samples):
            dst[s] = np.float32(np.int32(src[s]) - offset)
        sums[i, j] = total


@numba.njit(cache=True, nogil=True)
def _power(
    spectrum: np.ndarray, sums: np.ndarray, factor: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``out = float32(factor · |spectrum|²)``, both ``(rows, bins)``; the DC bin from the
    exact sums ``(rows,)`` instead (the transformed rows had their integer offset removed)."""
    n_rows, n_f = spectrum.shape
    for r in range(n_rows):
        src = spectrum[r]
        dst = out[r]
        dc = np.float64(sums[r])
        dst[0] = np.float32(factor * dc * dc)
        for k in range(1, n_f):
            re = np.float64(src[k].real)
            im = np.float64(src[k].imag)
            dst[k] = np.float32(factor * (re * re + im * im))


def _indices(sel: np.ndarray | None, size: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A selection (None: all; bool mask of ``shape``; or int indices < size) -> int64 indices."""
    if sel is None:
        return np.arange(size, dtype=np.int64)
    sel = np.asarray(sel)
    if sel.dtype == np.bool_:
        if sel.shape != shape:
            raise ValueError(f"{name}: mask of shape {sel.shape} (expected {shape})")
        return np.flatnonzero(sel).astype(np.int64)
    if not np.issubdtype(sel.dtype, np.integer) or sel.ndim != 1:
        raise ValueError(
            f"{name}: {sel.dtype} array of shape {sel.shape} (expected a bool mask "
            f"of shape {shape} or 1-D integer indices)"
        )
    idx = sel.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"{name}: indices outside 0..{size - 1}")
    return idx


def power_spectra(
    samples: np.ndarray,
    adc_range_v: float = C.LIGHT_ADC_RANGE_V,
    adc16_full_scale: float = C.LIGHT_ADC16_MAX,
    out: np.ndarray | None = None,
    workers: int | None = None,
    *,
    channels: np.ndarray | None = None,
    events: np.ndarray | None = None,
) -> np.ndarray:
    """Power spectra (V², float32) of the waveforms of ``samples`` (int16 ADC16, ``(n, a, c, S)``
    or any ``(n, *channel_shape, S)``), normalised as in the module docstring.

    - ``channels``: None (all), a bool mask of ``channel_shape`` (e.g. the active channels) or
      1-D indices into the flattened channel shape (``adc * n_channels + channel``).
    - ``events``: None (all), a bool mask ``(n,)`` or 1-D event indices (repeats allowed).
    - Result: ``(n_events, *channel_shape, S//2 + 1)`` when ``channels`` is None, else
      ``(n_events, n_selected_channels, S//2 + 1)`` in the order of the selection.
    - ``out``: a C-contiguous float32 array of that shape to write into (e.g. a slice of a
      longer store); otherwise a new array is returned.
    - ``workers``: ``scipy.fft`` threads (None: :data:`DEFAULT_WORKERS`; -1: every core).

    ``samples`` is only read. Working memory: two buffers of at most :data:`BLOCK_BYTES`.
    """
    if samples.dtype != np.int16:
        raise ValueError(f"samples: dtype {samples.dtype} (expected int16 ADC16 counts)")
    if samples.ndim < 2:
        raise ValueError(f"samples: shape {samples.shape} (expected (n_events, ..., n_samples))")
    if not (adc_range_v > 0 and adc16_full_scale > 0):
        raise ValueError(
            f"adc_range_v={adc_range_v}, adc16_full_scale={adc16_full_scale} (expected > 0)"
        )
    n, n_samples = samples.shape[0], samples.shape[-1]
    channel_shape = tuple(samples.shape[1:-1])
    n_wf = math.prod(channel_shape)
    if n_samples < 1:
        raise ValueError(f"samples: shape {samples.shape} (expected at least one sample)")
    ev = _indices(events, n, "events", (n,))
    ch = _indices(channels, n_wf, "channels", channel_shape)
    f = n_bins(n_samples)
    shape = (ev.size, *channel_shape, f) if channels is None else (ev.size, ch.size, f)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: {out.dtype} {out.shape} (expected C-contiguous float32 {shape})")
    elif not out.flags.writeable:
        raise ValueError("out: read-only array")
    if ev.size == 0 or ch.size == 0:
        return out
    if not samples.flags.c_contiguous:
        samples = np.ascontiguousarray(samples)
    flat = samples.reshape(n, n_wf, n_samples)
    out3 = out.reshape(ev.size, ch.size, f)
    factor = power_factor(n_samples, adc_range_v, adc16_full_scale)
    block = max(1, min(ev.size, BLOCK_BYTES // (ch.size * n_samples * 4)))
    buf = np.empty((block, ch.size, n_samples), np.float32)
    sums = np.empty((block, ch.size), np.int64)
    w = DEFAULT_WORKERS if workers is None else workers
    for e0 in range(0, ev.size, block):
        e1 = min(e0 + block, ev.size)
        part = buf[: e1 - e0]
        part_sums = sums[: e1 - e0]
        _gather(flat, ev[e0:e1], ch, part, part_sums)
        spectrum = scipy.fft.rfft(part, axis=-1, workers=w, overwrite_x=True)
        _power(spectrum.reshape(-1, f), part_sums.reshape(-1), factor, out3[e0:e1].reshape(-1, f))
        del spectrum
    return out


def warm_up() -> None:
    """Compile (or load from the numba cache) both kernels for writeable and read-only samples,
    so the first real batch never waits for the compiler."""
    samples = np.zeros((1, 1, 2, 8), np.int16)
    for writeable in (True, False):
        samples.flags.writeable = writeable
        power_spectra(samples)
        power_spectra(samples, channels=np.array([1]), events=np.array([0]))
