"""Occupancy of a voxel grid at the scale its statistics resolve (pure functions on arrays, no
I/O): the window size, the dead region seen through windows, the block counts and the drift
profile that :mod:`wavedqm.analysis.voxel_quality` compares with a reference.

Charge hits come in tracks (a track crossing a 2 cm voxel leaves several hits, a 30 cm window
tens of them), so a run of a few files leaves most voxels of a fine grid empty by chance: the
voxels never hit say nothing about dead regions until there are enough hits per voxel. The
tests therefore look at the grid through *windows* of ``w = (wx, wy, wz)`` voxels, the smallest
cube (cut to the grid) in which the run is expected to leave at least :data:`WINDOW_HITS` hits
when the hits are spread evenly over the active volume (:func:`window_voxels`). A *dead region*
at that scale (:func:`dead_mask`) is the union of the windows, mostly in the active volume,
that hold no hit (a morphological opening of the empty voxels: a dead box at least one window
wide is recovered whole, chance holes smaller than a window are not). Block counts
(:func:`block_counts`) cut the grid in non-overlapping windows.
"""

from __future__ import annotations

import math

import numpy as np

WINDOW_HITS = 500
"""Hits the run is expected to leave in one window of the active volume (hits spread evenly):
with tens of hits per track crossing a window, ≳ 10 crossings, so that an empty window in a
live region is improbable (≲ e⁻¹⁰)."""
WINDOW_ACTIVE_FRACTION = 0.5
"""A window counts (for the dead region and the block counts) when at least this fraction of
its voxels is in the active volume."""


def window_voxels(n_hits: int, n_active: int, shape: tuple[int, int, int]
                  ) -> tuple[int, int, int] | None:  # fmt: skip
    """The smallest window ``(min(b, nx), min(b, ny), min(b, nz))`` in which ``n_hits`` spread
    evenly over ``n_active`` voxels leave at least :data:`WINDOW_HITS` hits; None when even the
    whole grid would not (too few hits)."""
    if n_hits <= 0 or n_active <= 0:
        return None
    for b in range(1, max(shape) + 1):
        w = tuple(min(b, n) for n in shape)
        if n_hits * math.prod(w) / n_active >= WINDOW_HITS:
            return w  # type: ignore[return-value]
    return None


def box_sums(a: np.ndarray, w: tuple[int, int, int]) -> np.ndarray:
    """Sums of ``a`` (3-D) over every ``w`` box inside it: shape ``a.shape - w + 1`` (int64
    or float64 as ``a``), by a summed-volume table."""
    a = np.asarray(a)
    dtype = np.float64 if a.dtype.kind == "f" else np.int64
    s = np.zeros(tuple(n + 1 for n in a.shape), dtype)
    s[1:, 1:, 1:] = a.astype(dtype).cumsum(0).cumsum(1).cumsum(2)
    wx, wy, wz = w
    nx, ny, nz = (n - k + 1 for n, k in zip(a.shape, w, strict=True))
    x0, x1 = slice(0, nx), slice(wx, wx + nx)
    y0, y1 = slice(0, ny), slice(wy, wy + ny)
    z0, z1 = slice(0, nz), slice(wz, wz + nz)
    return (
        s[x1, y1, z1] - s[x0, y1, z1] - s[x1, y0, z1] - s[x1, y1, z0]
        + s[x0, y0, z1] + s[x0, y1, z0] + s[x1, y0, z0] - s[x0, y0, z0]
    )  # fmt: skip


def _counted_windows(active: np.ndarray, w: tuple[int, int, int]) -> np.ndarray:
    """bool: the window positions mostly in the active volume."""
    return box_sums(active, w) >= WINDOW_ACTIVE_FRACTION * math.prod(w)


def dead_mask(count: np.ndarray, active: np.ndarray, w: tuple[int, int, int]) -> np.ndarray:
    """bool (grid shape): active voxels inside some counted window of ``w`` voxels that holds
    no hit (module doc)."""
    empty = (box_sums(count, w) == 0) & _counted_windows(active, w)
    padded = np.pad(empty.astype(np.int64), [(k - 1, k - 1) for k in w])
    return (box_sums(padded, w) > 0) & np.asarray(active, bool)


def block_counts(count: np.ndarray, active: np.ndarray, w: tuple[int, int, int]) -> np.ndarray:
    """Hits per block (the grid cut in non-overlapping ``w`` blocks from its origin; the last
    block of an axis may be shorter), flat, for the blocks mostly in the active volume."""
    count = np.asarray(count, np.int64)
    edges = [np.arange(0, n, k) for n, k in zip(count.shape, w, strict=True)]
    sums = np.add.reduceat(np.add.reduceat(np.add.reduceat(count, edges[0], 0), edges[1], 1),
                           edges[2], 2)  # fmt: skip
    act = np.asarray(active, np.int64)
    n_act = np.add.reduceat(np.add.reduceat(np.add.reduceat(act, edges[0], 0), edges[1], 1),
                            edges[2], 2)  # fmt: skip
    size = np.ones_like(act)
    n_all = np.add.reduceat(np.add.reduceat(np.add.reduceat(size, edges[0], 0), edges[1], 1),
                            edges[2], 2)  # fmt: skip
    return sums[n_act >= WINDOW_ACTIVE_FRACTION * n_all].ravel()


def drift_profile(count: np.ndarray, active: np.ndarray, drift_axis: int) -> np.ndarray:
    """Hits of the active volume per slab along ``drift_axis`` (int64)."""
    masked = np.where(np.asarray(active, bool), np.asarray(count, np.int64), 0)
    return masked.sum(axis=tuple(a for a in range(3) if a != drift_axis))


def bounding_box_cm(mask: np.ndarray, origin_cm: tuple[float, float, float],
                    voxel_size_cm: tuple[float, float, float]
                    ) -> list[list[float]] | None:  # fmt: skip
    """``[[x0, y0, z0], [x1, y1, z1]]`` (cm): the box around the voxels of ``mask``, None when
    it is empty."""
    if not np.any(mask):
        return None
    idx = np.nonzero(mask)
    low = [o + s * int(i.min()) for o, s, i in zip(origin_cm, voxel_size_cm, idx, strict=True)]
    high = [
        o + s * (int(i.max()) + 1) for o, s, i in zip(origin_cm, voxel_size_cm, idx, strict=True)
    ]
    return [low, high]
