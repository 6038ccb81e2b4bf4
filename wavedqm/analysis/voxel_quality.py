"""Quality tests of a charge run's voxel occupancy against a reference run (pure, no I/O).

The reference (:class:`VoxelReference`) is the occupancy of the voxel grid accumulated over
good files: hits per voxel, the grid, the active volume and the drift axis, with where it came
from. After each file the run's accumulated hits are tested (:func:`evaluate_voxels`); the item
is the run. Each configured test (``[quality.voxel_tests.<name>]``: quantity, kind, ``warning``
and ``error`` intervals, ``min_events`` = in-grid hits the run and the reference need) gives a
value and a status (ok inside ``warning``, warning inside ``error``, error outside, not enough
data when too few hits or the value is undefined). Quantities and kinds:

- ``dead_region``: the fraction of the active volume in windows without a hit
  (:func:`~wavedqm.analysis.voxel_windows.dead_mask`, windows sized for the smaller of the
  run's and the reference's hits); ``range``: the run's; ``difference``: the run's minus the
  reference's on the same windows (a new dead region);
- ``occupancy``: hits per block of one window, run against reference, by
  :func:`~wavedqm.analysis.quality_stats.chi2_homogeneity`; ``chi2``: p-value, ``chi2_ndf``:
  χ²/ndf. Hits come in tracks, so the counts are over-dispersed (χ²/ndf ≈ 30 for a clean
  simulated run on 26 cm blocks): thresholds must be set from good runs of the detector;
- ``drift_profile``: hits of the active volume per slab along the drift axis; ``ks_distance``:
  the largest difference of the two cumulative profiles; ``ks``: its p-value with the hits as
  events (tracks make it too small); ``chi2`` / ``chi2_ndf`` on the slabs;
- ``occupied_fraction`` (active voxels hit at least once) and ``mean_hits_per_occupied``
  (hits per voxel hit): ``range``: the run's, ``ratio``: over the reference's. Both grow with
  the hits (a short run leaves most voxels of a fine grid empty): compare runs of similar size.

A run on another grid, active volume or drift axis than the reference's is not tested: every
test says not enough data, with the reason naming what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.quality_stats import chi2_homogeneity, grade, ks_pvalue
from wavedqm.analysis.ratag_fields import json_bounds, json_num
from wavedqm.analysis.voxel_windows import (
    block_counts,
    bounding_box_cm,
    dead_mask,
    drift_profile,
    window_voxels,
)
from wavedqm.analysis.voxels import AXES, PROJECTIONS, Grid

if TYPE_CHECKING:
    from wavedqm.config_sections import QualityTestConfig

INF = float("inf")
KIND = "voxels"
"""The reference part's kind (``STATE/references/voxels/<name>.npz``)."""
DEAD_MASKS_KEPT = 4
"""Windows whose reference dead mask is kept (one bool per voxel each)."""
MIN_HITS = 5000
"""Default ``min_events`` of the voxel tests: in-grid hits of the run (and the reference)."""

DEFAULT_TESTS: dict[str, dict[str, object]] = {
    "dead_region": {"quantity": "dead_region", "kind": "difference",
                    "warning": (-INF, 0.02), "error": (-INF, 0.05), "min_events": MIN_HITS},
    "drift_profile": {"quantity": "drift_profile", "kind": "ks_distance",
                      "warning": (0.0, 0.15), "error": (0.0, 0.3), "min_events": MIN_HITS},
}  # fmt: skip
"""The tests when none is configured. ``dead_region``: a new dead region of more than 2 % of the
active volume warns, more than 5 % is an error (a clean simulated run gives 0, one with a
dead box of 10 % of the volume 0.11, of 3 % 0.03); a region that came back (negative) is ok.
``drift_profile``: the KS distance of the drift profile, for gross changes along the drift (a
t0 or drift-field problem, a module lost): losing the hits of a quarter of the detector gives
0.17 (one module of four) to 0.25 (the far quarter of the drift), of half of it 0.5; a clean
run of ~50 000 hits gives 0.03, one with a 10 % dead box 0.05 to 0.1 (left to the dead-region
test). The occupancy χ² and the occupied-fraction tests are not defaults: their good values
depend on the detector's track topology and on the run's length (module doc)."""
KINDS_BY_QUANTITY: dict[str, tuple[str, ...]] = {
    "dead_region": ("range", "difference"),
    "occupancy": ("chi2", "chi2_ndf"),
    "drift_profile": ("ks_distance", "ks", "chi2", "chi2_ndf"),
    "occupied_fraction": ("range", "ratio"),
    "mean_hits_per_occupied": ("range", "ratio"),
}
"""Quantity -> the test kinds that apply to it (module doc)."""


def _occupancy_numbers(count: np.ndarray, active: np.ndarray) -> tuple[float, float]:
    """``(occupied fraction of the active voxels, mean hits per voxel hit)`` (NaN when
    undefined), as :func:`wavedqm.analysis.voxels.diagnose` gives them."""
    n_active = int(active.sum())
    occupied = int(np.count_nonzero((count > 0) & active))
    hit = count[count > 0]
    return (
        occupied / n_active if n_active else float("nan"),
        float(hit.mean()) if hit.size else float("nan"),
    )


@dataclass(eq=False)
class VoxelReference:
    """The voxel part of a reference (module doc)."""

    name: str
    created_at: float
    """Unix time it was made (s)."""
    sources: list[dict[str, Any]]
    """One entry per file: ``file``, ``run``, ``events``, ``hits``, ``hits_in_grid``."""
    grid: Grid
    active: np.ndarray
    """bool (nx, ny, nz): the active volume."""
    drift_axis: int
    count: np.ndarray
    """int64 (nx, ny, nz): hits per voxel over every file."""
    _dead: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_hits(self) -> int:
        return int(self.count.sum())

    @property
    def occupied_ratio(self) -> float:
        return _occupancy_numbers(self.count, self.active)[0]

    @property
    def hits_mean(self) -> float:
        return _occupancy_numbers(self.count, self.active)[1]

    @property
    def dead_region_ratio(self) -> float:
        """Active voxels never hit / active voxels (voxel scale, as the run diagnostics)."""
        return 1.0 - self.occupied_ratio

    def dead(self, window: tuple[int, int, int]) -> np.ndarray:
        """The reference's dead mask on ``window`` (the last :data:`DEAD_MASKS_KEPT` cached:
        the window of a run shrinks as it grows)."""
        if window not in self._dead:
            while len(self._dead) >= DEAD_MASKS_KEPT:
                self._dead.pop(next(iter(self._dead)))
            self._dead[window] = dead_mask(self.count, self.active, window)
        return self._dead[window]

    def summary(self) -> dict[str, Any]:
        """What ``wavedqm reference show`` prints."""
        return {
            "files": len(self.sources),
            "hits_in_grid": self.n_hits,
            "grid_shape": list(self.grid.shape),
            "voxel_size_cm": list(self.grid.voxel_size_cm),
            "active_voxels": int(self.active.sum()),
            "drift_axis": AXES[self.drift_axis],
            "occupied_ratio": json_num(self.occupied_ratio),
            "dead_region_ratio": json_num(self.dead_region_ratio),
            "mean_hits_per_occupied": json_num(self.hits_mean),
        }

    def encode(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)`` for :func:`~wavedqm.exporters.reference_sections.save_section`:
        the hit voxels sparse (flat C-order ``index`` and ``count``), the active mask dense."""
        flat = self.count.ravel()
        index = np.flatnonzero(flat).astype(np.int64)
        meta = {
            "created_at": self.created_at,
            "sources": self.sources,
            "grid": self.grid.to_dict(),
            "drift_axis": AXES[self.drift_axis],
            "summary": self.summary(),
        }
        arrays = {
            "origin_cm": np.asarray(self.grid.origin_cm, np.float64),
            "voxel_size_cm": np.asarray(self.grid.voxel_size_cm, np.float64),
            "shape": np.asarray(self.grid.shape, np.int64),
            "active": np.asarray(self.active, bool),
            "index": index,
            "count": flat[index].astype(np.int64),
        }
        return meta, arrays


def decode_voxel_reference(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> VoxelReference:
    """The reference back from its section; ValueError (or KeyError) when it does not fit."""
    shape = tuple(int(n) for n in np.asarray(arrays["shape"]).ravel())
    origin = tuple(float(v) for v in np.asarray(arrays["origin_cm"]).ravel())
    size = tuple(float(v) for v in np.asarray(arrays["voxel_size_cm"]).ravel())
    if len(shape) != 3 or len(origin) != 3 or len(size) != 3 or min(shape) < 1 or min(size) <= 0:
        raise ValueError(f"voxel reference grid: shape {shape}, origin {origin}, size {size} "
                         "(expected three positive sizes and counts)")  # fmt: skip
    active = np.asarray(arrays["active"])
    if active.shape != shape or active.dtype != bool:
        raise ValueError(f"voxel reference active mask {active.dtype}{active.shape} "
                         f"(expected bool{shape})")  # fmt: skip
    index = np.asarray(arrays["index"])
    values = np.asarray(arrays["count"])
    n = int(np.prod(shape))
    if (
        index.ndim != 1
        or values.shape != index.shape
        or index.dtype.kind not in "iu"
        or values.dtype.kind not in "iu"
        or (index.size and not 0 <= int(index.min()) <= int(index.max()) < n)
        or (values.size and int(values.min()) < 0)
    ):
        raise ValueError(f"voxel reference counts: index {index.dtype}{index.shape}, count "
                         f"{values.dtype}{values.shape} (expected int voxel indices < {n} "
                         "and non-negative counts of one length)")  # fmt: skip
    count = np.zeros(n, np.int64)
    count[index.astype(np.int64)] = values
    axis = str(meta.get("drift_axis", "x"))
    if axis not in AXES:
        raise ValueError(f"voxel reference drift axis {axis!r} (expected x, y or z)")
    return VoxelReference(
        name=str(meta.get("name", "")),
        created_at=float(meta.get("created_at", 0.0)),
        sources=list(meta.get("sources", [])),
        grid=Grid(origin, size, shape),  # type: ignore[arg-type]
        active=active,
        drift_axis=AXES.index(axis),
        count=count.reshape(shape),
    )


@dataclass(frozen=True)
class VoxelTestOutcome:
    """One test of the run."""

    name: str
    quantity: str
    kind: str
    warning: tuple[float, float]
    error: tuple[float, float]
    value: float
    """In the kind's units (fraction, ratio, p-value, D, χ²/ndf); NaN: not enough data."""
    status: int
    reason: str = ""
    """Why not enough data ("" otherwise)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "kind": self.kind,
            "value": json_num(self.value),
            "warning": json_bounds(self.warning),
            "error": json_bounds(self.error),
            "status": C.QUALITY_STATUS_NAMES[self.status],
            **({"reason": self.reason} if self.reason else {}),
        }


@dataclass(frozen=True, eq=False)
class VoxelQualityResult:
    """Every test of one run's accumulated hits against one reference."""

    reference: str
    reference_files: int
    reference_hits: int
    run: str
    hits: int
    """In-grid hits of the run."""
    tests: list[VoxelTestOutcome]
    reason: str = ""
    """Why the run could not be compared at all (another grid...); "" when it was."""
    window_voxels: tuple[int, int, int] | None = None
    dead_region_ratio: float = float("nan")
    reference_dead_region_ratio: float = float("nan")
    """Both on the windows (fraction of the active volume)."""
    new_dead_box_cm: list[list[float]] | None = None
    """The box around the voxels dead in the run but not in the reference (cm)."""
    new_dead: np.ndarray | None = None
    """bool (nx, ny, nz): those voxels (None when not compared)."""

    @property
    def status(self) -> int:
        """The run's worst status (not enough data only when every test said so)."""
        return max((t.status for t in self.tests), default=C.QUALITY_NOT_ENOUGH)

    def failed(self) -> list[VoxelTestOutcome]:
        """The tests with a warning or an error, errors first."""
        bad = [t for t in self.tests if t.status >= C.QUALITY_WARNING]
        return sorted(bad, key=lambda t: (-t.status, t.name))

    def to_dict(self) -> dict[str, Any]:
        """The ``quality`` section of the file's ``charge`` summary."""
        w = self.window_voxels
        return {
            "reference": self.reference,
            "reference_files": self.reference_files,
            "reference_hits": self.reference_hits,
            "run": self.run,
            "hits": self.hits,
            "status": C.QUALITY_STATUS_NAMES[self.status],
            **({"reason": self.reason} if self.reason else {}),
            "window_voxels": None if w is None else list(w),
            "dead_region_ratio": json_num(self.dead_region_ratio),
            "reference_dead_region_ratio": json_num(self.reference_dead_region_ratio),
            "new_dead_box_cm": self.new_dead_box_cm,
            "tests": {t.name: t.to_dict() for t in self.tests},
            "failed": [t.name for t in self.failed()],
        }


def mismatch(ref: VoxelReference, grid: Grid, active: np.ndarray, drift_axis: int) -> str:
    """Why the run cannot be compared with ``ref`` ("" when it can)."""
    differs = grid.difference(ref.grid)
    if differs is not None:
        return f"the run's voxel grid differs from reference {ref.name!r}'s: {differs}"
    if not np.array_equal(np.asarray(active, bool), ref.active):
        return (f"the run's active volume differs from reference {ref.name!r}'s: "
                f"{int(np.sum(active))} vs {int(ref.active.sum())} active voxels")  # fmt: skip
    if drift_axis != ref.drift_axis:
        return (f"the run's drift axis differs from reference {ref.name!r}'s: "
                f"{AXES[drift_axis]} vs {AXES[ref.drift_axis]}")  # fmt: skip
    return ""


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """max |A − B| of the two normalised cumulative histograms (NaN if either is empty)."""
    na, nb = float(a.sum()), float(b.sum())
    if na <= 0 or nb <= 0:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(a) / na - np.cumsum(b) / nb)))


@dataclass(frozen=True, eq=False)
class _Numbers:
    """What the tests of one run read (computed once per run and file)."""

    count: np.ndarray
    ref: VoxelReference
    window: tuple[int, int, int] | None
    dead: np.ndarray | None

    def value(self, quantity: str, kind: str) -> float:
        ref, active = self.ref, self.ref.active
        if quantity == "dead_region":
            if self.dead is None or self.window is None:
                return float("nan")
            n_active = max(1, int(active.sum()))
            run = float(self.dead.sum()) / n_active
            reference = float(ref.dead(self.window).sum()) / n_active
            return run if kind == "range" else run - reference
        if quantity in ("occupied_fraction", "mean_hits_per_occupied"):
            i = 0 if quantity == "occupied_fraction" else 1
            run = _occupancy_numbers(self.count, active)[i]
            reference = _occupancy_numbers(ref.count, active)[i]
            with np.errstate(invalid="ignore", divide="ignore"):
                return run if kind == "range" else float(np.float64(run) / reference)
        if quantity == "occupancy":
            if self.window is None:
                return float("nan")
            a = block_counts(self.count, active, self.window)
            b = block_counts(ref.count, active, self.window)
            return self._chi2(a, b, kind)
        a = drift_profile(self.count, active, ref.drift_axis)
        b = drift_profile(ref.count, active, ref.drift_axis)
        if kind in ("chi2", "chi2_ndf"):
            return self._chi2(a, b, kind)
        d = _ks_distance(a, b)
        if kind == "ks_distance":
            return d
        return float(ks_pvalue(np.asarray(d), np.asarray(a.sum()), np.asarray(b.sum())))

    @staticmethod
    def _chi2(a: np.ndarray, b: np.ndarray, kind: str) -> float:
        chi2, ndf, p = chi2_homogeneity(a, b)
        return float(p) if kind == "chi2" else float(chi2 / ndf)


def evaluate_voxels(
    run: str,
    grid: Grid,
    active: np.ndarray,
    drift_axis: int,
    count: np.ndarray,
    reference: VoxelReference,
    tests: dict[str, QualityTestConfig],
) -> VoxelQualityResult:
    """Every test of ``tests`` on the run's hits per voxel ``count`` (nx, ny, nz) against
    ``reference`` (module doc). Never raises for a run that does not fit the reference: the
    tests then say not enough data, with the reason."""
    count = np.asarray(count, np.int64)
    n_hits = int(count.sum())
    common = {
        "reference": reference.name,
        "reference_files": len(reference.sources),
        "reference_hits": reference.n_hits,
        "run": run,
        "hits": n_hits,
    }
    reason = mismatch(reference, grid, active, drift_axis)
    if reason:
        outcomes = [_outcome(name, t, float("nan"), reason) for name, t in tests.items()]
        return VoxelQualityResult(**common, tests=outcomes, reason=reason)  # type: ignore[arg-type]
    n_active = int(reference.active.sum())
    window = window_voxels(min(n_hits, reference.n_hits), n_active, grid.shape)
    dead = None if window is None else dead_mask(count, reference.active, window)
    numbers = _Numbers(count, reference, window, dead)
    outcomes = []
    for name, test in tests.items():
        few = min(n_hits, reference.n_hits) < test.min_events
        if few:
            why = (f"{n_hits} hits in the run, {reference.n_hits} in the reference "
                   f"(the test needs {test.min_events})")  # fmt: skip
            outcomes.append(_outcome(name, test, float("nan"), why))
            continue
        value = numbers.value(test.quantity, test.kind)
        why = "" if np.isfinite(value) else "the value is undefined (too few hits per window)"
        outcomes.append(_outcome(name, test, value, why))
    if window is None or dead is None:
        return VoxelQualityResult(**common, tests=outcomes)  # type: ignore[arg-type]
    ref_dead = reference.dead(window)
    new_dead = dead & ~ref_dead
    return VoxelQualityResult(
        **common,  # type: ignore[arg-type]
        tests=outcomes,
        window_voxels=window,
        dead_region_ratio=float(dead.sum()) / max(1, n_active),
        reference_dead_region_ratio=float(ref_dead.sum()) / max(1, n_active),
        new_dead_box_cm=bounding_box_cm(new_dead, grid.origin_cm, grid.voxel_size_cm),
        new_dead=new_dead,
    )


def _outcome(name: str, test: QualityTestConfig, value: float, reason: str) -> VoxelTestOutcome:
    status = int(grade(np.asarray(value), test.warning, test.error))
    return VoxelTestOutcome(name, test.quantity, test.kind, test.warning, test.error, value,
                            status, reason if status == C.QUALITY_NOT_ENOUGH else "")  # fmt: skip


@dataclass(frozen=True, eq=False)
class OccupancyComparison:
    """The reference's occupancy beside a run's, for the occupancy page (hits per projected
    column; the reference scaled to the run's in-grid hits)."""

    reference: str
    scale: float
    """Run hits / reference hits."""
    expected: dict[str, np.ndarray]
    """Projection name -> the reference's projection × ``scale``."""
    difference: dict[str, np.ndarray]
    """Projection name -> run − expected."""
    new_dead: dict[str, np.ndarray]
    """Projection name -> bool: columns holding a voxel dead in the run but not in the
    reference (empty when the run was not compared)."""


def compare_occupancy(
    count: np.ndarray, grid: Grid, reference: VoxelReference, quality: VoxelQualityResult
) -> OccupancyComparison | None:
    """The comparison drawn beside the run's occupancy; None when the grids differ or the
    reference has no hit."""
    count = np.asarray(count, np.int64)
    if grid.difference(reference.grid) is not None or reference.n_hits == 0:
        return None
    scale = float(count.sum()) / reference.n_hits
    expected = {n: reference.count.sum(axis=a) * scale for n, a in PROJECTIONS.items()}
    difference = {n: count.sum(axis=a) - expected[n] for n, a in PROJECTIONS.items()}
    dead = quality.new_dead
    new_dead = {} if dead is None else {n: dead.any(axis=a) for n, a in PROJECTIONS.items()}
    return OccupancyComparison(reference.name, scale, expected, difference, new_dead)


def build_voxel_reference(
    name: str,
    created_at: float,
    sources: list[dict[str, Any]],
    grid: Grid,
    active: np.ndarray,
    drift_axis: int,
    count: np.ndarray,
) -> VoxelReference:
    """The reference from the summed hits per voxel of its files."""
    return VoxelReference(name, created_at, list(sources), grid, np.asarray(active, bool),
                          int(drift_axis), np.asarray(count, np.int64))  # fmt: skip
