"""Median with quantile errors over events, ignoring NaN (missing waveforms)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wavedqm import constants as C


@dataclass(frozen=True, eq=False)
class Spread:
    """Median and its asymmetric quantile errors, per channel (units of the input).

    For ``cl = 0.68``: ``err_low = median − p16`` and ``err_high = p84 − median``; the central
    ``cl`` interval of the values is ``[median − err_low, median + err_high]``.
    """

    median: np.ndarray
    err_low: np.ndarray
    err_high: np.ndarray

    @property
    def width(self) -> np.ndarray:
        """Central interval width ``err_low + err_high`` (p84 − p16 for cl = 0.68)."""
        return self.err_low + self.err_high


_COLUMN_BLOCK = 64
"""Columns sorted at a time: bounds the float64 working copy to n_events × 64 values."""


def nan_quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Quantiles along axis 0 ignoring NaN, numpy's default 'linear' method.

    Same numbers as ``np.nanquantile(values.astype(float64), q, axis=0)``, vectorised over
    columns (one sort per block of columns) and silent: an all-NaN column, or no rows at all,
    gives NaN without a warning. Returns one float64 array of shape ``values.shape[1:]`` per q.
    """
    values = np.asarray(values)
    out_shape = values.shape[1:]
    n_rows = values.shape[0]
    n_cols = math.prod(out_shape)
    flat = values.reshape(n_rows, n_cols)
    result = [np.full(n_cols, np.nan) for _ in qs]
    if n_rows == 0:
        return [r.reshape(out_shape) for r in result]
    for c0 in range(0, n_cols, _COLUMN_BLOCK):
        block = np.array(flat[:, c0 : c0 + _COLUMN_BLOCK].T, dtype=np.float64, order="C")
        m = np.count_nonzero(~np.isnan(block), axis=1)
        block.sort(axis=1)  # NaN sorts last
        rows = np.arange(block.shape[0])
        has = m > 0
        top = np.maximum(m - 1, 0)
        for r, q in zip(result, qs, strict=True):
            pos = top * q  # numpy 'linear': virtual index (n - 1) * q
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, top)
            t = pos - lo
            a = block[rows, lo]
            b = block[rows, hi]
            diff = b - a
            # numpy's _lerp, exact at both ends
            value = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
            r[c0 : c0 + block.shape[0]] = np.where(has, value, np.nan)
    return [r.reshape(out_shape) for r in result]


def median_with_errors(values: np.ndarray, cl: float = C.CONFIDENCE_LEVEL) -> Spread:
    """Median over axis 0 (events) with quantile errors at ``(1 ∓ cl)/2``, NaN ignored.

    ``values`` has shape ``(n_events, ...)``; the result arrays have shape ``(...)`` (float64).
    Columns with no finite value (or no events at all) give NaN, without warnings.
    """
    if not 0.0 < cl < 1.0:
        raise ValueError(f"cl: {cl} (expected between 0 and 1)")
    q_lo, q_mid, q_hi = nan_quantiles(values, ((1 - cl) / 2, 0.5, (1 + cl) / 2))
    return Spread(median=q_mid, err_low=q_mid - q_lo, err_high=q_hi - q_mid)
