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


_BLOCK_BYTES = 8 * 2**20
"""Bound of the sorted working copy in :func:`nan_quantiles`."""


def nan_quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Quantiles along axis 0 ignoring NaN, numpy's default 'linear' method.

    Same numbers as ``np.nanquantile(values.astype(float64), q, axis=0)``, and silent: an
    all-NaN column, or no rows at all, gives NaN without a warning. Returns one float64 array
    of shape ``values.shape[1:]`` per q. One ``np.sort`` along axis 0 per block of columns
    (NaN sorts last), in the input dtype, the sorted copy bounded by ``_BLOCK_BYTES``: used
    for per-event light features (many events, 512 columns) and for power spectra (64 events,
    ~200k columns) alike.
    """
    values = np.asarray(values)
    out_shape = values.shape[1:]
    m = values.shape[0]
    f = out_shape[-1] if out_shape else 1
    k = math.prod(out_shape[:-1]) if out_shape else 1
    cube = values.reshape(m, k, f)
    out = [np.full((k, f), np.nan) for _ in qs]
    if m == 0 or k == 0 or f == 0:
        return [r.reshape(out_shape) for r in out]
    step = max(1, _BLOCK_BYTES // max(1, m * f * cube.itemsize))
    for c0 in range(0, k, step):
        block = np.sort(cube[:, c0 : c0 + step], axis=0)  # (m, kb, f), NaN last
        n = np.count_nonzero(~np.isnan(block), axis=0)
        top = np.maximum(n - 1, 0)
        for r, q in zip(out, qs, strict=True):
            pos = top * q  # numpy 'linear': virtual index (n - 1) * q
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, top)
            t = pos - lo
            a = np.take_along_axis(block, lo[None], axis=0)[0].astype(np.float64)
            b = np.take_along_axis(block, hi[None], axis=0)[0].astype(np.float64)
            diff = b - a
            # numpy's _lerp, exact at both ends
            value = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
            r[c0 : c0 + step] = np.where(n > 0, value, np.nan)
    return [r.reshape(out_shape) for r in out]


def median_with_errors(values: np.ndarray, cl: float = C.CONFIDENCE_LEVEL) -> Spread:
    """Median over axis 0 (events) with quantile errors at ``(1 ∓ cl)/2``, NaN ignored.

    ``values`` has shape ``(n_events, ...)``; the result arrays have shape ``(...)`` (float64).
    Columns with no finite value (or no events at all) give NaN, without warnings.
    """
    if not 0.0 < cl < 1.0:
        raise ValueError(f"cl: {cl} (expected between 0 and 1)")
    q_lo, q_mid, q_hi = nan_quantiles(values, ((1 - cl) / 2, 0.5, (1 + cl) / 2))
    return Spread(median=q_mid, err_low=q_mid - q_lo, err_high=q_hi - q_mid)


def shift_in_sigmas(current: Spread, previous: Spread) -> np.ndarray:
    """``(current.median − previous.median) / σ`` per channel, σ the quadrature sum of the
    errors facing each other (current lower and previous upper error if the median went up,
    else current upper and previous lower), as the old tool's baseline shift test. NaN where
    either median is NaN or σ is 0 with no change; ±inf for a change with σ = 0."""
    if previous.median.shape != current.median.shape:
        raise ValueError(
            f"previous: shape {previous.median.shape} (expected {current.median.shape})"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        went_up = current.median > previous.median
        sigma = np.where(
            went_up,
            np.hypot(current.err_low, previous.err_high),
            np.hypot(current.err_high, previous.err_low),
        )
        return (current.median - previous.median) / sigma
