"""History store and rollups: hand-computed rollups, restarts, damaged stores, status 2."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from structlog.testing import capture_logs

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap, default_channel_status
from wavedqm.analysis.fractions import GRANULARITIES
from wavedqm.analysis.history import Counts, FileRecord, baseline_previous, combine_spreads
from wavedqm.analysis.intervals import clopper_pearson
from wavedqm.analysis.light import FLAGS, SELECTIONS, LightAccumulator, LightResult
from wavedqm.analysis.stats import Spread
from wavedqm.config import LightConfig
from wavedqm.errors import OutputError
from wavedqm.exporters.history_store import (
    HISTORY_FILE,
    HISTORY_SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
)
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import light_features

GRID = (2, 3)
N_EPCB = 2
N_TPC = 1
CL = 0.68

# --- hand-made records ----------------------------------------------------------------------

BASE = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def const(v: float) -> np.ndarray:
    return np.full(GRID, float(v))


def make_record(
    name: str,
    offset: float,
    err_low: float,
    err_high: float,
    total: tuple[int, int],
    channel_k: np.ndarray | None = None,
    channel_n: np.ndarray | None = None,
    time_range: tuple[float, float] | None = (0.0, 1.0),
    median: np.ndarray | None = None,
    spectra_roi: np.ndarray | None = None,
    roi_centres_mhz: np.ndarray | None = None,
) -> FileRecord:
    """A small record: every selection gets the same spread (baseline = BASE + offset, noise =
    10 + offset); counts: ``total`` (k, n) for "total", channel/EPCB/TPC as given or derived."""
    med = BASE + offset if median is None else median
    spread = Spread(median=med, err_low=const(err_low), err_high=const(err_high))
    noise = Spread(median=med * 0 + 10 + offset, err_low=const(1), err_high=const(1))
    ck = np.zeros(GRID, np.int64) if channel_k is None else channel_k
    cn = np.full(GRID, total[1], np.int64) if channel_n is None else channel_n
    counts = {
        "channel": Counts(k=ck.astype(np.int64), n=cn.astype(np.int64)),
        "epcb": Counts(k=ck.sum(axis=1), n=cn.max(axis=1)),
        "tpc": Counts(k=np.array([ck.sum()]), n=np.array([cn.max()])),
        "total": Counts(k=np.array(total[0]), n=np.array(total[1])),
    }
    start, end = (None, None) if time_range is None else time_range
    return FileRecord(
        file=name,
        processed_at=1000.0 + offset,
        time_start_s=start,
        time_end_s=end,
        n_events=total[1],
        events_by_trigger={"beam": total[1] // 2, "self": total[1] - total[1] // 2},
        baseline={s: spread for s in SELECTIONS},
        noise={s: noise for s in SELECTIONS},
        counts={f: {s: dict(counts) for s in SELECTIONS} for f in FLAGS},
        spectra_roi=spectra_roi,
        roi_centres_mhz=roi_centres_mhz,
    )


def three_records() -> list[FileRecord]:
    """A: offset 0, errors (1, 2), 1/10; B: offset 3, errors (2, 3), 2/20, no events time;
    C: offset 6, errors (2, 6), 0/5."""
    ka = np.array([[1, 0, 0], [0, 0, 0]])
    kb = np.array([[1, 1, 0], [0, 0, 0]])
    kc = np.zeros(GRID, np.int64)
    na = np.array([[4, 5, 6], [0, 1, 2]])
    nb = np.array([[4, 5, 6], [0, 1, 2]])
    nc = np.array([[2, 0, 0], [0, 0, 3]])
    return [
        make_record("a.FLOW.hdf5", 0.0, 1.0, 2.0, (1, 10), ka, na, (100.0, 200.0)),
        make_record("b.FLOW.hdf5", 3.0, 2.0, 3.0, (2, 20), kb, nb, None),
        make_record("c.FLOW.hdf5", 6.0, 2.0, 6.0, (0, 5), kc, nc, (300.0, 400.0)),
    ]


def assert_records_equal(a: FileRecord, b: FileRecord) -> None:
    assert a.file == b.file
    assert a.processed_at == b.processed_at
    assert a.time_start_s == b.time_start_s
    assert a.time_end_s == b.time_end_s
    assert a.n_events == b.n_events
    assert a.events_by_trigger == b.events_by_trigger
    for q in ("baseline", "noise"):
        for s in SELECTIONS:
            for part in ("median", "err_low", "err_high"):
                np.testing.assert_array_equal(
                    getattr(getattr(a, q)[s], part), getattr(getattr(b, q)[s], part)
                )
    for f in FLAGS:
        for s in SELECTIONS:
            for g in GRANULARITIES:
                ca, cb = a.counts[f][s][g], b.counts[f][s][g]
                np.testing.assert_array_equal(ca.k, cb.k)
                np.testing.assert_array_equal(ca.n, cb.n)
                assert np.shape(ca.k) == np.shape(cb.k)
    if a.spectra_roi is None:
        assert b.spectra_roi is None
    else:
        assert b.spectra_roi is not None
        np.testing.assert_array_equal(a.spectra_roi, b.spectra_roi)


def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / HISTORY_FILE


def filled_store(tmp_path: Path) -> Path:
    path = store_path(tmp_path)
    with HistoryStore(path) as store:
        for rec in three_records():
            store.append(rec)
    return path


# --- rollups against hand-computed values -----------------------------------------------------


def test_rollup_of_all_files_hand_computed(tmp_path):
    path = filled_store(tmp_path)
    with HistoryStore(path) as store:
        assert len(store) == 3
        r = store.rollup(None, cl=CL)
    assert r is not None
    assert r.n_files == 3
    assert r.files == ["a.FLOW.hdf5", "b.FLOW.hdf5", "c.FLOW.hdf5"]
    assert (r.time_start_s, r.time_end_s) == (100.0, 400.0)  # b has no events: no times
    assert r.n_events == 35
    assert r.events_by_trigger == {"beam": 5 + 10 + 2, "self": 5 + 10 + 3}
    for sel in SELECTIONS:
        b = r.baseline[sel]
        # mean of medians: offsets 0, 3, 6 -> +3
        np.testing.assert_allclose(b.median, [[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], rtol=0, atol=1e-12)
        # quadrature, not divided by n: sqrt(1 + 4 + 4) = 3, sqrt(4 + 9 + 36) = 7
        np.testing.assert_allclose(b.err_low, const(3.0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.err_high, const(7.0), rtol=0, atol=1e-12)
        n = r.noise[sel]
        np.testing.assert_allclose(n.median, const(13.0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(n.err_low, const(math.sqrt(3)), rtol=0, atol=1e-12)
    for flag in FLAGS:
        for sel in SELECTIONS:
            fr = r.fractions[flag][sel]
            # total: (1 + 2 + 0) / (10 + 20 + 5)
            assert int(fr["total"].k) == 3 and int(fr["total"].n) == 35
            np.testing.assert_array_equal(fr["channel"].k, [[2, 1, 0], [0, 0, 0]])
            np.testing.assert_array_equal(fr["channel"].n, [[10, 10, 12], [0, 2, 7]])
            np.testing.assert_array_equal(fr["epcb"].k, [3, 0])
            np.testing.assert_array_equal(fr["epcb"].n, [6 + 6 + 2, 2 + 2 + 3])
            np.testing.assert_array_equal(fr["tpc"].k, [3])
            np.testing.assert_array_equal(fr["tpc"].n, [6 + 6 + 3])
            for g in GRANULARITIES:
                frac, lo, hi = clopper_pearson(fr[g].k, fr[g].n, CL)
                np.testing.assert_array_equal(fr[g].fraction, frac)
                np.testing.assert_array_equal(fr[g].lower, lo)
                np.testing.assert_array_equal(fr[g].upper, hi)
            assert float(fr["total"].fraction) == pytest.approx(3 / 35)
            # k = 0 of n = 12 (channel 0,2): closed form upper = 1 - (α/2)^(1/n)
            assert fr["channel"].upper[0, 2] == pytest.approx(1 - 0.16 ** (1 / 12), rel=1e-9)
            assert fr["channel"].lower[0, 2] == 0.0
            # 0 of 0 (channel 1,0): nothing known
            assert fr["channel"].lower[1, 0] == 0.0 and fr["channel"].upper[1, 0] == 1.0


def test_rollup_last_n_hand_computed(tmp_path):
    path = filled_store(tmp_path)
    with HistoryStore(path) as store:
        r2 = store.rollup(2, cl=CL)
        r1 = store.rollup(1, cl=CL)
        r9 = store.rollup(9, cl=CL)
        assert [x.file for x in store.records(last=2)] == ["b.FLOW.hdf5", "c.FLOW.hdf5"]
        assert [x.file for x in store.records(last=0)] == []
        assert [x.file for x in store.records(last=9)] == [
            "a.FLOW.hdf5",
            "b.FLOW.hdf5",
            "c.FLOW.hdf5",
        ]
        r_all = store.rollup(None, cl=CL)
    assert r2 is not None and r1 is not None and r9 is not None and r_all is not None
    assert r2.files == ["b.FLOW.hdf5", "c.FLOW.hdf5"]
    assert (r2.time_start_s, r2.time_end_s) == (300.0, 400.0)
    b = r2.baseline["all"]
    np.testing.assert_allclose(b.median, BASE + 4.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.err_low, const(math.sqrt(8)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.err_high, const(math.sqrt(45)), rtol=0, atol=1e-12)
    tot = r2.fractions["clipped"]["beam"]["total"]
    assert (int(tot.k), int(tot.n)) == (2, 25)
    _, lo, hi = clopper_pearson(2, 25, CL)
    assert (float(tot.lower), float(tot.upper)) == (float(lo), float(hi))
    # one file: the rollup is that file
    assert r1.files == ["c.FLOW.hdf5"]
    np.testing.assert_array_equal(r1.baseline["self"].median, BASE + 6)
    np.testing.assert_array_equal(r1.baseline["self"].err_high, const(6.0))
    # more than stored: all of them
    assert r9.files == r_all.files
    np.testing.assert_array_equal(r9.baseline["all"].median, r_all.baseline["all"].median)


def test_rollup_recomputes_interval_at_requested_cl(tmp_path):
    path = filled_store(tmp_path)
    with HistoryStore(path) as store:
        r = store.rollup(None, cl=0.95)
    assert r is not None
    t = r.fractions["negative"]["all"]["total"]
    _, lo, hi = clopper_pearson(3, 35, 0.95)
    assert (float(t.lower), float(t.upper)) == (float(lo), float(hi))


def test_empty_history_and_previous_zero_give_none(tmp_path):
    with HistoryStore(store_path(tmp_path)) as store:
        assert len(store) == 0
        for n in (None, 0, 1, 5):
            assert store.rollup(n) is None
        assert store.records() == []
        assert baseline_previous(store.rollup(None)) is None
        store.append(three_records()[0])
        assert store.rollup(0) is None
        assert store.rollup(None) is not None
        with pytest.raises(ValueError):
            store.rollup(-1)


def test_nan_median_of_one_file_does_not_poison_the_others(tmp_path):
    med_a = BASE.copy()
    med_a[0, 0] = np.nan  # no valid waveform of channel (0, 0) in file a
    med_a[1, 2] = np.nan
    med_b = BASE + 2
    med_b[1, 2] = np.nan  # (1, 2) missing in both files
    rec_a = make_record("a", 0.0, 3.0, 6.0, (0, 1), median=med_a)
    rec_b = make_record("b", 2.0, 4.0, 8.0, (0, 1), median=med_b)
    with HistoryStore(store_path(tmp_path)) as store:
        store.append(rec_a)
        store.append(rec_b)
        r = store.rollup(None)
    assert r is not None
    b = r.baseline["all"]
    # (0, 0): only file b counts, its errors alone
    assert b.median[0, 0] == 3.0
    assert (b.err_low[0, 0], b.err_high[0, 0]) == (4.0, 8.0)
    # (1, 2): missing everywhere -> NaN
    assert np.isnan(b.median[1, 2]) and np.isnan(b.err_low[1, 2]) and np.isnan(b.err_high[1, 2])
    # the others: mean of 2 medians, sqrt(9 + 16) = 5, sqrt(36 + 64) = 10
    others = np.ones(GRID, bool)
    others[0, 0] = others[1, 2] = False
    np.testing.assert_allclose(b.median[others], (BASE + 1)[others], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.err_low[others], 5.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.err_high[others], 10.0, rtol=0, atol=1e-12)
    json.dumps(r.to_dict(), allow_nan=False)


def test_combine_spreads_matches_the_old_tool_rule():
    med = np.array([[1.0, np.nan], [3.0, 5.0], [5.0, 7.0]])
    lo = np.array([[1.0, 9.0], [2.0, 3.0], [2.0, 4.0]])
    hi = np.array([[2.0, 9.0], [3.0, 0.0], [6.0, 0.0]])
    s = combine_spreads(med, lo, hi)
    np.testing.assert_allclose(s.median, [3.0, 6.0])
    np.testing.assert_allclose(s.err_low, [3.0, 5.0])
    np.testing.assert_allclose(s.err_high, [7.0, 0.0])


# --- persistence ------------------------------------------------------------------------------


def test_records_round_trip_and_restart_gives_same_rollups(tmp_path):
    path = store_path(tmp_path)
    recs = three_records()
    with HistoryStore(path) as store:
        for rec in recs:
            store.append(rec)
        before = {n: store.rollup(n).to_dict() for n in (None, 1, 2)}  # type: ignore[union-attr]
    with HistoryStore(path) as store:
        assert len(store) == 3
        for a, b in zip(recs, store.records(), strict=True):
            assert_records_equal(a, b)
        after = {n: store.rollup(n).to_dict() for n in (None, 1, 2)}  # type: ignore[union-attr]
        store.append(make_record("d_ünïcode.FLOW.hdf5", 9.0, 1.0, 1.0, (1, 1)))
        assert store.records(last=1)[0].file == "d_ünïcode.FLOW.hdf5"
    assert json.dumps(before, allow_nan=False) == json.dumps(after, allow_nan=False)
    with h5py.File(path, "r") as h5:
        assert int(h5.attrs["schema_version"]) == HISTORY_SCHEMA_VERSION
        assert int(h5.attrs["n_files"]) == 4
        assert list(h5.attrs["grid_shape"]) == list(GRID)
        ds = h5["baseline/all/median"]
        assert ds.maxshape[0] is None and ds.chunks is not None and ds.shape == (4, *GRID)
        names = list(h5["file"].asstr()[:])
        assert names == ["a.FLOW.hdf5", "b.FLOW.hdf5", "c.FLOW.hdf5", "d_ünïcode.FLOW.hdf5"]


def test_interrupted_append_keeps_previous_rows(tmp_path):
    path = store_path(tmp_path)
    recs = three_records()
    with HistoryStore(path) as store:
        store.append(recs[0])
        store.append(recs[1])
        expected = store.rollup(None).to_dict()  # type: ignore[union-attr]
        # the first half of an append: the row is written, n_files is not bumped
        store._write_row(recs[2], len(store))
        store._sync()
    with h5py.File(path, "r") as h5:
        assert h5["baseline/all/median"].shape[0] == 3
        assert int(h5.attrs["n_files"]) == 2
    with HistoryStore(path) as store:
        assert len(store) == 2
        assert [r.file for r in store.records()] == ["a.FLOW.hdf5", "b.FLOW.hdf5"]
        assert store.rollup(None).to_dict() == expected  # type: ignore[union-attr]
        assert store.set_aside == []
        # the next append replaces the partial row
        store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
        assert [r.file for r in store.records()] == ["a.FLOW.hdf5", "b.FLOW.hdf5", "d"]
        assert store.records(last=1)[0].processed_at == 1009.0


def test_interrupted_first_append_leaves_an_empty_usable_store(tmp_path):
    path = store_path(tmp_path)
    with HistoryStore(path) as store:
        store._write_row(three_records()[0], 0)
        store._sync()
    with HistoryStore(path) as store:
        assert len(store) == 0 and store.rollup(None) is None and store.set_aside == []
        store.append(three_records()[1])
        assert [r.file for r in store.records()] == ["b.FLOW.hdf5"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("after_append", ["a.FLOW.hdf5", "b.FLOW.hdf5", "c.FLOW.hdf5"]),
        ("mid_append_flushed", ["a.FLOW.hdf5", "b.FLOW.hdf5"]),
        ("mid_append_unflushed", ["a.FLOW.hdf5", "b.FLOW.hdf5"]),
    ],
)
def test_store_killed_by_sigkill_reopens(tmp_path, mode, expected):
    """A process killed (SIGKILL, no cleanup) after or in the middle of an append leaves a
    store that opens with the rows appended before."""
    path = store_path(tmp_path)
    code = textwrap.dedent(
        f"""
        import os, signal
        from test_history import three_records
        from wavedqm.exporters.history_store import HistoryStore
        store = HistoryStore({str(path)!r})
        recs = three_records()
        store.append(recs[0])
        store.append(recs[1])
        mode = {mode!r}
        if mode == "after_append":
            store.append(recs[2])
        else:
            store._write_row(recs[2], len(store))
            if mode == "mid_append_flushed":
                store._h5.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    with HistoryStore(path) as store:
        assert store.set_aside == []
        assert [r.file for r in store.records()] == expected
        store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
        assert [r.file for r in store.records()] == [*expected, "d"]


# --- damaged and incompatible stores ----------------------------------------------------------


def aside_files(path: Path, kind: str) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.{kind}-*"))


def check_fresh_store_works(path: Path) -> None:
    with HistoryStore(path) as store:
        assert len(store) == 0
        assert store.rollup(None) is None
        store.append(three_records()[2])
        assert [r.file for r in store.records()] == ["c.FLOW.hdf5"]
    with HistoryStore(path) as store:
        assert len(store) == 1


def test_schema_mismatch_is_set_aside(tmp_path):
    path = filled_store(tmp_path)
    with h5py.File(path, "a") as h5:
        h5.attrs["schema_version"] = 99
    original = path.read_bytes()
    with capture_logs() as logs, HistoryStore(path) as store:
        assert len(store) == 0
        assert store.rollup(None) is None
    aside = aside_files(path, "schema99")
    assert len(aside) == 1 and aside[0].read_bytes() == original
    errors = [e for e in logs if e["event"] == "history_set_aside"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert errors[0]["moved_to"] == str(aside[0])
    check_fresh_store_works(path)
    assert aside[0].read_bytes() == original  # still there, untouched


def test_random_bytes_are_set_aside(tmp_path):
    path = store_path(tmp_path)
    path.parent.mkdir(parents=True)
    garbage = np.random.default_rng(5).bytes(20_000)
    path.write_bytes(garbage)
    with capture_logs() as logs, HistoryStore(path) as store:
        assert len(store) == 0
    aside = aside_files(path, "damaged")
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert [e["kind"] for e in logs if e["event"] == "history_set_aside"] == ["damaged"]
    check_fresh_store_works(path)


def test_truncated_store_is_set_aside(tmp_path):
    path = filled_store(tmp_path)
    data = path.read_bytes()
    truncated = data[: len(data) // 2]
    path.write_bytes(truncated)
    with HistoryStore(path) as store:
        assert len(store) == 0
        assert store.set_aside == aside_files(path, "damaged")
    aside = aside_files(path, "damaged")
    assert len(aside) == 1 and aside[0].read_bytes() == truncated
    check_fresh_store_works(path)


def test_empty_file_and_missing_attributes_are_set_aside(tmp_path):
    path = store_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    HistoryStore(path).close()
    assert len(aside_files(path, "damaged")) == 1
    path.unlink()
    with h5py.File(path, "w") as h5:  # an HDF5 file that is not a history store
        h5["something"] = [1, 2, 3]
    HistoryStore(path).close()
    assert len(aside_files(path, "damaged")) == 2
    check_fresh_store_works(path)


def test_two_set_asides_in_the_same_second_do_not_collide(tmp_path):
    path = store_path(tmp_path)
    path.parent.mkdir(parents=True)
    for payload in (b"first", b"second"):
        path.write_bytes(payload)
        HistoryStore(path).close()
    aside = aside_files(path, "damaged")
    assert sorted(p.read_bytes() for p in aside) == [b"first", b"second"]


def test_other_grid_shape_is_set_aside(tmp_path):
    path = filled_store(tmp_path)
    original = path.read_bytes()
    with HistoryStore(path, grid_shape=(8, 64)) as store:
        assert len(store) == 0
    aside = aside_files(path, "layout")
    assert len(aside) == 1 and aside[0].read_bytes() == original
    # the matching grid keeps the store
    path2 = filled_store(tmp_path / "other")
    with HistoryStore(path2, grid_shape=GRID) as store:
        assert len(store) == 3


def test_record_with_another_layout_starts_a_fresh_store(tmp_path):
    path = filled_store(tmp_path)
    original = path.read_bytes()
    other = three_records()[0]
    other.baseline = {
        s: Spread(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3))) for s in SELECTIONS
    }
    other.noise = dict(other.baseline)
    for f in FLAGS:
        for s in SELECTIONS:
            other.counts[f][s]["channel"] = Counts(
                k=np.zeros((1, 3), np.int64), n=np.zeros((1, 3), np.int64)
            )
    with capture_logs() as logs, HistoryStore(path) as store:
        store.append(other)
        assert len(store) == 1
        assert store.records()[0].grid_shape == (1, 3)
    assert [e["kind"] for e in logs if e["event"] == "history_set_aside"] == ["layout"]
    aside = aside_files(path, "layout")
    assert len(aside) == 1 and aside[0].read_bytes() == original


def test_failed_write_sets_the_store_aside_and_writes_to_a_fresh_one(tmp_path, monkeypatch):
    path = filled_store(tmp_path)
    original = path.read_bytes()
    with HistoryStore(path) as store:
        real = store._write_row
        calls = []

        def failing_once(record: FileRecord, index: int) -> None:
            calls.append(index)
            if len(calls) == 1:
                raise OSError("Can't synchronously write data (simulated)")
            real(record, index)

        monkeypatch.setattr(store, "_write_row", failing_once)
        with capture_logs() as logs:
            store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
        assert calls == [3, 0]
        assert [r.file for r in store.records()] == ["d"]
    assert [e["kind"] for e in logs if e["event"] == "history_set_aside"] == ["damaged"]
    aside = aside_files(path, "damaged")
    assert len(aside) == 1 and aside[0].read_bytes() == original


def test_write_failing_twice_raises_history_error(tmp_path, monkeypatch):
    path = filled_store(tmp_path)
    store = HistoryStore(path)

    def failing(record: FileRecord, index: int) -> None:
        raise RuntimeError("B-tree node corrupt (simulated)")

    monkeypatch.setattr(store, "_write_row", failing)
    with pytest.raises(HistoryError, match="corrupt"):
        store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
    assert len(aside_files(path, "damaged")) == 1


def test_a_full_disk_is_an_output_error_not_a_damaged_store(tmp_path, monkeypatch):
    """Issue 11 finding 6: ENOSPC set the (good) store aside as damaged and started afresh."""
    path = filled_store(tmp_path)
    store = HistoryStore(path)
    n = len(store)
    real = store._write_row

    def failing(record: FileRecord, index: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_write_row", failing)
    with pytest.raises(OutputError, match="No space left"):
        store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
    assert not aside_files(path, "damaged")
    monkeypatch.setattr(store, "_write_row", real)
    assert len(store.records()) == n  # reopened by the next use, nothing lost
    store.append(make_record("d", 9.0, 1.0, 1.0, (1, 1)))
    assert len(store) == n + 1
    store.close()


def test_locked_store_is_not_set_aside(tmp_path):
    path = filled_store(tmp_path)
    with HistoryStore(path):
        code = textwrap.dedent(
            f"""
            from wavedqm.exporters.history_store import HistoryError, HistoryStore
            try:
                HistoryStore({str(path)!r})
            except HistoryError as e:
                print("refused:", e)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    assert "refused:" in out.stdout, out.stderr
    assert not any(path.parent.glob(f"{path.name}.*"))
    with HistoryStore(path) as store:
        assert len(store) == 3


def test_closed_store_refuses_use(tmp_path):
    store = HistoryStore(store_path(tmp_path))
    store.close()
    store.close()
    with pytest.raises(HistoryError):
        store.append(three_records()[0])
    with pytest.raises(HistoryError):
        store.rollup(None)


def test_append_is_durable_on_disk(tmp_path):
    """The bytes on disk right after append returns (what a crash would leave) hold the row
    and the count: a copy taken while the store is still open reads back."""
    path = store_path(tmp_path)
    snapshot = tmp_path / "snapshot" / HISTORY_FILE
    snapshot.parent.mkdir()
    with HistoryStore(path) as store:
        store.append(three_records()[0])
        store.append(three_records()[1])
        snapshot.write_bytes(path.read_bytes())
    with HistoryStore(snapshot) as copy:
        assert copy.set_aside == []
        assert [r.file for r in copy.records()] == ["a.FLOW.hdf5", "b.FLOW.hdf5"]
        np.testing.assert_array_equal(copy.records()[1].baseline["all"].median, BASE + 3)


# --- spectra regions of interest --------------------------------------------------------------


def test_spectra_roi_mean_over_files_that_have_them(tmp_path):
    centres = np.array([0.5, 1.8, 4.6])
    s_b = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]])
    s_c = np.array([[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    recs = [
        make_record("a", 0.0, 1.0, 1.0, (0, 1)),  # before spectra existed
        make_record("b", 1.0, 1.0, 1.0, (0, 1), spectra_roi=s_b, roi_centres_mhz=centres),
        make_record("c", 2.0, 1.0, 1.0, (0, 1), spectra_roi=s_c, roi_centres_mhz=centres),
        make_record("d", 3.0, 1.0, 1.0, (0, 1)),  # spectra failed for this one
    ]
    path = store_path(tmp_path)
    with HistoryStore(path) as store:
        for r in recs:
            store.append(r)
    with HistoryStore(path) as store:
        got = store.records()
        r = store.rollup(None)
        r_last = store.rollup(1)
    assert got[0].spectra_roi is None and got[3].spectra_roi is None
    np.testing.assert_array_equal(got[1].spectra_roi, s_b)
    np.testing.assert_array_equal(got[2].roi_centres_mhz, centres)
    assert r is not None and r.n_files_with_spectra == 2
    np.testing.assert_array_equal(r.spectra_roi, [[2.0, 3.0, 4.0], [5.0, 6.0, 8.0]])
    np.testing.assert_array_equal(r.roi_centres_mhz, centres)
    assert r_last is not None and r_last.spectra_roi is None and r_last.n_files_with_spectra == 0
    d = r.to_dict()
    assert d["spectra_roi_v2"] == [[2.0, 3.0, 4.0], [5.0, 6.0, 8.0]]
    json.dumps(d, allow_nan=False)


# --- from a real LightResult, and baseline status 2 end to end ---------------------------------

CFG = LightConfig()
CMAP = ChannelMap.from_config(CFG)
SHIFTED = (3, 20)
N_EVENTS = 40
N_SAMPLES = 100


def light_file(seed: int, shift: float = 0.0, previous: Spread | None = None) -> LightResult:
    """A synthetic file: fixed per-channel baselines (same for every seed), white noise of 5
    ADC16, a 1000 ADC16 pulse on every active channel, one clipped waveform; ``shift`` added to
    SHIFTED's baseline; ``previous`` passed to the status-2 test."""
    base = np.random.default_rng(0).uniform(-28500, -27500, size=(8, 64))
    base[SHIFTED] += shift
    rng = np.random.default_rng(seed)
    wave = base[None, :, :, None] + rng.normal(0, 5, size=(N_EVENTS, 8, 64, N_SAMPLES))
    wave[..., 70:80] += 1000.0
    samples = np.rint(wave).astype(np.int16)
    samples[:, ~CMAP.active] = 0
    samples[2, 0, 4, 80:85] = C.LIGHT_CLIP_LEVEL_ADC16
    trig = (np.arange(N_EVENTS) % 2).astype(np.uint8)
    batch = WaveformBatch(
        samples=samples,
        valid=None,
        trig_type=trig,
        time_s=1.7e9 + seed * 100 + np.arange(N_EVENTS, dtype=np.float64),
        first_event=0,
    )
    feats = light_features(
        samples, CFG.pedestal_samples, CFG.ptp_threshold_adc16, CFG.clip_level_adc16
    )
    acc = LightAccumulator(CFG, CMAP)
    acc.add(batch, feats)
    return acc.result(default_channel_status(CMAP), previous=previous)


@pytest.fixture(scope="module")
def previous_files() -> list[LightResult]:
    return [light_file(1), light_file(2)]


def test_from_light_copies_the_result(tmp_path, previous_files):
    light = previous_files[0]
    rec = FileRecord.from_light(Path("/data/run/x_1.FLOW.hdf5"), light, processed_at=123.0)
    assert rec.file == "x_1.FLOW.hdf5" and rec.processed_at == 123.0
    assert rec.grid_shape == (8, 64)
    assert rec.n_events == N_EVENTS and rec.events_by_trigger == {"beam": 20, "self": 20}
    assert (rec.time_start_s, rec.time_end_s) == (1.7e9 + 100, 1.7e9 + 100 + N_EVENTS - 1)
    for s in SELECTIONS:
        np.testing.assert_array_equal(rec.baseline[s].median, light.selections[s].baseline.median)
        np.testing.assert_array_equal(rec.noise[s].err_high, light.selections[s].noise.err_high)
        for f in FLAGS:
            for g in GRANULARITIES:
                np.testing.assert_array_equal(rec.counts[f][s][g].k, light.fractions[f][s][g].k)
                np.testing.assert_array_equal(rec.counts[f][s][g].n, light.fractions[f][s][g].n)
    assert int(rec.counts["clipped"]["all"]["total"].k) == 1
    assert rec.counts["clipped"]["all"]["epcb"].k.shape == (CMAP.n_epcb,)
    assert rec.baseline["all"].median is not light.baseline.median
    with HistoryStore(store_path(tmp_path), grid_shape=CMAP.shape) as store:
        store.append(rec)
        assert_records_equal(rec, store.records()[0])


def test_status_2_on_a_shifted_channel_only(tmp_path, previous_files):
    path = store_path(tmp_path)
    with HistoryStore(path, grid_shape=CMAP.shape) as store:
        for i, light in enumerate(previous_files):
            store.append(FileRecord.from_light(f"f{i}.FLOW.hdf5", light, processed_at=float(i)))
    with HistoryStore(path, grid_shape=CMAP.shape) as store:  # after a restart
        rollup = store.rollup(None, cl=CFG.confidence_level)
    previous = baseline_previous(rollup)
    assert previous is not None

    unshifted = light_file(3)
    assert np.all(unshifted.baseline_status == C.BASELINE_OK)
    # the same data without history: no status 2 anywhere
    shifted_alone = light_file(3, shift=40.0)
    assert np.all(shifted_alone.baseline_status == C.BASELINE_OK)

    # now with the rollup as "previous"
    result = light_file(3, shift=40.0, previous=previous)

    # the shift is ≥ 10σ against the rollup, σ as baseline_status computes it (median went up)
    cur = result.baseline
    sigma = math.hypot(cur.err_low[SHIFTED], previous.err_high[SHIFTED])
    delta = cur.median[SHIFTED] - previous.median[SHIFTED]
    assert delta >= 10 * sigma
    # every other monitored channel is well within 3σ
    others = result.monitored.copy()
    others[SHIFTED] = False
    went_up = cur.median > previous.median
    sig_all = np.where(
        went_up,
        np.hypot(cur.err_low, previous.err_high),
        np.hypot(cur.err_high, previous.err_low),
    )
    assert np.all(np.abs(cur.median - previous.median)[others] < 3 * sig_all[others])

    expected = np.zeros(CMAP.shape, np.int8)
    expected[SHIFTED] = C.BASELINE_SHIFT
    np.testing.assert_array_equal(result.baseline_status, expected)
    assert result.baseline_flagged == [(SHIFTED[0], SHIFTED[1], C.BASELINE_SHIFT)]


def test_same_file_again_replaces_its_row(tmp_path):
    """A file processed again counts once, with its newest values: twice in a row (restart
    after a crash between history and ledger) its record replaces the last row; rewritten by
    its writer after other files came in, it replaces its own row at its position (issue 11
    finding 8: a growing file analysed at every pause of its writer)."""
    a, b, c = three_records()
    b_again = make_record("b.FLOW.hdf5", 9.0, 1.0, 1.0, (3, 30), time_range=(500.0, 600.0))
    path = store_path(tmp_path)
    with HistoryStore(path) as store:
        for rec in (a, b, b_again):
            store.append(rec)
        assert [r.file for r in store.records()] == ["a.FLOW.hdf5", "b.FLOW.hdf5"]
        assert_records_equal(store.records()[-1], b_again)
        store.append(c)
        a_again = make_record("a.FLOW.hdf5", 7.0, 2.0, 1.0, (4, 40), time_range=(700.0, 800.0))
        store.append(a_again)
    with HistoryStore(path) as store:
        records = store.records()
        assert [r.file for r in records] == ["a.FLOW.hdf5", "b.FLOW.hdf5", "c.FLOW.hdf5"]
        assert_records_equal(records[0], a_again)
        assert_records_equal(records[1], b_again)
        assert_records_equal(records[2], c)
        assert store.rollup(None).n_files == 3
