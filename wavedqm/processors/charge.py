"""The charge processor: the charge hits of ``.FLOW.hdf5`` files (the same files the light
processor reads) accumulated into a 3D voxel grid per run.

Per file: the hits are streamed in bounded chunks (:mod:`wavedqm.formats.charge`) through the
voxel kernel (:mod:`wavedqm.kernels.voxels`: count, ΣQ, Welford M2 per voxel; hits counted by
cause), the file's accumulator is added to its run's (:mod:`wavedqm.processors.charge_runs`;
persisted in the state folder, a reprocessed file replaces its own contribution), and the
run's diagnostics (:mod:`wavedqm.analysis.voxels`) and, with a reference in use, the run's
quality tests against the reference's voxel part (:mod:`wavedqm.processors.charge_quality`)
are written: ``OUT/voxels/<run>/voxels.h5`` and ``voxel_summary.txt`` at once, the two PNGs on
the plotting thread (with latest copies under ``OUT/images/``; the occupancy with the
reference's beside it), two pages of the per-file PDF report, the ``charge`` section of the
file's ``summary.json`` (with its ``quality``) and the charge metrics. The grid is the
configuration's (``[charge] origin_cm``, ``shape``, ``voxel_size_cm``) or the union of the
file's ``det_bounds`` cut in ``voxel_size_cm`` voxels.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import numba

from wavedqm.analysis.voxel_quality import OccupancyComparison
from wavedqm.analysis.voxels import (
    AXES,
    Grid,
    VoxelDiagnostics,
    active_mask,
    diagnose,
    grid_from_box,
)
from wavedqm.atomic import atomic_write_bytes
from wavedqm.config import Config
from wavedqm.constants import IMAGES_DIR, VOXELS_DIR
from wavedqm.errors import InputFileError
from wavedqm.exporters.charge_metrics import ChargeMetrics
from wavedqm.exporters.masks import figure_png
from wavedqm.exporters.voxel_files import (
    SUMMARY_FILE,
    VOXELS_FILE,
    VoxelArrays,
    write_summary_text,
    write_voxels,
)
from wavedqm.exporters.voxel_plots import CHARGE_PNG, OCCUPANCY_PNG, charge_figure, occupancy_figure
from wavedqm.exporters.voxel_store import StoredVoxels, VoxelStore, run_key
from wavedqm.formats.charge import ChargeInfo, charge_info, hit_chunks, hits_table
from wavedqm.formats.detect import FLOW
from wavedqm.formats.flow import data_error, open_flow
from wavedqm.formats.h5checks import H5_ERRORS, check_allocation
from wavedqm.kernels.voxels import VoxelAccumulator
from wavedqm.kernels.voxels import warm_up as warm_up_voxels
from wavedqm.logs import get_logger
from wavedqm.processors.base import (
    NOT_PREPARED,
    BaseProcessor,
    Outcome,
    ProcessorContext,
    unwrap,
)
from wavedqm.processors.charge_quality import VoxelQualityStage
from wavedqm.processors.charge_runs import (
    ChargeRuns,
    RunState,
    accumulator,
    new_accumulator,
    run_of,
    stored,
)

log = get_logger(__name__)

CHARGE_SUBJECT = "Charge hits: voxel occupancy, mean charge, drift profile, dead regions"
NO_GRID = (
    "no voxel grid: the file has no geometry_info/det_bounds and the config no "
    "[charge] origin_cm/shape"
)


def _tallies(acc: VoxelAccumulator) -> dict[str, int]:
    return acc.tally()


def _user_tallies(t: dict[str, int]) -> dict[str, int]:
    """The kernel's tallies under the names of voxels.h5 (``hits_<cause>``)."""
    return {
        "hits_in_grid": t["in_grid"],
        "hits_outside_grid": t["outside_grid"],
        "hits_disabled": t["disabled"],
        "hits_invalid_position": t["invalid_position"],
        "hits_invalid_charge": t["invalid_charge"],
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


VOXEL_BYTES = 32
"""Bytes of one voxel's accumulator (count, sum hi/lo, m2 as float64), per copy: one per
fill thread plus the run's and the output's."""


def file_grid(cfg: Config, info: ChargeInfo, path: Path) -> Grid:
    """The voxel grid of a file: the configuration's, or its ``det_bounds`` cut in voxels."""
    c = cfg.charge
    if c.origin_cm:
        return Grid(tuple(c.origin_cm), tuple(c.voxel_size_cm), tuple(c.shape))  # type: ignore[arg-type]
    if info.det_bounds is None:
        raise InputFileError(path, "wrong_layout", NO_GRID, "geometry_info/det_bounds/data")
    low, high = info.det_bounds.low, info.det_bounds.high
    try:
        grid = grid_from_box(low, high, c.voxel_size_cm)
    except (ValueError, OverflowError) as err:
        raise InputFileError(
            path, "wrong_layout",
            f"geometry_info/det_bounds {list(low)} .. {list(high)} cm gives no grid ({err})",
            "finite detector bounds in cm",
        ) from err  # fmt: skip
    n_voxels = math.prod(grid.shape)
    check_allocation(
        path,
        f"a voxel grid of {' x '.join(map(str, grid.shape))} voxels from its det_bounds",
        n_voxels * VOXEL_BYTES * (numba.get_num_threads() + 2),
        cfg.reader.max_allocation_bytes,
    )
    return grid


def accumulate_file(cfg: Config, path: Path) -> tuple[ChargeInfo, Grid, VoxelAccumulator] | None:
    """The file's hits in a fresh accumulator; None when it has no charge hits (used by the
    processor and by ``wavedqm reference create``: touches no state)."""
    with open_flow(path) as f:
        try:
            info = charge_info(f, path)
        except H5_ERRORS as err:
            raise data_error(path, err, "reading the charge readout's layout") from err
        if info is None:
            return None
        grid = file_grid(cfg, info, path)
        acc = new_accumulator(grid)
        hits = hits_table(f, path)
        assert hits is not None
        for chunk in hit_chunks(hits, path, cfg.reader.chunk_bytes):
            acc.fill(chunk.x, chunk.y, chunk.z, chunk.q, chunk.disabled)
    acc.release_workspace()
    return info, grid, acc


class ChargeProcessor(BaseProcessor):
    name = "charge"
    formats = (FLOW,)
    served = (f"{IMAGES_DIR}/{OCCUPANCY_PNG}", f"{IMAGES_DIR}/{CHARGE_PNG}")
    report_subject = CHARGE_SUBJECT

    def __init__(self, context: ProcessorContext) -> None:
        super().__init__(context)
        self.metrics = ChargeMetrics(context.registry)
        self.runs = ChargeRuns(VoxelStore(context.state_dir))
        self.quality = VoxelQualityStage(context.cfg, context.state_dir, context.registry)

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the voxel fill and merge kernels."""
        warm_up_voxels()

    def grid(self, info: ChargeInfo, path: Path) -> Grid:
        return file_grid(self.cfg, info, path)

    def accumulate(self, path: Path) -> tuple[ChargeInfo, Grid, VoxelAccumulator] | None:
        """The file's hits in a fresh accumulator; None when it has no charge hits."""
        return accumulate_file(self.cfg, path)

    def prepare(self, path: Path) -> tuple[ChargeInfo, Grid, StoredVoxels] | None:
        """The file's accumulator, sparse (on a ``wavedqm reprocess`` worker: only occupied
        voxels travel); None without charge hits. Touches no state."""
        got = self.accumulate(Path(path))
        if got is None:
            return None
        info, grid, acc = got
        return info, grid, stored(acc, grid, [Path(path).name])

    def process(
        self, path: Path, completed_at: float | None = None, prepared: Any = NOT_PREPARED
    ) -> Outcome:
        path = Path(path)
        started = time.perf_counter()
        if prepared is NOT_PREPARED:
            got = self.accumulate(path)
        else:
            ready = unwrap(prepared)
            got = None if ready is None else (ready[0], ready[1], accumulator(ready[2]))
        if got is None:
            return Outcome(self.name, path, summary="no charge data", nothing=True)
        info, grid, acc = got
        run = run_of(path.absolute(), self.cfg.charge.run_pattern)
        state = self.runs.add(run, grid, path.name, acc)
        active = active_mask(grid, [(b.low, b.high) for b in info.active_boxes])
        drift = AXES.index(info.drift_axis)
        diag = diagnose(
            state.acc.count.reshape(grid.shape),
            state.acc.sums.reshape(grid.shape),
            active,
            drift,
            self.cfg.charge.low_hits_threshold,
        )
        arrays = VoxelArrays(
            run,
            grid,
            state.acc.count.reshape(grid.shape),
            state.acc.sums.reshape(grid.shape),
            state.acc.m2.reshape(grid.shape).copy(),
            list(state.files),
            _user_tallies(_tallies(state.acc)),
        )
        quality, comparison = self.quality.evaluate(run, grid, active, drift, arrays.count)
        quality_doc = self.quality.document(quality)
        run_dir = self.context.out_root / VOXELS_DIR / run_key(run)
        outputs = {
            "voxels": write_voxels(run_dir / VOXELS_FILE, arrays),
            "voxel_summary": write_summary_text(run_dir / SUMMARY_FILE, arrays, diag, quality_doc),
        }
        tallies = _tallies(acc)
        self.metrics.file_done(tallies)
        self.metrics.run_updated(
            run, diag.occupied_ratio, diag.dead_region_ratio, diag.hits_mean, len(state.files)
        )
        seconds = time.perf_counter() - started
        section = self._section(info, grid, run, acc, tallies, diag, seconds)
        section["quality"] = quality_doc
        document = {"charge": section}
        plots = []
        pages = []
        n_files = len(state.files)
        if self.cfg.charge.plots:
            plots.append(
                self.context.plots.submit(
                    partial(
                        draw_voxels,
                        self.context.out_root,
                        run,
                        grid,
                        n_files,
                        diag,
                        run_dir,
                        comparison,
                    ),
                    key=f"voxels:{run}",
                )
            )
            if self.cfg.output.reports:
                n = len(state.files)
                pages = [
                    (
                        f"Voxel occupancy, run {run}",
                        partial(occupancy_figure, run, grid, n, diag, comparison),
                    ),
                    (f"Voxel charge, run {run}", partial(charge_figure, run, grid, n, diag)),
                ]
        log.info(
            "charge_done", file=str(path), run=run, hits=tallies["hits"],
            in_grid=tallies["in_grid"], outside_grid=tallies["outside_grid"],
            seconds=round(seconds, 3),
        )  # fmt: skip
        return Outcome(
            self.name,
            path,
            events=info.n_events or 0,
            summary=self._line(run, tallies, diag),
            outputs=outputs,
            document=document,
            plots=plots,
            pages=pages,
            seconds=seconds,
            detail=(info, grid, acc, state, diag, quality),
        )

    @staticmethod
    def _line(run: str, t: dict[str, int], d: VoxelDiagnostics) -> str:
        dead = "n/a" if math.isnan(d.dead_region_ratio) else f"{100 * d.dead_region_ratio:.1f} %"
        return (
            f"{t['hits']} hits, {t['in_grid']} in the grid, {t['outside_grid']} outside, "
            f"{t['disabled']} disabled, {t['invalid_position'] + t['invalid_charge']} invalid; "
            f"run {run}: never hit {dead} of the active volume"
        )

    @staticmethod
    def _section(
        info: ChargeInfo, grid: Grid, run: str, acc: VoxelAccumulator,
        t: dict[str, int], d: VoxelDiagnostics, seconds: float,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "events": info.n_events,
            "hits": t["hits"],
            "hits_in_grid": t["in_grid"],
            "hits_outside_grid": t["outside_grid"],
            "hits_disabled": t["disabled"],
            "hits_invalid": t["invalid_position"] + t["invalid_charge"],
            "hits_invalid_position": t["invalid_position"],
            "hits_invalid_charge": t["invalid_charge"],
            "sum_q_ke": acc.sum_q,
            "sum_q_in_grid_ke": acc.sum_q_in_grid,
            "grid": grid.to_dict(),
            "run": run,
            "run_occupied_ratio": _finite(d.occupied_ratio),
            "run_dead_region_ratio": _finite(d.dead_region_ratio),
            "processing_seconds": round(seconds, 4),
        }


def draw_voxels(
    out_root: Path,
    run: str,
    grid: Grid,
    n_files: int,
    d: VoxelDiagnostics,
    run_dir: Path,
    comparison: OccupancyComparison | None = None,
) -> dict[str, Path]:
    """The run's occupancy (beside the reference's when one is in use) and charge PNGs, and
    their latest copies under ``OUT/images/`` (a drawing job: a module function, so that it
    can run in another process)."""
    latest = out_root / IMAGES_DIR
    written = {}
    figures = (
        (OCCUPANCY_PNG, partial(occupancy_figure, comparison=comparison)),
        (CHARGE_PNG, charge_figure),
    )
    for name, builder in figures:
        data = figure_png(builder(run, grid, n_files, d))
        written[name] = atomic_write_bytes(run_dir / name, data)
        atomic_write_bytes(latest / name, data)
    return written


__all__ = ["ChargeProcessor", "RunState"]
