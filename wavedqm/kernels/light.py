"""Fused per-waveform light features: one numba pass over the raw int16 samples.

Every quantity is in ADC16 counts (the 14-bit digitiser value × 4, as stored in the file).
For each waveform (event, ADC, channel) the kernel computes, from the integer samples:

- ``baseline``: mean of the first ``pedestal_samples`` samples;
- ``noise``: population standard deviation (ddof=0) of the same samples;
- ``max_above_baseline``: largest sample minus the baseline;
- ``clipped``: some sample is ≥ ``clip_level``;
- ``negative``: some sample is < baseline − ``ptp_threshold``;
- ``max_jump``: largest sample-to-sample step |s[i+1] − s[i]| (int32).

Each waveform is reduced in one loop nest with integer accumulators (int64 sum and sum of
squares over the pedestal, int32 running min/max over all samples): no float copy of the data is
ever made, and each sample is loaded from memory once (the pedestal samples are read a second
time from L1 cache by the min/max loop, which keeps both loops vectorisable). Large batches
(≥ ``PARALLEL_MIN_BYTES``) are spread over the numba threads with ``prange``; small ones run on
the calling thread, which leaves the other cores to the reader that prefetches the next batch
(and never waits at a thread barrier behind a core that another process is using).

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

PARALLEL_MIN_BYTES = 64 * 2**20
"""Samples (B) from which :func:`light_features` uses every numba thread by default: above the
reader's batches (at most ``reader.chunk_bytes``, 32 MiB by default; 4 MiB for uncompressed
files). Those run on the calling thread while the reader prefetches the next batch on another
core: 4 MiB take ~0.07 ms on one core, and a parallel call would wait at its thread barrier for
a core the reader (or another process) is using."""

_FIELDS = ("baseline", "noise", "max_above_baseline", "clipped", "negative", "max_jump")
_DTYPES = {"clipped": np.bool_, "negative": np.bool_, "max_jump": np.int32}


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
    max_jump: np.ndarray
    """int32, ADC16 counts: largest |s[i+1] − s[i]| of the waveform."""

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
            max_jump=np.empty(shape, np.int32),
        )

    def fits(self, shape: tuple[int, ...]) -> bool:
        """True if every buffer has this shape, the right dtype and is C-contiguous."""
        for name in _FIELDS:
            a = getattr(self, name)
            want = _DTYPES.get(name, np.float32)
            if a.shape != shape or a.dtype != want or not a.flags.c_contiguous:
                return False
            if not a.flags.writeable:
                return False
        return True


@numba.njit(cache=True, nogil=True, inline="always")
def _one_waveform(
    row: np.ndarray, p: np.int64, ptp_threshold: float, clip_level: int
) -> tuple[float, float, float, bool, bool, int]:  # pragma: no cover - compiled
    """(baseline, noise, max above baseline, clipped, negative, max jump) of one waveform."""
    total = np.int64(0)
    total_sq = np.int64(0)
    for j in range(p):
        v = np.int64(row[j])
        total += v
        total_sq += v * v
    lo = np.int32(row[0])
    hi = np.int32(row[0])
    for j in range(row.shape[0]):
        v32 = np.int32(row[j])
        lo = min(lo, v32)
        hi = max(hi, v32)
    # a separate pass over the (now cached) row keeps both loops free of loop-carried state
    # other than the reductions, so LLVM vectorises them
    jump = np.int32(0)
    for j in range(1, row.shape[0]):
        jump = max(jump, abs(np.int32(row[j]) - np.int32(row[j - 1])))
    mean = total / p
    # exact integer numerator of the variance: p*sum(x^2) - (sum x)^2 >= 0
    var = (p * total_sq - total * total) / (p * p)
    return mean, np.sqrt(var), hi - mean, hi >= clip_level, (lo - mean) < -ptp_threshold, jump


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
    max_jump: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``samples`` (n_waveforms, n_samples) int16 C-contiguous; outputs 1-D (n_waveforms,).
    Waveforms spread over the numba threads."""
    p = np.int64(pedestal)
    for w in numba.prange(samples.shape[0]):
        b, s, m, c, n, j = _one_waveform(samples[w], p, ptp_threshold, clip_level)
        baseline[w] = b
        noise[w] = s
        max_above[w] = m
        clipped[w] = c
        negative[w] = n
        max_jump[w] = j


@numba.njit(cache=True, nogil=True)
def _features_2d_serial(
    samples: np.ndarray,
    pedestal: int,
    ptp_threshold: float,
    clip_level: int,
    baseline: np.ndarray,
    noise: np.ndarray,
    max_above: np.ndarray,
    clipped: np.ndarray,
    negative: np.ndarray,
    max_jump: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`_features_2d` on the calling thread only."""
    p = np.int64(pedestal)
    for w in range(samples.shape[0]):
        b, s, m, c, n, j = _one_waveform(samples[w], p, ptp_threshold, clip_level)
        baseline[w] = b
        noise[w] = s
        max_above[w] = m
        clipped[w] = c
        negative[w] = n
        max_jump[w] = j


def light_features(
    samples: np.ndarray,
    pedestal_samples: int,
    ptp_threshold: float,
    clip_level: int,
    out: LightFeatures | None = None,
    parallel: bool | None = None,
) -> LightFeatures:
    """Features of every waveform of ``samples`` (int16 ADC16, ``(n, n_adcs, n_channels, S)``).

    ``pedestal_samples`` (1..min(S, 65536)) leading samples give baseline and noise;
    ``ptp_threshold`` (ADC16) sets the negative-excursion cut; ``clip_level`` (ADC16) the
    clipping cut. ``out`` is reused when its buffers have the right shape, otherwise new ones
    are allocated: always use the returned object. ``samples`` is not kept; a non-contiguous
    array is copied once to a contiguous one. ``parallel``: spread the waveforms over the numba
    threads (None: when ``samples`` holds at least ``PARALLEL_MIN_BYTES``).
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
    if parallel is None:
        parallel = samples.nbytes >= PARALLEL_MIN_BYTES
    kernel = _features_2d if parallel else _features_2d_serial
    kernel(
        flat,
        p,
        float(ptp_threshold),
        int(clip_level),
        out.baseline.reshape(-1),
        out.noise.reshape(-1),
        out.max_above_baseline.reshape(-1),
        out.clipped.reshape(-1),
        out.negative.reshape(-1),
        out.max_jump.reshape(-1),
    )
    return out


def warm_up() -> None:
    """Compile (or load from the numba cache) every kernel of the light path on tiny arrays.

    Covers both variants of the feature kernel on writeable and read-only sample arrays (numba
    types them apart; a reader may hand out read-only views) and the accumulator's counting
    kernel (:mod:`wavedqm.kernels.groups`), so the first real batch never waits for the
    compiler (the first numba call of a process takes 0.2-0.4 s, even from the cache).
    """
    from wavedqm.kernels.groups import warm_up as warm_up_groups

    samples = np.zeros((1, 1, 1, C.PEDESTAL_SAMPLES + 1), np.int16)
    for writeable in (True, False):
        samples.flags.writeable = writeable
        for parallel in (False, True):
            light_features(
                samples,
                C.PEDESTAL_SAMPLES,
                float(C.PTP_THRESHOLD_ADC16),
                C.LIGHT_CLIP_LEVEL_ADC16,
                parallel=parallel,
            )
    warm_up_groups()
