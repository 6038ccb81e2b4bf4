"""The ndlar_flow / h5flow layout of a simulated ``.FLOW.hdf5`` file (spec: flow-hdf5.md): the
row dtypes of the light and charge tables (ADC16 counts, ms, ns), the compression filters,
resizable chunked tables grown row block by row block, and h5flow's bidirectional references
(``ref`` pairs and ``ref_region`` start/stop rows)."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C

GZIP_LEVEL = 4


def event_dtype(n_adcs: int = C.LIGHT_N_ADCS, n_channels: int = C.LIGHT_N_CHANNELS) -> np.dtype:
    """``light/events/data`` row (spec: flow-hdf5.md)."""
    return np.dtype(
        [
            ("id", "<u8"),
            ("event", "<i4"),
            ("sn", "<i4", (n_adcs,)),
            ("utime_ms", "<u8", (n_adcs,)),
            ("tai_ns", "<u8", (n_adcs,)),
            ("wvfm_valid", "u1", (n_adcs, n_channels)),
            ("trig_type", "u1"),
        ]
    )


def wvfm_dtype(
    n_samples: int, n_adcs: int = C.LIGHT_N_ADCS, n_channels: int = C.LIGHT_N_CHANNELS
) -> np.dtype:
    """``light/wvfm/data`` row: one field ``samples`` (spec: flow-hdf5.md)."""
    return np.dtype([("samples", "<i2", (n_adcs, n_channels, n_samples))])


REF_REGION_DTYPE = np.dtype([("start", "<i4"), ("stop", "<i4")])
CHARGE_EVENT_DTYPE = np.dtype(
    [
        ("id", "<u8"),
        ("nhit", "<u4"),
        ("ADC", "<f8"),
        ("ts_start", "<f8"),
        ("ts_end", "<f8"),
        ("n_ext_trigs", "<u4"),
        ("unix_ts", "<u8"),
        ("unix_ts_usec", "<u4"),
    ]
)
CHARGE_HIT_DTYPE = np.dtype(
    [
        ("id", "<u4"),
        ("x", "<f8"),
        ("y", "<f8"),
        ("z", "<f8"),
        ("t_drift", "<f8"),
        ("ts_pps", "<u8"),
        ("io_group", "<u8"),
        ("io_channel", "<u8"),
        ("chip_id", "<u8"),
        ("channel_id", "<u8"),
        ("Q_raw", "<f8"),
        ("Q", "<f8"),
        ("E", "<f8"),
        ("is_disabled", "?"),
    ]
)


def _filters(compression: str | None) -> dict[str, Any]:
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"compression={compression!r} (expected None, 'gzip' or 'lzf')")


def _table(
    f: h5py.File, name: str, dtype: np.dtype, filters: dict[str, Any], chunks: Any = True
) -> h5py.Dataset:
    return f.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=chunks, **filters
    )


def _append(dset: h5py.Dataset, rows: np.ndarray) -> None:
    n = dset.shape[0]
    dset.resize((n + rows.shape[0], *dset.shape[1:]))
    dset[n:] = rows


def _create_ref(
    f: h5py.File, parent: str, child: str, filters: dict[str, Any]
) -> tuple[h5py.Dataset, h5py.Dataset, h5py.Dataset]:
    """h5flow's bidirectional reference: ``parent/ref/child/ref`` (L, 2) u4 and a
    ``ref_region`` (start, stop) per row of each side."""
    path = f"{parent}/ref/{child}"
    child_path = f"{child}/ref/{parent}"
    ref = f.create_dataset(
        f"{path}/ref", shape=(0, 2), maxshape=(None, 2), dtype="u4", chunks=True, **filters
    )
    r0 = _table(f, f"{path}/ref_region", REF_REGION_DTYPE, filters)
    r1 = _table(f, f"{child_path}/ref_region", REF_REGION_DTYPE, filters)
    ref.attrs["dset0"] = f"/{parent}/data"
    ref.attrs["dset1"] = f"/{child}/data"
    ref.attrs["ref_region0"] = f"/{path}/ref_region"
    ref.attrs["ref_region1"] = f"/{child_path}/ref_region"
    r0.attrs["ref"] = f"/{path}/ref"
    r1.attrs["ref"] = f"/{path}/ref"
    return ref, r0, r1


def _regions(start: int, counts: np.ndarray) -> np.ndarray:
    out = np.empty(counts.shape[0], REF_REGION_DTYPE)
    stops = start + np.cumsum(counts)
    out["start"] = stops - counts
    out["stop"] = stops
    return out
