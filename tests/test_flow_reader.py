"""FlowLightReader / inspect_flow on real HDF5 files: exact round trip, bounded memory, the real
charge-only sample, and one specific error per kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavedqm.errors import FileNotReady, InputFileError
from wavedqm.formats.flow import CACHE_BATCH_BYTES, FlowInfo, FlowLightReader, inspect_flow
from wavedqm.simulate.flow import event_dtype, wvfm_dtype

N_EVENTS = 21  # not a multiple of any batch size used below
SMALL = {"n_events": N_EVENTS, "n_samples": 128, "seed": 3, "chunk_rows": 4}


def _reference(path: Path, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Plain h5py read of every sample and event row (fine for small test files)."""
    with h5py.File(path, "r") as f:
        samples = f["light/wvfm/data"].fields("samples")[:n]
        events = f["light/events/data"][:n]
    return samples, events


def _read_all(reader: FlowLightReader) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {"samples": [], "valid": [], "trig": [], "time": []}
    expected_first = 0
    for batch in reader.batches():
        assert batch.first_event == expected_first
        assert 1 <= batch.n_events <= reader.rows_per_batch
        expected_first += batch.n_events
        parts["samples"].append(batch.samples.copy())
        parts["valid"].append(batch.valid)
        parts["trig"].append(batch.trig_type)
        parts["time"].append(batch.time_s)
    if not parts["samples"]:
        return {}
    return {k: np.concatenate(v) for k, v in parts.items()}


def _assert_matches_reference(got: dict[str, np.ndarray], path: Path, n: int) -> None:
    samples, events = _reference(path, n)
    assert got["samples"].dtype == np.int16
    assert got["samples"].shape == samples.shape
    np.testing.assert_array_equal(got["samples"], samples)
    assert got["valid"].dtype == bool
    np.testing.assert_array_equal(got["valid"], events["wvfm_valid"] != 0)
    assert got["trig"].dtype == np.uint8
    np.testing.assert_array_equal(got["trig"], events["trig_type"])
    assert got["time"].dtype == np.float64
    np.testing.assert_array_equal(got["time"], events["utime_ms"].max(axis=1) / 1000.0)


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
@pytest.mark.parametrize("rows", [1, 3, 4, 8, 100])
def test_every_sample_round_trips(flow_file, compression: str | None, rows: int) -> None:
    path, truth = flow_file(**SMALL, compression=compression)
    row_bytes = 8 * 64 * 128 * 2
    with FlowLightReader(path, chunk_bytes=rows * row_bytes + 17) as reader:
        assert reader.rows_per_batch <= rows
        got = _read_all(reader)
        # the current batch and at most two prefetched ones
        assert reader.buffer_nbytes <= 3 * reader.rows_per_batch * row_bytes
        # batches are whole HDF5 chunks (4 rows) when a chunk fits in chunk_bytes
        if rows >= 4:
            assert reader.rows_per_batch % 4 == 0
        assert reader.direct_chunks == (compression == "gzip" and rows >= 4)
        assert reader.raw_reads == (compression is None)
    _assert_matches_reference(got, path, N_EVENTS)
    assert int(got["trig"].sum()) == truth.n_beam


def test_gzip_direct_chunk_path_equals_h5py_path(flow_file) -> None:
    path, _ = flow_file(n_events=37, n_samples=200, seed=9, chunk_rows=8, compression="gzip")
    results = []
    for direct in (True, False):
        with FlowLightReader(path, chunk_bytes=2**20 * 4, direct_chunks=direct) as reader:
            assert reader.direct_chunks is direct
            results.append(_read_all(reader))
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])
    _assert_matches_reference(results[0], path, 37)


def _write_light(
    path: Path,
    samples: np.ndarray,
    *,
    utime_ms: np.ndarray | None = None,
    wvfm_kwargs: dict[str, Any] | None = None,
    events_dtype: np.dtype | None = None,
    wvfm_dt: np.dtype | None = None,
    n_samples_attr: int | None = None,
    n_event_rows: int | None = None,
) -> None:
    """A minimal light file written by hand (for odd filters and odd layouts)."""
    n, n_adcs, n_ch, n_s = samples.shape
    edt = events_dtype or event_dtype(n_adcs, n_ch)
    wdt = wvfm_dt or wvfm_dtype(n_s, n_adcs, n_ch)
    ev = np.zeros(n if n_event_rows is None else n_event_rows, edt)
    if "utime_ms" in edt.names:
        ev["utime_ms"] = (
            (1_700_000_000_000 + 10 * np.arange(len(ev)))[:, None] if utime_ms is None else utime_ms
        )
    if "wvfm_valid" in edt.names:
        ev["wvfm_valid"] = 1
    if "trig_type" in edt.names:
        ev["trig_type"] = np.arange(len(ev)) % 2
    with h5py.File(path, "w") as f:
        f.create_dataset("light/events/data", data=ev, maxshape=(None,), chunks=True)
        kwargs = {"maxshape": (None,), "chunks": True, **(wvfm_kwargs or {})}
        if wdt == wvfm_dtype(n_s, n_adcs, n_ch):
            rows = samples.reshape(n, -1).view(wdt).reshape(n)
            w = f.create_dataset("light/wvfm/data", data=rows, **kwargs)
        else:
            w = f.create_dataset("light/wvfm/data", shape=(n,), dtype=wdt, **kwargs)
        if n_samples_attr is not None:
            w.attrs["n_samples"] = n_samples_attr


def _random_samples(n: int, n_samples: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32767, size=(n, 8, 64, n_samples), dtype=np.int16)


@pytest.mark.parametrize(
    ("filters", "direct"),
    [
        ({"compression": "gzip", "chunks": (4,)}, True),  # gzip without shuffle
        ({"compression": "gzip", "shuffle": True, "chunks": (1,)}, True),  # 1 row per chunk
        ({"compression": "gzip", "shuffle": True, "fletcher32": True, "chunks": (4,)}, False),
        ({"chunks": (5,)}, False),
        ({"chunks": None, "maxshape": None}, False),  # contiguous
    ],
)
def test_filter_pipelines_read_exactly(tmp_path: Path, filters: dict, direct: bool) -> None:
    path = tmp_path / "f.FLOW.hdf5"
    samples = _random_samples(11)
    _write_light(path, samples, wvfm_kwargs=filters)
    with FlowLightReader(path, chunk_bytes=4 * samples[0].nbytes) as reader:
        assert reader.direct_chunks is direct
        assert reader.raw_reads is ("compression" not in filters and "fletcher32" not in filters)
        got = _read_all(reader)
    np.testing.assert_array_equal(got["samples"], samples)


@pytest.mark.parametrize(
    "layout", [{"chunks": (5,)}, {"chunks": (1,)}, {"chunks": None, "maxshape": None}]
)
@pytest.mark.parametrize("batch_rows", [1, 3, 7, 40])
@pytest.mark.parametrize("max_events", [0, 12])
def test_raw_reads_equal_h5py_reads(
    tmp_path: Path, layout: dict, batch_rows: int, max_events: int
) -> None:
    """Uncompressed samples straight from the file (pread) are the h5py ones, whatever the
    batch size against the HDF5 chunk size (batches across chunk boundaries)."""
    path = tmp_path / "raw.FLOW.hdf5"
    samples = _random_samples(17, seed=batch_rows)
    _write_light(path, samples, wvfm_kwargs=layout)
    got = []
    for direct in (True, False):
        with FlowLightReader(
            path,
            chunk_bytes=batch_rows * samples[0].nbytes,
            max_events=max_events,
            direct_chunks=direct,
        ) as reader:
            assert reader.raw_reads is direct
            got.append(_read_all(reader))
    n = max_events or 17
    np.testing.assert_array_equal(got[0]["samples"], samples[:n])
    for key in got[0]:
        np.testing.assert_array_equal(got[0][key], got[1][key])


def test_a_hole_of_never_written_chunks_is_refused_not_read_as_fill(tmp_path: Path) -> None:
    """Rows HDF5 would hand back as fill values (0) are not waveforms (issue 11 finding 3)."""
    path = tmp_path / "sparse.FLOW.hdf5"
    samples = _random_samples(12)
    _write_light(path, samples, wvfm_kwargs={"chunks": (4,)})
    with h5py.File(path, "r+") as f:  # grow by two chunks, write only the last one
        wvfm = f["light/wvfm/data"]
        wvfm.resize((20,))
        wvfm[16:20] = wvfm[0:4]
        events = f["light/events/data"]
        events.resize((20,))
        events[12:20] = events[0:8]
        assert wvfm.id.get_chunk_info_by_coord((12,)).byte_offset is None
    with pytest.raises(InputFileError) as exc:
        FlowLightReader(path)
    assert exc.value.reason == "unwritten_rows"
    assert "4 of its 5 chunks of 4 rows" in str(exc.value)


def test_file_cut_while_reading_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "shrinks.FLOW.hdf5"
    samples = _random_samples(12)
    _write_light(path, samples, wvfm_kwargs={"chunks": (4,)})
    with h5py.File(path, "r") as f:
        cut = f["light/wvfm/data"].id.get_chunk_info(1).byte_offset + 1000  # inside rows 4..7
    with FlowLightReader(path, chunk_bytes=4 * samples[0].nbytes) as reader:
        assert reader.raw_reads
        os.truncate(path, cut)  # the file shrinks after it was opened
        batches = reader.batches()
        with pytest.raises(InputFileError) as exc:
            for _ in batches:
                pass
    assert exc.value.reason == "truncated"
    assert "events 4..7" in str(exc.value)


def test_uncompressed_batches_are_cache_sized_compressed_ones_are_not(flow_file) -> None:
    row_bytes = 8 * 64 * 128 * 2
    # gzip: the whole file (50 rows, in whole chunks of 4) in one batch
    for compression, expected_rows in ((None, CACHE_BATCH_BYTES // row_bytes), ("gzip", 52)):
        path, _ = flow_file(
            n_events=50, n_samples=128, seed=3, chunk_rows=4, compression=compression
        )
        with FlowLightReader(path, chunk_bytes=2**30) as reader:
            assert reader.rows_per_batch == expected_rows, compression
    path, _ = flow_file(**SMALL)
    with FlowLightReader(path, chunk_bytes=8 * row_bytes) as reader:  # chunk_bytes still bounds
        assert reader.rows_per_batch == 8


def test_prefetch_never_overwrites_the_batch_being_used(flow_file) -> None:
    path, _ = flow_file(**SMALL)
    samples, _ = _reference(path)
    with FlowLightReader(path, chunk_bytes=1) as reader:  # one row per batch, 21 batches
        for batch in reader.batches():
            time.sleep(0.002)  # the reader thread runs ahead meanwhile
            i = batch.first_event
            np.testing.assert_array_equal(batch.samples, samples[i : i + 1])


def test_stopping_early_or_closing_mid_file_stops_the_reader_thread(flow_file) -> None:
    path, _ = flow_file(**SMALL)
    before = threading.active_count()
    with FlowLightReader(path, chunk_bytes=1) as reader:
        for batch in reader.batches():
            if batch.first_event == 3:
                break
        batches = reader.batches()
        assert next(batches).first_event == 0
        assert threading.active_count() > before
        # a new pass while the other is suspended reads the same rows
        assert [b.first_event for b in FlowLightReader(path, chunk_bytes=1).batches()][-1] == 20
    assert threading.active_count() == before  # close() stopped the suspended pass's thread
    with pytest.raises(ValueError, match="closed"):
        next(reader.batches())


def test_batch_smaller_than_hdf5_chunk_reads_exactly(flow_file) -> None:
    path, _ = flow_file(n_events=20, n_samples=128, seed=4, chunk_rows=16, compression="gzip")
    row_bytes = 8 * 64 * 128 * 2
    with FlowLightReader(path, chunk_bytes=3 * row_bytes) as reader:
        assert reader.rows_per_batch == 3
        assert not reader.direct_chunks
        # HDF5 keeps one whole inflated chunk: each chunk is inflated once, not once per batch
        assert reader._file.id.get_access_plist().get_cache()[2] >= 16 * row_bytes
        got = _read_all(reader)
    _assert_matches_reference(got, path, 20)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunk_bytes=st.integers(min_value=1, max_value=30 * 8 * 64 * 128 * 2),
    max_events=st.integers(min_value=0, max_value=30),
    direct=st.booleans(),
)
def test_any_chunk_size_and_event_limit_reads_the_same_events(
    flow_file, chunk_bytes: int, max_events: int, direct: bool
) -> None:
    path, _ = flow_file(**SMALL, compression="gzip")
    row_bytes = 8 * 64 * 128 * 2
    with FlowLightReader(
        path, chunk_bytes=chunk_bytes, max_events=max_events, direct_chunks=direct
    ) as reader:
        got = _read_all(reader)
        assert reader.buffer_nbytes <= 3 * max(chunk_bytes, row_bytes)
    n = min(N_EVENTS, max_events) if max_events else N_EVENTS
    _assert_matches_reference(got, path, n)


def test_samples_buffer_is_reused_and_bounded(flow_file) -> None:
    path, _ = flow_file(**SMALL)
    row_bytes = 8 * 64 * 128 * 2
    with FlowLightReader(path, chunk_bytes=5 * row_bytes, prefetch=False) as reader:
        bases = {id(b.samples.base) for b in reader.batches()}
        assert len(bases) == 1  # one buffer for the whole file
        assert reader.buffer_nbytes == 4 * row_bytes  # 5 rows rounded down to whole chunks
    with FlowLightReader(path, chunk_bytes=5 * row_bytes) as reader:
        batches = list(reader.batches())  # 6 batches, prefetched into a ring of 3 buffers
        assert len(batches) == 6 and len({id(b.samples.base) for b in batches}) == 3
        assert reader.buffer_nbytes == 3 * 4 * row_bytes
        list(reader.batches())  # a second pass reuses them
        assert reader.buffer_nbytes == 3 * 4 * row_bytes
    with FlowLightReader(path, chunk_bytes=100) as reader:  # less than a row: one row
        assert reader.rows_per_batch == 1
        assert sum(b.n_events for b in reader.batches()) == N_EVENTS
        assert reader.buffer_nbytes == 3 * row_bytes
    with FlowLightReader(path, max_events=4) as reader:  # one batch: no prefetch
        assert sum(b.n_events for b in reader.batches()) == 4
        assert reader.buffer_nbytes == 4 * row_bytes


def test_max_events_limits_and_validation(flow_file) -> None:
    path, _ = flow_file(**SMALL)
    with FlowLightReader(path, max_events=5) as reader:
        assert reader.info.n_light_events == N_EVENTS
        assert sum(b.n_events for b in reader.batches()) == 5
    with FlowLightReader(path, max_events=10_000) as reader:
        assert sum(b.n_events for b in reader.batches()) == N_EVENTS
    with pytest.raises(ValueError, match="max_events"):
        FlowLightReader(path, max_events=-1)
    with pytest.raises(ValueError, match="chunk_bytes"):
        FlowLightReader(path, chunk_bytes=0)


def test_event_time_is_max_over_adcs_and_nan_without_time(tmp_path: Path) -> None:
    path = tmp_path / "t.FLOW.hdf5"
    utime = np.zeros((3, 8), dtype=np.uint64)
    utime[0] = 1_700_000_000_000
    utime[0, 5] = 1_700_000_000_007  # one ADC late: the event time is the latest
    utime[2, 3] = 1_700_000_000_500  # only one ADC has a time
    _write_light(path, _random_samples(3), utime_ms=utime)
    with FlowLightReader(path) as reader:
        got = _read_all(reader)
        info = reader.info
    assert got["time"][0] == pytest.approx(1_700_000_000.007)
    assert np.isnan(got["time"][1])
    assert got["time"][2] == pytest.approx(1_700_000_000.5)
    assert info.time_start_s == pytest.approx(1_700_000_000.007)
    assert info.time_end_s == pytest.approx(1_700_000_000.5)


# --- info ---------------------------------------------------------------------------------------


def test_inspect_simulated_file(flow_file) -> None:
    path, truth = flow_file(**SMALL, compression="gzip")
    info = inspect_flow(path)
    assert isinstance(info, FlowInfo)
    assert info.path == path
    assert info.size_bytes == path.stat().st_size
    assert (info.has_light, info.has_charge) == (True, False)
    assert (info.n_light_events, info.n_adcs, info.n_channels, info.n_samples) == (
        N_EVENTS,
        8,
        64,
        128,
    )
    assert info.compression == "gzip+shuffle"
    assert info.chunk_rows == 4
    assert info.time_start_s == pytest.approx(truth.time_start_s)
    assert info.time_end_s == pytest.approx(truth.time_end_s)
    assert info.time_end_s - info.time_start_s == pytest.approx((N_EVENTS - 1) * 0.01)
    assert (info.n_charge_events, info.n_charge_hits) == (0, 0)
    d = json.loads(json.dumps(info.to_dict()))
    assert d["format"] == "flow-hdf5"
    assert d["path"] == str(path)
    assert d["n_light_events"] == N_EVENTS
    assert inspect_flow(flow_file(**SMALL)[0]).compression is None


def test_real_charge_only_sample(sample_flow_file: Path) -> None:
    before = sample_flow_file.stat()
    info = inspect_flow(sample_flow_file)
    assert info.has_light is False
    assert info.has_charge is True
    assert info.n_charge_events == 100
    assert info.n_charge_hits == 15297
    assert info.n_light_events == 0
    assert info.compression is None and info.chunk_rows is None
    # charge-only: times from charge/events unix_ts (+ usec), 2025-11-20
    assert 1763646940 <= info.time_start_s <= info.time_end_s <= 1763646946
    with FlowLightReader(sample_flow_file) as reader:
        assert reader.info == info
        assert list(reader.batches()) == []
    after = sample_flow_file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_light_and_charge_file(flow_file) -> None:
    path, truth = flow_file(n_events=12, n_samples=128, seed=5, with_charge=True)
    info = inspect_flow(path)
    assert info.has_light and info.has_charge
    assert info.n_charge_events == truth.n_charge_events == 12
    assert info.n_charge_hits == truth.n_charge_hits > 0
    with FlowLightReader(path) as reader:
        got = _read_all(reader)
    _assert_matches_reference(got, path, 12)


# --- bad input ----------------------------------------------------------------------------------


def _raises(path: Path, reason: str) -> InputFileError:
    """Both entry points refuse ``path`` with ``reason``; the message names the file."""
    with pytest.raises(InputFileError) as exc:
        inspect_flow(path)
    assert exc.value.reason == reason
    assert str(path) in str(exc.value)
    with pytest.raises(InputFileError) as exc2:
        FlowLightReader(path)
    assert exc2.value.reason == reason
    return exc.value


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.FLOW.hdf5"
    path.touch()
    err = _raises(path, "empty")
    assert "empty" in str(err) and "expected" in str(err)


@pytest.mark.parametrize(
    "content", [os.urandom(5000), b"timestamp,adc,channel\n1,2,3\n" * 50, b"\x89HDF"]
)
def test_not_hdf5(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.FLOW.hdf5"
    path.write_bytes(content)
    err = _raises(path, "not_hdf5")
    assert "not an HDF5 file" in str(err)


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_truncated(flow_file, tmp_path: Path, keep: float) -> None:
    src, _ = flow_file(**SMALL)
    data = src.read_bytes()
    path = tmp_path / "cut.FLOW.hdf5"
    path.write_bytes(data[: int(len(data) * keep)])
    err = _raises(path, "truncated")
    assert "truncated" in str(err)


def test_no_data(tmp_path: Path) -> None:
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("calibration/table", data=np.arange(10))
    err = _raises(path, "no_data")
    assert "no light nor charge" in str(err) and "calibration" in str(err)


WRONG_LAYOUTS = {
    "no_wvfm": "light/wvfm/data",
    "no_samples_field": "no 'samples'",
    "samples_rank": "shape (8, 64)",
    "samples_float": "float32",
    "missing_trig_type": "trig_type",
    "row_mismatch": "one waveform row per event row",
    "n_samples_attr": "attribute n_samples = 99",
    "plain_array": "4-D dataset",
    "valid_shape": "wvfm_valid",
}


@pytest.mark.parametrize("kind", sorted(WRONG_LAYOUTS))
def test_wrong_layout(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.FLOW.hdf5"
    samples = _random_samples(3, n_samples=16)
    if kind == "no_wvfm":
        with h5py.File(path, "w") as f:
            f.create_dataset("light/events/data", shape=(3,), dtype=event_dtype())
    elif kind == "no_samples_field":
        _write_light(path, samples, wvfm_dt=np.dtype([("adc", "<i2", (8, 64, 16))]))
    elif kind == "samples_rank":
        _write_light(path, samples, wvfm_dt=np.dtype([("samples", "<i2", (8, 64))]))
    elif kind == "samples_float":
        _write_light(path, samples, wvfm_dt=np.dtype([("samples", "<f4", (8, 64, 16))]))
    elif kind == "missing_trig_type":
        edt = np.dtype([d for d in event_dtype().descr if d[0] != "trig_type"])
        _write_light(path, samples, events_dtype=edt)
    elif kind == "row_mismatch":
        _write_light(path, samples, n_event_rows=4)
    elif kind == "n_samples_attr":
        _write_light(path, samples, n_samples_attr=99)
    elif kind == "plain_array":
        with h5py.File(path, "w") as f:
            f.create_dataset("light/events/data", shape=(3,), dtype=event_dtype())
            f.create_dataset("light/wvfm/data", data=samples)
    elif kind == "valid_shape":
        edt = np.dtype(
            [
                ("wvfm_valid", "u1", (8, 32)) if d[0] == "wvfm_valid" else d
                for d in event_dtype().descr
            ]
        )
        _write_light(path, samples, events_dtype=edt)
    err = _raises(path, "wrong_layout")
    assert WRONG_LAYOUTS[kind] in str(err)
    assert "expected" in str(err)


def test_corrupt_chunk_is_a_read_error(flow_file, tmp_path: Path) -> None:
    src, _ = flow_file(**SMALL, compression="gzip")
    path = tmp_path / "corrupt.FLOW.hdf5"
    data = bytearray(src.read_bytes())
    with h5py.File(src, "r") as f:
        chunk = f["light/wvfm/data"].id.get_chunk_info(2)  # rows 8..11
    start = chunk.byte_offset + 20
    data[start : start + 200] = os.urandom(200)
    path.write_bytes(bytes(data))
    assert inspect_flow(path).n_light_events == N_EVENTS  # metadata is intact
    for direct in (True, False):
        with FlowLightReader(path, chunk_bytes=4 * 8 * 64 * 128 * 2, direct_chunks=direct) as r:
            batches = r.batches()
            assert next(batches).first_event == 0
            assert next(batches).first_event == 4
            with pytest.raises(InputFileError) as exc:
                next(batches)
        assert exc.value.reason == "read_error"
        assert "events 8..11" in str(exc.value)


HOLD_OPEN = """
import sys, h5py
f = h5py.File(sys.argv[1], sys.argv[2])
print("open", flush=True)
sys.stdin.readline()
f.close()
"""


@pytest.mark.parametrize("mode", ["a", "w"])
def test_file_held_by_writer_is_not_ready(flow_file, tmp_path: Path, mode: str) -> None:
    src, _ = flow_file(**SMALL)
    path = tmp_path / "busy.FLOW.hdf5"
    path.write_bytes(src.read_bytes())
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        with pytest.raises(FileNotReady) as exc:
            inspect_flow(path)
        assert str(path) in str(exc.value) and "locked" in str(exc.value)
        with pytest.raises(FileNotReady):
            FlowLightReader(path)
    finally:
        assert writer.stdin is not None
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=30)
    if mode == "a":  # the writer is done: the file reads normally now
        assert inspect_flow(path).n_light_events == N_EVENTS


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_flow(tmp_path / "nope.FLOW.hdf5")
