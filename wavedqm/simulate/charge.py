"""Simulated charge hits for simulated ``.FLOW.hdf5`` files: straight tracks through the
detector (one to three per event, hits every ~0.5 cm along them, charge Landau-like around
~20 ke⁻), with a dead region (a box where no hit is ever recorded), a fraction of hits outside
the detector bounds (as the real 2x2 file has: drift coordinates reconstructed with the wrong
t0), a few disabled hits and the geometry the voxel grid is made from
(``geometry_info/det_bounds/data`` and the ``module_RO_bounds`` attribute)."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

DETECTOR_CM = ((-63.9, 63.9), (-62.0, 62.0), (-64.5, 64.5))
"""Bounds of the simulated detector (cm), four modules split at x = 0 and z = 0."""
DEAD_BOX_CM = ((20.0, 40.0), (-20.0, 0.0), (10.0, 30.0))
"""Default dead region: no hit inside (cm)."""
HIT_STEP_CM = 0.5
OUTSIDE_FRACTION = 0.05
"""Hits displaced beyond the detector along the drift axis (x)."""
DISABLED_FRACTION = 0.01
CATHODE_GAP_CM = 3.0
"""Half-width of the gap between the modules at x = 0 and z = 0 (no hits, no active volume)."""


@dataclass(frozen=True, eq=False)
class Hits:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    q: np.ndarray
    disabled: np.ndarray
    per_event: np.ndarray


def module_boxes() -> np.ndarray:
    """(4, 2, 3): the four modules' active boxes (cm)."""
    (x0, x1), (y0, y1), (z0, z1) = DETECTOR_CM
    g = CATHODE_GAP_CM
    boxes = []
    for xa, xb in ((g, x1), (x0, -g)):
        for za, zb in ((g, z1), (z0, -g)):
            boxes.append([[xa, y0, za], [xb, y1, zb]])
    return np.asarray(boxes, np.float32)


def _inside(x: np.ndarray, y: np.ndarray, z: np.ndarray, box) -> np.ndarray:
    (a0, a1), (b0, b1), (c0, c1) = box
    return (x >= a0) & (x <= a1) & (y >= b0) & (y <= b1) & (z >= c0) & (z <= c1)


def track_hits(
    rng: np.random.Generator,
    n_events: int,
    dead_box: tuple[tuple[float, float], ...] | None = DEAD_BOX_CM,
) -> Hits:
    """Hits of ``n_events`` events of straight tracks (module doc)."""
    lo = np.array([b[0] for b in DETECTOR_CM])
    hi = np.array([b[1] for b in DETECTOR_CM])
    xs, ys, zs, per_event = [], [], [], np.zeros(n_events, np.int64)
    for e in range(n_events):
        for _ in range(int(rng.integers(1, 4))):
            a, b = rng.uniform(lo, hi), rng.uniform(lo, hi)
            n = max(2, int(np.linalg.norm(b - a) / HIT_STEP_CM))
            t = np.linspace(0.0, 1.0, n)[:, None]
            p = a + t * (b - a) + rng.normal(0, 0.1, (n, 3))
            keep = (np.abs(p[:, 0]) > CATHODE_GAP_CM) & (np.abs(p[:, 2]) > CATHODE_GAP_CM)
            if dead_box is not None:
                keep &= ~_inside(p[:, 0], p[:, 1], p[:, 2], dead_box)
            p = p[keep]
            xs.append(p[:, 0])
            ys.append(p[:, 1])
            zs.append(p[:, 2])
            per_event[e] += p.shape[0]
    x, y, z = (np.concatenate(v) if v else np.zeros(0) for v in (xs, ys, zs))
    total = x.shape[0]
    out = rng.random(total) < OUTSIDE_FRACTION
    x[out] += np.sign(x[out] + 1e-9) * rng.uniform(80.0, 300.0, int(out.sum()))
    q = 8.0 + rng.gamma(2.0, 6.0, total)
    disabled = rng.random(total) < DISABLED_FRACTION
    return Hits(x, y, z, q, disabled, per_event)


def write_geometry(f: h5py.File) -> None:
    """``geometry_info/det_bounds/data`` (the module boxes as filled rows, after an unfilled
    first row as in ndlar_flow) and ``geometry_info`` attributes ``module_RO_bounds`` and
    ``drift_direction``."""
    boxes = module_boxes()
    dtype = np.dtype([("data", "<f4", (2, 3)), ("filled", "?")])
    rows = np.zeros(len(boxes) + 1, dtype)
    rows["data"][1:] = boxes
    rows["filled"][1:] = True
    geo = f.require_group("geometry_info")
    geo.create_dataset("det_bounds/data", data=rows)
    geo.attrs["module_RO_bounds"] = boxes
    geo.attrs["drift_direction"] = "x"
