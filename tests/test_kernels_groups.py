"""Per-batch group counting kernel against the loop reference (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavedqm.analysis.channels import ChannelMap
from wavedqm.config import LightConfig
from wavedqm.kernels.groups import GroupCounts, count_groups, tally_cells, warm_up

import reference as ref

SMALL = ChannelMap.from_config(
    LightConfig(
        n_adcs=4,
        n_channels=8,
        active_channels="1-3,5-7",
        epcb_size=2,
        tpc_adc_pairs=((0, 1),),  # ADCs 2 and 3 in no TPC: group -1
        tpc_split_channel=4,
    )
)
FULL = ChannelMap.from_config(LightConfig())
GROUPINGS = ("epcb", "tpc")


def _counts_for(cmap: ChannelMap, n_flags: int, n_sel: int) -> tuple[np.ndarray, GroupCounts]:
    groups = np.stack([cmap.groups(g)[0] for g in GROUPINGS])
    sizes = tuple(cmap.groups(g)[1] for g in GROUPINGS)
    return groups, GroupCounts.zeros(n_flags, n_sel, cmap.active.size, sizes)


def _assert_equals_reference(
    counts: GroupCounts,
    cmap: ChannelMap,
    flags: np.ndarray,
    over: np.ndarray,
    selections: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Every count of the kernel equals the loop reference on the selected, masked events."""
    for f in range(flags.shape[0]):
        for s in range(selections.shape[0]):
            sel = selections[s]
            fl = flags[f][sel] & valid[sel]
            ov = over[sel] & valid[sel]
            k, n = ref.group_counts("channel", fl, ov, cmap.active)
            np.testing.assert_array_equal(counts.k_cell[f, s].reshape(cmap.shape), k)
            np.testing.assert_array_equal(counts.n_cell[f, s].reshape(cmap.shape), n)
            k, n = ref.group_counts("total", fl, ov, cmap.active)
            assert counts.k_total[f, s] == k and counts.n_total[s] == n
            for g, name in enumerate(GROUPINGS):
                group_of, n_groups = cmap.groups(name)
                k, n = ref.group_counts(name, fl, ov, cmap.active, group_of, n_groups)
                np.testing.assert_array_equal(counts.k_group[f, s, g, :n_groups], k)
                np.testing.assert_array_equal(counts.n_group[f, s, g, :n_groups], n)
                assert not counts.k_group[f, s, g, n_groups:].any()  # padding untouched
                assert not counts.n_group[f, s, g, n_groups:].any()


@settings(max_examples=80, deadline=None)
@given(
    n_events=st.integers(0, 30),
    n_flags=st.integers(1, 3),
    n_sel=st.integers(1, 3),
    p_flag=st.floats(0, 0.6),
    p_over=st.floats(0, 0.6),
    p_valid=st.sampled_from([1.0, 0.8, 0.3]),
    cuts=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_streamed_counts_equal_reference(
    n_events: int,
    n_flags: int,
    n_sel: int,
    p_flag: float,
    p_over: float,
    p_valid: float,
    cuts: list[int],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    shape = (n_events, *SMALL.shape)
    flags = rng.random((n_flags, *shape)) < p_flag
    over = rng.random(shape) < p_over
    valid = rng.random(shape) < p_valid
    selections = rng.random((n_sel, n_events)) < 0.6
    groups, counts = _counts_for(SMALL, n_flags, n_sel)
    start = 0
    for size in [*cuts, n_events]:  # uneven batches, then the rest (maybe empty)
        stop = min(start + size, n_events)
        count_groups(
            flags[:, start:stop],
            over[start:stop],
            SMALL.active,
            groups,
            counts,
            selections[:, start:stop],
            None if p_valid == 1.0 else valid[start:stop],
        )
        start = stop
    if p_valid == 1.0:
        valid = np.ones(shape, bool)
    _assert_equals_reference(counts, SMALL, flags, over, selections, valid)


def test_full_map_hand_made_event() -> None:
    """One event, 2x2 map: a clipped channel in EPCB 0 / TPC 0, an excursion in ADC 7."""
    flags = np.zeros((1, 1, 8, 64), bool)
    over = np.zeros((1, 8, 64), bool)
    flags[0, 0, 0, 4] = True  # ADC 0 channel 4: EPCB 0, TPC 0
    over[0, 7, 40] = True  # ADC 7 channel 40: EPCB 7*8+4 = 60, TPC 7
    flags[0, 0, 3, 0] = True  # inactive channel: never counts
    groups, counts = _counts_for(FULL, 1, 1)
    count_groups(flags, over, FULL.active, groups, counts)
    assert counts.k_cell.sum() == 1 and counts.k_cell[0, 0, 4] == 1
    assert counts.n_cell.sum() == 2 and counts.n_cell[0, 0, 7 * 64 + 40] == 1
    assert np.flatnonzero(counts.k_group[0, 0, 0]).tolist() == [0]
    assert np.flatnonzero(counts.n_group[0, 0, 0]).tolist() == [0, 60]
    assert np.flatnonzero(counts.n_group[0, 0, 1]).tolist() == [0, 7]
    assert counts.k_total.tolist() == [[1]] and counts.n_total.tolist() == [1]
    # a missing waveform hides both
    valid = np.ones((1, 8, 64), bool)
    valid[0, 0, 4] = valid[0, 7, 40] = False
    _, again = _counts_for(FULL, 1, 1)
    count_groups(flags, over, FULL.active, groups, again, valid=valid)
    assert again.n_cell.sum() == 0 and again.k_total.tolist() == [[0]]
    assert again.n_total.tolist() == [1]


@settings(max_examples=40, deadline=None)
@given(
    n_events=st.integers(0, 20),
    n_sel=st.integers(1, 3),
    with_valid=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_tally_cells_equals_masked_sums(
    n_events: int, n_sel: int, with_valid: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_events, 3, 5)) < 0.4
    valid = rng.random((n_events, 3, 5)) < 0.7
    selections = rng.random((n_sel, n_events)) < 0.5
    out = np.full((n_sel, 15), 7, np.int64)  # adds to what is there
    tally_cells(mask, out, selections, valid if with_valid else None)
    counted = mask & valid if with_valid else mask
    for s in range(n_sel):
        want = 7 + counted[selections[s]].sum(axis=0).reshape(-1)
        np.testing.assert_array_equal(out[s], want)
    every = np.zeros((1, 15), np.int64)
    tally_cells(mask, every)  # no selections: every event
    np.testing.assert_array_equal(every[0], mask.sum(axis=0).reshape(-1))


def test_refuses_mismatched_arrays() -> None:
    groups, counts = _counts_for(SMALL, 2, 1)
    flags = np.zeros((2, 3, *SMALL.shape), bool)
    over = np.zeros((3, *SMALL.shape), bool)
    with pytest.raises(ValueError, match="over"):
        count_groups(flags, over[:2], SMALL.active, groups, counts)
    with pytest.raises(ValueError, match="selections"):
        count_groups(flags, over, SMALL.active, groups, counts, np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="counts"):
        count_groups(flags[:1], over, SMALL.active, groups, counts)
    with pytest.raises(ValueError, match="groups"):
        count_groups(flags, over, SMALL.active, groups + 100, counts)
    with pytest.raises(ValueError, match="out"):
        tally_cells(over, np.zeros((1, SMALL.active.size), np.int32))


def test_warm_up_runs() -> None:
    from wavedqm.kernels import groups

    warm_up()
    # both kernels compiled (no mask is passed to them as an all-true one: one signature)
    assert groups._count_groups.signatures and groups._tally_cells.signatures
