"""Median with quantile errors over events, ignoring NaN, silent on empty input."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wavedqm.analysis.stats import median_with_errors, nan_quantiles

import reference as ref


def test_hand_computed_quantiles() -> None:
    values = np.arange(101, dtype=np.float32)[:, None] * np.array([1.0, 2.0])
    spread = median_with_errors(values, 0.68)
    assert spread.median.tolist() == [50.0, 100.0]
    # p16 and p84 fall on ranks 16 and 84 (up to the rounding of 0.84 * 100)
    np.testing.assert_allclose(spread.err_low, [34.0, 68.0], rtol=1e-12)
    np.testing.assert_allclose(spread.err_high, [34.0, 68.0], rtol=1e-12)
    np.testing.assert_allclose(spread.width, [68.0, 136.0], rtol=1e-12)
    # interpolation between ranks: 4 values, median halfway between the middle two
    s = median_with_errors(np.array([[1.0], [2.0], [4.0], [10.0]]), 0.5)
    assert s.median.tolist() == [3.0]
    assert s.err_low.tolist() == [3.0 - 1.75]  # q25 at rank 0.75
    assert s.err_high.tolist() == [5.5 - 3.0]  # q75 at rank 2.25


def test_nan_ignored_and_all_nan_columns_silent() -> None:
    values = np.array(
        [[1.0, np.nan, np.nan], [np.nan, np.nan, 5.0], [3.0, np.nan, np.nan]], np.float32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spread = median_with_errors(values)
        empty = median_with_errors(np.zeros((0, 8, 64), np.float32))
    assert spread.median[0] == 2.0 and spread.median[2] == 5.0
    assert np.isnan(spread.median[1]) and np.isnan(spread.err_low[1])
    assert spread.err_low[2] == 0.0 and spread.err_high[2] == 0.0
    assert empty.median.shape == (8, 64) and np.isnan(empty.median).all()
    assert np.isnan(empty.err_high).all()


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=9),
        elements=st.one_of(st.floats(-3e4, 3e4, allow_nan=False), st.just(np.nan)),
    ),
    st.sampled_from([0.68, 0.9, 0.5]),
)
def test_matches_numpy_nanquantile(values: np.ndarray, cl: float) -> None:
    spread = median_with_errors(values, cl)
    med, lo, hi = ref.nan_median_errors(values, cl)
    np.testing.assert_array_equal(spread.median, med)
    np.testing.assert_allclose(spread.err_low, lo, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(spread.err_high, hi, rtol=1e-12, atol=1e-9)


def test_many_columns_in_blocks_match_numpy() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(-28000, 30, size=(57, 8, 64)).astype(np.float32)
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 3, 7] = np.nan
    qs = (0.16, 0.5, 0.84)
    got = nan_quantiles(values, qs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanquantile(values.astype(np.float64), qs, axis=0)
    for g, w in zip(got, want, strict=True):
        assert g.shape == (8, 64) and g.dtype == np.float64
        np.testing.assert_array_equal(g, w)
