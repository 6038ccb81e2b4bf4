"""Publishing an S2 set or run: its files (``OUT/<run>/<set>/``, ``OUT/<run>/plots/``), its
metrics (with how the set changed, :mod:`wavedqm.analysis.s2_trend`), its quality tests
against the reference run (:mod:`wavedqm.processors.s2_quality`: the ``quality`` section of
``s2_results.json``, the reference drawn on the area histogram), its plots on the plotting
thread (:mod:`wavedqm.processors.s2_engine`)."""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Collection
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from wavedqm.analysis import s2_trend
from wavedqm.analysis.ratag import RunConstants
from wavedqm.analysis.ratag_run import FitSettings, RunResult, SetResult
from wavedqm.analysis.s2_set import SetState
from wavedqm.exporters import s2_files, s2_plots
from wavedqm.exporters.plotting import PlotQueue
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.formats.detect import WFM_SUFFIX
from wavedqm.kernels.s2 import S2Params
from wavedqm.logs import get_logger
from wavedqm.processors.s2_quality import NOT_TESTED, S2QualityStage

log = get_logger(__name__)

Published = tuple[dict[str, Path], list[Future[dict[str, Path]]]]
"""Files written (name -> path) and plots being drawn."""

FilesSignature = tuple[tuple[str, int, int, int], ...]
"""(name, size, mtime_ns, frames) of a set's first files: its first window is still valid
while they are unchanged."""


def wfm_names(set_dir: Path) -> list[str] | None:
    """Names of the ``.wfm`` files of a set folder (hidden and temporary names left out),
    from one ``scandir`` (no stat per file on most file systems); None when it cannot be
    listed."""
    try:
        with os.scandir(set_dir) as entries:
            return [
                e.name
                for e in entries
                if e.name.lower().endswith(WFM_SUFFIX)
                and not e.name.startswith(".")
                and e.is_file()
            ]
    except OSError:
        return None


def _signature(state: SetState, n_files: int) -> FilesSignature:
    return tuple((f.name, f.size, f.mtime_ns, f.n_frames) for f in state.files[:n_files])


class S2Publisher:
    """Writes what a set's or a run's result gives. ``plotter`` None: no PNGs."""

    def __init__(
        self,
        out_root: Path,
        metrics: S2Metrics | None,
        plotter: PlotQueue | None,
        params: S2Params,
        rerun_tolerance_us: float,
        validation_waveforms: int,
        quality: S2QualityStage | None = None,
    ) -> None:
        self.out_root = Path(out_root)
        self.metrics = metrics
        self.plotter = plotter
        self.params = params
        self.rerun_tolerance_us = rerun_tolerance_us
        self.validation_waveforms = validation_waveforms
        self.quality = quality
        """The tests of each set against the reference (None: none, "no_reference")."""
        self._first_windows: dict[tuple[str, str], tuple[FilesSignature, s2_trend.FirstWindow]]
        self._first_windows = {}
        """Per set, its first window and the files that gave it (recomputed when they
        change, or after a restart)."""

    def set_out_dir(self, run: str, set_name: str) -> Path:
        return self.out_root / run / set_name

    def plots_dir(self, run: str) -> Path:
        return self.out_root / run / s2_files.PLOTS_DIR

    def first_window(self, state: SetState, time_drift_us: float) -> tuple[float, float] | None:
        """The set's first integration window (µs;
        :func:`~wavedqm.analysis.s2_trend.first_window`), cached while the files that gave it
        are unchanged."""
        key = (state.run, state.name)
        cached = self._first_windows.get(key)
        if cached is not None and _signature(state, cached[1].n_files) == cached[0]:
            return cached[1].window_us
        first = s2_trend.first_window(state, time_drift_us)
        if first is None:
            self._first_windows.pop(key, None)
            return None
        self._first_windows[key] = (_signature(state, first.n_files), first)
        return first.window_us

    def publish_trend(
        self, state: SetState, result: SetResult, fits: FitSettings, refused: Collection[str]
    ) -> None:
        """The set's trend metrics: its mean against its earlier files, its window drift,
        its file times and the files of its folder not analysed yet (``refused``: names the
        S2 analysis failed)."""
        if self.metrics is None:
            return
        shift = s2_trend.mean_shift(state, state.pending_indices(), fits)
        first = None
        if result.window_us is not None:
            first = self.first_window(state, result.physics.time_drift)
        drift = s2_trend.window_drift(result.window_us, first)
        timing = s2_trend.file_timing(f.mtime_ns for f in state.files)
        names = wfm_names(state.set_dir)
        behind = None
        if names is not None:
            behind = s2_trend.files_behind(names, (f.name for f in state.files), refused)
        self.metrics.trend_updated(
            state.run,
            state.name,
            mean_shift_std_errors=shift.shift_std_errors,
            window_start_us=drift.start_us,
            window_end_us=drift.end_us,
            window_start_shift_us=drift.start_shift_us,
            window_end_shift_us=drift.end_shift_us,
            last_file_s=timing.last_file_s,
            file_interval_s=timing.median_interval_s,
            files_behind=behind,
        )

    def publish_set(
        self,
        state: SetState,
        result: SetResult,
        constants: RunConstants,
        fits: FitSettings,
        refused: Collection[str] = (),
    ) -> Published:
        """The four per-set files, the set's metrics (and the counts since the last
        publication, the trend since the previous one: :meth:`publish_trend`), its plots
        (histograms of ``fits.nbins`` bins). A set with at least ``fits.min_fit_events``
        frames and no fit is warned about in the log and counted."""
        nbins = fits.nbins
        out = self.set_out_dir(state.run, state.name)
        fr = state.frames
        p = self.params
        dt = state.files[0].dt_us if state.files else math.nan
        params = s2_files.s2_params_document(result, p, dt, self.rerun_tolerance_us, constants)
        tested = NOT_TESTED if self.quality is None else self.quality.evaluate(state, result)
        outputs = s2_files.write_s2_results(
            out, fr["area"], result.ion_fit, params, result.metadata, quality=tested.document()
        )
        events = s2_files.XrayEventLog(
            [Path(f.name).stem for f in state.files],
            [f.n_frames for f in state.files],
            fr["reason"],
            fr["xray_area"],
        )
        outputs |= s2_files.write_xray_results(
            out, state.name, s2_files.xray_params_document(result, p, dt), events
        )
        fit = result.ion_fit
        fit_failed = not fit.fit_success and result.n_frames >= fits.min_fit_events
        if fit_failed:
            log.warning(
                "s2_no_fit",
                run=state.run,
                set=state.name,
                frames=result.n_frames,
                why=fit.message,
                fit_range_mv_us=list(fit.bin_cuts),
            )
        if self.metrics is not None:
            self.metrics.set_updated(
                state.run,
                state.name,
                mean=fit.mean if fit.fit_success else None,
                sigma=fit.sigma if fit.fit_success else None,
                ci95=fit.ci95 if fit.fit_success else None,
                s1_time_us=result.s1.t_s1,
                duration_us=result.windows.duration.median,
                drift_time_us=result.physics.time_drift,
                xray_accepted_ratio=result.xray_accepted_ratio,
                new_rejections=dict(state.pending_rejections),
                new_frames=state.pending_frames,
                new_files=state.pending_files,
                fit_failed=fit_failed,
            )
            self.publish_trend(state, result, fits, refused)
        state.pending_frames = state.pending_files = 0
        state.pending_names = []
        state.pending_rejections = {}
        plots = []
        if self.plotter is not None:
            job = s2_plots.set_plot_job(
                result,
                fr["area"].copy(),
                self.picks(state),
                self.plots_dir(state.run),
                nbins,
                p.n_pedestal_timing,
                reference=tested.overlay,
            )
            plots.append(self.plotter.submit(job, key=f"set:{state.run}/{state.name}"))
        return outputs, plots

    def picks(self, state: SetState) -> list[s2_plots.Pick]:
        """Up to ``validation_waveforms`` frames of the set, chosen at random (seeded by the
        set name and its frame count: the same picks for the same data)."""
        n = state.frames.n
        k = min(self.validation_waveforms, n)
        if k <= 0:
            return []
        rng = np.random.default_rng([zlib.crc32(state.name.encode()), n])
        chosen = np.sort(rng.choice(n, size=k, replace=False))
        offsets = state.offsets()
        picks = []
        for g in chosen:
            i = int(np.searchsorted(offsets, g, side="right") - 1)
            entry = state.files[i]
            frame = int(g - offsets[i])
            label = f"{entry.name} — frame {frame}"
            picks.append(s2_plots.Pick(state.set_dir / entry.name, frame, label))
        return picks

    def publish_run(self, rr: RunResult, constants: RunConstants, nbins: int) -> Published:
        """The run's files, metrics and plots."""
        plots_dir = self.plots_dir(rr.run)
        outputs = s2_files.write_run_xray(plots_dir, rr.run, rr.xray_areas, rr.sets)
        outputs["calibration"] = s2_files.write_run_calibration(
            plots_dir, rr.run, s2_files.calibration_document(rr, constants)
        )
        if self.metrics is not None:
            self.metrics.run_updated(
                rr.run,
                None if rr.calibration is None else rr.calibration.g_s2,
                rr.recombination_by_set(),
            )
        plots = []
        if self.plotter is not None:
            job = s2_plots.run_plot_job(rr, plots_dir, nbins)
            plots.append(self.plotter.submit(job, key=f"run:{rr.run}"))
        return outputs, plots
