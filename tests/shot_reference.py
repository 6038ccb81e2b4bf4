"""Plain numpy reference of the shot metrics (tests and benchmarks only).

Written for clarity with whole-array numpy operations, independently of the numba kernels:
the same definitions as :mod:`wavedqm.analysis.shots` (spec shots-and-voxels.md with the
interpolated rise time and frequency), NaN-aware.
"""

from __future__ import annotations

import math

import numpy as np


def longest_flat_run(x: np.ndarray) -> int:
    d = np.diff(x)
    zero = np.concatenate([[False], d == 0, [False]])  # NaN differences are not zero
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def trapezoid_nan(t: np.ndarray, x: np.ndarray) -> float:
    seg = 0.5 * (x[1:] + x[:-1]) * np.diff(t)
    return float(seg[np.isfinite(seg)].sum())


def rise_time(t: np.ndarray, x: np.ndarray, baseline: float) -> float:
    finite = np.flatnonzero(np.isfinite(x))
    tf, xf = t[finite], x[finite]
    i_peak = int(np.argmax(xf))
    amp = xf[i_peak] - baseline
    if not amp > 0:
        return math.nan
    lo, hi = baseline + 0.1 * amp, baseline + 0.9 * amp
    above = np.flatnonzero(xf[: i_peak + 1] >= hi)
    if not above.size:
        return math.nan
    k = int(above[0])
    t_hi = tf[k] if k == 0 else np.interp(hi, [xf[k - 1], xf[k]], [tf[k - 1], tf[k]])
    below = np.flatnonzero(xf[:k] < lo)
    if not below.size:
        return math.nan
    j = int(below[-1])
    t_lo = np.interp(lo, [xf[j], xf[j + 1]], [tf[j], tf[j + 1]])
    return float(t_hi - t_lo)


def dominant_freq(x: np.ndarray, dt: float) -> float:
    y = np.where(np.isfinite(x), x - np.nanmean(x), 0.0)
    spec = np.fft.rfft(y)
    k = int(np.argmax(np.abs(spec[1:]) ** 2)) + 1
    n = x.size
    if k + 1 >= spec.size:
        return k / (n * dt)
    a, b, c = spec[k - 1], spec[k], spec[k + 1]
    delta = ((a - c) / (2 * b - a - c)).real * math.tan(math.pi / n) / (math.pi / n)
    return (k + float(np.clip(delta, -0.5, 0.5))) / (n * dt)


def metrics(t: np.ndarray, x: np.ndarray, baseline_fraction: float = 0.1) -> dict[str, float]:
    """The eight metrics with the default regions (baseline: first 10% of the samples)."""
    nb = max(1, int(t.size * baseline_fraction))
    base, sig = x[:nb], x[nb:]
    b_mean, b_std, s_std = np.nanmean(base), np.nanstd(base), np.nanstd(sig)
    i_max = int(np.nanargmax(x))
    return {
        "peak": float(np.nanmax(x)),
        "min": float(np.nanmin(x)),
        "peak_to_peak": float(np.nanmax(x) - np.nanmin(x)),
        "time_of_peak": float(t[i_max]),
        "auc": trapezoid_nan(t, x),
        "rise_time_10_90": rise_time(t, x, float(b_mean)),
        "dominant_freq_hz": dominant_freq(x, float(np.median(np.diff(t)))),
        "snr_estimate": float(s_std / b_std) if b_std > 0 else math.nan,
    }
