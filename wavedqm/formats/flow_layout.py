"""Layout of ``.FLOW.hdf5`` files: table names and fields, validation of the light tables.

``light/events/data`` holds one row per trigger (``trig_type``, ``wvfm_valid``
(n_adcs, n_channels), ``utime_ms`` (n_adcs,) ...); ``light/wvfm/data`` one row per trigger with
a single field ``samples``, int16 ADC16 counts of shape (n_adcs, n_channels, n_samples).
:func:`_light_layout` checks fields, shapes, the ``n_samples`` attribute, the 1:1 row count
and that the rows declared are stored in the file (size in bytes), and returns the validated
tables as a :class:`_LightLayout`; anything odd raises ``InputFileError`` (``wrong_layout``,
``truncated``, ``unwritten_rows``). :func:`compression_name` names a filter pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from wavedqm.errors import InputFileError
from wavedqm.formats.h5checks import check_stored_rows
from wavedqm.formats.h5heap import read_attribute

FORMAT_NAME = "flow-hdf5"
LIGHT_EVENTS = "light/events/data"
LIGHT_WVFM = "light/wvfm/data"
CHARGE_EVENTS = "charge/events/data"
CHARGE_HITS = "charge/calib_prompt_hits/data"
EXPECTED_LAYOUT = "an ndlar_flow file with light/events/data and light/wvfm/data"
SAMPLES_FIELD = "samples"
EVENT_FIELDS = ("trig_type", "wvfm_valid", "utime_ms")
N_SAMPLES_ATTR = "n_samples"


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
