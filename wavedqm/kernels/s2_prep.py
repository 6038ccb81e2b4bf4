"""Host-side preparation of the S2 kernels' arguments (plain Python, nothing compiled).

- raw layout: :data:`SUPPORTED_TYPES` and :func:`_flat_rows`: the ``(n_frames, n_samples)``
  raw samples as one read-only, unit-stride 1-D view (row ``f`` at ``flat[f · row_stride]``),
  copied only for a non-native byte order or an unusable layout;
- thresholds: :func:`_accumulator` (raw-unit sums in int64 or float64), :func:`_exact_mode`,
  :func:`_exact_threshold` and :func:`_threshold`: a threshold in mV becomes the integer
  ``T`` of the exact test ``sign(k)·(s·p − cnt·S_p) ≥ T`` (``k = polarity·scale_v·1000``, mV
  per raw unit), or stays in mV for float samples;
- argument checks (:func:`_check_thresholds`, :func:`_check_pedestal`, :func:`_check_ma`)
  and :func:`_index_range`: the sample indices of a time range (µs, ends included).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from wavedqm.kernels.s2_types import FrameScale, S2Params

SUPPORTED_TYPES = (
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float32,
    np.float64,
)
"""Sample types the kernels read (either byte order); float16 and others are refused."""


_T_LIMIT = 2**62
"""Clamp of the integer thresholds (|sgk·(s·p − cnt·S_p)| stays far below)."""


def _exact_threshold(thr_mv: float, scale: FrameScale, w: int, p: int, strict: bool) -> int:
    """Integer ``T`` such that, for integers ``s`` (sum of ``cnt`` raw samples) and ``S_p``
    (sum of the ``p`` pedestal samples), the value ``k·(s − cnt·S_p/p)/w`` in exact real
    arithmetic (``k = polarity·scale_v·1000`` from the float ``scale_v``) is ``> thr_mv``
    (``strict``) or ``≥ thr_mv`` ⇔ ``sign(k)·(s·p − cnt·S_p) ≥ T``. Computed with
    ``Fraction`` (exact); ``w = 1`` for single samples."""
    k = Fraction(scale.polarity) * Fraction(scale.scale_v) * 1000
    r = Fraction(thr_mv) * w * p / abs(k)
    t = math.floor(r) + 1 if strict else math.ceil(r)
    return max(-_T_LIMIT, min(_T_LIMIT, t))


def _exact_mode(acc0: np.int64 | float, scale: FrameScale, dtype: np.dtype, w: int, p: int) -> bool:
    """Integer window sums, a non-zero scale, and ``s·p − cnt·S_p`` safely inside int64
    (``2·w·p·max|x| < 2⁶²``): decisions in exact integer arithmetic."""
    if not isinstance(acc0, np.integer) or scale.scale_v == 0.0:
        return False
    info = np.iinfo(dtype)
    return 2 * w * p * max(abs(int(info.min)), int(info.max)) < _T_LIMIT


def _threshold(
    thr_mv: float, scale: FrameScale, w: int, p: int, strict: bool, exact: bool
) -> int | float:
    """The threshold argument of the compiled tests: ``T`` in exact mode, else mV."""
    if exact:
        return _exact_threshold(float(thr_mv), scale, w, p, strict)
    return float(thr_mv)


def _check_thresholds(params: S2Params) -> None:
    for name, value in vars(params).items():
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value} (expected a finite number)")
    if params.s2_threshold_mv < 0:
        raise ValueError(f"s2_threshold_mv: {params.s2_threshold_mv} (expected ≥ 0 mV)")


def _accumulator(dtype: np.dtype) -> np.int64 | float:
    """Zero of the type the kernels sum raw samples in: int64 (exact) for integer samples of
    up to 32 bits, float64 otherwise."""
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        return np.int64(0)
    return 0.0


def _flat_rows(raw: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """``(flat, n_frames, row_stride, n_samples)``: a read-only 1-D, unit-stride view spanning
    all rows of ``raw`` (row ``f`` starts at ``flat[f * row_stride]``), without copying when
    the rows are unit-stride and the row stride is a non-negative multiple of the item size.
    """
    raw = np.asarray(raw)
    if raw.ndim == 1:
        raw = raw[np.newaxis, :]
    if raw.ndim != 2:
        raise ValueError(f"raw: shape {raw.shape} (expected (n_frames, n_samples))")
    if raw.dtype.newbyteorder("=").type not in SUPPORTED_TYPES:
        raise ValueError(
            f"raw: dtype {raw.dtype} (expected samples of an integer type, float32 or float64)"
        )
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    n_frames, n = raw.shape
    item = raw.itemsize
    if n_frames == 0 or n == 0:
        return np.zeros(max(n, 1), raw.dtype), n_frames, n, n
    s0, s1 = raw.strides
    if (n > 1 and s1 != item) or (n_frames > 1 and (s0 < 0 or s0 % item)):
        raw = np.ascontiguousarray(raw)
        s0 = raw.strides[0]
    row_stride = s0 // item if n_frames > 1 else n
    span = (n_frames - 1) * row_stride + n
    flat = np.lib.stride_tricks.as_strided(raw, shape=(span,), strides=(item,), writeable=False)
    return flat, n_frames, row_stride, n


def _check_pedestal(p: int, n: int, name: str) -> int:
    p = int(p)
    if not 1 <= p <= n:
        raise ValueError(f"{name}: {p} (expected 1..{n} for frames of {n} samples)")
    return p


def _check_ma(w: int) -> int:
    w = int(w)
    if w < 1:
        raise ValueError(f"ma_window: {w} (expected ≥ 1 samples)")
    return w


def _index_range(t: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """``(first, count)`` of the samples with ``lo ≤ t ≤ hi``."""
    first = int(np.searchsorted(t, lo, side="left"))
    end = int(np.searchsorted(t, hi, side="right"))
    return first, max(0, end - first)
