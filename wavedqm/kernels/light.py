"""Fused per-waveform light features: one numba pass over the raw int16 samples.

Every quantity is in ADC16 counts (the 14-bit digitiser value × 4, as stored in the file).
For each waveform (event, ADC, channel) the kernel computes, from the integer samples:

- ``baseline``: mean of the first ``pedestal_samples`` samples;
- ``noise``: population standard deviation (ddof=0) of the same samples;
- ``max_above_baseline``: largest sample minus the baseline;
- ``clipped``: some sample is ≥ ``clip_level``;
- ``negative``: some sample is < baseline − ``ptp_threshold``.

Each waveform is reduced in one loop nest with integer accumulators (int64 sum and sum of
squares over the pedestal, int32 running min/max over all samples): no float copy of the data is
ever made, and each sample is loaded from memory once (the pedestal samples are read a second
time from L1 cache by the min/max loop, which keeps both loops vectorisable). Waveforms are
spread over threads with ``prange``.

The variance is formed exactly in integers, ``p·Σx² − (Σx)²`` (exact in int64 for
``pedestal_samples`` ≤ 65536), and only then divided by ``p²`` in float64, so the noise has
no cancellation error whatever the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from wavedqm import constants as C

MAX_PEDESTAL_SAMPLES = 1 << 16
"""Largest pedestal for which ``p·Σx²`` of int16 samples fits in int64 exactly."""

_FIELDS = ("baseline", "noise", "max_above_baseline", "clipped", "negative")


@dataclass(frozen=True, eq=False)
class LightFeatures:
    """Per-waveform features, each of shape ``(n_events, n_adcs, n_channels)``.

    The arrays are C-contiguous and owned by this object; pass it back as ``out=`` to
    :func:`light_features` to reuse them for the next batch of the same shape.
    """

    baseline: np.ndarray
    """float32, ADC16 counts: mean of the pedestal samples."""
    noise: np.ndarray
    """float32, ADC16 counts: population std (ddof=0) of the pedestal samples."""
    max_above_baseline: np.ndarray
    """float32, ADC16 counts: max sample − baseline."""
    clipped: np.ndarray
    """bool: some sample ≥ the clip level."""
    negative: np.ndarray
    """bool: some sample < baseline − ptp threshold."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.baseline.shape)

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> LightFeatures:
        """Uninitialised buffers of the given ``(n_events, n_adcs, n_channels)`` shape."""
        return cls(
            baseline=np.empty(shape, np.float32),
            noise=np.empty(shape, np.float32),
            max_above_baseline=np.empty(shape, np.float32),
            clipped=np.empty(shape, np.bool_),
            negative=np.empty(shape, np.bool_),
        )

    def fits(self, shape: tuple[int, ...]) -> bool:
        """True if every buffer has this shape, the right dtype and is C-contiguous."""
        for name in _FIELDS:
            a = getattr(self, name)
            want = np.bool_ if name in ("clipped", "negative") else np.float32
            if a.shape != shape or a.dtype != want or not a.flags.c_contiguous:
                return False
            if not a.flags.writeable:
                return False
        return True


@numba.njit(parallel=True, cache=True, nogil=True)
def _features_2d(
    samples: np.ndarray,
    pedestal: int,
    ptp_threshold: float,
    clip_level: int,
    baseline: np.ndarray,
    noise: np.ndarray,
    max_above: np.ndarray,
    clipped: np.ndarray,
    negative: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``samples`` (n_waveforms, n_samples) int16 C-contiguous; outputs 1-D (n_waveforms,)."""
    n_waveforms, n_samples = samples.shape
    p = np.int64(pedestal)
    for w in numba.prange(n_waveforms):
        row = samples[w]
        total = np.int64(0)
        total_sq = np.int64(0)
        for j in range(p):
            v = np.int64(row[j])
            total += v
            total_sq += v * v
        lo = np.int32(row[0])
        hi = np.int32(row[0])
        for j in range(n_samples):
            v32 = np.int32(row[j])
            lo = min(lo, v32)
            hi = max(hi, v32)
        mean = total / p
        # exact integer numerator of the variance: p*sum(x^2) - (sum x)^2 >= 0
        var = (p * total_sq - total * total) / (p * p)
        baseline[w] = mean
        noise[w] = np.sqrt(var)
        max_above[w] = hi - mean
        clipped[w] = hi >= clip_level
        negative[w] = (lo - mean) < -ptp_threshold


def light_features(
    samples: np.ndarray,
    pedestal_samples: int,
    ptp_threshold: float,
    clip_level: int,
    out: LightFeatures | None = None,
) -> LightFeatures:
    """Features of every waveform of ``samples`` (int16 ADC16, ``(n, n_adcs, n_channels, S)``).

    ``pedestal_samples`` (1..min(S, 65536)) leading samples give baseline and noise;
    ``ptp_threshold`` (ADC16) sets the negative-excursion cut; ``clip_level`` (ADC16) the
    clipping cut. ``out`` is reused when its buffers have the right shape, otherwise new ones
    are allocated: always use the returned object. ``samples`` is not kept; a non-contiguous
    array is copied once to a contiguous one.
    """
    if samples.dtype != np.int16:
        raise ValueError(f"samples: dtype {samples.dtype} (expected int16 ADC16 counts)")
    if samples.ndim < 2:
        raise ValueError(f"samples: shape {samples.shape} (expected (..., n_samples))")
    n_samples = samples.shape[-1]
    p = int(pedestal_samples)
    if not 1 <= p <= min(n_samples, MAX_PEDESTAL_SAMPLES):
        raise ValueError(
            f"pedestal_samples: {p} (expected 1..{min(n_samples, MAX_PEDESTAL_SAMPLES)} "
            f"for waveforms of {n_samples} samples)"
        )
    shape = tuple(samples.shape[:-1])
    if out is None or not out.fits(shape):
        out = LightFeatures.empty(shape)
    if not samples.flags.c_contiguous:
        samples = np.ascontiguousarray(samples)
    flat = samples.reshape(-1, n_samples)
    _features_2d(
        flat,
        p,
        float(ptp_threshold),
        int(clip_level),
        out.baseline.reshape(-1),
        out.noise.reshape(-1),
        out.max_above_baseline.reshape(-1),
        out.clipped.reshape(-1),
        out.negative.reshape(-1),
    )
    return out


def warm_up() -> None:
    """Compile (or load from the numba cache) the kernel on tiny arrays.

    Covers writeable and read-only sample arrays (numba types them apart; a reader may hand
    out read-only views), so the first real batch never waits for the compiler.
    """
    samples = np.zeros((1, 1, 1, C.PEDESTAL_SAMPLES + 1), np.int16)
    for writeable in (True, False):
        samples.flags.writeable = writeable
        light_features(
            samples,
            C.PEDESTAL_SAMPLES,
            float(C.PTP_THRESHOLD_ADC16),
            C.LIGHT_CLIP_LEVEL_ADC16,
        )
