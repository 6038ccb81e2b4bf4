"""Issue 11 finding 3: sizes taken from a file's header are checked against the file and
``[reader] max_allocation_bytes`` before anything is read or allocated; each hostile header
gets its own reason, never ``internal``, and no hang."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from wavedqm.config import Config
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import event_dtype, write_flow_file, wvfm_dtype


def _config(tmp_path: Path, **reader: int) -> Config:
    return Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state"),
                "reports": False},
        reader=reader, charge={"plots": False},
    )  # fmt: skip


def _light_file(
    path: Path,
    n_rows: int,
    n_written: int,
    n_samples: int = 64,
    chunk_rows: int = 64,
    n_samples_attr: object = None,
    compression: str | None = None,
    contiguous: bool = False,
) -> Path:
    """A light-only file whose tables declare ``n_rows`` rows of which ``n_written`` are
    written (chunked: the rest are chunks never allocated)."""
    ed, wd = event_dtype(), wvfm_dtype(n_samples)
    with h5py.File(path, "w") as f:
        kw = {"chunks": (chunk_rows,), "maxshape": (None,), "compression": compression}
        if contiguous:
            kw = {}
        events = f.create_dataset("light/events/data", shape=(n_rows,), dtype=ed, **kw)
        wvfm = f.create_dataset("light/wvfm/data", shape=(n_rows,), dtype=wd, **kw)
        if n_written:
            ev = np.zeros(n_written, ed)
            ev["utime_ms"] = 1_700_000_000_000
            ev["wvfm_valid"] = 1
            events[:n_written] = ev
            rows = np.zeros(n_written, wd)
            rows["samples"] = np.arange(n_samples, dtype=np.int16) % 50
            wvfm[:n_written] = rows
        if n_samples_attr is not None:
            wvfm.attrs["n_samples"] = n_samples_attr
    return path


def _route(tmp_path: Path, path: Path, **reader: int):
    with Router(_config(tmp_path, **reader)) as router:
        t0 = time.perf_counter()
        result = router.route(path, completed_at=time.time())
        return result, time.perf_counter() - t0


def test_a_billion_declared_rows_is_refused_at_once(tmp_path: Path) -> None:
    """It hung the worker for over a minute (the event-time scan read 10⁹ fill rows)."""
    path = _light_file(tmp_path / "huge.FLOW.hdf5", n_rows=10**9, n_written=4)
    result, seconds = _route(tmp_path, path)
    assert result.failure == "unwritten_rows", result.line()
    assert "declares 1000000000 rows" in result.error and "at most 64" in result.error
    assert seconds < 10


def test_rows_declared_but_never_written_are_not_a_good_file(tmp_path: Path) -> None:
    """1000 rows declared, 4 written: it was reported as a good file of 1000 events."""
    path = _light_file(tmp_path / "short.FLOW.hdf5", n_rows=1000, n_written=4, chunk_rows=4)
    result, _ = _route(tmp_path, path)
    assert result.failure == "unwritten_rows", result.line()
    assert "1 of its 250 chunks" in result.error


def test_a_fully_written_chunked_file_passes_the_check(tmp_path: Path) -> None:
    path = _light_file(tmp_path / "full.FLOW.hdf5", n_rows=130, n_written=130, chunk_rows=64,
                       compression="gzip")  # fmt: skip
    result, _ = _route(tmp_path, path)
    assert result.ok, result.line()
    assert result.events == 130


def test_contiguous_rows_past_the_end_of_the_file_are_truncated(tmp_path: Path) -> None:
    path = _light_file(tmp_path / "cut.FLOW.hdf5", n_rows=40, n_written=40, contiguous=True)
    with h5py.File(path, "r") as f:
        dset = f["light/wvfm/data"]
        assert dset.chunks is None, "the test needs contiguous storage"
        end = int(dset.id.get_offset()) + dset.id.get_storage_size()
        row_bytes = dset.dtype.itemsize
    with open(path, "r+b") as fh:
        fh.truncate(end - row_bytes * 10)
    result, _ = _route(tmp_path, path)
    assert result.failure == "truncated", result.line()


def test_waveforms_too_large_to_buffer_are_refused_before_allocating(tmp_path: Path) -> None:
    """A huge declared sample count ended in MemoryError (reason internal)."""
    path = _light_file(tmp_path / "long.FLOW.hdf5", n_rows=8, n_written=8, n_samples=4096,
                       chunk_rows=1, compression="gzip")  # fmt: skip
    result, _ = _route(tmp_path, path, max_allocation_bytes=64 * 2**20)
    assert result.failure == "too_large", result.line()
    assert "max_allocation_bytes" in result.error
    result, _ = _route(tmp_path, path)  # the default limit (1 GiB) takes it
    assert result.ok, result.line()


@pytest.mark.parametrize("attr", [np.zeros(0, np.int64), np.array([1.5]), np.array([64, 64])])
def test_a_malformed_n_samples_attribute_is_a_wrong_layout(tmp_path: Path, attr) -> None:
    """An empty ``n_samples`` attribute ended in IndexError (reason internal)."""
    path = _light_file(tmp_path / "attr.FLOW.hdf5", n_rows=4, n_written=4, chunk_rows=4,
                       n_samples_attr=attr)  # fmt: skip
    result, _ = _route(tmp_path, path)
    assert result.failure == "wrong_layout", result.line()
    assert "attribute n_samples" in result.error and "expected one integer" in result.error


def test_a_voxel_grid_too_large_for_memory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "charge.FLOW.hdf5"
    write_flow_file(path, n_events=0, seed=4, with_charge=True)
    with h5py.File(path, "r+") as f:
        bounds = f["geometry_info/det_bounds/data"]
        rows = bounds[...]
        rows["data"][1:, 1, :] += 1.0e5  # 1 km across: ~10^16 voxels
        bounds[...] = rows
    result, _ = _route(tmp_path, path)
    assert result.failure == "too_large", result.line()
    assert "voxel grid" in result.error
