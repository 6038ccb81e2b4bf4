"""The layout of the history store (:mod:`wavedqm.exporters.history_store`): dataset names,
shapes and chunking of a record's row, and reading rows back — records, and the rollup of rows
in bounded blocks of :data:`BLOCK_ROWS` (the rollup rules themselves are in
:mod:`wavedqm.analysis.history`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.fractions import GRANULARITIES, Fraction
from wavedqm.analysis.history import QUANTITIES, Counts, FileRecord, Rollup, SpreadSum
from wavedqm.analysis.light import FLAGS, SELECTIONS
from wavedqm.analysis.stats import Spread

SPREAD_PARTS = ("median", "err_low", "err_high")
SPECTRA = "spectra/roi_power_v2"
SPECTRA_PRESENT = "spectra/present"
BLOCK_ROWS = 256
"""Rows read at a time by a rollup: ≤ 256 × 4 KB per 8×64 dataset in memory."""
ONE_ROW_CHUNK_BYTES = 1024
"""Rows at least this large get one compressed chunk each; smaller rows share chunks."""
SMALL_CHUNK_BYTES = 16 * 1024
NAME_BYTES = 255
"""Longest file name stored (bytes of UTF-8; Linux NAME_MAX)."""
STR_DTYPE = h5py.string_dtype("utf-8", NAME_BYTES)
"""Fixed-length, not variable-length: overwriting a partial row left by a killed append must
not touch HDF5's global heap (whose unflushed state would make the overwrite fail)."""


# --- layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreLayout:
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
            "file": ((), STR_DTYPE),
            "processed_at": ((), np.float64),
            "time_start_s": ((), np.float64),
            "time_end_s": ((), np.float64),
            "n_events": ((), np.int64),
        }
        for t in C.TRIGGERS:
            specs[f"events/{t}"] = ((), np.int64)
        for q in QUANTITIES:
            for sel in SELECTIONS:
                for part in SPREAD_PARTS:
                    specs[f"{q}/{sel}/{part}"] = (self.grid_shape, np.float64)
        for flag in FLAGS:
            for sel in SELECTIONS:
                for g in GRANULARITIES:
                    for c in ("k", "n"):
                        specs[f"counts/{flag}/{sel}/{g}/{c}"] = (self.row_shape(g), np.int64)
        return specs


def record_layout(rec: FileRecord) -> StoreLayout:
    """The layout of a record, checking that its arrays agree with each other."""
    grid = rec.grid_shape
    epcb = np.shape(rec.counts["clipped"]["all"]["epcb"].k)
    tpc = np.shape(rec.counts["clipped"]["all"]["tpc"].k)
    if len(epcb) != 1 or len(tpc) != 1:
        raise ValueError(f"record {rec.file}: epcb counts {epcb}, tpc counts {tpc} (expected 1-d)")
    layout = StoreLayout(grid_shape=grid, n_epcb=int(epcb[0]), n_tpc=int(tpc[0]))
    for path, (shape, _) in layout.specs().items():
        value = record_value(rec, path)
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


def record_value(rec: FileRecord, path: str) -> Any:
    """The value a record stores in one dataset (None times as NaN)."""
    parts = path.split("/")
    head = parts[0]
    if head == "file":
        name = rec.file.encode()
        if len(name) > NAME_BYTES:
            raise ValueError(f"record {rec.file[:40]}...: name over {NAME_BYTES} bytes")
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


def row_chunks(row_shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Chunk shape and filter options for a dataset of rows of ``row_shape``."""
    row_bytes = math.prod(row_shape) * np.dtype(dtype).itemsize
    if row_bytes >= ONE_ROW_CHUNK_BYTES:
        return (1, *row_shape), {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    rows = max(1, SMALL_CHUNK_BYTES // max(row_bytes, 1))
    return (rows, *row_shape), {}


# --- reading ------------------------------------------------------------------------------


def read_records(h5: h5py.File, layout: StoreLayout, start: int, stop: int) -> list[FileRecord]:
    cols = {p: h5[p][start:stop] for p in layout.specs()}
    names = h5["file"].asstr()[start:stop]
    spectra = present = None
    if SPECTRA in h5:
        spectra = h5[SPECTRA][start:stop]
        present = h5[SPECTRA_PRESENT][start:stop]
    centres = h5.attrs.get("roi_centres_mhz")
    out = []
    for i in range(stop - start):
        spec_i = spectra[i] if spectra is not None and present is not None and present[i] else None
        out.append(
            FileRecord(
                file=str(names[i]),
                processed_at=float(cols["processed_at"][i]),
                time_start_s=optional_time(cols["time_start_s"][i]),
                time_end_s=optional_time(cols["time_end_s"][i]),
                n_events=int(cols["n_events"][i]),
                events_by_trigger={t: int(cols[f"events/{t}"][i]) for t in C.TRIGGERS},
                baseline=spreads_at(cols, "baseline", i),
                noise=spreads_at(cols, "noise", i),
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


def read_rollup(h5: h5py.File, layout: StoreLayout, start: int, stop: int, cl: float) -> Rollup:
    t_start = h5["time_start_s"][start:stop]
    t_end = h5["time_end_s"][start:stop]
    spreads: dict[str, dict[str, Spread]] = {}
    for q in QUANTITIES:
        spreads[q] = {
            sel: mean_spread(
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
                    sum_rows(h5[f"counts/{flag}/{sel}/{g}/k"], start, stop),
                    sum_rows(h5[f"counts/{flag}/{sel}/{g}/n"], start, stop),
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
    if SPECTRA in h5:
        present = h5[SPECTRA_PRESENT][start:stop].astype(bool)
        n_spec = int(np.count_nonzero(present))
        if n_spec:
            spectra = mean_rows(h5[SPECTRA], start, stop, present)
            c = h5.attrs.get("roi_centres_mhz")
            centres = np.array(c, np.float64) if c is not None and np.size(c) else None
    return Rollup(
        n_files=stop - start,
        files=[str(s) for s in h5["file"].asstr()[start:stop]],
        time_start_s=optional_time(np.nanmin(t_start)) if np.isfinite(t_start).any() else None,
        time_end_s=optional_time(np.nanmax(t_end)) if np.isfinite(t_end).any() else None,
        n_events=int(h5["n_events"][start:stop].sum()),
        events_by_trigger={t: int(h5[f"events/{t}"][start:stop].sum()) for t in C.TRIGGERS},
        baseline=spreads["baseline"],
        noise=spreads["noise"],
        fractions=fractions,
        spectra_roi=spectra,
        roi_centres_mhz=centres,
        n_files_with_spectra=n_spec,
    )


# -- lifetime --------------------------------------------------------------------------


# --- reductions ---------------------------------------------------------------------------


def optional_time(v: Any) -> float | None:
    f = float(v)
    return None if math.isnan(f) else f


def spreads_at(cols: dict[str, np.ndarray], q: str, i: int) -> dict[str, Spread]:
    return {
        sel: Spread(*(np.array(cols[f"{q}/{sel}/{p}"][i]) for p in SPREAD_PARTS))
        for sel in SELECTIONS
    }


def row_blocks(start: int, stop: int) -> Iterator[tuple[int, int]]:
    for b0 in range(start, stop, BLOCK_ROWS):
        yield b0, min(stop, b0 + BLOCK_ROWS)


def sum_rows(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Sum of rows ``start:stop`` (int64 counts), read in blocks."""
    total = np.zeros(ds.shape[1:], np.int64)
    for b0, b1 in row_blocks(start, stop):
        total += ds[b0:b1].sum(axis=0, dtype=np.int64)
    return total


def mean_rows(ds: h5py.Dataset, start: int, stop: int, use: np.ndarray) -> np.ndarray:
    """NaN-aware mean of the rows ``start:stop`` selected by ``use`` (bool per row)."""
    total = np.zeros(ds.shape[1:], np.float64)
    count = np.zeros(ds.shape[1:], np.int64)
    for b0, b1 in row_blocks(start, stop):
        block = ds[b0:b1][use[b0 - start : b1 - start]]
        finite = np.isfinite(block)
        total += np.where(finite, block, 0.0).sum(axis=0)
        count += finite.sum(axis=0)
    out = np.full(total.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def mean_spread(
    med: h5py.Dataset, lo: h5py.Dataset, hi: h5py.Dataset, start: int, stop: int
) -> Spread:
    acc = SpreadSum(tuple(med.shape[1:]))
    for b0, b1 in row_blocks(start, stop):
        acc.add(med[b0:b1], lo[b0:b1], hi[b0:b1])
    return acc.result()
