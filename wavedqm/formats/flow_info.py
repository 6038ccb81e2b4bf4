"""Inspection of ``.FLOW.hdf5`` files: :class:`FlowInfo` from metadata and event tables only.

:func:`inspect_flow` opens a file, validates it (:mod:`~wavedqm.formats.flow_layout`) and
describes it without reading a waveform: size (bytes), light shape (ADCs, channels, samples),
compression and HDF5 chunk rows of the waveform table, charge table lengths, and the time
range in unix s, scanned ``METADATA_READ_ROWS`` event rows at a time (``utime_ms`` of
``light/events``, or ``unix_ts`` (+ ``unix_ts_usec``, µs) of ``charge/events`` in a file
without light). :func:`_describe` is shared with the reader.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.errors import InputFileError
from wavedqm.formats.flow_layout import (
    CHARGE_EVENTS,
    CHARGE_HITS,
    FORMAT_NAME,
    LIGHT_EVENTS,
    LIGHT_WVFM,
    _light_layout,
    _LightLayout,
    compression_name,
)
from wavedqm.formats.flow_open import LOCKING, data_error, open_flow
from wavedqm.formats.h5checks import H5_ERRORS, check_stored_rows

METADATA_READ_ROWS = 65536
"""Rows of the (small) event tables read at once when scanning times (~45 MB at most)."""


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


# --------------------------------------------------------------------------------------------
# event times and description


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


def _build_info(f: h5py.File, path: Path, layout: _LightLayout | None, file_size: int) -> FlowInfo:
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
