"""Reader of the charge readout of ``.FLOW.hdf5`` files (spec: flow-hdf5.md, "Charge readout").

``charge/calib_prompt_hits/data`` holds one row per hit: ``x``, ``y``, ``z`` (cm; ``x`` is the
drift coordinate in the 2x2 files), ``Q`` (ke⁻) and, in newer files, ``is_disabled``; older
files lack some fields (``is_disabled``, ``chip_id``, ``Q_raw``): only ``x, y, z, Q`` are
required, the rest is used when present. ``charge/events/data`` counts the events.
The detector geometry comes from the file too: ``geometry_info/det_bounds/data`` (per-tile
bounds, ``data`` (2, 3) cm, ``filled``) and the ``module_RO_bounds`` attribute of
``geometry_info`` (one active box per module, cm), when present.

Hits are streamed in bounded chunks of whole HDF5 chunks (only the four or five fields needed
are read: ``Dataset.fields``), at most :data:`wavedqm.constants.READ_CHUNK_BYTES` of them at a
time; the file is opened read-only (:func:`wavedqm.formats.flow.open_flow`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.errors import InputFileError
from wavedqm.formats.flow import CHARGE_EVENTS, CHARGE_HITS, compression_name, data_error, open_flow
from wavedqm.formats.h5checks import H5_ERRORS
from wavedqm.formats.h5heap import read_attribute

HIT_FIELDS = ("x", "y", "z", "Q")
"""Fields every hits table must have (cm, cm, cm, ke⁻)."""
DISABLED_FIELD = "is_disabled"
DET_BOUNDS = "geometry_info/det_bounds/data"
GEOMETRY = "geometry_info"
ACTIVE_BOXES_ATTR = "module_RO_bounds"
DRIFT_ATTR = "drift_direction"
EXPECTED_CHARGE = (
    "charge/calib_prompt_hits/data: a 1-D table with numeric fields x, y, z (cm) and Q (ke⁻)"
)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (cm): ``low`` and ``high`` corners (x, y, z)."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]


@dataclass(frozen=True)
class ChargeInfo:
    """What a file holds of the charge readout."""

    n_hits: int
    n_events: int | None
    fields: tuple[str, ...]
    chunk_rows: int | None
    compression: str | None
    det_bounds: Box | None
    """Union of the filled ``det_bounds`` rows (cm); None without them."""
    active_boxes: tuple[Box, ...] = field(default_factory=tuple)
    """The modules' active (read-out) volumes (cm); empty when the file does not say."""
    drift_axis: str = "x"

    @property
    def has_disabled(self) -> bool:
        return DISABLED_FIELD in self.fields

    def to_dict(self) -> dict[str, Any]:
        def box(b: Box | None) -> dict[str, list[float]] | None:
            return None if b is None else {"low_cm": list(b.low), "high_cm": list(b.high)}

        return {
            "n_hits": self.n_hits,
            "n_events": self.n_events,
            "fields": list(self.fields),
            "chunk_rows": self.chunk_rows,
            "compression": self.compression,
            "det_bounds": box(self.det_bounds),
            "active_boxes": [box(b) for b in self.active_boxes],
            "drift_axis": self.drift_axis,
        }


@dataclass(frozen=True, eq=False)
class HitChunk:
    """One chunk of hits: float64 ``x, y, z`` (cm), ``q`` (ke⁻), ``disabled`` (bool or None)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    q: np.ndarray
    disabled: np.ndarray | None


def _wrong(path: Path, what: str) -> InputFileError:
    return InputFileError(path, "wrong_layout", what, EXPECTED_CHARGE)


def _det_bounds(f: h5py.File) -> Box | None:
    obj = f.get(DET_BOUNDS)
    if not isinstance(obj, h5py.Dataset) or obj.dtype.names is None:
        return None
    if "data" not in obj.dtype.names:
        return None
    rows = obj[()]
    data = np.asarray(rows["data"], np.float64)
    if data.ndim != 3 or data.shape[1:] != (2, 3):
        return None
    use = (
        np.asarray(rows["filled"], bool)
        if "filled" in rows.dtype.names
        else np.ones(len(data), bool)
    )
    use &= np.all(np.isfinite(data), axis=(1, 2))
    if not use.any():
        return None
    d = data[use]
    low, high = d.min(axis=(0, 1)), d.max(axis=(0, 1))
    return Box(tuple(map(float, low)), tuple(map(float, high)))  # type: ignore[arg-type]


def _active_boxes(f: h5py.File, path: Path) -> tuple[Box, ...]:
    geo = f.get(GEOMETRY)
    if geo is None or ACTIVE_BOXES_ATTR not in geo.attrs:
        return ()
    a = np.asarray(read_attribute(geo, ACTIVE_BOXES_ATTR, path), np.float64)
    if a.ndim != 3 or a.shape[1:] != (2, 3) or not np.all(np.isfinite(a)):
        return ()
    return tuple(
        Box(tuple(map(float, b.min(axis=0))), tuple(map(float, b.max(axis=0))))  # type: ignore[arg-type]
        for b in a
    )


def _drift_axis(f: h5py.File, path: Path) -> str:
    geo = f.get(GEOMETRY)
    if geo is not None and DRIFT_ATTR in geo.attrs:
        value = read_attribute(geo, DRIFT_ATTR, path)
        value = value.decode() if isinstance(value, bytes) else str(value)
        if value in ("x", "y", "z"):
            return value
    return "x"


def hits_table(f: h5py.File, path: Path) -> h5py.Dataset | None:
    """The hits dataset, None when the file has no charge hits at all; InputFileError
    (``wrong_layout``) when it is there but not the expected table."""
    obj = f.get(CHARGE_HITS)
    if obj is None:
        return None
    if not isinstance(obj, h5py.Dataset):
        raise _wrong(path, f"{CHARGE_HITS} is a {type(obj).__name__}, not a dataset")
    names = obj.dtype.names
    if names is None or obj.ndim != 1:
        raise _wrong(path, f"{CHARGE_HITS} is a {obj.ndim}-D {obj.dtype} array, not a table")
    missing = [n for n in HIT_FIELDS if n not in names]
    if missing:
        raise _wrong(
            path, f"{CHARGE_HITS} has no field {', '.join(missing)} (fields: {', '.join(names)})"
        )
    for n in HIT_FIELDS:
        kind = obj.dtype.fields[n][0].kind
        if kind not in "fiu" or obj.dtype.fields[n][0].shape:
            raise _wrong(path, f"{CHARGE_HITS} field {n} is {obj.dtype.fields[n][0]}, not a number")
    return obj


def charge_info(f: h5py.File, path: Path) -> ChargeInfo | None:
    """The charge readout of an open file, None when it has no hits table."""
    hits = hits_table(f, path)
    if hits is None:
        return None
    events = f.get(CHARGE_EVENTS)
    return ChargeInfo(
        n_hits=int(hits.shape[0]),
        n_events=int(events.shape[0]) if isinstance(events, h5py.Dataset) and events.ndim else None,
        fields=tuple(hits.dtype.names or ()),
        chunk_rows=int(hits.chunks[0]) if hits.chunks else None,
        compression=compression_name(hits),
        det_bounds=_det_bounds(f),
        active_boxes=_active_boxes(f, path),
        drift_axis=_drift_axis(f, path),
    )


def _rows_per_read(hits: h5py.Dataset, max_bytes: int) -> int:
    """Whole HDF5 chunks, at most ``max_bytes`` of the fields read (at least one chunk)."""
    per_row = 8 * (len(HIT_FIELDS) + 1)
    rows = max(1, int(max_bytes) // per_row)
    chunk = int(hits.chunks[0]) if hits.chunks else rows
    return max(chunk, rows // chunk * chunk)


def hit_chunks(
    hits: h5py.Dataset, path: Path, max_bytes: int = C.READ_CHUNK_BYTES
) -> Iterator[HitChunk]:
    """The hits in bounded chunks (float64 coordinates and charge; bool ``disabled``)."""
    names = hits.dtype.names or ()
    wanted = list(HIT_FIELDS) + ([DISABLED_FIELD] if DISABLED_FIELD in names else [])
    step = _rows_per_read(hits, max_bytes)
    n = int(hits.shape[0])
    for a in range(0, n, step):
        b = min(n, a + step)
        try:
            rows = hits.fields(wanted)[a:b]
        except H5_ERRORS as err:
            raise data_error(path, err, f"{CHARGE_HITS} rows {a}:{b}") from err
        disabled = np.asarray(rows[DISABLED_FIELD], np.bool_) if DISABLED_FIELD in wanted else None
        yield HitChunk(
            *(np.ascontiguousarray(rows[k], np.float64) for k in HIT_FIELDS), disabled=disabled
        )


def open_charge(path: Path) -> h5py.File:
    """The file opened read-only (``open_flow``'s errors)."""
    return open_flow(Path(path))


def _datasets(f: h5py.File) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out.append(
                {
                    "name": name,
                    "shape": list(obj.shape),
                    "chunks": list(obj.chunks) if obj.chunks else None,
                    "compression": compression_name(obj),
                }
            )

    f.visititems(visit)
    return out


def inspect_flow_file(path: str | Path) -> dict[str, Any]:
    """What ``wavedqm inspect`` shows of a ``.FLOW.hdf5`` file: the light description
    (:func:`wavedqm.formats.flow.inspect_flow`), the charge readout (hits, fields, chunking,
    compression, geometry) and every dataset with its shape, chunks and compression."""
    from wavedqm.formats.flow import inspect_flow

    path = Path(path)
    info = inspect_flow(path).to_dict()
    with open_flow(path) as f:
        try:
            charge = charge_info(f, path)
        except InputFileError as err:
            info["charge"] = {"error": str(err)}
        else:
            info["charge"] = None if charge is None else charge.to_dict()
        info["datasets"] = _datasets(f)
    return info
