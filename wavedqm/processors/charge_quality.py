"""The charge processor's quality tests against the reference run: the voxel part of the
reference (``wavedqm reference create``'s builder, :func:`create_voxel_section`) and the stage
the processor calls after each file (:class:`VoxelQualityStage`: the part in use, re-read
when its file changes; the tests of the run's accumulated hits; their metrics).

A voxel part that cannot be used is logged once per version of its file
(``voxel_reference_unusable``) and counted (``wavedqm_voxels_quality_reference_errors_total``);
the files go on without voxel quality tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry

from wavedqm.analysis.voxel_quality import (
    KIND,
    OccupancyComparison,
    VoxelQualityResult,
    VoxelReference,
    build_voxel_reference,
    compare_occupancy,
    decode_voxel_reference,
    evaluate_voxels,
)
from wavedqm.analysis.voxels import AXES, Grid, active_mask
from wavedqm.config import Config
from wavedqm.errors import InputFileError
from wavedqm.exporters.charge_metrics import VoxelQualityMetrics
from wavedqm.exporters.reference_sections import save_section
from wavedqm.exporters.reference_store import ReferenceError
from wavedqm.logs import get_logger
from wavedqm.processors.reference_cache import SectionCache

if TYPE_CHECKING:
    from wavedqm.processors.reference_create import SectionMade

log = get_logger(__name__)

NO_REFERENCE = {"reference": None, "status": "no_reference"}
"""The ``quality`` section of a file tested against no reference."""


class VoxelQualityStage:
    """The voxel part of the reference in use and the voxel quality metrics (one per charge
    processor)."""

    def __init__(self, cfg: Config, state_dir: Path, registry: CollectorRegistry) -> None:
        self.cfg = cfg
        self.metrics = VoxelQualityMetrics(registry)
        self.cache: SectionCache[VoxelReference] = SectionCache(
            state_dir, cfg.quality.reference, KIND, decode_voxel_reference, self._unusable
        )
        self.unusable: tuple[str, str] | None = None
        """``(reference, why)`` while the part in use cannot be used."""

    def _unusable(self, name: str, message: str) -> None:
        self.metrics.reference_errors.inc()
        self.unusable = (name, message)
        log.error("voxel_reference_unusable", reference=name, error=message)

    def reference(self) -> VoxelReference | None:
        """The voxel part of the reference in use (None: none, or it cannot be used)."""
        value = self.cache.get()
        if value is not None or (self.unusable and self.unusable[0] != self.cache.name()):
            self.unusable = None
        return value

    def document(self, quality: VoxelQualityResult | None) -> dict[str, Any]:
        """The ``quality`` section of the file's ``charge`` summary: the tests, or
        ``status: "no_reference"`` (``"reference_unusable"`` with the reason when the part in
        use could not be read)."""
        if quality is not None:
            return quality.to_dict()
        if self.unusable is not None:
            name, why = self.unusable
            return {"reference": name, "status": "reference_unusable", "error": why}
        return dict(NO_REFERENCE)

    def evaluate(
        self, run: str, grid: Grid, active: np.ndarray, drift_axis: int, count: np.ndarray
    ) -> tuple[VoxelQualityResult | None, OccupancyComparison | None]:
        """The tests of the run's hits per voxel ``count`` (nx, ny, nz) and the reference's
        occupancy beside the run's (both None without a reference in use); the metrics set."""
        reference = self.reference()
        if reference is None:
            self.metrics.run_tested(run, None)
            return None, None
        quality = evaluate_voxels(
            run, grid, active, drift_axis, count, reference, self.cfg.quality.voxel_tests
        )
        self.metrics.run_tested(run, quality)
        if quality.reason:
            log.warning("voxel_quality_not_compared", run=run, reference=reference.name,
                        reason=quality.reason)  # fmt: skip
        return quality, compare_occupancy(count, grid, reference, quality)


def _has_light(path: Path) -> bool:
    from wavedqm.formats.flow import LIGHT_WVFM, open_flow

    try:
        with open_flow(path) as f:
            return LIGHT_WVFM in f
    except (InputFileError, OSError):
        return False


def create_voxel_section(
    cfg: Config, state_dir: Path, name: str, files: list[Path]
) -> SectionMade | None:
    """The voxel part of reference ``name``: the hits per voxel of the ``.FLOW.hdf5`` files
    among ``files`` with charge hits, summed (analysed as the charge processor does, no state
    touched). Files with light only are not this kind's (left out silently); a file with
    neither, a bad file, or one on another grid / active volume / drift axis than the first is
    skipped with its reason. None when no file has charge hits and none was skipped;
    ReferenceError when some were but none is usable."""
    from wavedqm.formats.detect import FLOW
    from wavedqm.processors.charge import accumulate_file
    from wavedqm.processors.charge_runs import run_of
    from wavedqm.processors.reference_create import SectionMade, files_of_format

    flow_files = files_of_format(files, FLOW)
    if not flow_files:
        return None
    first: tuple[Path, Grid, np.ndarray, int] | None = None
    count: np.ndarray | None = None
    sources: list[dict[str, Any]] = []
    skipped: list[tuple[Path, str]] = []
    for path in flow_files:
        try:
            got = accumulate_file(cfg, path)
        except (InputFileError, OSError) as err:
            skipped.append((path, str(err)))
            continue
        if got is None:
            if not _has_light(path):
                skipped.append((path, "no charge hits (and no light waveforms)"))
            continue
        info, grid, acc = got
        active = active_mask(grid, [(b.low, b.high) for b in info.active_boxes])
        drift = AXES.index(info.drift_axis)
        tally = acc.tally()
        why = _does_not_fit(first, grid, active, drift) or (
            "" if tally["in_grid"] else f"no hit in the voxel grid ({tally['hits']} hits)"
        )
        if why:
            skipped.append((path, why))
            continue
        if first is None:
            first = (path, grid, active, drift)
            count = np.zeros(grid.shape, np.int64)
        assert count is not None
        count += acc.count.reshape(grid.shape)
        sources.append({
            "file": str(path.resolve()),
            "run": run_of(path.absolute(), cfg.charge.run_pattern),
            "events": info.n_events,
            "hits": tally["hits"],
            "hits_in_grid": tally["in_grid"],
        })  # fmt: skip
        log.info("reference_file_added", reference=name, kind=KIND, file=str(path),
                 hits_in_grid=tally["in_grid"])  # fmt: skip
    if first is None or count is None:
        if not skipped:
            return None
        why = "; ".join(f"{p}: {text}" for p, text in skipped)
        raise ReferenceError(
            f"reference {name!r}: none of the {len(skipped)} .FLOW.hdf5 files without usable "
            f"charge hits could be used ({why}); expected .FLOW.hdf5 files with "
            "charge/calib_prompt_hits in the voxel grid"
        )
    _, grid, active, drift = first
    reference = build_voxel_reference(name, time.time(), sources, grid, active, drift, count)
    meta, arrays = reference.encode()
    path = save_section(state_dir, name, KIND, meta, arrays)
    return SectionMade(KIND, path, len(sources), reference.n_hits, "hits", skipped)


def _does_not_fit(
    first: tuple[Path, Grid, np.ndarray, int] | None, grid: Grid, active: np.ndarray, drift: int
) -> str:
    """Why a file cannot be pooled with the reference's first file ("" when it can)."""
    if first is None:
        return ""
    path, grid0, active0, drift0 = first
    differs = grid.difference(grid0)
    if differs is not None:
        return f"voxel grid differs from {path.name}'s: {differs}"
    if not np.array_equal(active, active0):
        return (f"active volume differs from {path.name}'s: {int(active.sum())} vs "
                f"{int(active0.sum())} active voxels")  # fmt: skip
    if drift != drift0:
        return f"drift axis differs from {path.name}'s: {AXES[drift]} vs {AXES[drift0]}"
    return ""
