"""The statistics of the quality tests (pure functions on arrays, no I/O).

Distributions are carried as *quantile profiles*: per channel the quantiles of the per-event
values at ``L`` evenly spaced levels (0, 1/(L−1), …, 1), with a piecewise-linear CDF between
them (flat below the first and above the last). That keeps a file's and a reference's
distributions in fixed memory (L values per channel, whatever the number of events) and lets
references made of several files be pooled (:func:`pool_profiles`). The tests:

- :func:`ks_distance`: the Kolmogorov–Smirnov distance D = max |F₁ − F₂| of two profiles' CDFs
  (exact for the piecewise-linear CDFs; against the raw samples' D it is off by at most the
  level step, 1 % for 101 levels); :func:`ks_pvalue` its asymptotic p-value with the
  effective number of events n₁n₂/(n₁+n₂) (``scipy.stats.kstwobign``, as ROOT's
  ``TH1::KolmogorovTest``);
- :func:`chi2_homogeneity`: the χ² test that two histograms come from one distribution
  (unweighted–unweighted, ROOT's ``TH1::Chi2Test("UU")``), and :func:`chi2_profiles` the same
  on bins equiprobable under the reference (its quantiles as edges);
- :func:`rate_sigmas`: the pooled two-proportion z of a flagged-event fraction against the
  reference's;
- :func:`grade`: a value against the ``warning`` and ``error`` intervals → status code.
"""

from __future__ import annotations

import math

import numpy as np

from wavedqm import constants as C


def profile_levels(n_levels: int = C.QUALITY_PROFILE_LEVELS) -> np.ndarray:
    """The levels of a quantile profile: ``n_levels`` evenly spaced in [0, 1] (float64)."""
    return np.linspace(0.0, 1.0, n_levels)


def cdf(x: np.ndarray, quantiles: np.ndarray, levels: np.ndarray, *, right: bool = True
        ) -> np.ndarray:  # fmt: skip
    """The piecewise-linear CDF of one profile (``quantiles`` non-decreasing, 1-D) at ``x``:
    right-continuous (``right``) or its left limit, so that a tie (several equal quantiles,
    a step of the CDF) gives both sides of the step."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    idx = np.searchsorted(q, x, side="right" if right else "left")
    j = np.clip(idx - 1, 0, q.size - 2)
    q0, q1 = q[j], q[j + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(q1 > q0, (x - q0) / (q1 - q0), 1.0)
    value = levels[j] + np.clip(t, 0.0, 1.0) * (levels[j + 1] - levels[j])
    return np.where(idx == 0, 0.0, np.where(idx >= q.size, 1.0, value))


def _channels(profile: np.ndarray) -> np.ndarray:
    return np.asarray(profile, dtype=np.float64).reshape(-1, np.shape(profile)[-1])


def ks_distance(current: np.ndarray, reference: np.ndarray, levels: np.ndarray | None = None
                ) -> np.ndarray:  # fmt: skip
    """KS distance per channel of two profiles of shape ``(..., L)`` → ``(...)`` in [0, 1];
    NaN where either profile has a NaN (no valid event)."""
    levels = profile_levels(np.shape(current)[-1]) if levels is None else levels
    a, b = _channels(current), _channels(reference)
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        qa, qb = a[i], b[i]
        if np.isnan(qa).any() or np.isnan(qb).any():
            continue
        knots = np.concatenate([qa, qb])
        d = 0.0
        for right in (True, False):
            diff = cdf(knots, qa, levels, right=right) - cdf(knots, qb, levels, right=right)
            d = max(d, float(np.max(np.abs(diff))))
        out[i] = d
    return out.reshape(np.shape(current)[:-1])


def ks_pvalue(distance: np.ndarray, n_current: np.ndarray, n_reference: np.ndarray
              ) -> np.ndarray:  # fmt: skip
    """Asymptotic KS p-value of ``distance`` for samples of ``n_current`` and ``n_reference``
    events: ``kstwobign.sf(D √(n₁n₂/(n₁+n₂)))``; NaN where either count is 0."""
    from scipy.stats import kstwobign  # only when a KS test is configured

    n1 = np.asarray(n_current, dtype=np.float64)
    n2 = np.asarray(n_reference, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.where((n1 > 0) & (n2 > 0), n1 * n2 / (n1 + n2), np.nan)
    return np.asarray(kstwobign.sf(np.asarray(distance) * np.sqrt(n_eff)), dtype=np.float64)


def chi2_homogeneity(counts_a: np.ndarray, counts_b: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """χ² test that two histograms (last axis: bins) come from one distribution:
    ``χ² = Σᵢ (N_b aᵢ − N_a bᵢ)² / (N_a N_b (aᵢ + bᵢ))`` over the bins with an entry, ``ndf``
    = those bins − 1, p = ``chi2.sf(χ², ndf)``. Returns ``(chi2, ndf, p)`` (NaN where either
    histogram is empty or fewer than two bins have entries)."""
    from scipy.stats import chi2 as chi2_dist

    a = np.asarray(counts_a, dtype=np.float64)
    b = np.asarray(counts_b, dtype=np.float64)
    n_a = a.sum(axis=-1, keepdims=True)
    n_b = b.sum(axis=-1, keepdims=True)
    both = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(both > 0, (n_b * a - n_a * b) ** 2 / both, 0.0)
        chi2 = terms.sum(axis=-1) / (n_a * n_b)[..., 0]
    ndf = np.count_nonzero(both > 0, axis=-1) - 1.0
    bad = (n_a[..., 0] <= 0) | (n_b[..., 0] <= 0) | (ndf < 1)
    chi2 = np.where(bad, np.nan, chi2)
    ndf = np.where(bad, np.nan, ndf)
    with np.errstate(invalid="ignore"):
        p = np.where(bad, np.nan, chi2_dist.sf(chi2, np.where(bad, 1.0, ndf)))
    return chi2, ndf, p


def chi2_profiles(
    current: np.ndarray,
    n_current: np.ndarray,
    reference: np.ndarray,
    n_reference: np.ndarray,
    n_bins: int = C.QUALITY_CHI2_BINS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`chi2_homogeneity` of two profiles ``(..., L)`` binned on the reference's
    quantiles at 1/n_bins, 2/n_bins, … (the outer bins open-ended): the reference's counts
    are ``n_reference`` × its CDF steps, the file's ``n_current`` × its own."""
    levels = profile_levels(np.shape(current)[-1])
    a, b = _channels(current), _channels(reference)
    na = np.broadcast_to(np.asarray(n_current, np.float64), np.shape(current)[:-1]).ravel()
    nb = np.broadcast_to(np.asarray(n_reference, np.float64), np.shape(current)[:-1]).ravel()
    inner = np.arange(1, n_bins) / n_bins
    hist_a = np.full((a.shape[0], n_bins), np.nan)
    hist_b = np.full((a.shape[0], n_bins), np.nan)
    for i in range(a.shape[0]):
        if np.isnan(a[i]).any() or np.isnan(b[i]).any():
            continue
        edges = np.interp(inner, levels, b[i])
        fa = np.concatenate([[0.0], cdf(edges, a[i], levels), [1.0]])
        fb = np.concatenate([[0.0], cdf(edges, b[i], levels), [1.0]])
        hist_a[i] = np.diff(fa) * na[i]
        hist_b[i] = np.diff(fb) * nb[i]
    shape = np.shape(current)[:-1]
    chi2, ndf, p = chi2_homogeneity(hist_a, hist_b)
    return chi2.reshape(shape), ndf.reshape(shape), p.reshape(shape)


def rate_sigmas(k: np.ndarray, n: np.ndarray, k_ref: np.ndarray, n_ref: np.ndarray
                ) -> np.ndarray:  # fmt: skip
    """Pooled two-proportion z of the fraction ``k/n`` against ``k_ref/n_ref``:
    ``(k/n − k_ref/n_ref) / √(p(1−p)(1/n + 1/n_ref))``, p the pooled fraction. 0 where both
    fractions are equal (0 and 0 included: p(1−p) = 0 only then), NaN where either
    denominator is 0."""
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    k_ref, n_ref = np.asarray(k_ref, np.float64), np.asarray(n_ref, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, rate_ref = k / n, k_ref / n_ref
        pooled = (k + k_ref) / (n + n_ref)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_ref))
        z = np.where(rate == rate_ref, 0.0, (rate - rate_ref) / se)
    return np.where((n > 0) & (n_ref > 0), z, np.nan)


def grade(value: np.ndarray, warning: tuple[float, float], error: tuple[float, float]
          ) -> np.ndarray:  # fmt: skip
    """Status codes (int8) of ``value``: ok inside ``warning`` (closed), warning inside
    ``error``, error outside, not enough data where the value is NaN."""
    v = np.asarray(value, dtype=np.float64)
    status = np.full(v.shape, C.QUALITY_ERROR, np.int8)
    status[(v >= error[0]) & (v <= error[1])] = C.QUALITY_WARNING
    status[(v >= warning[0]) & (v <= warning[1])] = C.QUALITY_OK
    status[np.isnan(v)] = C.QUALITY_NOT_ENOUGH
    return status


def quantile_at(profile: np.ndarray, level: float) -> np.ndarray:
    """The profiles' value at ``level`` (linear between the profile's levels): ``(...)``."""
    p = np.asarray(profile, dtype=np.float64)
    pos = level * (p.shape[-1] - 1)
    lo = min(math.floor(pos), p.shape[-1] - 2)
    t = pos - lo
    return p[..., lo] + t * (p[..., lo + 1] - p[..., lo])


def pool_profiles(profiles: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """The profile of the mixture of distributions (each ``(..., L)``, weighted by its number
    of events ``(...)``): the CDF ``Σ wᵢ Fᵢ / Σ wᵢ`` on the union of the knots, inverted at the
    levels. One profile gives itself back (for distinct quantiles). NaN where no input has
    events."""
    levels = profile_levels(np.shape(profiles[0])[-1])
    flat = [_channels(p) for p in profiles]
    w = np.stack([np.broadcast_to(np.asarray(x, np.float64), np.shape(profiles[0])[:-1]).ravel()
                  for x in weights])  # fmt: skip
    out = np.full(flat[0].shape, np.nan)
    for i in range(out.shape[0]):
        parts = [(f[i], w[j, i]) for j, f in enumerate(flat)
                 if w[j, i] > 0 and not np.isnan(f[i]).any()]  # fmt: skip
        if not parts:
            continue
        if len(parts) == 1:
            out[i] = parts[0][0]
            continue
        knots = np.unique(np.concatenate([q for q, _ in parts]))
        total = sum(weight for _, weight in parts)
        mixture = sum(weight * cdf(knots, q, levels) for q, weight in parts) / total
        out[i] = np.interp(levels, mixture, knots)
        out[i, 0], out[i, -1] = knots[0], knots[-1]
    return out.reshape(np.shape(profiles[0]))
