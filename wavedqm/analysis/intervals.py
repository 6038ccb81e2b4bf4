"""Clopper-Pearson (exact binomial) confidence intervals, right at the edges."""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv

from wavedqm import constants as C


def clopper_pearson(
    k: np.ndarray | int, n: np.ndarray | int, cl: float = C.CONFIDENCE_LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction ``k/n`` and its central Clopper-Pearson interval of coverage ``cl``.

    Vectorised over broadcastable ``k`` and ``n`` (counts, 0 ≤ k ≤ n). Returns float64 arrays
    ``(fraction, lower, upper)`` of the broadcast shape (0-d for scalar inputs). Edges are exact,
    with no NaN and no warning: ``k = 0`` gives ``lower = 0``; ``k = n`` gives ``upper = 1``;
    ``n = 0`` gives ``fraction = 0, lower = 0, upper = 1`` (nothing is known).
    """
    if not 0.0 < cl < 1.0:
        raise ValueError(f"cl: {cl} (expected between 0 and 1)")
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64))
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("clopper_pearson: counts must satisfy 0 <= k <= n")
    kf = k_arr.astype(np.float64)
    nf = n_arr.astype(np.float64)
    alpha = 1.0 - cl
    has_low = k_arr > 0
    has_high = k_arr < n_arr
    # the beta quantile (``scipy.stats.beta.ppf``, bit-identical: ``tests/test_analysis_intervals
    # .py``) from scipy.special, which imports in a third of the time; only where the shape
    # parameters are positive, the edges filled exactly
    lower = np.zeros(k_arr.shape, np.float64)
    upper = np.ones(k_arr.shape, np.float64)
    if np.any(has_low):
        lower[has_low] = betaincinv(kf[has_low], nf[has_low] - kf[has_low] + 1, alpha / 2)
    if np.any(has_high):
        upper[has_high] = betaincinv(kf[has_high] + 1, nf[has_high] - kf[has_high], 1 - alpha / 2)
    frac = np.zeros(k_arr.shape, np.float64)
    np.divide(kf, nf, out=frac, where=n_arr > 0)
    return frac, lower, upper
