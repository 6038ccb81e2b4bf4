"""Flagged-event fractions by channel / EPCB / TPC / total, whole arrays and streamed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.fractions import (
    GRANULARITIES,
    Fraction,
    GroupCounter,
    fraction_by,
    group_counts,
)
from wavedqm.analysis.intervals import clopper_pearson
from wavedqm.config import LightConfig

import reference as ref

CMAP = ChannelMap.from_config(LightConfig())
SMALL = ChannelMap.from_config(
    LightConfig(
        n_adcs=4,
        n_channels=8,
        active_channels="1-3,5-7",
        epcb_size=2,
        tpc_adc_pairs=((0, 1), (2, 3)),
        tpc_split_channel=4,
    )
)


def _hand_masks() -> tuple[np.ndarray, np.ndarray]:
    flags = np.zeros((3, 8, 64), bool)
    over = np.zeros((3, 8, 64), bool)
    flags[0, 0, 4] = over[0, 0, 4] = True  # EPCB 0, TPC 0
    over[0, 1, 10] = True  # ADC 1: EPCB 9, TPC 0
    flags[1, 0, 5] = True  # flagged without an excursion over threshold: EPCB 0, TPC 0
    over[1, 0, 40] = True  # EPCB 4, TPC 1
    flags[2, 0, 0] = over[2, 0, 1] = True  # inactive channels never count
    return flags, over


def test_hand_made_masks_every_granularity() -> None:
    flags, over = _hand_masks()
    k, n = group_counts("channel", flags, over, CMAP)
    assert (k[0, 4], n[0, 4]) == (1, 1)
    assert (k[0, 5], n[0, 5]) == (1, 1)  # the flagged event enters the denominator
    assert (k[1, 10], n[1, 10]) == (0, 1)
    assert (k[0, 40], n[0, 40]) == (0, 1)
    assert (k[0, 0], n[0, 0], n[0, 1]) == (0, 0, 0)
    assert (k.sum(), n.sum()) == (2, 4)

    k, n = group_counts("epcb", flags, over, CMAP)
    assert k.shape == n.shape == (64,)
    assert (k[0], n[0]) == (2, 2)
    assert (k[9], n[9]) == (0, 1)
    assert (k[4], n[4]) == (0, 1)
    assert (k.sum(), n.sum()) == (2, 4)

    k, n = group_counts("tpc", flags, over, CMAP)
    assert k.tolist() == [2, 0, 0, 0, 0, 0, 0, 0]
    assert n.tolist() == [2, 1, 0, 0, 0, 0, 0, 0]

    k, n = group_counts("total", flags, over, CMAP)
    assert (int(k), int(n)) == (2, 3)


def test_event_mask_selects_events() -> None:
    flags, over = _hand_masks()
    mask = np.array([True, False, True])
    k, n = group_counts("channel", flags, over, CMAP, mask)
    assert (k[0, 4], k[0, 5], n[0, 40]) == (1, 0, 0)
    k, n = group_counts("epcb", flags, over, CMAP, mask)
    assert (k[0], n[0]) == (1, 1)
    k, n = group_counts("total", flags, over, CMAP, mask)
    assert (int(k), int(n)) == (1, 2)


def test_fraction_by_gives_counts_and_intervals() -> None:
    flags, over = _hand_masks()
    total = fraction_by("total", flags, over, CMAP, cl=0.68)
    frac, lower, upper = clopper_pearson(2, 3, 0.68)
    assert (int(total.k), int(total.n)) == (2, 3)
    assert total.fraction == frac and total.lower == lower and total.upper == upper
    tpc = fraction_by("tpc", flags, over, CMAP)
    assert tpc.fraction.tolist() == [1.0, 0, 0, 0, 0, 0, 0, 0]
    assert tpc.upper[0] == 1.0 and tpc.lower[1] == 0.0 and tpc.upper[2] == 1.0  # 0 of 0
    d = json.loads(json.dumps(tpc.to_dict()))
    assert d["k"] == [2, 0, 0, 0, 0, 0, 0, 0] and d["n"][1] == 1
    assert set(d) == {"k", "n", "fraction", "lower", "upper"}
    assert json.dumps(total.to_dict()).startswith('{"k": 2, "n": 3,')
    with pytest.raises(ValueError, match="granularity"):
        fraction_by("adc", flags, over, CMAP)
    with pytest.raises(ValueError, match="expected both"):
        fraction_by("total", flags[:, :4], over[:, :4], CMAP)


def _random_masks(
    rng: np.random.Generator, n: int, cmap: ChannelMap, p_flag: float, p_over: float
) -> tuple[np.ndarray, np.ndarray]:
    shape = (n, *cmap.shape)
    return rng.random(shape) < p_flag, rng.random(shape) < p_over


def _assert_same_as_reference(
    flags: np.ndarray, over: np.ndarray, cmap: ChannelMap, counter: GroupCounter | None = None
) -> None:
    for g in GRANULARITIES:
        groups = cmap.groups(g) if g in ("epcb", "tpc") else (None, 0)
        want_k, want_n = ref.group_counts(g, flags, over, cmap.active, *groups)
        k, n = counter.counts(g) if counter else group_counts(g, flags, over, cmap)
        np.testing.assert_array_equal(k, want_k, err_msg=g)
        np.testing.assert_array_equal(n, want_n, err_msg=g)
        assert (k <= n).all()


def test_default_map_random_masks_match_reference() -> None:
    rng = np.random.default_rng(11)
    flags, over = _random_masks(rng, 12, CMAP, 0.002, 0.01)
    _assert_same_as_reference(flags, over, CMAP)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 25),
    st.floats(0, 0.5),
    st.floats(0, 0.5),
    st.lists(st.integers(1, 9), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_streamed_counts_equal_whole_array_reference(
    n_events: int, p_flag: float, p_over: float, cuts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    flags, over = _random_masks(rng, n_events, SMALL, p_flag, p_over)
    counter = GroupCounter(SMALL)
    start = 0
    for size in [*cuts, n_events]:  # uneven batches, then the rest (maybe empty)
        stop = min(start + size, n_events)
        counter.add(flags[start:stop], over[start:stop])
        start = stop
    _assert_same_as_reference(flags, over, SMALL, counter)
    fractions = counter.fractions(0.68)
    assert set(fractions) == set(GRANULARITIES)
    assert fractions["epcb"].k.shape == (SMALL.n_epcb,)
    assert fractions["total"].n == n_events


def test_counter_with_event_masks_matches_masked_reference() -> None:
    rng = np.random.default_rng(2)
    flags, over = _random_masks(rng, 40, SMALL, 0.1, 0.2)
    select = rng.random(40) < 0.5
    counter = GroupCounter(SMALL)
    for lo, hi in ((0, 7), (7, 8), (8, 31), (31, 40)):
        counter.add(flags[lo:hi], over[lo:hi], select[lo:hi])
    _assert_same_as_reference(flags[select], over[select], SMALL, counter)
    k, _ = counter.counts("channel")
    k[:] = -5  # counts() returns copies
    assert (counter.counts("channel")[0] >= 0).all()


def test_from_counts_accepts_summed_history() -> None:
    f = Fraction.from_counts(np.array([1, 0]) + np.array([2, 0]), np.array([4, 0]) + 6)
    assert f.k.tolist() == [3, 0] and f.n.tolist() == [10, 6]
    assert f.fraction.tolist() == [0.3, 0.0]
    assert f.lower[1] == 0.0 and f.upper[1] < 1.0
