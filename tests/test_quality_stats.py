"""The statistics of the quality tests on hand-computed values, and against scipy on samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from wavedqm import constants as C
from wavedqm.analysis import quality_stats as Q

LEVELS = Q.profile_levels()


def test_chi2_homogeneity_by_hand() -> None:
    # N_a = N_b = 60: chi2 = [(60*10 - 60*12)^2/22 + (60*20 - 60*18)^2/38 + 0] / 3600
    chi2, ndf, p = Q.chi2_homogeneity(np.array([10.0, 20, 30]), np.array([12.0, 18, 30]))
    expected = (14400 / 22 + 14400 / 38) / 3600
    assert chi2 == pytest.approx(expected, rel=1e-12)
    assert ndf == 2
    assert p == pytest.approx(math.exp(-expected / 2), rel=1e-12)  # chi2 sf for 2 dof


def test_chi2_homogeneity_unequal_totals_and_empty_bins() -> None:
    # a = [5, 0, 5] (N 10), b = [10, 0, 30] (N 40): the empty bin is left out, ndf = 1
    chi2, ndf, p = Q.chi2_homogeneity(np.array([5.0, 0, 5]), np.array([10.0, 0, 30]))
    expected = ((40 * 5 - 10 * 10) ** 2 / 15 + (40 * 5 - 10 * 30) ** 2 / 35) / (10 * 40)
    assert chi2 == pytest.approx(expected, rel=1e-12)
    assert ndf == 1
    assert p == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-12)
    # an empty histogram: no test
    chi2, ndf, p = Q.chi2_homogeneity(np.zeros(3), np.array([1.0, 2, 3]))
    assert np.isnan(chi2) and np.isnan(ndf) and np.isnan(p)


def test_ks_distance_by_hand() -> None:
    uniform = np.linspace(0.0, 1.0, C.QUALITY_PROFILE_LEVELS)
    assert Q.ks_distance(uniform, uniform) == 0.0
    assert Q.ks_distance(uniform, uniform + 0.5) == pytest.approx(0.5)  # U(0,1) vs U(.5,1.5)
    assert Q.ks_distance(uniform, 2 * uniform) == pytest.approx(0.5)  # U(0,1) vs U(0,2) at x=1
    # a point mass (every quantile equal) against U(0,1): its step at 0 is the whole CDF
    assert Q.ks_distance(np.zeros(C.QUALITY_PROFILE_LEVELS), uniform) == pytest.approx(1.0)
    # a channel without events: NaN, the others computed
    both = np.stack([uniform, np.full(uniform.shape, np.nan)])
    d = Q.ks_distance(both, np.stack([uniform + 0.25, uniform]))
    assert d[0] == pytest.approx(0.25) and np.isnan(d[1])


def test_ks_pvalue_by_hand() -> None:
    # D = 0.1, n1 = n2 = 200: n_eff = 100, lambda = 1: Q_KS(1) = 2 sum (-1)^(k-1) e^(-2 k^2)
    q = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k) for k in range(1, 50))
    assert Q.ks_pvalue(np.array(0.1), np.array(200), np.array(200)) == pytest.approx(q, 1e-9)
    assert np.isnan(Q.ks_pvalue(np.array(0.1), np.array(0), np.array(200)))


@settings(max_examples=25, deadline=None)
@given(
    n1=st.integers(200, 3000),
    n2=st.integers(200, 3000),
    scale=st.floats(0.5, 2.0),
    shift=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_ks_distance_of_profiles_is_scipy_ks_2samp_within_the_level_step(
    n1: int, n2: int, scale: float, shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n1)
    b = rng.normal(shift, scale, size=n2)
    exact = stats.ks_2samp(a, b).statistic
    d = Q.ks_distance(np.quantile(a, LEVELS), np.quantile(b, LEVELS))
    assert abs(d - exact) <= 1.0 / (C.QUALITY_PROFILE_LEVELS - 1) + 1e-9


def test_chi2_profiles_agrees_with_binning_the_samples() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=20000)
    cur = rng.normal(0.3, 1.2, size=5000)
    chi2, ndf, p = Q.chi2_profiles(np.quantile(cur, LEVELS), 5000, np.quantile(ref, LEVELS), 20000)
    # the same test on the raw samples binned at the reference's 5 % quantiles
    edges = np.concatenate([[-np.inf], np.quantile(ref, np.arange(1, 20) / 20), [np.inf]])
    h_cur, _ = np.histogram(cur, edges)
    h_ref, _ = np.histogram(ref, edges)
    raw, raw_ndf, _ = Q.chi2_homogeneity(h_cur.astype(float), h_ref.astype(float))
    assert ndf == raw_ndf == 19
    assert chi2 == pytest.approx(raw, rel=0.1)
    assert p < 1e-10
    _, _, p_same = Q.chi2_profiles(np.quantile(ref[:5000], LEVELS), 5000,
                                      np.quantile(ref, LEVELS), 20000)  # fmt: skip
    assert p_same > 0.01


def test_rate_sigmas_by_hand() -> None:
    # 10 of 1000 against 0 of 1000: pooled p = 0.005, se = sqrt(p (1-p) (2/1000))
    z = Q.rate_sigmas(np.array([10, 0, 3]), np.array([1000, 1000, 0]),
                      np.array([0, 0, 1]), np.array([1000, 1000, 10]))  # fmt: skip
    assert z[0] == pytest.approx(0.01 / math.sqrt(0.005 * 0.995 * 0.002), rel=1e-12)
    assert z[1] == 0.0  # 0 and 0: no change
    assert np.isnan(z[2])  # no events in the file
    # 5 of 5 against 0 of 5: pooled 1/2, se = sqrt(1/4 * 2/5)
    z = Q.rate_sigmas(np.array(5), np.array(5), np.array(0), np.array(5))
    assert z == pytest.approx(1 / math.sqrt(0.25 * 0.4), rel=1e-12)


def test_grade_intervals_are_closed_and_nan_is_not_enough_data() -> None:
    values = np.array([1.0, 1.25, 1.26, 1.75, 1.76, 0.56, np.nan])
    status = Q.grade(values, (0.8, 1.25), (0.57, 1.75))
    assert status.tolist() == [C.QUALITY_OK, C.QUALITY_OK, C.QUALITY_WARNING, C.QUALITY_WARNING,
                               C.QUALITY_ERROR, C.QUALITY_ERROR, C.QUALITY_NOT_ENOUGH]  # fmt: skip
    assert Q.grade(np.array([-1e300]), (-math.inf, 3), (-math.inf, 5)) == C.QUALITY_OK


def test_pool_profiles_is_the_mixture() -> None:
    uniform = np.linspace(0.0, 1.0, C.QUALITY_PROFILE_LEVELS)
    pooled = Q.pool_profiles([uniform, uniform + 1], [np.array(100), np.array(100)])
    np.testing.assert_allclose(pooled, 2 * uniform, atol=1e-12)  # U(0,2)
    # weights: 3 parts of U(0,1) to 1 of U(1,2): the median is at 2/3
    pooled = Q.pool_profiles([uniform, uniform + 1], [np.array(300), np.array(100)])
    assert Q.quantile_at(pooled, 0.5) == pytest.approx(2 / 3, abs=1e-9)
    # one file gives itself back; a file without events is left out
    same = Q.pool_profiles([uniform, np.full_like(uniform, np.nan)], [np.array(7), np.array(0)])
    np.testing.assert_array_equal(same, uniform)


def test_pool_profiles_matches_the_quantiles_of_the_pooled_samples() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.normal(m, s, size=n) for m, s, n in ((0, 1, 4000), (0.5, 1.5, 3000))]
    pooled = Q.pool_profiles([np.quantile(p, LEVELS) for p in parts],
                             [np.array(p.size) for p in parts])  # fmt: skip
    exact = np.quantile(np.concatenate(parts), LEVELS)
    inner = slice(5, -5)  # the tails are where 101 quantiles say least
    np.testing.assert_allclose(pooled[inner], exact[inner], atol=0.05)
