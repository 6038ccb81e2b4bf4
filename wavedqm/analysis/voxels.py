"""The voxel grid of the charge hits and the diagnostics of a run's accumulated voxels (after
DiffusePipe's Phase 3 visual checks, seed 004; spec: shots-and-voxels.md). Pure functions on
arrays: no I/O.

- :class:`Grid`: a regular 3D grid (origin, voxel size, shape; cm), from the configuration or
  from the file's ``det_bounds`` (:func:`grid_from_box`);
- :func:`active_mask`: the voxels whose centre lies in the detector's active volume (the
  modules' read-out boxes when the file gives them, else the whole grid);
- :func:`diagnose`: occupancy projections XY / XZ / YZ, mean-charge projection, profile along
  the drift coordinate, hits per occupied voxel (min / max / mean / median), the fraction of
  active voxels with fewer than N hits, and the fraction of active voxels never hit (dead
  regions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z")
PROJECTIONS = {"xy": 2, "xz": 1, "yz": 0}
"""Projection name -> the axis summed over."""


@dataclass(frozen=True)
class Grid:
    """A regular grid: voxel (i, j, k) spans ``origin + (i, j, k) * voxel_size`` to one voxel
    further (cm); ``shape`` (nx, ny, nz)."""

    origin_cm: tuple[float, float, float]
    voxel_size_cm: tuple[float, float, float]
    shape: tuple[int, int, int]

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def high_cm(self) -> tuple[float, float, float]:
        return tuple(  # type: ignore[return-value]
            o + s * n
            for o, s, n in zip(self.origin_cm, self.voxel_size_cm, self.shape, strict=True)
        )

    def centres(self, axis: int) -> np.ndarray:
        """Voxel centres along ``axis`` (cm)."""
        o, s, n = self.origin_cm[axis], self.voxel_size_cm[axis], self.shape[axis]
        return o + (np.arange(n) + 0.5) * s

    def edges(self, axis: int) -> np.ndarray:
        o, s, n = self.origin_cm[axis], self.voxel_size_cm[axis], self.shape[axis]
        return o + np.arange(n + 1) * s

    def difference(self, other: Grid) -> str | None:
        """What differs from ``other`` (for an error message), None when the same grid."""
        for name in ("origin_cm", "voxel_size_cm", "shape"):
            a, b = getattr(self, name), getattr(other, name)
            if not np.allclose(a, b, rtol=0, atol=1e-9):
                return f"{name} {list(a)} vs {list(b)}"
        return None

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {
            "origin_cm": list(self.origin_cm),
            "voxel_size_cm": list(self.voxel_size_cm),
            "shape": list(self.shape),
        }


def grid_from_box(
    low_cm: Sequence[float], high_cm: Sequence[float], voxel_size_cm: Sequence[float]
) -> Grid:
    """The grid from ``low`` covering at least up to ``high`` with voxels of ``voxel_size``
    (a flat box, e.g. a plane of pixels, still gets one voxel across)."""
    size = tuple(float(s) for s in voxel_size_cm)
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"voxel size {list(size)} cm: expected three positive sizes")
    low = tuple(float(v) for v in low_cm)
    shape = tuple(
        max(1, math.ceil((float(h) - lo) / s - 1e-9))
        for lo, h, s in zip(low, high_cm, size, strict=True)
    )
    return Grid(low, size, shape)  # type: ignore[arg-type]


def active_mask(grid: Grid, boxes: Sequence[tuple[Sequence[float], Sequence[float]]]) -> np.ndarray:
    """bool (nx, ny, nz): voxel centre inside any ``(low, high)`` box (cm); every voxel
    when there is no box."""
    if not boxes:
        return np.ones(grid.shape, bool)
    cx, cy, cz = (grid.centres(a) for a in range(3))
    mask = np.zeros(grid.shape, bool)
    for low, high in boxes:
        ix = (cx >= low[0]) & (cx <= high[0])
        iy = (cy >= low[1]) & (cy <= high[1])
        iz = (cz >= low[2]) & (cz <= high[2])
        mask |= ix[:, None, None] & iy[None, :, None] & iz[None, None, :]
    return mask


@dataclass(frozen=True, eq=False)
class VoxelDiagnostics:
    """Diagnostics of accumulated voxels (counts are hits; charges ke⁻)."""

    n_voxels: int
    n_active: int
    n_occupied: int
    """Active voxels with at least one hit."""
    occupied_ratio: float
    dead_region_ratio: float
    """Active voxels never hit / active voxels (NaN without active voxels)."""
    hits_min: float
    hits_max: float
    hits_mean: float
    hits_median: float
    """Hits per occupied voxel (NaN when none is occupied)."""
    low_hits_threshold: int
    low_hits_ratio: float
    """Active voxels with fewer than ``low_hits_threshold`` hits / active voxels."""
    projections: dict[str, np.ndarray]
    """"xy", "xz", "yz": hits summed over the third axis (2-D, first axis first)."""
    mean_q_xy: np.ndarray
    """Mean charge per hit of each (x, y) column (ke⁻, NaN where empty)."""
    drift_axis: int
    drift_profile: np.ndarray
    """Hits per slab along the drift axis."""
    hits_per_voxel: np.ndarray
    """Hits of every occupied voxel (for the histogram)."""


def diagnose(
    count: np.ndarray,
    sums: np.ndarray,
    active: np.ndarray,
    drift_axis: int = 0,
    low_hits_threshold: int = 1,
) -> VoxelDiagnostics:
    """Diagnostics of ``count`` and ``sums`` (nx, ny, nz), ``active`` the active voxels."""
    count = np.asarray(count)
    active = np.asarray(active, bool)
    n_active = int(active.sum())
    occupied = (count > 0) & active
    n_occ = int(occupied.sum())
    per_voxel = count[count > 0].astype(np.float64)
    nan = math.nan
    stats = (
        (
            float(per_voxel.min()),
            float(per_voxel.max()),
            float(per_voxel.mean()),
            float(np.median(per_voxel)),
        )
        if per_voxel.size
        else (nan, nan, nan, nan)
    )
    q_xy = np.asarray(sums).sum(axis=2)
    n_xy = count.sum(axis=2)
    mean_q = np.full(q_xy.shape, np.nan)
    np.divide(q_xy, n_xy, out=mean_q, where=n_xy > 0)
    other = tuple(a for a in range(3) if a != drift_axis)
    return VoxelDiagnostics(
        n_voxels=int(count.size),
        n_active=n_active,
        n_occupied=n_occ,
        occupied_ratio=n_occ / n_active if n_active else nan,
        dead_region_ratio=(n_active - n_occ) / n_active if n_active else nan,
        hits_min=stats[0],
        hits_max=stats[1],
        hits_mean=stats[2],
        hits_median=stats[3],
        low_hits_threshold=int(low_hits_threshold),
        low_hits_ratio=(
            int(((count < low_hits_threshold) & active).sum()) / n_active if n_active else nan
        ),
        projections={name: count.sum(axis=axis) for name, axis in PROJECTIONS.items()},
        mean_q_xy=mean_q,
        drift_axis=int(drift_axis),
        drift_profile=count.sum(axis=other),
        hits_per_voxel=per_voxel,
    )


def merge_voxel_arrays(
    a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge two voxel grids given as ``(count, sum, m2)`` (same shape; ke⁻, ke⁻²): counts
    added (exact), sums added with one rounding, M2 by Chan's formula
    ``m2_a + m2_b + δ² n_a n_b / n`` (δ = mean_b − mean_a)."""
    na, sa, m2a = (np.asarray(x) for x in a)
    nb, sb, m2b = (np.asarray(x) for x in b)
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where((na > 0) & (nb > 0), sb / np.maximum(nb, 1) - sa / np.maximum(na, 1), 0.0)
        m2 = m2a + m2b + np.where(n > 0, delta * delta * na * (nb / np.maximum(n, 1)), 0.0)
    return n, sa + sb, m2


def voxel_means(count: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Mean charge per hit of each voxel (ke⁻), NaN where empty."""
    mean = np.full(np.shape(sums), np.nan)
    np.divide(sums, count, out=mean, where=np.asarray(count) > 0)
    return mean
