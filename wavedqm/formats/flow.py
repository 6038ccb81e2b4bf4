"""Reader of ndlar_flow / h5flow ``.FLOW.hdf5`` files: light waveforms in bounded row chunks.

Layout (spec: flow-hdf5.md): ``light/events/data`` holds one row per trigger (``trig_type``,
``wvfm_valid`` (n_adcs, n_channels), ``utime_ms`` (n_adcs,) ...); ``light/wvfm/data`` one row per
trigger with a single field ``samples``, int16 ADC16 counts of shape
(n_adcs, n_channels, n_samples). The two tables are 1:1 by row. A file may hold light, charge
(``charge/events/data``, ``charge/calib_prompt_hits/data``) or both.

Reading: rows ``[a, b)`` of the waveform table go straight into one preallocated int16 buffer
through a hyperslab read whose memory type names only the ``samples`` field, so no field
extraction or copy follows and memory stays bounded by ``chunk_bytes`` whatever the file size.
For gzip-compressed files (with or without the shuffle filter, as h5flow writes them) whole
HDF5 chunks are read raw (``read_direct_chunk``) and inflated with ``zlib`` on a small thread
pool (zlib releases the GIL): h5py inflates on one thread only. Any other filter pipeline,
or a chunk that cannot be read raw, goes through h5py.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.errors import FileNotReady, InputFileError
from wavedqm.formats.batch import WaveformBatch
from wavedqm.formats.h5checks import H5_ERRORS, check_allocation, check_stored_rows
from wavedqm.formats.h5heap import read_attribute
from wavedqm.logs import get_logger

log = get_logger(__name__)

FORMAT_NAME = "flow-hdf5"
LIGHT_EVENTS = "light/events/data"
LIGHT_WVFM = "light/wvfm/data"
CHARGE_EVENTS = "charge/events/data"
CHARGE_HITS = "charge/calib_prompt_hits/data"
EXPECTED_LAYOUT = "an ndlar_flow file with light/events/data and light/wvfm/data"
SAMPLES_FIELD = "samples"
EVENT_FIELDS = ("trig_type", "wvfm_valid", "utime_ms")
N_SAMPLES_ATTR = "n_samples"
METADATA_READ_ROWS = 65536
"""Rows of the (small) event tables read at once when scanning times (~45 MB at most)."""
METADATA_BATCH_ROWS = 1024
"""Event rows read at once while streaming batches (~0.6 MB for 8 x 64 channels)."""
CACHE_BATCH_BYTES = 4 * 2**20
"""Largest batch of uncompressed samples (B): two such buffers (current and prefetched)
stay in the CPU's L3 cache, so the kernels read the samples from the cache, not from memory
a second time (measured on 2-core EPYC: 1.1 GB kernel 0.04 s in 32 MiB batches, 0.01 s in
4 MiB ones)."""
PREFETCH_BUFFERS = 3
"""Sample buffers of cache-sized batches: the one being used plus two read ahead (larger
batches: one read ahead)."""
READ_THREADS = 1
"""Threads reading batches ahead. ``os.preadv`` releases the GIL, so one thread copies the
samples out of the page cache while the consumer runs the kernels on the other core; a second
reading thread was measured no faster end to end on 2 cores (it competes with the consumer)."""
DEFAULT_THREADS = 2
"""Inflate threads for gzip files (the target machines have 2 cores)."""
LOCKING: Any = "best-effort"
"""h5py ``locking=``: take the HDF5 lock (so a file its writer still holds fails with errno 11)
but do not fail on file systems without lock support (NFS without lockd)."""


@dataclass(frozen=True)
class FlowInfo:
    """What a ``.FLOW.hdf5`` file holds, read from its metadata and event tables only.

    Times are unix seconds: from ``light/events`` ``utime_ms`` (an event's time is the max over
    its ADCs; zeros are ignored) or, in a file without light, from ``charge/events``
    ``unix_ts`` (+ ``unix_ts_usec``). ``None`` when the file holds no valid time.
    """

    path: Path
    size_bytes: int
    has_light: bool
    has_charge: bool
    n_light_events: int
    n_adcs: int
    n_channels: int
    n_samples: int
    compression: str | None
    """Filter pipeline of the waveform table, e.g. ``"gzip+shuffle"``, ``"lzf"``; None: raw."""
    chunk_rows: int | None
    """Rows per HDF5 chunk of the waveform table; None: contiguous (or no light)."""
    time_start_s: float | None
    time_end_s: float | None
    n_charge_events: int
    n_charge_hits: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain str/int/float/bool/None values, plus ``"format": "flow-hdf5"``."""
        out: dict[str, Any] = {"format": FORMAT_NAME}
        out.update(asdict(self))
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class _LightLayout:
    """The validated light tables of an open file."""

    events: h5py.Dataset
    wvfm: h5py.Dataset
    n_events: int
    n_adcs: int
    n_channels: int
    n_samples: int
    event_mem_dtype: np.dtype
    """Memory dtype naming only the event fields read (``EVENT_FIELDS``, file field types)."""


# --------------------------------------------------------------------------------------------
# opening and classification of errors


def _open_error(path: Path, err: OSError) -> Exception:
    """The wavedqm error for an h5py failure to open ``path``."""
    msg = str(err)
    low = msg.lower()
    if err.errno == errno.EAGAIN or "unable to lock file" in low:
        return FileNotReady(path, f"the HDF5 file is locked by its writer ({msg})")
    if "signature not found" in low:
        return InputFileError(
            path, "not_hdf5", "not an HDF5 file (no HDF5 signature)", "an HDF5 .FLOW.hdf5 file"
        )
    if "truncated" in low or "eof" in low:
        return InputFileError(
            path, "truncated", f"truncated HDF5 file ({msg})", "a completely written file"
        )
    return InputFileError(path, "read_error", f"cannot open the HDF5 file ({msg})")


def data_error(path: Path, err: Exception, what: str) -> InputFileError:
    """The wavedqm error for a failure while reading tables of an open file."""
    msg = str(err)
    low = msg.lower()
    if "truncated" in low or "eof" in low or "addr overflow" in low:
        return InputFileError(
            path, "truncated", f"truncated HDF5 file: {what}: {msg}", "a completely written file"
        )
    return InputFileError(path, "read_error", f"{what}: {msg}")


def open_flow(path: Path, locking: Any = LOCKING, **h5py_kwargs: Any) -> h5py.File:
    """Open ``path`` read-only, or raise ``InputFileError`` (``empty``, ``not_hdf5``,
    ``truncated``, ``read_error``) or ``FileNotReady`` (the writer holds the HDF5 lock).

    A missing file raises ``FileNotFoundError`` as usual. ``h5py_kwargs`` go to ``h5py.File``.
    """
    size = os.stat(path).st_size
    if size == 0:
        raise InputFileError(path, "empty", "file is empty (0 bytes)", "an HDF5 .FLOW.hdf5 file")
    try:
        return h5py.File(path, "r", locking=locking, **h5py_kwargs)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise _open_error(path, err) from err


# --------------------------------------------------------------------------------------------
# layout checks


def _wrong(path: Path, what: str, expected: str) -> InputFileError:
    return InputFileError(path, "wrong_layout", what, expected)


def _get_table(f: h5py.File, name: str, path: Path) -> h5py.Dataset:
    obj = f.get(name)
    if obj is None:
        raise _wrong(path, f"the light group has no {name}", EXPECTED_LAYOUT)
    if not isinstance(obj, h5py.Dataset):
        raise _wrong(path, f"{name} is a {type(obj).__name__}, not a dataset", EXPECTED_LAYOUT)
    if obj.ndim != 1 or obj.dtype.fields is None:
        raise _wrong(
            path,
            f"{name} is a {obj.ndim}-D dataset of dtype {obj.dtype}",
            "a 1-D table with named fields (h5flow layout)",
        )
    return obj


def _n_samples_attr(f: h5py.File, wvfm: h5py.Dataset, path: Path) -> int | None:
    """``n_samples`` attribute of the waveform table, else of its group or of light/events."""
    for obj in (wvfm, f.get("light/wvfm"), f.get("light/events")):
        if obj is not None and N_SAMPLES_ATTR in obj.attrs:
            value = np.asarray(read_attribute(obj, N_SAMPLES_ATTR, path)).ravel()
            if value.size != 1 or value.dtype.kind not in "iu":
                raise _wrong(
                    path,
                    f"attribute {N_SAMPLES_ATTR} of {obj.name} is {value.tolist()!r} "
                    f"({value.dtype})",
                    "one integer",
                )
            return int(value[0])
    return None


def _light_layout(f: h5py.File, path: Path, file_size: int) -> _LightLayout:
    """Validate the light tables; raise ``InputFileError(reason="wrong_layout")`` if odd,
    ``truncated`` / ``unwritten_rows`` if they declare rows the file does not hold."""
    wvfm = _get_table(f, LIGHT_WVFM, path)
    events = _get_table(f, LIGHT_EVENTS, path)
    fields = wvfm.dtype.fields
    if SAMPLES_FIELD not in fields:
        raise _wrong(
            path,
            f"{LIGHT_WVFM} has fields {list(fields)} but no '{SAMPLES_FIELD}'",
            "a 'samples' field of int16 (n_adcs, n_channels, n_samples)",
        )
    sdt = fields[SAMPLES_FIELD][0]
    shape = sdt.shape
    base = sdt.base
    if len(shape) != 3 or base.kind != "i" or base.itemsize != 2:
        raise _wrong(
            path,
            f"{LIGHT_WVFM} field 'samples' is {base} of shape {shape}",
            "int16 of shape (n_adcs, n_channels, n_samples)",
        )
    n_adcs, n_channels, n_samples = (int(v) for v in shape)
    attr = _n_samples_attr(f, wvfm, path)
    if attr is not None and attr != n_samples:
        raise _wrong(
            path,
            f"attribute n_samples = {attr} but the 'samples' field holds {n_samples} samples",
            "the two to agree",
        )
    efields = events.dtype.fields
    missing = [name for name in EVENT_FIELDS if name not in efields]
    if missing:
        raise _wrong(
            path,
            f"{LIGHT_EVENTS} lacks field(s) {missing} (has {list(efields)})",
            f"fields {list(EVENT_FIELDS)}",
        )
    expected_shapes = {
        "trig_type": ((),),
        "wvfm_valid": ((n_adcs, n_channels),),
        "utime_ms": ((n_adcs,), ()),
    }
    for name, allowed in expected_shapes.items():
        fdt = efields[name][0]
        if fdt.shape not in allowed or fdt.base.kind not in "uib":
            raise _wrong(
                path,
                f"{LIGHT_EVENTS} field '{name}' is {fdt.base} of shape {fdt.shape}",
                f"integers of shape {' or '.join(str(s) for s in allowed)}",
            )
    if len(events) != len(wvfm):
        raise _wrong(
            path,
            f"{LIGHT_EVENTS} has {len(events)} rows but {LIGHT_WVFM} has {len(wvfm)}",
            "one waveform row per event row",
        )
    check_stored_rows(path, events, LIGHT_EVENTS, file_size)
    check_stored_rows(path, wvfm, LIGHT_WVFM, file_size)
    event_mem_dtype = np.dtype([(name, efields[name][0]) for name in EVENT_FIELDS])
    return _LightLayout(events, wvfm, len(wvfm), n_adcs, n_channels, n_samples, event_mem_dtype)


def compression_name(dset: h5py.Dataset) -> str | None:
    parts = []
    if dset.compression is not None:
        parts.append(str(dset.compression))
    if dset.shuffle:
        parts.append("shuffle")
    if dset.fletcher32:
        parts.append("fletcher32")
    if dset.scaleoffset is not None:
        parts.append("scaleoffset")
    return "+".join(parts) or None


def _event_times_s(utime_ms: np.ndarray) -> np.ndarray:
    """Event time in unix s: max over ADCs of ``utime_ms`` / 1000; NaN where all are 0 or
    the value is past :data:`~wavedqm.constants.LATEST_PLAUSIBLE_TIME_S` (a corrupted field)."""
    t = np.asarray(utime_ms)
    if t.ndim > 1:
        t = t.max(axis=tuple(range(1, t.ndim)))
    out = t.astype(np.float64) / 1000.0
    out[(t <= 0) | ~(out <= C.LATEST_PLAUSIBLE_TIME_S)] = np.nan  # 2^64-1 is not a time
    return out


def _scan_range(
    dset: h5py.Dataset, mem_dtype: np.dtype, n_rows: int, times: Any
) -> tuple[float | None, float | None]:
    """min/max over rows ``[0, n_rows)`` of ``times(rows)`` (finite values only)."""
    lo, hi = np.inf, -np.inf
    buf = np.empty(min(n_rows, METADATA_READ_ROWS), mem_dtype)
    for a in range(0, n_rows, METADATA_READ_ROWS):
        b = min(n_rows, a + METADATA_READ_ROWS)
        dset.read_direct(buf, np.s_[a:b], np.s_[0 : b - a])
        t = times(buf[: b - a])
        t = t[np.isfinite(t)]
        if t.size:
            lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
    if lo > hi:
        return None, None
    return lo, hi


def _charge_times_s(rows: np.ndarray) -> np.ndarray:
    t = rows["unix_ts"].astype(np.float64)
    if "unix_ts_usec" in rows.dtype.names:
        t = t + rows["unix_ts_usec"].astype(np.float64) * 1e-6
    t[rows["unix_ts"] <= 0] = np.nan
    return t


def _table_len(f: h5py.File, name: str) -> int | None:
    obj = f.get(name)
    return len(obj) if isinstance(obj, h5py.Dataset) and obj.ndim >= 1 else None


def _build_info(
    f: h5py.File, path: Path, layout: _LightLayout | None, file_size: int
) -> FlowInfo:
    for name in (CHARGE_EVENTS, CHARGE_HITS):
        table = f.get(name)
        if isinstance(table, h5py.Dataset) and table.ndim == 1:
            check_stored_rows(path, table, name, file_size)
    n_charge_events = _table_len(f, CHARGE_EVENTS)
    n_charge_hits = _table_len(f, CHARGE_HITS)
    has_charge = n_charge_events is not None or n_charge_hits is not None
    if layout is None and not has_charge:
        raise InputFileError(
            path,
            "no_data",
            f"no light nor charge data (top-level groups: {sorted(f.keys())})",
            f"{LIGHT_EVENTS} + {LIGHT_WVFM} and/or {CHARGE_EVENTS}",
        )
    t0: float | None = None
    t1: float | None = None
    if layout is not None:
        utime = np.dtype([("utime_ms", layout.event_mem_dtype["utime_ms"])])
        t0, t1 = _scan_range(
            layout.events, utime, layout.n_events, lambda r: _event_times_s(r["utime_ms"])
        )
    elif n_charge_events:
        ev = f[CHARGE_EVENTS]
        names = [n for n in ("unix_ts", "unix_ts_usec") if n in (ev.dtype.names or ())]
        if "unix_ts" in names:
            mem = np.dtype([(n, ev.dtype.fields[n][0]) for n in names])
            t0, t1 = _scan_range(ev, mem, n_charge_events, _charge_times_s)
    wvfm = layout.wvfm if layout is not None else None
    chunks = wvfm.chunks if wvfm is not None else None
    return FlowInfo(
        path=path,
        size_bytes=file_size,
        has_light=layout is not None,
        has_charge=has_charge,
        n_light_events=layout.n_events if layout else 0,
        n_adcs=layout.n_adcs if layout else 0,
        n_channels=layout.n_channels if layout else 0,
        n_samples=layout.n_samples if layout else 0,
        compression=compression_name(wvfm) if wvfm is not None else None,
        chunk_rows=int(chunks[0]) if chunks else None,
        time_start_s=t0,
        time_end_s=t1,
        n_charge_events=n_charge_events or 0,
        n_charge_hits=n_charge_hits or 0,
    )


def _describe(f: h5py.File, path: Path) -> tuple[_LightLayout | None, FlowInfo]:
    """Validate and describe an open file; h5py errors become ``InputFileError``."""
    try:
        file_size = os.stat(path).st_size
        layout = _light_layout(f, path, file_size) if "light" in f else None
        info = _build_info(f, path, layout, file_size)
    except InputFileError:
        raise
    except H5_ERRORS as err:
        raise data_error(path, err, "reading the file's tables") from err
    return layout, info


def inspect_flow(path: str | Path, locking: Any = LOCKING) -> FlowInfo:
    """Describe a ``.FLOW.hdf5`` file without reading its waveforms.

    Raises ``InputFileError`` (``empty``, ``not_hdf5``, ``truncated``, ``no_data``,
    ``wrong_layout``, ``read_error``) or ``FileNotReady``.
    """
    path = Path(path)
    with open_flow(path, locking) as f:
        return _describe(f, path)[1]


def inspect_flow_dict(path: str | Path) -> dict[str, Any]:
    """What ``wavedqm inspect`` shows of a ``.FLOW.hdf5`` file (:func:`inspect_flow`)."""
    return inspect_flow(path).to_dict()


# --------------------------------------------------------------------------------------------
# the reader


def _gzip_pipeline(dset: h5py.Dataset) -> int | None:
    """If the filter pipeline is exactly [shuffle,] deflate: the shuffle element size in bytes
    (0: no shuffle). None otherwise (other filters, not chunked)."""
    if dset.chunks is None:
        return None
    plist = dset.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if codes == [h5py.h5z.FILTER_DEFLATE]:
        return 0
    if codes == [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]:
        return dset.dtype.itemsize
    return None


def _inflate_into(raw: bytes, dst: np.ndarray, shuffle_size: int) -> None:
    """Inflate one raw gzip chunk into ``dst`` (uint8, exactly the chunk's size), undoing the
    HDF5 shuffle filter when ``shuffle_size`` > 1 (bytes of element k at k, k+n, k+2n ...)."""
    data = zlib.decompress(raw, bufsize=dst.nbytes)
    if len(data) != dst.nbytes:
        raise zlib.error(f"chunk inflated to {len(data)} bytes, expected {dst.nbytes}")
    src = np.frombuffer(data, np.uint8)
    if shuffle_size > 1 and dst.nbytes // shuffle_size > 1:
        np.copyto(dst.reshape(-1, shuffle_size), src.reshape(shuffle_size, -1).T)
    else:
        np.copyto(dst, src)


class FlowLightReader:
    """Stream the light waveforms of a ``.FLOW.hdf5`` file in bounded row chunks.

    ``with FlowLightReader(path) as r: for batch in r.batches(): ...``

    - ``chunk_bytes``: raw sample bytes per batch at most (at least one row is read at a time).
      When the file's HDF5 chunk fits, batches are whole multiples of it (each chunk is read
      once). Uncompressed files are read in batches of at most ``CACHE_BATCH_BYTES`` instead
      when that is smaller, so that the consumer finds the samples still in the CPU cache.
    - ``max_events``: read only the first this many events (0: all).
    - ``threads``: inflate threads for gzip files; ``direct_chunks=False`` forces the h5py path
      (no direct chunk reads, no raw reads).
    - ``prefetch``: read the next batches on a background thread (``READ_THREADS``) while the
      consumer works on the current one.

    Read paths: uncompressed data whose bytes are the samples themselves (``raw_reads``:
    contiguous or unfiltered chunked storage in the file itself) is copied with ``os.preadv``
    straight from the file into the buffer, which releases the GIL, so that it overlaps with
    the consumer's kernels and Python code (h5py holds the GIL while it reads); gzip data
    (``direct_chunks``) is inflated on a thread pool; anything else goes through h5py.

    Memory: a ring of int16 sample buffers of ``rows_per_batch`` rows, reused for the whole
    file: ``PREFETCH_BUFFERS`` (3) for cache-sized batches, 2 for larger ones, 1 with
    ``prefetch=False`` or a single batch; plus, for compressed files, up to ``threads``
    inflated HDF5 chunks in flight (or an HDF5 chunk cache of one chunk when a chunk is larger
    than a batch), plus the event rows of ``METADATA_BATCH_ROWS`` events. One pass
    (``batches()``) at a time: passes share the buffers.
    The file is opened read-only and holds a shared HDF5 lock until ``close()``.
    """

    def __init__(
        self,
        path: str | Path,
        chunk_bytes: int = C.READ_CHUNK_BYTES,
        max_events: int = 0,
        *,
        threads: int = DEFAULT_THREADS,
        direct_chunks: bool = True,
        prefetch: bool = True,
        locking: Any = LOCKING,
        max_allocation_bytes: int = C.MAX_ALLOCATION_BYTES,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes={chunk_bytes} (expected a positive number of bytes)")
        if max_events < 0:
            raise ValueError(f"max_events={max_events} (expected >= 0; 0 reads all events)")
        self.path = Path(path)
        self.chunk_bytes = int(chunk_bytes)
        self.max_events = int(max_events)
        self.threads = max(1, int(threads))
        self.prefetch = bool(prefetch)
        self._file: h5py.File | None = open_flow(self.path, locking)
        self._pool: ThreadPoolExecutor | None = None
        self._prefetchers: set[_Prefetcher] = set()
        self._buffers: list[np.ndarray] = []
        try:
            self._layout, self.info = _describe(self._file, self.path)
            cache = self._chunk_cache_bytes()
            if cache:
                # HDF5 takes the chunk cache size when a dataset is first opened: reopen
                self._file.close()
                self._file = open_flow(self.path, locking, rdcc_nbytes=cache, rdcc_w0=1.0)
                self._layout, self.info = _describe(self._file, self.path)
            try:
                self._setup(direct_chunks)
            except H5_ERRORS as err:
                raise data_error(self.path, err, "opening the light waveform table") from err
            check_allocation(
                self.path,
                f"reading {LIGHT_WVFM} (rows of {self._row_bytes_declared()} bytes)",
                self.planned_nbytes(),
                max_allocation_bytes,
            )
        except BaseException:
            self.close()
            raise

    # -- set-up ---------------------------------------------------------------------------------

    def _plan(self) -> tuple[int, int, int | None]:
        """(events to read, rows per batch, rows per HDF5 chunk or None)."""
        lay = self._layout
        if lay is None:
            return 0, 0, None
        n_events = min(lay.n_events, self.max_events) if self.max_events else lay.n_events
        row_bytes = lay.n_adcs * lay.n_channels * lay.n_samples * 2
        rows = max(1, self.chunk_bytes // row_bytes)
        if lay.wvfm.id.get_create_plist().get_nfilters() == 0:
            rows = min(rows, max(1, CACHE_BATCH_BYTES // row_bytes))
        chunk_rows = int(lay.wvfm.chunks[0]) if lay.wvfm.chunks else None
        if chunk_rows and rows >= chunk_rows:
            rows -= rows % chunk_rows  # whole HDF5 chunks per batch: each chunk read once
            needed = -(-n_events // chunk_rows) * chunk_rows
        else:
            needed = n_events
        return n_events, max(1, min(rows, needed)), chunk_rows

    def _chunk_cache_bytes(self) -> int:
        """HDF5 chunk cache needed so that a batch smaller than a filtered (compressed) chunk
        does not decode the chunk again for every batch; 0: the default cache will do."""
        lay = self._layout
        n_events, rows, chunk_rows = self._plan()
        if lay is None or not chunk_rows or rows >= chunk_rows or rows >= n_events:
            return 0
        if lay.wvfm.id.get_create_plist().get_nfilters() == 0:
            return 0
        return chunk_rows * lay.wvfm.dtype.itemsize + 1

    def _setup(self, direct_chunks: bool) -> None:
        lay = self._layout
        self.n_events, self.rows_per_batch, chunk_rows = self._plan()
        self.direct_chunks = False
        self.raw_reads = False
        if lay is None:
            return
        rows = self.rows_per_batch
        self.row_bytes = lay.n_adcs * lay.n_channels * lay.n_samples * 2
        self._mem_dtype = np.dtype(
            [(SAMPLES_FIELD, "=i2", (lay.n_adcs, lay.n_channels, lay.n_samples))]
        )
        self._mem_type = h5py.h5t.py_create(self._mem_dtype)
        self._shuffle_size: int | None = None
        self._wvfm_id = lay.wvfm.id
        self._chunk_rows = int(chunk_rows) if chunk_rows else 0
        if not direct_chunks or lay.wvfm.dtype != self._mem_dtype:
            return
        shuffle_size = _gzip_pipeline(lay.wvfm)
        if shuffle_size is not None and chunk_rows and rows % chunk_rows == 0:
            self.direct_chunks = True
            self._shuffle_size = shuffle_size
            return
        assert self._file is not None
        raw = _raw_storage(self._file, lay.wvfm)
        if raw is not None:
            self.raw_reads = True
            self._fd, self._raw_offset = raw

    def _row_bytes_declared(self) -> int:
        return int(self._layout.wvfm.dtype.itemsize) if self._layout is not None else 0

    def planned_nbytes(self) -> int:
        """Bytes this reader will allocate at most, from the header alone: the sample
        buffers, the inflated or cached HDF5 chunks of a compressed file, the event rows."""
        lay = self._layout
        if lay is None or self.n_events == 0:
            return 0
        row = self._row_bytes_declared()
        total = PREFETCH_BUFFERS * self.rows_per_batch * row
        if lay.wvfm.id.get_create_plist().get_nfilters():
            total += (self.threads + 1) * (self._chunk_rows or 1) * row
        total += METADATA_BATCH_ROWS * lay.event_mem_dtype.itemsize
        return total

    # -- public API -----------------------------------------------------------------------------

    @property
    def buffer_nbytes(self) -> int:
        """Bytes of the reused sample buffers (0 before the first batch or without light)."""
        return sum(int(b.nbytes) for b in self._buffers)

    def batches(self) -> Iterator[WaveformBatch]:
        """Yield the events in order, ``rows_per_batch`` at a time (the last may be shorter).

        ``samples`` is a view into one of the reused buffers: valid until the next batch is
        requested (its buffer is then handed back to the prefetch thread). ``valid``,
        ``trig_type`` and ``time_s`` are never overwritten. Nothing is yielded for a file
        without light. Raises ``InputFileError`` (``read_error`` / ``truncated``) if a chunk
        cannot be read, when the batch holding it is requested.
        """
        lay = self._layout
        if lay is None or self.n_events == 0:
            return
        if self._file is None:
            raise ValueError(f"{self.path}: reader is closed")
        rows = self.rows_per_batch
        spans = [(a, min(self.n_events, a + rows)) for a in range(0, self.n_events, rows)]
        n_buffers = 1
        if self.prefetch and len(spans) > 1:
            ring = PREFETCH_BUFFERS if rows * self.row_bytes <= CACHE_BATCH_BYTES else 2
            n_buffers = min(len(spans), ring)
        while len(self._buffers) < n_buffers:
            self._buffers.append(
                np.empty((rows, lay.n_adcs, lay.n_channels, lay.n_samples), np.int16)
            )
        meta = _EventRows(lay, self.n_events, rows)
        prefetcher = None
        if n_buffers > 1:
            threads = READ_THREADS if self.raw_reads else 1  # gzip: inflated on self._pool
            prefetcher = _Prefetcher(self._read_samples, spans, self._buffers[:n_buffers], threads)
            self._prefetchers.add(prefetcher)
        try:
            for a, b in spans:
                what = f"reading light events {a}..{b - 1}"
                try:
                    if prefetcher is not None:
                        buf = prefetcher.next()
                    else:
                        buf = self._buffers[0]
                        self._read_samples(a, b, buf)
                except H5_ERRORS as err:
                    raise data_error(self.path, err, what) from err
                try:
                    valid, trig, times = meta.rows(a, b)
                except H5_ERRORS as err:
                    raise data_error(self.path, err, what) from err
                yield WaveformBatch(
                    samples=buf[: b - a],
                    valid=valid,
                    trig_type=trig,
                    time_s=times,
                    first_event=a,
                )
        finally:
            if prefetcher is not None:  # never leave a read writing into a buffer
                prefetcher.stop()
                self._prefetchers.discard(prefetcher)

    def close(self) -> None:
        for prefetcher in list(self._prefetchers):
            prefetcher.stop()
        self._prefetchers.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffers = []

    def __enter__(self) -> FlowLightReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------

    def _read_samples(self, a: int, b: int, buf: np.ndarray) -> None:
        """Rows [a, b) into ``buf[:b - a]``, by the fastest path the file allows."""
        if self.raw_reads:
            self._read_raw(a, b, buf)
        elif not (self.direct_chunks and self._read_direct_chunks(a, b, buf)):
            self._read_h5py(a, b, buf)

    def _read_h5py(self, a: int, b: int, buf: np.ndarray) -> None:
        fspace = self._wvfm_id.get_space()
        fspace.select_hyperslab((a,), (b - a,))
        mspace = h5py.h5s.create_simple((b - a,))
        self._wvfm_id.read(mspace, fspace, buf[: b - a], self._mem_type)

    def _read_raw(self, a: int, b: int, buf: np.ndarray) -> None:
        """Rows [a, b) of unfiltered storage straight from the file (``os.preadv``); a chunk
        not allocated in the file (fill value) is read through h5py."""
        rb = self.row_bytes
        flat = buf.reshape(-1).view(np.uint8)
        if self._raw_offset is not None:  # contiguous
            _pread_exactly(self._fd, flat[: (b - a) * rb], self._raw_offset + a * rb)
            return
        c = self._chunk_rows
        pos = a
        while pos < b:
            start = pos - pos % c
            stop = min(b, start + c)
            info = self._wvfm_id.get_chunk_info_by_coord((start,))
            if info.byte_offset is None or info.filter_mask != 0 or info.size != c * rb:
                self._read_h5py(pos, stop, buf[pos - a :])
            else:
                dst = flat[(pos - a) * rb : (stop - a) * rb]
                _pread_exactly(self._fd, dst, info.byte_offset + (pos - start) * rb)
            pos = stop

    def _read_direct_chunks(self, a: int, b: int, buf: np.ndarray) -> bool:
        """Read rows [a, b) chunk by chunk, inflating on the pool; False: use h5py instead
        (a chunk not allocated or stored with a filter skipped)."""
        c = self._chunk_rows
        chunk_bytes = c * self.row_bytes
        flat = buf.reshape(-1).view(np.uint8)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wavedqm-inflate")
        futures: list[Future[None]] = []
        ok = True
        try:
            for i, start in enumerate(range(a, b, c)):
                try:
                    mask, raw = self._wvfm_id.read_direct_chunk((start,))
                except H5_ERRORS:
                    ok = False
                    break
                if mask != 0:
                    ok = False
                    break
                dst = flat[i * chunk_bytes : (i + 1) * chunk_bytes]
                futures.append(self._pool.submit(_inflate_into, raw, dst, self._shuffle_size))
        finally:
            for fut in futures:
                fut.exception()  # wait for every task before the buffer is reused
        for fut in futures:
            fut.result()  # re-raise the first error
        return ok


class _Prefetcher:
    """Reads the batches ``spans`` in order on ``threads`` background threads, into a ring of
    buffers: as many batches are in flight as there are buffers.

    ``next`` hands the consumer the next batch's buffer once read and gives the previous one
    back (its next read is queued). A read error is raised by ``next`` for the batch it belongs
    to.
    """

    def __init__(
        self,
        read: Callable[[int, int, np.ndarray], None],
        spans: list[tuple[int, int]],
        buffers: list[np.ndarray],
        threads: int,
    ) -> None:
        self._read = read
        self._spans = spans
        self._buffers = buffers
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="wavedqm-read")
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._next_span = 0
        self._current: int | None = None
        for i in range(len(buffers)):
            self._submit(i)

    def _submit(self, buffer_index: int) -> None:
        if self._next_span < len(self._spans):
            a, b = self._spans[self._next_span]
            self._next_span += 1
            future = self._pool.submit(self._read, a, b, self._buffers[buffer_index])
            self._pending.append((future, buffer_index))

    def next(self) -> np.ndarray:
        """The next batch's buffer (waits for its read); re-raises the read's error."""
        if self._current is not None:
            self._submit(self._current)  # the consumer is done with the previous batch
            self._current = None
        future, i = self._pending.popleft()
        future.result()
        self._current = i
        return self._buffers[i]

    def stop(self) -> None:
        """Wait for the reads under way, drop the queued ones (idempotent)."""
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


class _EventRows:
    """Per-event metadata of batches, read ``METADATA_BATCH_ROWS`` events at a time (one h5py
    call per block instead of one per batch); blocks are whole batches."""

    def __init__(self, lay: _LightLayout, n_events: int, batch_rows: int) -> None:
        self._lay = lay
        self._n_events = n_events
        self._block_rows = batch_rows * max(1, METADATA_BATCH_ROWS // batch_rows)
        self._buf = np.empty(min(self._block_rows, n_events), lay.event_mem_dtype)
        self._start = self._stop = 0
        self._valid = np.empty((0, lay.n_adcs, lay.n_channels), np.bool_)
        self._trig = np.empty(0, np.uint8)
        self._time = np.empty(0, np.float64)

    def rows(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(valid, trig_type, time_s) of events [a, b): views of arrays never overwritten."""
        if not self._start <= a < b <= self._stop:
            stop = min(self._n_events, a + self._block_rows)
            k = stop - a
            self._lay.events.read_direct(self._buf, np.s_[a:stop], np.s_[0:k])
            rows = self._buf[:k]
            self._valid = rows["wvfm_valid"] != 0
            self._trig = rows["trig_type"].astype(np.uint8)
            self._time = _event_times_s(rows["utime_ms"])
            self._start, self._stop = a, stop
        i, j = a - self._start, b - self._start
        return self._valid[i:j], self._trig[i:j], self._time[i:j]


def _raw_storage(f: h5py.File, dset: h5py.Dataset) -> tuple[int, int | None] | None:
    """``(file descriptor, byte offset of row 0 or None when chunked)`` when the dataset's
    samples can be read with plain ``pread`` calls on the file: no filter, contiguous or chunked
    storage in this file (no external or virtual storage), the default (sec2) driver, no user
    block. None otherwise."""
    if not hasattr(os, "preadv"):  # not on every platform
        return None
    dcpl = dset.id.get_create_plist()
    if dcpl.get_nfilters() != 0 or dcpl.get_external_count() != 0:
        return None
    if f.id.get_access_plist().get_driver() != h5py.h5fd.SEC2:
        return None
    if f.id.get_create_plist().get_userblock() != 0:
        return None
    layout = dcpl.get_layout()
    fd = f.id.get_vfd_handle()
    if not isinstance(fd, int):
        return None
    if layout == h5py.h5d.CHUNKED:
        return fd, None
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dset.id.get_offset()
        return None if offset is None else (fd, int(offset))
    return None


def _pread_exactly(fd: int, dst: np.ndarray, offset: int) -> None:
    """Fill ``dst`` (contiguous uint8) from ``fd`` at ``offset``; a file that ends first is
    reported as truncated."""
    view = memoryview(dst).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError(
                f"file truncated: {len(view) - done} bytes missing at byte {offset + done} "
                "(end of file)"
            )
        done += n
