"""History of processed files and rollups over the previous N files (spec: light-dqm.md,
"Comparison with previous files").

Each processed file appends one :class:`FileRecord` (per-channel baseline/noise medians and
errors for all/beam/self events, clipped/negative numerators and denominators by granularity
and selection, optional power in spectral regions of interest, data start/end time) to a
:class:`HistoryStore`, one HDF5 file in the state folder (``STATE/history.h5``). A
:class:`Rollup` summarises the last N stored files (config: all, none, last N); its all-events
baseline (:func:`baseline_previous`) is what the 3σ shift test (baseline status 2) of
:meth:`~wavedqm.analysis.light.LightAccumulator.result` compares the current file against.

Rollup rules (spec: "mean of medians, errors added in quadrature; fractions: sum numerators and
denominators, recompute the interval"):

- median: the mean over files of the files' medians, NaN-aware (a file where the channel had no
  valid waveform is left out of that channel's mean, not poisoning it);
- ``err_low`` / ``err_high``: ``sqrt(Σ err²)`` over the same files, **not divided by the number
  of files**. That is what the old tool did (``read_from_json``: ``np.mean`` of the centres,
  ``np.sqrt(np.sum(err**2))`` of the errors) and the spec's wording, so status 2 keeps the
  meaning it had. The errors are 16/84% spreads over events (not errors of a median), and the
  band grows as √N: with a long "all" history the 3σ shift test gets less sensitive, a
  "last N" setting keeps it sharp. (Dividing by N, the error of a mean, would instead shrink
  the band to nothing.) :func:`combine_spreads` is the one place that decides;
- fractions: :meth:`Fraction.from_counts` of the summed ``k`` and ``n`` (Clopper–Pearson
  interval recomputed at the requested confidence level);
- spectra regions of interest: mean over the files that have them (V²).

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
:data:`_BLOCK_ROWS` rows (bounded memory); a rollup costs ~35 ms + ~1 ms per file rolled up,
so ``previous=None`` ("all") grows linearly with the history.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.fractions import GRANULARITIES, Fraction
from wavedqm.analysis.light import FLAGS, SELECTIONS, LightResult
from wavedqm.analysis.stats import Spread
from wavedqm.errors import WavedqmError
from wavedqm.logs import get_logger

log = get_logger(__name__)

HISTORY_SCHEMA_VERSION = 1
"""Version of the store layout; a store with another version is set aside, not migrated."""
HISTORY_FILE = "history.h5"
"""Name of the store in the state folder (the caller passes the full path)."""
TRIGGERS = ("beam", "self")
QUANTITIES = ("baseline", "noise")
_SPREAD_PARTS = ("median", "err_low", "err_high")
_SPECTRA = "spectra/roi_power_v2"
_SPECTRA_PRESENT = "spectra/present"
_BLOCK_ROWS = 256
"""Rows read at a time by a rollup: ≤ 256 × 4 KB per 8×64 dataset in memory."""
_ONE_ROW_CHUNK_BYTES = 1024
"""Rows at least this large get one compressed chunk each; smaller rows share chunks."""
_SMALL_CHUNK_BYTES = 16 * 1024
_NAME_BYTES = 255
"""Longest file name stored (bytes of UTF-8; Linux NAME_MAX)."""
_STR = h5py.string_dtype("utf-8", _NAME_BYTES)
"""Fixed-length, not variable-length: overwriting a partial row left by a killed append must
not touch HDF5's global heap (whose unflushed state would make the overwrite fail)."""


class HistoryError(WavedqmError):
    """The history store cannot be used (locked by another process, closed, write failed)."""


@dataclass(frozen=True, eq=False)
class Counts:
    """Numerator and denominator of one flag fraction, shape of the granularity (int64)."""

    k: np.ndarray
    """Events flagged."""
    n: np.ndarray
    """Events in the denominator."""

    def fraction(self, cl: float = C.CONFIDENCE_LEVEL) -> Fraction:
        return Fraction.from_counts(self.k, self.n, cl)


@dataclass(eq=False)
class FileRecord:
    """One processed file's per-channel results, as stored in the history (one row)."""

    file: str
    """File name (no folder)."""
    processed_at: float
    """Unix time the file was processed (s)."""
    time_start_s: float | None
    """Unix time of the earliest event (s); None without events."""
    time_end_s: float | None
    n_events: int
    events_by_trigger: dict[str, int]
    """Events with trig_type 1 ("beam") and 0 ("self")."""
    baseline: dict[str, Spread]
    """Per selection "all"|"beam"|"self": median baseline with 16/84% errors, (a×c) ADC16, NaN
    where the channel had no valid waveform."""
    noise: dict[str, Spread]
    """Same for the noise (ADC16)."""
    counts: dict[str, dict[str, dict[str, Counts]]]
    """``counts[flag][selection][granularity]``: flag "clipped"|"negative", granularity
    "channel" (a×c), "epcb" (n_epcb,), "tpc" (n_tpc,), "total" (0-d)."""
    spectra_roi: np.ndarray | None = None
    """Power summed per region of interest (V²), last axis = region; None if not computed."""
    roi_centres_mhz: np.ndarray | None = None
    """Centres of the regions of interest (MHz), length ``spectra_roi.shape[-1]``."""

    @classmethod
    def from_light(
        cls,
        file: str | Path,
        light: LightResult,
        processed_at: float,
        spectra_roi: np.ndarray | None = None,
        roi_centres_mhz: np.ndarray | None = None,
    ) -> FileRecord:
        """The record of one file from its :class:`LightResult` (arrays copied)."""
        return cls(
            file=Path(file).name,
            processed_at=float(processed_at),
            time_start_s=light.time_start_s,
            time_end_s=light.time_end_s,
            n_events=int(light.n_events),
            events_by_trigger={t: int(light.events_by_trigger.get(t, 0)) for t in TRIGGERS},
            baseline={s: _copy_spread(light.selections[s].baseline) for s in SELECTIONS},
            noise={s: _copy_spread(light.selections[s].noise) for s in SELECTIONS},
            counts={
                flag: {
                    sel: {
                        g: Counts(
                            k=np.array(light.fractions[flag][sel][g].k, np.int64),
                            n=np.array(light.fractions[flag][sel][g].n, np.int64),
                        )
                        for g in GRANULARITIES
                    }
                    for sel in SELECTIONS
                }
                for flag in FLAGS
            },
            spectra_roi=None if spectra_roi is None else np.array(spectra_roi, np.float64),
            roi_centres_mhz=(
                None if roi_centres_mhz is None else np.array(roi_centres_mhz, np.float64)
            ),
        )

    @property
    def grid_shape(self) -> tuple[int, int]:
        shape = self.baseline["all"].median.shape
        if len(shape) != 2:
            raise ValueError(f"baseline median: shape {shape} (expected (n_adcs, n_channels))")
        return (int(shape[0]), int(shape[1]))


def _copy_spread(s: Spread) -> Spread:
    return Spread(
        median=np.array(s.median, np.float64),
        err_low=np.array(s.err_low, np.float64),
        err_high=np.array(s.err_high, np.float64),
    )


@dataclass(frozen=True, eq=False)
class Rollup:
    """Summary of the previous files (see the module docstring for the rules)."""

    n_files: int
    files: list[str]
    """File names, oldest first."""
    time_start_s: float | None
    """Earliest data start of those files (unix s); None if none had events."""
    time_end_s: float | None
    n_events: int
    events_by_trigger: dict[str, int]
    baseline: dict[str, Spread]
    """Per selection: mean of the medians, errors added in quadrature (ADC16)."""
    noise: dict[str, Spread]
    fractions: dict[str, dict[str, dict[str, Fraction]]]
    """``fractions[flag][selection][granularity]`` from summed counts."""
    spectra_roi: np.ndarray | None = None
    """Mean over the files with spectra (V²); None if none had them."""
    roi_centres_mhz: np.ndarray | None = None
    n_files_with_spectra: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nested lists, NaN as None."""
        return {
            "n_files": self.n_files,
            "files": list(self.files),
            "time_start_s": self.time_start_s,
            "time_end_s": self.time_end_s,
            "n_events": self.n_events,
            "events_by_trigger": dict(self.events_by_trigger),
            **{
                f"{q}_adc16": {
                    sel: {
                        "median": _json(s.median),
                        "err_low": _json(s.err_low),
                        "err_high": _json(s.err_high),
                    }
                    for sel, s in getattr(self, q).items()
                }
                for q in QUANTITIES
            },
            "fractions": {
                flag: {
                    sel: {g: f.to_dict() for g, f in by_gran.items()}
                    for sel, by_gran in by_sel.items()
                }
                for flag, by_sel in self.fractions.items()
            },
            "spectra_roi_v2": None if self.spectra_roi is None else _json(self.spectra_roi),
            "roi_centres_mhz": (
                None if self.roi_centres_mhz is None else _json(self.roi_centres_mhz)
            ),
            "n_files_with_spectra": self.n_files_with_spectra,
        }


def baseline_previous(rollup: Rollup | None) -> Spread | None:
    """The all-events baseline of the rollup: ``previous`` for
    :meth:`~wavedqm.analysis.light.LightAccumulator.result` (status 2); None without history."""
    return None if rollup is None else rollup.baseline["all"]


def _json(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    obj = a.astype(object)
    obj[np.isnan(a)] = None
    return obj.tolist()


# --- layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    grid_shape: tuple[int, int]
    n_epcb: int
    n_tpc: int

    def row_shape(self, granularity: str) -> tuple[int, ...]:
        return {
            "channel": self.grid_shape,
            "epcb": (self.n_epcb,),
            "tpc": (self.n_tpc,),
            "total": (),
        }[granularity]

    def specs(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Dataset path -> (row shape, dtype) of the fixed part of a row."""
        specs: dict[str, tuple[tuple[int, ...], Any]] = {
            "file": ((), _STR),
            "processed_at": ((), np.float64),
            "time_start_s": ((), np.float64),
            "time_end_s": ((), np.float64),
            "n_events": ((), np.int64),
        }
        for t in TRIGGERS:
            specs[f"events/{t}"] = ((), np.int64)
        for q in QUANTITIES:
            for sel in SELECTIONS:
                for part in _SPREAD_PARTS:
                    specs[f"{q}/{sel}/{part}"] = (self.grid_shape, np.float64)
        for flag in FLAGS:
            for sel in SELECTIONS:
                for g in GRANULARITIES:
                    for c in ("k", "n"):
                        specs[f"counts/{flag}/{sel}/{g}/{c}"] = (self.row_shape(g), np.int64)
        return specs


def _record_layout(rec: FileRecord) -> _Layout:
    """The layout of a record, checking that its arrays agree with each other."""
    grid = rec.grid_shape
    epcb = np.shape(rec.counts["clipped"]["all"]["epcb"].k)
    tpc = np.shape(rec.counts["clipped"]["all"]["tpc"].k)
    if len(epcb) != 1 or len(tpc) != 1:
        raise ValueError(f"record {rec.file}: epcb counts {epcb}, tpc counts {tpc} (expected 1-d)")
    layout = _Layout(grid_shape=grid, n_epcb=int(epcb[0]), n_tpc=int(tpc[0]))
    for path, (shape, _) in layout.specs().items():
        value = _record_value(rec, path)
        if path != "file" and np.shape(value) != shape:
            raise ValueError(
                f"record {rec.file}: {path} shape {np.shape(value)} (expected {shape})"
            )
    if rec.spectra_roi is not None:
        if rec.spectra_roi.ndim < 1:
            raise ValueError(f"record {rec.file}: spectra_roi must have a region axis")
        centres = rec.roi_centres_mhz
        if centres is not None and np.shape(centres) != (rec.spectra_roi.shape[-1],):
            raise ValueError(
                f"record {rec.file}: roi_centres_mhz shape {np.shape(centres)} "
                f"(expected ({rec.spectra_roi.shape[-1]},))"
            )
    return layout


def _record_value(rec: FileRecord, path: str) -> Any:
    """The value a record stores in one dataset (None times as NaN)."""
    parts = path.split("/")
    head = parts[0]
    if head == "file":
        name = rec.file.encode()
        if len(name) > _NAME_BYTES:
            raise ValueError(f"record {rec.file[:40]}...: name over {_NAME_BYTES} bytes")
        return name
    if head in ("processed_at", "time_start_s", "time_end_s"):
        v = getattr(rec, head)
        return math.nan if v is None else float(v)
    if head == "n_events":
        return rec.n_events
    if head == "events":
        return int(rec.events_by_trigger.get(parts[1], 0))
    if head in QUANTITIES:
        return getattr(getattr(rec, head)[parts[1]], parts[2])
    if head == "counts":
        flag, sel, g, c = parts[1:]
        return getattr(rec.counts[flag][sel][g], c)
    raise KeyError(path)


def _chunks(row_shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Chunk shape and filter options for a dataset of rows of ``row_shape``."""
    row_bytes = math.prod(row_shape) * np.dtype(dtype).itemsize
    if row_bytes >= _ONE_ROW_CHUNK_BYTES:
        return (1, *row_shape), {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    rows = max(1, _SMALL_CHUNK_BYTES // max(row_bytes, 1))
    return (rows, *row_shape), {}


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
        self._layout: _Layout | None = None
        self._n = 0
        self.set_aside: list[Path] = []
        """Files this store renamed aside (damaged or incompatible), oldest first."""
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
            raise _Damaged("damaged", f"cannot open: {err}") from err

    def _create(self) -> None:
        try:
            self._h5 = h5py.File(self.path, "w-", libver="earliest")
        except OSError as err:
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
                layout = _Layout((grid[0], grid[1]), int(attrs["n_epcb"]), int(attrs["n_tpc"]))
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
                if _SPECTRA in h5:
                    specs[_SPECTRA] = (tuple(h5[_SPECTRA].shape[1:]), np.float64)
                    specs[_SPECTRA_PRESENT] = ((), np.uint8)
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
        layout = _record_layout(record)
        self._require()
        why = self._layout_mismatch(layout, record)
        if why is not None:
            self._restart("layout", why)
        try:
            self._append_row(record)
            return
        except (OSError, RuntimeError) as err:
            self._restart("damaged", f"append of {record.file} failed: {err}")
        try:
            self._append_row(record)
        except (OSError, RuntimeError) as err:
            self._close_quietly()
            raise HistoryError(f"{self.path}: append of {record.file} failed: {err}") from err

    def _append_row(self, record: FileRecord) -> None:
        """Row first, then the count: readers trust ``n_files`` only."""
        self._write_row(record, self._n)
        self._sync()
        self._require().attrs["n_files"] = self._n + 1
        self._sync()
        self._n += 1

    def _layout_mismatch(self, layout: _Layout, rec: FileRecord) -> str | None:
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
        if rec.spectra_roi is not None and _SPECTRA in h5:
            stored = tuple(h5[_SPECTRA].shape[1:])
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
        layout = _record_layout(record)
        if self._layout is None:
            self._create_datasets(layout)
        for path in layout.specs():
            ds = h5[path]
            ds.resize(index + 1, axis=0)
            ds[index] = _record_value(record, path)
        if record.spectra_roi is not None and _SPECTRA not in h5:
            self._create_spectra(record, index)
        if _SPECTRA in h5:
            spec = h5[_SPECTRA]
            present = h5[_SPECTRA_PRESENT]
            spec.resize(index + 1, axis=0)
            present.resize(index + 1, axis=0)
            if record.spectra_roi is None:
                spec[index] = np.full(spec.shape[1:], np.nan)
                present[index] = 0
            else:
                spec[index] = record.spectra_roi
                present[index] = 1
            if record.roi_centres_mhz is not None:
                h5.attrs["roi_centres_mhz"] = np.asarray(record.roi_centres_mhz, np.float64)

    def _create_datasets(self, layout: _Layout) -> None:
        h5 = self._require()
        for path, (shape, dtype) in layout.specs().items():
            if path in h5:  # left by an interrupted first append
                del h5[path]
            chunks, opts = _chunks(shape, dtype)
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
        chunks, opts = _chunks(shape, np.float64)
        h5.create_dataset(
            _SPECTRA,
            shape=(index, *shape),
            maxshape=(None, *shape),
            chunks=chunks,
            dtype=np.float64,
            fillvalue=np.nan,
            **opts,
        )
        h5.create_dataset(
            _SPECTRA_PRESENT,
            shape=(index,),
            maxshape=(None,),
            chunks=_chunks((), np.uint8)[0],
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
            return self._read_records(start, stop)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            self._restart("damaged", f"unreadable rows {start}:{stop}: {err}")
            return []

    def _read_records(self, start: int, stop: int) -> list[FileRecord]:
        h5 = self._require()
        assert self._layout is not None
        cols = {p: h5[p][start:stop] for p in self._layout.specs()}
        names = h5["file"].asstr()[start:stop]
        spectra = present = None
        if _SPECTRA in h5:
            spectra = h5[_SPECTRA][start:stop]
            present = h5[_SPECTRA_PRESENT][start:stop]
        centres = h5.attrs.get("roi_centres_mhz")
        out = []
        for i in range(stop - start):
            spec_i = (
                spectra[i] if spectra is not None and present is not None and present[i] else None
            )
            out.append(
                FileRecord(
                    file=str(names[i]),
                    processed_at=float(cols["processed_at"][i]),
                    time_start_s=_opt_time(cols["time_start_s"][i]),
                    time_end_s=_opt_time(cols["time_end_s"][i]),
                    n_events=int(cols["n_events"][i]),
                    events_by_trigger={t: int(cols[f"events/{t}"][i]) for t in TRIGGERS},
                    baseline=_spreads(cols, "baseline", i),
                    noise=_spreads(cols, "noise", i),
                    counts={
                        flag: {
                            sel: {
                                g: Counts(
                                    k=np.array(cols[f"counts/{flag}/{sel}/{g}/k"][i]),
                                    n=np.array(cols[f"counts/{flag}/{sel}/{g}/n"][i]),
                                )
                                for g in GRANULARITIES
                            }
                            for sel in SELECTIONS
                        }
                        for flag in FLAGS
                    },
                    spectra_roi=None if spec_i is None else np.array(spec_i, np.float64),
                    roi_centres_mhz=(
                        np.array(centres, np.float64)
                        if spec_i is not None and centres is not None and np.size(centres)
                        else None
                    ),
                )
            )
        return out

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
            return self._read_rollup(start, stop, cl)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            self._restart("damaged", f"unreadable rows {start}:{stop}: {err}")
            return None

    def _read_rollup(self, start: int, stop: int, cl: float) -> Rollup:
        h5 = self._require()
        assert self._layout is not None
        t_start = h5["time_start_s"][start:stop]
        t_end = h5["time_end_s"][start:stop]
        spreads: dict[str, dict[str, Spread]] = {}
        for q in QUANTITIES:
            spreads[q] = {
                sel: _mean_spread(
                    h5[f"{q}/{sel}/median"],
                    h5[f"{q}/{sel}/err_low"],
                    h5[f"{q}/{sel}/err_high"],
                    start,
                    stop,
                )
                for sel in SELECTIONS
            }
        fractions = {
            flag: {
                sel: {
                    g: Fraction.from_counts(
                        _sum_rows(h5[f"counts/{flag}/{sel}/{g}/k"], start, stop),
                        _sum_rows(h5[f"counts/{flag}/{sel}/{g}/n"], start, stop),
                        cl,
                    )
                    for g in GRANULARITIES
                }
                for sel in SELECTIONS
            }
            for flag in FLAGS
        }
        spectra = centres = None
        n_spec = 0
        if _SPECTRA in h5:
            present = h5[_SPECTRA_PRESENT][start:stop].astype(bool)
            n_spec = int(np.count_nonzero(present))
            if n_spec:
                spectra = _mean_rows(h5[_SPECTRA], start, stop, present)
                c = h5.attrs.get("roi_centres_mhz")
                centres = np.array(c, np.float64) if c is not None and np.size(c) else None
        return Rollup(
            n_files=stop - start,
            files=[str(s) for s in h5["file"].asstr()[start:stop]],
            time_start_s=_opt_time(np.nanmin(t_start)) if np.isfinite(t_start).any() else None,
            time_end_s=_opt_time(np.nanmax(t_end)) if np.isfinite(t_end).any() else None,
            n_events=int(h5["n_events"][start:stop].sum()),
            events_by_trigger={t: int(h5[f"events/{t}"][start:stop].sum()) for t in TRIGGERS},
            baseline=spreads["baseline"],
            noise=spreads["noise"],
            fractions=fractions,
            spectra_roi=spectra,
            roi_centres_mhz=centres,
            n_files_with_spectra=n_spec,
        )

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (idempotent)."""
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


# --- reductions ---------------------------------------------------------------------------


def _opt_time(v: Any) -> float | None:
    f = float(v)
    return None if math.isnan(f) else f


def _spreads(cols: dict[str, np.ndarray], q: str, i: int) -> dict[str, Spread]:
    return {
        sel: Spread(*(np.array(cols[f"{q}/{sel}/{p}"][i]) for p in _SPREAD_PARTS))
        for sel in SELECTIONS
    }


def _blocks(start: int, stop: int) -> Iterator[tuple[int, int]]:
    for b0 in range(start, stop, _BLOCK_ROWS):
        yield b0, min(stop, b0 + _BLOCK_ROWS)


def _sum_rows(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Sum of rows ``start:stop`` (int64 counts), read in blocks."""
    total = np.zeros(ds.shape[1:], np.int64)
    for b0, b1 in _blocks(start, stop):
        total += ds[b0:b1].sum(axis=0, dtype=np.int64)
    return total


def _mean_rows(ds: h5py.Dataset, start: int, stop: int, use: np.ndarray) -> np.ndarray:
    """NaN-aware mean of the rows ``start:stop`` selected by ``use`` (bool per row)."""
    total = np.zeros(ds.shape[1:], np.float64)
    count = np.zeros(ds.shape[1:], np.int64)
    for b0, b1 in _blocks(start, stop):
        block = ds[b0:b1][use[b0 - start : b1 - start]]
        finite = np.isfinite(block)
        total += np.where(finite, block, 0.0).sum(axis=0)
        count += finite.sum(axis=0)
    out = np.full(total.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def combine_spreads(medians: np.ndarray, err_low: np.ndarray, err_high: np.ndarray) -> Spread:
    """Rollup of per-file spreads stacked along axis 0: NaN-aware mean of the medians, errors
    added in quadrature (``sqrt(Σ err²)``, not divided by the number of files, as the old
    tool). Files whose median is NaN for a cell are left out of that cell entirely; a cell NaN
    in every file stays NaN."""
    acc = _SpreadSum(np.shape(medians)[1:])
    acc.add(np.asarray(medians), np.asarray(err_low), np.asarray(err_high))
    return acc.result()


class _SpreadSum:
    """Running sums for :func:`combine_spreads` (so that rows can be read in blocks)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.total = np.zeros(shape, np.float64)
        self.count = np.zeros(shape, np.int64)
        self.sq_low = np.zeros(shape, np.float64)
        self.sq_high = np.zeros(shape, np.float64)

    def add(self, med: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        use = np.isfinite(med)
        self.total += np.where(use, med, 0.0).sum(axis=0)
        self.count += use.sum(axis=0)
        # a finite median with a NaN error (should not happen) makes that error NaN: visible
        self.sq_low += np.where(use, np.square(lo), 0.0).sum(axis=0)
        self.sq_high += np.where(use, np.square(hi), 0.0).sum(axis=0)

    def result(self) -> Spread:
        has = self.count > 0
        median = np.full(self.total.shape, np.nan)
        np.divide(self.total, self.count, out=median, where=has)
        err_low = np.where(has, np.sqrt(self.sq_low), np.nan)
        err_high = np.where(has, np.sqrt(self.sq_high), np.nan)
        return Spread(median=median, err_low=err_low, err_high=err_high)


def _mean_spread(
    med: h5py.Dataset, lo: h5py.Dataset, hi: h5py.Dataset, start: int, stop: int
) -> Spread:
    acc = _SpreadSum(tuple(med.shape[1:]))
    for b0, b1 in _blocks(start, stop):
        acc.add(med[b0:b1], lo[b0:b1], hi[b0:b1])
    return acc.result()


__all__ = [
    "HISTORY_FILE",
    "HISTORY_SCHEMA_VERSION",
    "Counts",
    "FileRecord",
    "HistoryError",
    "HistoryStore",
    "Rollup",
    "baseline_previous",
    "combine_spreads",
]
