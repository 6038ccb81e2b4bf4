"""The files users read of a run's voxels (``OUT/voxels/<run>/``), written atomically:

- ``voxels.h5``: datasets ``count`` (u8), ``sum`` (f8, ke⁻), ``mean`` (f8, ke⁻, NaN where
  empty), ``m2`` (f8, Σ(Q − mean)², ke⁻²) of shape (nx, ny, nz); attributes ``origin_cm``,
  ``voxel_size_cm``, ``axes = "x,y,z"``, ``files`` (the files it holds), ``run``,
  ``hits_outside_grid``, ``hits_disabled``, ``hits_invalid_position``,
  ``hits_invalid_charge``, ``hits_in_grid``;
- ``voxel_summary.txt``: the diagnostics in words (as seed 004's Phase 3 summary), and the
  run's quality tests against the reference when one is in use.

:func:`read_voxels` reads a ``voxels.h5`` back (for ``wavedqm voxels merge``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wavedqm.analysis.voxels import AXES, Grid, VoxelDiagnostics, voxel_means
from wavedqm.atomic import atomic_write_text, atomic_write_with
from wavedqm.errors import InputFileError

VOXELS_FILE = "voxels.h5"
SUMMARY_FILE = "voxel_summary.txt"
TALLY_ATTRS = (
    "hits_in_grid",
    "hits_outside_grid",
    "hits_disabled",
    "hits_invalid_position",
    "hits_invalid_charge",
)
EXPECTED_VOXELS = (
    "a wavedqm voxels.h5 (datasets count, sum, m2; attributes origin_cm, voxel_size_cm)"
)


@dataclass(eq=False)
class VoxelArrays:
    """A run's voxels as users see them (dense (nx, ny, nz) arrays)."""

    run: str
    grid: Grid
    count: np.ndarray
    sum: np.ndarray
    m2: np.ndarray
    files: list[str]
    tallies: dict[str, int]
    """:data:`TALLY_ATTRS` -> hits."""


def write_voxels(path: Path, v: VoxelArrays) -> Path:
    """``voxels.h5`` (module doc), atomically."""

    def write(fh: Any) -> None:
        with h5py.File(fh, "w") as h5:
            h5.create_dataset("count", data=np.asarray(v.count, np.uint64), compression="gzip")
            h5.create_dataset("sum", data=np.asarray(v.sum, np.float64), compression="gzip")
            h5.create_dataset("mean", data=voxel_means(v.count, v.sum), compression="gzip")
            h5.create_dataset("m2", data=np.asarray(v.m2, np.float64), compression="gzip")
            h5.attrs["origin_cm"] = np.asarray(v.grid.origin_cm, np.float64)
            h5.attrs["voxel_size_cm"] = np.asarray(v.grid.voxel_size_cm, np.float64)
            h5.attrs["axes"] = ",".join(AXES)
            h5.attrs["run"] = v.run
            h5.attrs["files"] = np.asarray(v.files, dtype=h5py.string_dtype())
            for key in TALLY_ATTRS:
                h5.attrs[key] = int(v.tallies.get(key, 0))

    return atomic_write_with(path, write)


def read_voxels(path: Path) -> VoxelArrays:
    """A ``voxels.h5`` back; InputFileError (``wrong_layout``) when it is not one."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            count = np.asarray(h5["count"][()], np.uint64)
            sums = np.asarray(h5["sum"][()], np.float64)
            m2 = np.asarray(h5["m2"][()], np.float64)
            origin = tuple(float(x) for x in h5.attrs["origin_cm"])
            size = tuple(float(x) for x in h5.attrs["voxel_size_cm"])
            files = [
                f.decode() if isinstance(f, bytes) else str(f) for f in h5.attrs.get("files", [])
            ]
            run = str(h5.attrs.get("run", path.parent.name))
            tallies = {k: int(h5.attrs.get(k, 0)) for k in TALLY_ATTRS}
    except KeyError as err:
        raise InputFileError(path, "wrong_layout", f"no {err}", EXPECTED_VOXELS) from None
    except OSError as err:
        raise InputFileError(path, "read_error", f"cannot read: {err}", EXPECTED_VOXELS) from None
    if count.ndim != 3 or sums.shape != count.shape or m2.shape != count.shape:
        raise InputFileError(
            path,
            "wrong_layout",
            f"count/sum/m2 of shapes {count.shape}, {sums.shape}, {m2.shape}",
            EXPECTED_VOXELS,
        )
    grid = Grid(origin, size, tuple(int(n) for n in count.shape))  # type: ignore[arg-type]
    return VoxelArrays(run, grid, count, sums, m2, files, tallies)


def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def _quality_lines(quality: dict[str, Any] | None) -> list[str]:
    """The ``quality`` section of the file's charge summary in words (none without tests)."""
    if not quality or "tests" not in quality:
        return []
    lines = ["", f"Quality against reference {quality['reference']}: {quality['status']}"]
    if quality.get("reason"):
        lines.append(f"  not compared: {quality['reason']}")
    for name, t in quality["tests"].items():
        value = "n/a" if t["value"] is None else f"{t['value']:.4g}"
        lines.append(f"  {name} ({t['quantity']} {t['kind']}): {value}, {t['status']}")
    if quality.get("new_dead_box_cm"):
        low, high = ([round(x, 1) for x in corner] for corner in quality["new_dead_box_cm"])
        lines.append(f"  new dead region within {low} .. {high} cm")
    return lines


def summary_text(v: VoxelArrays, d: VoxelDiagnostics, quality: dict[str, Any] | None = None
                 ) -> str:  # fmt: skip
    """``voxel_summary.txt``: grid, hits by cause, hits per voxel, occupancy, dead regions,
    and the ``quality`` section (of the file's charge summary) when the run was tested."""
    g = v.grid
    t = v.tallies
    pct = lambda x: _fmt(100 * x, 3)  # noqa: E731
    lines = [
        f"Voxel summary of run {v.run} ({len(v.files)} file(s))",
        "",
        f"Grid: origin {list(g.origin_cm)} cm, voxel size {list(g.voxel_size_cm)} cm, "
        f"shape {list(g.shape)} ({g.n_voxels} voxels; {d.n_active} in the active volume)",
        "Hits: " + "; ".join(f"{key[5:].replace('_', ' ')} {t.get(key, 0)}" for key in TALLY_ATTRS),
        "",
        "Hits per occupied voxel:",
        f"  min {_fmt(d.hits_min)}, max {_fmt(d.hits_max)}, "
        f"mean {_fmt(d.hits_mean)}, median {_fmt(d.hits_median)}",
        f"  active voxels with fewer than {d.low_hits_threshold} hits: {pct(d.low_hits_ratio)} %",
        "",
        f"Occupied active voxels: {d.n_occupied} of {d.n_active} ({pct(d.occupied_ratio)} %)",
        f"Never hit (dead regions): {pct(d.dead_region_ratio)} % of the active volume",
        *_quality_lines(quality),
        "",
        "Files:",
        *(f"  {name}" for name in v.files),
    ]
    return "\n".join(lines) + "\n"


def write_summary_text(
    path: Path, v: VoxelArrays, d: VoxelDiagnostics, quality: dict[str, Any] | None = None
) -> Path:
    return atomic_write_text(path, summary_text(v, d, quality))
