"""Clopper-Pearson intervals: edges exact, interior against scipy and the binomial tails."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import beta, binom

from wavedqm.analysis.intervals import clopper_pearson


def test_interior_matches_beta_quantiles_and_binomial_tails() -> None:
    frac, lower, upper = clopper_pearson(5, 10, 0.68)
    assert frac == 0.5
    assert lower == pytest.approx(beta.ppf(0.16, 5, 6), rel=1e-12)
    assert upper == pytest.approx(beta.ppf(0.84, 6, 5), rel=1e-12)
    # the defining property: P(X >= 5 | lower) = P(X <= 5 | upper) = (1 - cl)/2
    assert binom.sf(4, 10, lower) == pytest.approx(0.16, abs=1e-12)
    assert binom.cdf(5, 10, upper) == pytest.approx(0.16, abs=1e-12)
    assert lower == pytest.approx(1 - upper, abs=1e-12)  # symmetric at k = n/2
    # tabulated value; wider than the normal approximation 0.5 - sqrt(0.025) = 0.342
    assert lower == pytest.approx(0.30558, abs=1e-5)
    assert upper == pytest.approx(0.69442, abs=1e-5)


def test_edges_are_exact() -> None:
    # k = 0 of 10: lower 0, upper solves (1 - p)^10 = 0.16
    frac, lower, upper = clopper_pearson(0, 10, 0.68)
    assert (frac, lower) == (0.0, 0.0)
    assert upper == pytest.approx(1 - 0.16 ** (1 / 10), rel=1e-12)
    # k = n = 10: upper 1, lower solves p^10 = 0.16
    frac, lower, upper = clopper_pearson(10, 10, 0.68)
    assert (frac, upper) == (1.0, 1.0)
    assert lower == pytest.approx(0.16 ** (1 / 10), rel=1e-12)
    # nothing known
    assert tuple(map(float, clopper_pearson(0, 0))) == (0.0, 0.0, 1.0)


def test_vectorised_without_nan_or_warnings() -> None:
    k = np.array([[0, 1, 3], [0, 2, 0]])
    n = np.array([[0, 1, 7], [5, 2, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frac, lower, upper = clopper_pearson(k, n, 0.9)
    assert frac.shape == lower.shape == upper.shape == (2, 3)
    assert not np.isnan(np.stack([frac, lower, upper])).any()
    assert frac.tolist() == [[0.0, 1.0, 3 / 7], [0.0, 1.0, 0.0]]
    assert lower[0, 0] == 0 and upper[0, 0] == 1 and upper[1, 2] == 1
    assert upper[0, 1] == 1 and lower[0, 1] == pytest.approx(0.05)  # 1 of 1 at 90%
    assert lower[0, 2] == pytest.approx(beta.ppf(0.05, 3, 5), rel=1e-12)
    assert upper[0, 2] == pytest.approx(beta.ppf(0.95, 4, 4), rel=1e-12)
    assert ((lower <= frac) & (frac <= upper)).all()
    # broadcasting a scalar n
    f2, _, _ = clopper_pearson(np.arange(4), 3)
    assert f2.tolist() == [0.0, 1 / 3, 2 / 3, 1.0]


def test_interval_narrows_with_more_events() -> None:
    _, lo_small, hi_small = clopper_pearson(3, 10)
    _, lo_big, hi_big = clopper_pearson(300, 1000)
    assert hi_big - lo_big < (hi_small - lo_small) / 5


@pytest.mark.parametrize(("k", "n", "cl"), [(3, 2, 0.68), (-1, 2, 0.68), (1, 2, 1.0), (1, 2, 0)])
def test_refuses_impossible_input(k: int, n: int, cl: float) -> None:
    with pytest.raises(ValueError):
        clopper_pearson(k, n, cl)


def test_bit_identical_to_scipy_stats_beta_ppf() -> None:
    """The quantiles come from scipy.special (a lighter import): the same bits as
    ``scipy.stats.beta.ppf`` on counts from 1 to a million."""
    rng = np.random.default_rng(7)
    n = rng.integers(1, 10**6, 20_000)
    k = rng.integers(0, n + 1)
    cl = 0.6827
    _, lower, upper = clopper_pearson(k, n, cl)
    low, high = k > 0, k < n
    a = 1 - cl
    assert np.array_equal(lower[low], beta.ppf(a / 2, k[low], n[low] - k[low] + 1))
    assert np.array_equal(upper[high], beta.ppf(1 - a / 2, k[high] + 1, n[high] - k[high]))
