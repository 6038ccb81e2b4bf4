"""The voxel kernel against a plain numpy reference and hand-computed cases: count and ΣQ
exact, M2 within 1e-12 relative; serial = parallel = any merge of partial fills."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavedqm.kernels.voxels import VoxelAccumulator

ORIGIN, SIZE, SHAPE = (-1.0, -2.0, 0.0), (0.5, 1.0, 2.0), (4, 3, 5)


def reference(x, y, z, q, disabled):
    """numpy: voxel index, then count / sum / M2 per voxel; tallies by cause in order."""
    x, y, z, q = (np.asarray(a, np.float64) for a in (x, y, z, q))
    dis = np.zeros(x.shape, bool) if disabled is None else np.asarray(disabled, bool)
    bad_pos = ~dis & ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(z))
    bad_q = ~dis & ~bad_pos & ~np.isfinite(q)
    valid = ~dis & ~bad_pos & ~bad_q
    idx = np.stack(
        [np.floor((c - o) / s) for c, o, s in zip((x, y, z), ORIGIN, SIZE, strict=True)], 1
    )
    with np.errstate(invalid="ignore"):
        inside = valid & np.all((idx >= 0) & (idx < np.array(SHAPE)), axis=1)
    flat = (
        np.ravel_multi_index(idx[inside].astype(int).T, SHAPE) if inside.any() else np.zeros(0, int)
    )
    n_vox = int(np.prod(SHAPE))
    count = np.bincount(flat, minlength=n_vox)
    qs = q[inside]
    sums = np.zeros(n_vox)
    m2 = np.zeros(n_vox)
    for v in np.unique(flat):
        vals = qs[flat == v]
        sums[v] = np.sum(vals)
        m2[v] = np.sum((vals - vals.mean()) ** 2)
    tallies = {
        "hits": x.size, "disabled": int(dis.sum()), "invalid_position": int(bad_pos.sum()),
        "invalid_charge": int(bad_q.sum()), "outside_grid": int((valid & ~inside).sum()),
        "in_grid": int(inside.sum()),
    }  # fmt: skip
    return count, sums, m2, tallies, float(np.sum(q[valid])), float(np.sum(qs))


def _assert_matches(acc: VoxelAccumulator, ref) -> None:
    count, sums, m2, tallies, sum_all, sum_in = ref
    np.testing.assert_array_equal(acc.count, count)
    np.testing.assert_allclose(acc.sums, sums, rtol=1e-15, atol=0)
    np.testing.assert_allclose(acc.m2, m2, rtol=1e-12, atol=1e-9)
    assert acc.tally() == tallies
    assert acc.sum_q == pytest.approx(sum_all, rel=1e-15, abs=1e-12)
    assert acc.sum_q_in_grid == pytest.approx(sum_in, rel=1e-15, abs=1e-12)


def _new(threads: int | None = None) -> VoxelAccumulator:
    return VoxelAccumulator(ORIGIN, SIZE, SHAPE, threads=threads)


def test_hand_computed_case() -> None:
    # voxel (0,0,0) gets Q 1 and 3 (mean 2, M2 2); (3,2,4) gets 5; one hit outside, one NaN x,
    # one NaN Q, one disabled
    x = np.array([-0.9, -0.6, 0.9, 5.0, np.nan, -0.9, -0.9])
    y = np.array([-1.5, -1.1, 0.5, 0.0, 0.0, -1.5, -1.5])
    z = np.array([0.1, 1.9, 9.9, 1.0, 1.0, 0.1, 0.1])
    q = np.array([1.0, 3.0, 5.0, 7.0, 1.0, np.nan, 100.0])
    dis = np.array([False, False, False, False, False, False, True])
    acc = _new(threads=1)
    acc.fill(x, y, z, q, dis)
    count = acc.count.reshape(SHAPE)
    assert count[0, 0, 0] == 2 and count[3, 2, 4] == 1 and acc.count.sum() == 3
    assert acc.sums.reshape(SHAPE)[0, 0, 0] == 4.0
    assert acc.m2.reshape(SHAPE)[0, 0, 0] == pytest.approx(2.0)
    assert acc.tally() == {
        "hits": 7, "disabled": 1, "invalid_position": 1, "invalid_charge": 1,
        "outside_grid": 1, "in_grid": 3,
    }  # fmt: skip
    assert acc.sum_q == 16.0 and acc.sum_q_in_grid == 9.0


hits = st.integers(0, 400).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.integers(0, 2**31 - 1),
        st.booleans(),
    )
)


def _random_hits(n: int, seed: int, with_disabled: bool):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, n)
    y = rng.uniform(-2.5, 1.5, n)
    z = rng.uniform(-1.0, 11.0, n)
    q = rng.gamma(2.0, 10.0, n) + 1e3 * (rng.random(n) < 0.05)
    for a in (x, y, z, q):
        a[rng.random(n) < 0.03] = np.nan
    disabled = rng.random(n) < 0.05 if with_disabled else None
    return x, y, z, q, disabled


@settings(max_examples=60, deadline=None)
@given(hits)
def test_serial_parallel_and_reference_agree(case) -> None:
    n, seed, with_disabled = case
    x, y, z, q, disabled = _random_hits(n, seed, with_disabled)
    ref = reference(x, y, z, q, disabled)
    serial = _new(threads=1)
    serial.fill(x, y, z, q, disabled, parallel=False)
    _assert_matches(serial, ref)
    parallel = _new()
    parallel.fill(x, y, z, q, disabled, parallel=True)
    _assert_matches(parallel, ref)
    np.testing.assert_array_equal(parallel.count, serial.count)
    np.testing.assert_array_equal(parallel.sums, serial.sums)  # double-double: bit-identical


@settings(max_examples=40, deadline=None)
@given(hits, st.integers(0, 400))
def test_merge_of_two_halves_equals_one_fill(case, cut) -> None:
    n, seed, with_disabled = case
    x, y, z, q, disabled = _random_hits(n, seed, with_disabled)
    cut = min(cut, n)
    one = _new(threads=1)
    one.fill(x, y, z, q, disabled)
    a, b = _new(threads=1), _new(threads=1)

    def half(arr, s):
        return None if arr is None else arr[s]

    a.fill(*(arr[:cut] for arr in (x, y, z, q)), half(disabled, slice(None, cut)))
    b.fill(*(arr[cut:] for arr in (x, y, z, q)), half(disabled, slice(cut, None)))
    a.merge(b)
    np.testing.assert_array_equal(a.count, one.count)
    np.testing.assert_array_equal(a.sums, one.sums)
    np.testing.assert_allclose(a.m2, one.m2, rtol=1e-12, atol=1e-9)
    assert a.tally() == one.tally()
    # and through the sparse form the state folder keeps
    c = _new(threads=1)
    c.merge_sparse(one.sparse())
    np.testing.assert_array_equal(c.count, one.count)
    np.testing.assert_array_equal(c.m2, one.m2)


def test_large_chunk_takes_the_threaded_path_and_agrees() -> None:
    x, y, z, q, disabled = _random_hits(300_000, 7, True)
    auto = _new()
    if not auto.would_parallelise(x.size):
        pytest.skip("numba has one thread here")
    auto.fill(x, y, z, q, disabled)
    serial = _new(threads=1)
    serial.fill(x, y, z, q, disabled)
    np.testing.assert_array_equal(auto.count, serial.count)
    np.testing.assert_array_equal(auto.sums, serial.sums)
    np.testing.assert_allclose(auto.m2, serial.m2, rtol=1e-12)
    assert auto.tally() == serial.tally()
