"""The history store: one HDF5 file in the state folder (``STATE/history.h5``) holding a
:class:`~wavedqm.analysis.history.FileRecord` per processed file, and the
:class:`~wavedqm.analysis.history.Rollup` of the last N of them read back in bounded blocks
(the rollup rules are in :mod:`wavedqm.analysis.history`).

Store layout (schema version :data:`HISTORY_SCHEMA_VERSION`): one row per file in every dataset,
extendible along axis 0 (``maxshape=None``), chunked (rows ≥ 1 KiB: one row per chunk, gzip;
smaller rows: uncompressed multi-row chunks rewritten in place with identical old bytes), so
a new row never rewrites the stored bytes of an older one. Root attributes: ``schema_version``,
``n_files``, ``grid_shape`` (n_adcs, n_channels), ``n_epcb``, ``n_tpc``, ``created_at`` (unix s),
``roi_centres_mhz`` once spectra are stored. Datasets::

    file (str), processed_at, time_start_s, time_end_s (float64 unix s, NaN = none), n_events,
    events/{beam,self} (int64)
    {baseline,noise}/{all,beam,self}/{median,err_low,err_high}   (N, a, c) float64 ADC16
    counts/{clipped,negative}/{all,beam,self}/{channel,epcb,tpc,total}/{k,n}  int64
    spectra/roi_power_v2 (N, *roi_shape) float64 V², spectra/present (N,) uint8  [optional]

Idempotence: a record of a file already among the last ``HISTORY_REPLACE_WINDOW_ROWS`` rows
replaces that row (in place, at its position) instead of adding one: a file processed again (a
restart after a crash between the history and the ledger, a file rewritten by its writer after
it was processed, while other files came in between) counts once among the previous files,
with its newest values.

Durability: an append writes the new row in every dataset, flushes and fsyncs, then bumps the
``n_files`` attribute and flushes and fsyncs again; readers trust ``n_files`` only, so an append
interrupted before the bump leaves the previous rows and count intact (the partial row is
overwritten by the next append). The file uses the oldest HDF5 format (no "open for write"
flag that would make a store left by a killed process unopenable) and fixed-length names (no
global heap to corrupt); a process killed by SIGKILL during or after an append is tested.

Damage: a store that cannot be opened or read, whose ``schema_version`` differs, or whose
layout (grid shape, EPCB/TPC counts, spectral regions) differs from what is appended or
expected is renamed aside — ``history.h5.damaged-<UTC time>``, ``history.h5.schema<v>-<UTC
time>``, ``history.h5.layout-<UTC time>`` — with an error log (``history_set_aside``), and a
fresh store is started. It is never overwritten and never crashes the caller. A write that HDF5
refuses sets the store aside too and the record goes to a fresh store. A store locked by
another process is not damaged: :class:`HistoryError` is raised and the file is left alone.

Cost (8×64 channels): a row is ~125 KB raw, ~50 KB on disk (gzip); an append ~40 ms (two
fsyncs). ``records(last=N)`` and ``rollup(N)`` read only the last N rows, in blocks of
:data:`BLOCK_ROWS` rows (bounded memory); a rollup costs ~35 ms + ~1 ms per file rolled up,
so ``previous=None`` ("all") grows linearly with the history.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.history import FileRecord, Rollup
from wavedqm.atomic import is_medium_error
from wavedqm.errors import OutputError, WavedqmError
from wavedqm.exporters.history_layout import (
    SPECTRA,
    SPECTRA_PRESENT,
    StoreLayout,
    read_records,
    read_rollup,
    record_layout,
    record_value,
    row_chunks,
)
from wavedqm.logs import get_logger

log = get_logger(__name__)

HISTORY_SCHEMA_VERSION = 1
"""Version of the store layout; a store with another version is set aside, not migrated."""
HISTORY_FILE = "history.h5"
"""Name of the store in the state folder (the caller passes the full path)."""


class HistoryError(WavedqmError):
    """The history store cannot be used (locked by another process, closed, write failed)."""


class _Damaged(Exception):
    """Internal: the store is unusable; ``kind`` picks the set-aside suffix."""

    def __init__(self, kind: str, why: str) -> None:
        self.kind = kind
        self.why = why
        super().__init__(why)


# --- the store ----------------------------------------------------------------------------


class HistoryStore:
    """Append-only HDF5 history of processed files (see the module docstring).

    ``path``: the store file (normally ``STATE/history.h5``); ``grid_shape``: the expected
    (n_adcs, n_channels), if known — a store with another grid is set aside at open. Opening
    never fails on a damaged or incompatible store (it is set aside and a fresh one started);
    it raises :class:`HistoryError` only when the file cannot be opened at all for another
    reason (locked by another process, permissions).
    """

    def __init__(self, path: str | Path, grid_shape: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.grid_shape = None if grid_shape is None else (int(grid_shape[0]), int(grid_shape[1]))
        self._h5: h5py.File | None = None
        self._layout: StoreLayout | None = None
        self._n = 0
        self.set_aside: list[Path] = []
        """Files this store renamed aside (damaged or incompatible), oldest first."""
        self._closed = False
        """Closed by :meth:`close` (not by a write error, after which it reopens)."""
        self._open()

    # -- open / set aside ------------------------------------------------------------------

    def _open(self) -> None:
        """Validate an existing store read-only (so that a store set aside is byte for byte
        what was found), then open it for appending; create it if absent."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create()
            return
        try:
            with self._h5_file("r") as h5:
                self._validate(h5)
        except _Damaged as d:
            self._move_aside(d.kind, d.why)
            self._create()
            return
        try:
            self._h5 = self._h5_file("a")
        except _Damaged as d:  # readable but not writable (read-only file system...)
            raise HistoryError(f"{self.path}: cannot open for writing: {d.why}") from d

    def _h5_file(self, mode: str) -> h5py.File:
        """Open the store; lock and permission problems raise HistoryError, anything else
        HDF5 refuses means a damaged file (_Damaged)."""
        try:
            # "earliest" (superblock v0): no "open for write" status flag in the file, so a
            # store left by a killed process opens again (v110+ would refuse it until h5clear)
            return h5py.File(self.path, mode, libver="earliest")
        except BlockingIOError as err:
            raise HistoryError(f"{self.path}: locked by another process ({err})") from err
        except PermissionError as err:
            raise HistoryError(f"{self.path}: {err}") from err
        except OSError as err:
            if is_medium_error(err):  # a full or read-only disk is not a damaged store
                raise OutputError(self.path, str(err)) from err
            raise _Damaged("damaged", f"cannot open: {err}") from err

    def _create(self) -> None:
        try:
            self._h5 = h5py.File(self.path, "w-", libver="earliest")
        except OSError as err:
            if is_medium_error(err):
                raise OutputError(self.path, f"cannot create ({err})") from err
            raise HistoryError(f"{self.path}: cannot create ({err})") from err
        self._init_attrs()

    def _init_attrs(self) -> None:
        h5 = self._require()
        h5.attrs["schema_version"] = HISTORY_SCHEMA_VERSION
        h5.attrs["n_files"] = 0
        h5.attrs["created_at"] = time.time()
        if self.grid_shape is not None:
            h5.attrs["grid_shape"] = np.array(self.grid_shape, np.int64)
        self._layout = None
        self._n = 0
        self._sync()

    def _validate(self, h5: h5py.File) -> None:
        """Check version, count, layout and that the last stored row reads; else _Damaged.
        Sets ``_layout`` and ``_n``."""
        try:
            attrs = dict(h5.attrs)
            if "schema_version" not in attrs:
                raise _Damaged("damaged", "no schema_version attribute")
            version = int(attrs["schema_version"])
            if version != HISTORY_SCHEMA_VERSION:
                raise _Damaged(
                    f"schema{version}",
                    f"schema version {version} (expected {HISTORY_SCHEMA_VERSION})",
                )
            n = int(attrs.get("n_files", -1))
            if n < 0:
                raise _Damaged("damaged", f"n_files attribute {attrs.get('n_files')!r}")
            layout = None
            if "n_epcb" in attrs:
                grid = tuple(int(v) for v in np.asarray(attrs["grid_shape"]).reshape(-1))
                if len(grid) != 2:
                    raise _Damaged("damaged", f"grid_shape attribute {grid}")
                layout = StoreLayout((grid[0], grid[1]), int(attrs["n_epcb"]), int(attrs["n_tpc"]))
            elif "grid_shape" in attrs:
                grid = tuple(int(v) for v in np.asarray(attrs["grid_shape"]).reshape(-1))
            else:
                grid = None
            if self.grid_shape is not None and grid is not None and grid != self.grid_shape:
                raise _Damaged("layout", f"grid shape {grid} (expected {self.grid_shape})")
            if layout is None and n > 0:
                raise _Damaged("damaged", f"n_files = {n} but no layout attributes")
            if layout is not None:
                specs = layout.specs()
                if SPECTRA in h5:
                    specs[SPECTRA] = (tuple(h5[SPECTRA].shape[1:]), np.float64)
                    specs[SPECTRA_PRESENT] = ((), np.uint8)
                missing = [p for p in specs if not isinstance(h5.get(p), h5py.Dataset)]
                if missing and n > 0:
                    raise _Damaged("damaged", f"datasets missing: {', '.join(missing)}")
                if missing:  # an interrupted first append: datasets are made again
                    layout = None
                    specs = {}
                for path, (shape, _) in specs.items():
                    ds = h5[path]
                    if tuple(ds.shape[1:]) != shape or ds.shape[0] < n:
                        raise _Damaged(
                            "damaged",
                            f"dataset {path}: shape {ds.shape} (expected ({n}+, *{shape}))",
                        )
                    if n > 0:
                        ds[n - 1]  # the last trusted row must read
            self._layout = layout
            self._n = n
        except _Damaged:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            raise _Damaged("damaged", f"unreadable: {err}") from err

    def _move_aside(self, kind: str, why: str) -> Path:
        """Rename the store to ``<name>.<kind>-<UTC time>`` (never overwriting) and log it."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.{kind}-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.{kind}-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, aside)
        except OSError as err:
            raise HistoryError(f"{self.path}: {why}; cannot set it aside: {err}") from err
        self.set_aside.append(aside)
        log.error(
            "history_set_aside",
            path=str(self.path),
            moved_to=str(aside),
            kind=kind,
            reason=why,
        )
        return aside

    def _restart(self, kind: str, why: str) -> None:
        """Set the current store aside and start a fresh one (keeps ``grid_shape``)."""
        self._close_quietly()
        if self.path.exists():
            self._move_aside(kind, why)
        self._create()

    def _close_quietly(self) -> None:
        if self._h5 is not None:
            try:
                self._h5.close()
            except Exception as err:  # a damaged file may fail to close cleanly
                log.warning("history_close_failed", path=str(self.path), error=str(err))
            self._h5 = None

    def _require(self) -> h5py.File:
        if self._h5 is None and not self._closed:
            self._open()  # closed after a write error: try again (the disk may have room now)
        if self._h5 is None:
            raise HistoryError(f"{self.path}: history store is closed")
        return self._h5

    def _sync(self) -> None:
        """Flush HDF5's buffers and fsync the file (durable against power loss)."""
        h5 = self._require()
        h5.flush()
        try:
            fd = h5.id.get_vfd_handle()
        except Exception:  # drivers without a file descriptor
            return
        if isinstance(fd, int) and fd >= 0:
            os.fsync(fd)

    # -- writing ---------------------------------------------------------------------------

    def append(self, record: FileRecord) -> None:
        """Store one file's record (durable on return).

        A record whose layout (grid, EPCB/TPC counts, spectral regions) differs from the
        stored one sets the store aside (``.layout-<time>``) and starts a fresh one with it.
        If HDF5 fails to write (a damaged store), the store is set aside
        (``.damaged-<time>``) and the record written to a fresh one. Raises
        :class:`HistoryError` if that fails too (e.g. disk full: the store is then closed)
        and ``ValueError`` for an inconsistent record.
        """
        layout = record_layout(record)
        self._require()
        why = self._layout_mismatch(layout, record)
        if why is not None:
            self._restart("layout", why)
        try:
            self._append_row(record)
            return
        except (OSError, RuntimeError) as err:
            if is_medium_error(err):  # full or read-only disk: the store is not damaged
                self._close_quietly()
                raise OutputError(self.path, f"append of {record.file} failed: {err}") from err
            self._restart("damaged", f"append of {record.file} failed: {err}")
        try:
            self._append_row(record)
        except (OSError, RuntimeError) as err:
            self._close_quietly()
            raise HistoryError(f"{self.path}: append of {record.file} failed: {err}") from err

    def _row_of(self, name: str) -> int | None:
        """Index of ``name``'s newest row among the last ``HISTORY_REPLACE_WINDOW_ROWS``."""
        if self._n == 0 or self._layout is None:
            return None
        lo = max(0, self._n - C.HISTORY_REPLACE_WINDOW_ROWS)
        names = np.asarray(self._require()["file"].asstr()[lo : self._n])
        hits = np.flatnonzero(names == name)
        return lo + int(hits[-1]) if hits.size else None

    def _append_row(self, record: FileRecord) -> None:
        """Row first, then the count: readers trust ``n_files`` only. A record of a file
        already among the last rows replaces its row (module doc) instead of counting the
        file twice among the previous files."""
        row = self._row_of(record.file)
        if row is not None:
            self._write_row(record, row)
            self._sync()
            return
        self._write_row(record, self._n)
        self._sync()
        self._require().attrs["n_files"] = self._n + 1
        self._sync()
        self._n += 1

    def _layout_mismatch(self, layout: StoreLayout, rec: FileRecord) -> str | None:
        h5 = self._require()
        if self.grid_shape is not None and layout.grid_shape != self.grid_shape:
            raise ValueError(
                f"record {rec.file}: grid {layout.grid_shape} (store expects {self.grid_shape})"
            )
        if self._layout is not None and self._layout != layout:
            return f"layout {self._layout} (record {rec.file} has {layout})"
        if self._layout is None and "grid_shape" in h5.attrs:
            grid = tuple(int(v) for v in np.asarray(h5.attrs["grid_shape"]).reshape(-1))
            if grid != layout.grid_shape:
                return f"grid shape {grid} (record {rec.file} has {layout.grid_shape})"
        if rec.spectra_roi is not None and SPECTRA in h5:
            stored = tuple(h5[SPECTRA].shape[1:])
            if stored != rec.spectra_roi.shape:
                return f"spectra regions {stored} (record {rec.file} has {rec.spectra_roi.shape})"
            if rec.roi_centres_mhz is not None and "roi_centres_mhz" in h5.attrs:
                old = np.asarray(h5.attrs["roi_centres_mhz"], np.float64)
                if old.size and not np.array_equal(old, rec.roi_centres_mhz):
                    return f"roi centres {old.tolist()} (record {rec.file} has other centres)"
        return None

    def _write_row(self, record: FileRecord, index: int) -> None:
        """Write ``record`` as row ``index`` of every dataset (resizing each to index + 1),
        without touching ``n_files``: the first half of an append."""
        h5 = self._require()
        layout = record_layout(record)
        if self._layout is None:
            self._create_datasets(layout)
        rows = max(index + 1, self._n)  # a replaced row keeps the rows after it
        for path in layout.specs():
            ds = h5[path]
            ds.resize(rows, axis=0)
            ds[index] = record_value(record, path)
        if record.spectra_roi is not None and SPECTRA not in h5:
            self._create_spectra(record, index)
        if SPECTRA in h5:
            spec = h5[SPECTRA]
            present = h5[SPECTRA_PRESENT]
            spec.resize(rows, axis=0)
            present.resize(rows, axis=0)
            if record.spectra_roi is None:
                spec[index] = np.full(spec.shape[1:], np.nan)
                present[index] = 0
            else:
                spec[index] = record.spectra_roi
                present[index] = 1
            if record.roi_centres_mhz is not None:
                h5.attrs["roi_centres_mhz"] = np.asarray(record.roi_centres_mhz, np.float64)

    def _create_datasets(self, layout: StoreLayout) -> None:
        h5 = self._require()
        for path, (shape, dtype) in layout.specs().items():
            if path in h5:  # left by an interrupted first append
                del h5[path]
            chunks, opts = row_chunks(shape, dtype)
            h5.create_dataset(
                path, shape=(0, *shape), maxshape=(None, *shape), chunks=chunks, dtype=dtype, **opts
            )
        h5.attrs["grid_shape"] = np.array(layout.grid_shape, np.int64)
        h5.attrs["n_epcb"] = layout.n_epcb
        h5.attrs["n_tpc"] = layout.n_tpc
        self._layout = layout

    def _create_spectra(self, record: FileRecord, index: int) -> None:
        """First record with spectra: earlier rows get NaN and ``present = 0``."""
        h5 = self._require()
        assert record.spectra_roi is not None
        shape = tuple(record.spectra_roi.shape)
        chunks, opts = row_chunks(shape, np.float64)
        h5.create_dataset(
            SPECTRA,
            shape=(index, *shape),
            maxshape=(None, *shape),
            chunks=chunks,
            dtype=np.float64,
            fillvalue=np.nan,
            **opts,
        )
        h5.create_dataset(
            SPECTRA_PRESENT,
            shape=(index,),
            maxshape=(None,),
            chunks=row_chunks((), np.uint8)[0],
            dtype=np.uint8,
            fillvalue=0,
        )

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Files stored (the trusted ``n_files``)."""
        return self._n

    def _range(self, last: int | None) -> tuple[int, int]:
        if last is not None and (isinstance(last, bool) or last < 0):
            raise ValueError(f"last/previous: {last!r} (expected None or an integer >= 0)")
        stop = self._n
        start = 0 if last is None else max(0, stop - last)
        return start, stop

    def records(self, last: int | None = None) -> list[FileRecord]:
        """The stored records, oldest first: all, or only the last ``last`` (reads only those
        rows). A store found unreadable is set aside (logged) and ``[]`` returned."""
        self._require()
        start, stop = self._range(last)
        if start >= stop:
            return []
        try:
            return read_records(self._require(), self._layout, start, stop)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            self._restart("damaged", f"unreadable rows {start}:{stop}: {err}")
            return []

    def rollup(self, previous: int | None, cl: float = C.CONFIDENCE_LEVEL) -> Rollup | None:
        """Rollup of the files stored so far: ``previous=None`` all of them, ``0`` none, ``N``
        the last N. None if that selects no file (empty history or ``previous=0``). Call it
        before appending the current file. ``cl``: coverage of the recomputed intervals. A
        store found unreadable is set aside (logged) and None returned."""
        self._require()
        start, stop = self._range(previous)
        if start >= stop:
            return None
        try:
            return read_rollup(self._require(), self._layout, start, stop, cl)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            self._restart("damaged", f"unreadable rows {start}:{stop}: {err}")
            return None

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._closed = True
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["HISTORY_FILE", "HISTORY_SCHEMA_VERSION", "HistoryError", "HistoryStore"]
