"""Online S2 analysis of RaTag runs: one ``.wfm`` file at a time, per set and per run.

Layout: ``RUN/FieldScan_GateNNNN_AnodeNNNN/file.wfm`` — a file's parent folder is its set
(:func:`wavedqm.analysis.ratag.is_set_name`), the set's parent its run. Voltages come from the
set name, or from ``[sets.<name>]`` of the run config (``RUN/run.toml``,
:mod:`wavedqm.formats.run_config`); the run constants (pressure, temperature, gaps, W, X-ray
energy) from the run config over the engine's :class:`~wavedqm.analysis.ratag.RunConstants`.

Per file (:meth:`S2Engine.process_file`):

1. the file is memory-mapped (:func:`~wavedqm.formats.wfm.open_wfm`) and **pass 1**
   (:func:`~wavedqm.kernels.s2.frame_features`) gives every frame's S1 time and S2
   start/end; they are appended to the set's per-frame arrays
   (:class:`~wavedqm.analysis.s2_set.SetState`);
2. the set's S1 time and S2 window statistics are recomputed over all its frames so far, and
   with them the pass-2 inputs: the integration window ``[start − 1σ, end + 0.5σ]``, the set's
   S1 time and S2 start (the X-ray drift region);
3. **pass 2** (:func:`~wavedqm.kernels.s2.area_pass`: S2 areas and X-ray classification) runs
   on the new file with those inputs. **The window moves as the set grows**: every file
   remembers the inputs its pass 2 used; when they differ from the current ones by more than
   ``rerun_tolerance_us`` (any of the four times, default 0.05 µs) that file's pass 2 is run
   again (its data file is reopened). A set processed file by file thus ends with every file's
   areas computed with inputs within the tolerance of the final ones — identical to processing
   the whole set at once when the tolerance is 0;
4. the set's Gaussian fit is redone and the four per-set files are written atomically in
   ``OUT/<run>/<set>/`` (never in the data folder); the run is recombined
   (:func:`~wavedqm.analysis.ratag_run.combine_run`) and its files written in
   ``OUT/<run>/plots/``;
5. metrics; then the per-set and run plots on the plotting thread (a plot superseded by a
   newer one of the same set or run before it is drawn is skipped).

Pass 1 searches each frame's S2 from the frame's own S1 time (RaTag uses the set's): the
per-frame results never depend on the order of the files, so pass 1 is never re-run.

Per-set state survives a restart (:mod:`wavedqm.exporters.s2_state`), reloaded lazily when a
set (or its run) is next touched. A file seen again with the same size and mtime is not
reprocessed (its outputs are written again); one with a new size or mtime replaces its
earlier frames.

A batch (``wavedqm process``): :meth:`S2Engine.begin_batch` starts afresh every set whose
``.wfm`` files are all in the batch; files are then analysed as above with ``publish=False``,
and :meth:`S2Engine.end_batch` writes each set's and each run's outputs once.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from wavedqm import constants as C
from wavedqm.analysis.ratag import (
    RunConstants,
    is_set_name,
)
from wavedqm.analysis.ratag_run import (
    FitSettings,
    RunResult,
    SetResult,
    accepted_xray_areas,
    combine_run,
    set_result,
)
from wavedqm.analysis.s2_set import SetState
from wavedqm.errors import ConfigError, InputFileError
from wavedqm.exporters import s2_files
from wavedqm.exporters.plotting import PlotQueue
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.exporters.s2_state import STATE_SUBDIR, load_set_state, save_set_state, state_path
from wavedqm.formats.detect import WFM_SUFFIX
from wavedqm.formats.run_config import SetOverrides
from wavedqm.kernels.s2 import S2Params
from wavedqm.logs import get_logger
from wavedqm.processors.s2_passes import analyse_file
from wavedqm.processors.s2_publish import S2Publisher
from wavedqm.processors.s2_quality import S2QualityStage
from wavedqm.processors.s2_runs import RunContext, RunContexts, fit_settings

log = get_logger(__name__)

VALIDATION_WAVEFORMS = 10
EXPECTED_LAYOUT = "RUN/FieldScan_GateNNNN_AnodeNNNN/file.wfm"


@dataclass(frozen=True)
class S2Options(FitSettings):
    """Analysis choices of the S2 engine (defaults: spec ratag-s2.md): the fits'
    (:class:`~wavedqm.analysis.ratag_run.FitSettings`) and these."""

    params: S2Params = field(default_factory=S2Params)
    """Thresholds of the two kernel passes."""
    rerun_tolerance_us: float = C.RATAG_RERUN_TOLERANCE_US
    """Re-run a file's pass 2 when its inputs differ from the set's by more than this (µs);
    0: whenever they change (file-by-file equals at-once exactly)."""
    validation_waveforms: int = VALIDATION_WAVEFORMS
    plots: bool = True
    """Draw the PNGs (on the plotting thread)."""
    max_sets_in_memory: int = 64
    """Set states kept in memory; the least recently used of other runs are dropped (they
    reload from the state folder when needed)."""


@dataclass
class SetOutcome:
    """What processing one file gave."""

    path: Path
    run: str
    set_name: str
    n_frames: int
    """Frames of this file."""
    skipped: bool
    """The file was already done (same size and mtime): nothing was recomputed."""
    rerun_files: list[str]
    """Earlier files of the set whose pass 2 was re-run because the window moved."""
    processing_seconds: float
    latency_seconds: float | None = None
    """From the file being complete to its results being out (s)."""
    result: SetResult | None = None
    """The set after this file (None in a batch, before the set is published)."""
    run_result: RunResult | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    plots: list[Future[dict[str, Path]]] = field(default_factory=list)
    """Per-set and run plots being drawn."""


@dataclass
class BatchOutcome:
    """What :meth:`S2Engine.end_batch` published: each set and run of the batch once."""

    set_results: dict[str, SetResult] = field(default_factory=dict)
    run_results: dict[str, RunResult] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    plots: list[Future[dict[str, Path]]] = field(default_factory=list)

    def wait_plots(self, timeout: float | None = None) -> dict[str, Path]:
        written: dict[str, Path] = {}
        for fut in self.plots:
            written |= fut.result(timeout)
        return written


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def wfm_files(set_dir: Path) -> list[Path]:
    """The ``.wfm`` files of a set folder, by name (hidden and temporary names left out)."""
    return sorted(
        p
        for p in set_dir.iterdir()
        if p.suffix.lower() == WFM_SUFFIX and not p.name.startswith(".") and p.is_file()
    )


class S2Engine:
    """Online S2 analysis of RaTag sets and runs (module doc). ``close()`` waits for the plots
    when the engine draws on its own plotting thread.

    ``metrics``: :class:`~wavedqm.exporters.s2_metrics.S2Metrics` on the process' registry,
    or None. ``out_root``: outputs go to ``out_root/<run>/<set>/`` and
    ``out_root/<run>/plots/``. ``state_dir``: per-set state in ``state_dir/s2/<run>/<set>.npz``.
    ``run_constants`` / ``set_overrides``: defaults for every run (``s2.run_config``); a run
    folder's ``run.toml`` overrides them for that run. ``plots``: the plotting thread to draw
    on (None: one of its own, when ``options.plots``). ``quality``: the tests of each set
    against the reference in use (None: no tests; ``s2_results.json`` says "no_reference").
    """

    def __init__(
        self,
        metrics: S2Metrics | None,
        out_root: Path,
        state_dir: Path,
        run_constants: RunConstants | None = None,
        *,
        set_overrides: SetOverrides | None = None,
        options: S2Options | None = None,
        plots: PlotQueue | None = None,
        quality: S2QualityStage | None = None,
    ) -> None:
        self.metrics = metrics
        self.out_root = Path(out_root)
        self.state_root = Path(state_dir) / STATE_SUBDIR
        self.run_constants = run_constants or RunConstants()
        self.set_overrides = dict(set_overrides or {})
        self.options = options or S2Options()
        self.runs = RunContexts(self.run_constants, self.set_overrides, fit_settings(self.options))
        self._sets: OrderedDict[tuple[str, str], SetState] = OrderedDict()
        self._pending: dict[tuple[str, str], Path] = {}
        """Sets analysed in the current batch but not published yet -> their run folder."""
        self._refused: dict[tuple[str, str], set[str]] = {}
        """Per set, the files the S2 analysis failed (not "behind": never analysed)."""
        self._own_plots = plots is None and self.options.plots
        self._plotter = PlotQueue() if self._own_plots else plots if self.options.plots else None
        o = self.options
        self.publisher = S2Publisher(
            self.out_root, metrics, self._plotter, o.params, o.rerun_tolerance_us,
            o.validation_waveforms, quality,
        )  # fmt: skip

    def close(self) -> None:
        if self._own_plots and self._plotter is not None:
            self._plotter.close()

    # -- paths ----------------------------------------------------------------------------------

    def set_out_dir(self, run: str, set_name: str) -> Path:
        return self.publisher.set_out_dir(run, set_name)

    def plots_dir(self, run: str) -> Path:
        return self.publisher.plots_dir(run)

    def state_path(self, run: str, set_name: str) -> Path:
        return state_path(self.state_root, run, set_name)

    # -- state ----------------------------------------------------------------------------------

    def _set_state(self, run: str, set_dir: Path) -> SetState:
        key = (run, set_dir.name)
        state = self._sets.get(key)
        if state is None:
            state = load_set_state(self.state_path(run, set_dir.name), run, set_dir.name, set_dir)
            self._sets[key] = state
        self._sets.move_to_end(key)
        return state

    def _evict(self, keep_run: str) -> None:
        excess = len(self._sets) - max(1, self.options.max_sets_in_memory)
        for key in list(self._sets):
            if excess <= 0:
                break
            if key[0] != keep_run and key not in self._pending:
                del self._sets[key]
                excess -= 1

    def _run_states(self, ctx: RunContext) -> list[SetState]:
        """Every set of the run with a state (in memory or in the state folder), by name."""
        names = {s for (r, s) in self._sets if r == ctx.name}
        folder = self.state_root / ctx.name
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.npz")}
        states = []
        for name in sorted(names):
            state = self._sets.get((ctx.name, name))
            if state is None:
                state = load_set_state(self.state_path(ctx.name, name), ctx.name, name, None)
                if not state.files:
                    continue
                self._sets[(ctx.name, name)] = state
            if state.files:
                states.append(state)
        return states

    def _set_result(self, state: SetState, ctx: RunContext) -> SetResult:
        info, physics = self.runs.physics(ctx, state.name, state.set_dir)
        return set_result(state, info, physics, ctx.fits)

    # -- entry points ---------------------------------------------------------------------------

    def locate(self, path: Path) -> tuple[Path, Path]:
        """``(run_dir, set_dir)`` of a ``.wfm`` path; ``InputFileError(wrong_layout)`` when
        its folder is not a set."""
        path = Path(path)
        set_dir = path.parent
        if not is_set_name(set_dir.name):
            raise InputFileError(
                path,
                "wrong_layout",
                f"the file is in folder {set_dir.name!r}, not in a set folder "
                "(a set folder's name contains 'FieldScan')",
                EXPECTED_LAYOUT,
            )
        return set_dir.parent, set_dir

    def _check_out_root(self, run_dir: Path) -> None:
        if _within(self.out_root, run_dir):
            raise ConfigError(
                f"output folder {self.out_root} is inside the data folder {run_dir}: "
                "choose an output folder outside the run (outputs never go into the data)"
            )

    def begin_batch(self, paths: Sequence[Path]) -> None:
        """Start afresh every set whose ``.wfm`` files are all among ``paths`` (its saved
        state is replaced when the batch ends); other sets continue from their state."""
        by_set: dict[Path, set[str]] = {}
        for p in paths:
            if p.suffix.lower() == WFM_SUFFIX:
                by_set.setdefault(Path(p).parent, set()).add(Path(p).name)
        for set_dir, names in by_set.items():
            with contextlib.suppress(OSError):
                if {p.name for p in wfm_files(set_dir)} <= names:
                    run = set_dir.parent.name
                    self._sets[(run, set_dir.name)] = SetState(run, set_dir.name, set_dir)
                    self._pending[(run, set_dir.name)] = set_dir.parent

    def process_file(
        self, path: Path, completed_at: float | None = None, *, publish: bool = True
    ) -> SetOutcome:
        """Analyse one ``.wfm`` file of a set and (``publish``) write the set and run
        (module doc); ``publish=False``: only analyse, :meth:`end_batch` publishes.

        Raises ``InputFileError`` for a bad file or a file outside a set folder
        (``wrong_layout``), ``ConfigError`` for a bad ``run.toml`` or an output folder inside
        the data."""
        path = Path(path)
        started = time.perf_counter()
        run_dir, set_dir = self.locate(path)
        self._check_out_root(run_dir)
        refused = self._refused.setdefault((run_dir.name, set_dir.name), set())
        try:
            outcome = self._process(path, run_dir, set_dir, save=publish)
        except InputFileError:
            refused.add(path.name)
            raise
        refused.discard(path.name)
        if not publish:
            self._pending[(run_dir.name, set_dir.name)] = run_dir
            return outcome
        state = self._set_state(run_dir.name, set_dir)
        ctx = self.runs.context(run_dir)
        result, outputs, plots = self._publish_set(state, ctx)
        run_result, run_outputs, run_plots = self._publish_run(ctx)
        outcome.result, outcome.run_result = result, run_result
        outcome.outputs = outputs | run_outputs
        outcome.plots = plots + run_plots
        outcome.processing_seconds = time.perf_counter() - started
        if completed_at is not None:
            outcome.latency_seconds = time.time() - completed_at
        log.info(
            "s2_file_done",
            file=str(path),
            run=outcome.run,
            set=outcome.set_name,
            frames=outcome.n_frames,
            set_frames=result.n_frames,
            skipped=outcome.skipped,
            rerun_files=len(outcome.rerun_files),
            s2_mean_mv_us=s2_files.jsonable(result.ion_fit.mean),
            seconds=round(outcome.processing_seconds, 3),
        )
        self._evict(run_dir.name)
        return outcome

    def _process(self, path: Path, run_dir: Path, set_dir: Path, *, save: bool) -> SetOutcome:
        """Analyse one file (skipped if done with the same size and mtime) and, if ``save``,
        save the set's state; nothing is published."""
        started = time.perf_counter()
        ctx = self.runs.context(run_dir)
        _, physics = self.runs.physics(ctx, set_dir.name, path)
        state = self._set_state(run_dir.name, set_dir)
        try:
            st = path.stat()
        except OSError as err:
            raise InputFileError(path, "missing", f"cannot stat the file ({err})") from err
        i = state.index(path.name)
        if i is not None:
            entry = state.files[i]
            if (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
                log.info("s2_file_already_done", file=str(path))
                return SetOutcome(
                    path, run_dir.name, set_dir.name, entry.n_frames, True, [],
                    time.perf_counter() - started,
                )  # fmt: skip
        o = self.options
        n_frames, rerun = analyse_file(path, state, physics, o.params, o.rerun_tolerance_us)
        if save:
            save_set_state(self.state_path(state.run, state.name), state)
        return SetOutcome(
            path, run_dir.name, set_dir.name, n_frames, False, rerun,
            time.perf_counter() - started,
        )  # fmt: skip

    def end_batch(self) -> BatchOutcome:
        """Save and publish every set analysed since :meth:`begin_batch` (name order), then
        each of their runs once. A set left with no file (all failed) is forgotten."""
        batch = BatchOutcome()
        pending, self._pending = self._pending, {}
        runs: dict[str, Path] = {}
        for run, set_name in sorted(pending):
            run_dir = pending[(run, set_name)]
            state = self._sets.get((run, set_name))
            if state is None or not state.files:
                self.state_path(run, set_name).unlink(missing_ok=True)
                self._sets.pop((run, set_name), None)
                log.warning("s2_set_empty", set_dir=str(run_dir / set_name))
                continue
            save_set_state(self.state_path(run, set_name), state)
            result, outputs, plots = self._publish_set(state, self.runs.context(run_dir))
            batch.set_results[set_name] = result
            batch.outputs |= {f"{set_name}/{k}": v for k, v in outputs.items()}
            batch.plots += plots
            runs[run] = run_dir
        for run, run_dir in runs.items():
            rr, run_outputs, run_plots = self._publish_run(self.runs.context(run_dir))
            if rr is not None:
                batch.run_results[run] = rr
            batch.outputs |= run_outputs
            batch.plots += run_plots
        return batch

    # -- publication ----------------------------------------------------------------------------

    def _publish_set(
        self, state: SetState, ctx: RunContext
    ) -> tuple[SetResult, dict[str, Path], list[Future[dict[str, Path]]]]:
        result = self._set_result(state, ctx)
        state.result = result
        refused = self._refused.get((state.run, state.name), set())
        outputs, plots = self.publisher.publish_set(state, result, ctx.constants, ctx.fits, refused)
        return result, outputs, plots

    def _publish_run(
        self, ctx: RunContext
    ) -> tuple[RunResult | None, dict[str, Path], list[Future[dict[str, Path]]]]:
        states = self._run_states(ctx)
        if not states:
            return None, {}, []
        results = []
        for state in states:
            if state.result is None:
                state.result = self._set_result(state, ctx)
            results.append(state.result)
        rr = combine_run(
            ctx.name,
            results,
            [accepted_xray_areas(s) for s in states],
            ctx.constants,
            ctx.fits,
        )
        outputs, plots = self.publisher.publish_run(rr, ctx.constants, ctx.fits.nbins)
        return rr, outputs, plots
