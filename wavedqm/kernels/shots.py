"""Numba kernels of the shot metrics: NaN-aware passes over one channel of one shot.

Every function takes the time axis ``t`` (s, increasing) and/or one channel ``x`` (its own
units) as float64 arrays and skips NaN samples. Pure functions on arrays (``cache=True``), no
I/O; :mod:`wavedqm.analysis.shots` turns their output into metrics and flags.
"""

from __future__ import annotations

import numba
import numpy as np

NO_INDEX = -1


@numba.njit(cache=True, nogil=True)
def channel_scan(t: np.ndarray, x: np.ndarray) -> tuple[int, float, int, float, int, float, int]:
    """One pass: ``(n_nan, max, i_max, min, i_min, auc, longest_flat_run)``.

    ``i_max`` / ``i_min``: first sample of the extreme (``NO_INDEX`` when every sample is
    NaN). ``auc``: trapezoid ∫x dt over the intervals whose two ends are finite (units × s).
    ``longest_flat_run``: most consecutive zero differences between neighbouring finite
    samples (a flat, saturated stretch of 11 equal samples is a run of 10).
    """
    n = x.size
    n_nan = 0
    vmax = -np.inf
    vmin = np.inf
    imax = NO_INDEX
    imin = NO_INDEX
    auc = 0.0
    run = 0
    longest = 0
    prev = np.nan
    for i in range(n):
        v = x[i]
        if np.isnan(v):
            n_nan += 1
            run = 0
            prev = v
            continue
        if v > vmax:
            vmax = v
            imax = i
        if v < vmin:
            vmin = v
            imin = i
        if i > 0 and not np.isnan(prev):
            auc += 0.5 * (v + prev) * (t[i] - t[i - 1])
            if v == prev:
                run += 1
                if run > longest:
                    longest = run
            else:
                run = 0
        prev = v
    if imax == NO_INDEX:
        vmax = np.nan
        vmin = np.nan
    return n_nan, vmax, imax, vmin, imin, auc, longest


@numba.njit(cache=True, nogil=True)
def count_near(x: np.ndarray, value: float, tolerance: float) -> int:
    """Finite samples within ``tolerance`` of ``value`` (``|x - value| <= tolerance``)."""
    k = 0
    for v in x:
        if abs(v - value) <= tolerance:
            k += 1
    return k


@numba.njit(cache=True, nogil=True)
def first_abs_above(x: np.ndarray, level: float) -> int:
    """First sample with ``|x| > level`` (``NO_INDEX`` if none)."""
    for i in range(x.size):
        if abs(x[i]) > level:
            return i
    return NO_INDEX


@numba.njit(cache=True, nogil=True)
def region_moments(x: np.ndarray, start: int, stop: int) -> tuple[int, float, float]:
    """``(n, mean, std)`` of the finite samples of ``x[start:stop]`` (population std,
    ``ddof=0``, as ``np.nanstd``; two passes for accuracy). NaN mean/std when ``n == 0``."""
    n = 0
    s = 0.0
    for i in range(start, stop):
        v = x[i]
        if not np.isnan(v):
            n += 1
            s += v
    if n == 0:
        return 0, np.nan, np.nan
    mean = s / n
    ss = 0.0
    for i in range(start, stop):
        v = x[i]
        if not np.isnan(v):
            ss += (v - mean) * (v - mean)
    return n, mean, np.sqrt(ss / n)


@numba.njit(cache=True, nogil=True)
def _crossing(t: np.ndarray, x: np.ndarray, below: int, above: int, level: float) -> float:
    """Time where the straight line between samples ``below`` and ``above`` reaches
    ``level`` (s)."""
    x0 = x[below]
    x1 = x[above]
    if x1 == x0:
        return t[above]
    return t[below] + (level - x0) / (x1 - x0) * (t[above] - t[below])


@numba.njit(cache=True, nogil=True)
def rise_crossings(
    t: np.ndarray, x: np.ndarray, low: float, high: float, i_peak: int
) -> tuple[float, float]:
    """``(t_low, t_high)`` (s) of the rising edge that leads to the peak at ``i_peak``.

    ``t_high``: the first time the signal reaches ``high`` (first finite sample at or above
    it, interpolated linearly from the finite sample before). ``t_low``: walking back from
    there, the last time the signal was below ``low`` (interpolated between that sample and
    the next finite one), so that a noise spike over ``low`` long before the pulse does not
    stretch the rise. NaN when the record starts above ``low`` or never reaches ``high``.
    """
    k_high = NO_INDEX
    last_finite = NO_INDEX
    prev_finite = NO_INDEX
    for i in range(0, i_peak + 1):
        v = x[i]
        if np.isnan(v):
            continue
        if v >= high:
            k_high = i
            prev_finite = last_finite
            break
        last_finite = i
    if k_high == NO_INDEX:
        return np.nan, np.nan
    t_high = t[k_high] if prev_finite == NO_INDEX else _crossing(t, x, prev_finite, k_high, high)
    nxt = k_high
    for j in range(k_high - 1, -1, -1):
        v = x[j]
        if np.isnan(v):
            continue
        if v < low:
            return _crossing(t, x, j, nxt, low), t_high
        nxt = j
    return np.nan, t_high


@numba.njit(cache=True, nogil=True)
def bin_means(x: np.ndarray, n_bins: int) -> np.ndarray:
    """NaN-aware means of ``n_bins`` consecutive blocks of (nearly) equal sample counts:
    block ``b`` holds samples ``[b*n//n_bins, (b+1)*n//n_bins)`` (NaN for an all-NaN block)."""
    n = x.size
    out = np.full(n_bins, np.nan)
    for b in range(n_bins):
        lo = b * n // n_bins
        hi = (b + 1) * n // n_bins
        s = 0.0
        k = 0
        for i in range(lo, hi):
            v = x[i]
            if not np.isnan(v):
                s += v
                k += 1
        if k:
            out[b] = s / k
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of this module."""
    t = np.arange(16, dtype=np.float64)
    x = np.sin(t)
    channel_scan(t, x)
    count_near(x, 0.5, 1e-10)
    first_abs_above(x, 0.1)
    region_moments(x, 0, 8)
    rise_crossings(t, x, 0.1, 0.9, 2)
    bin_means(x, 4)
