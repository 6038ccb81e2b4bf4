"""The S2 processor: Tektronix ``.wfm`` FastFrame files of RaTag field scans, each through
the online S2 engine (:mod:`wavedqm.processors.s2_engine`) of its set and run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from wavedqm.analysis.ratag import FitResult, RunConstants
from wavedqm.config import Config
from wavedqm.exporters.plotting import PlotQueue
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.formats.detect import WFM
from wavedqm.formats.run_config import SetOverrides, load_run_config
from wavedqm.kernels.s2 import warm_up as s2_warm_up
from wavedqm.processors.base import BaseProcessor, Outcome, ProcessorContext
from wavedqm.processors.s2_engine import S2Engine, S2Options, SetOutcome
from wavedqm.processors.s2_quality import S2QualityStage


def s2_options_from_config(
    cfg: Config,
) -> tuple[S2Options, RunConstants | None, SetOverrides | None]:
    """The S2 engine's options, run constants and set voltages as ``cfg`` (section ``s2``,
    its ``run_config``) gives them (None: the defaults)."""
    s2 = cfg.s2
    options = S2Options(
        rerun_tolerance_us=s2.rerun_tolerance_us,
        ion_bin_cuts=s2.ion_bin_cuts,
        xray_bin_cuts=s2.xray_bin_cuts,
        nbins=s2.fit_bins,
        min_fit_events=s2.min_fit_events,
        plots=s2.plots,
    )
    if not s2.run_config:
        return options, None, None
    run_config = load_run_config(Path(s2.run_config))
    return replace(options, **run_config.fits), run_config.constants, run_config.sets


def s2_engine_from_config(
    cfg: Config, metrics: S2Metrics | None, plots: PlotQueue | None = None
) -> S2Engine:
    """The S2 engine as ``cfg`` (sections ``s2``, ``output`` and ``quality``) describes it."""
    options, constants, overrides = s2_options_from_config(cfg)
    state_dir = Path(cfg.output.state_dir)
    return S2Engine(
        metrics,
        Path(cfg.output.dir),
        state_dir,
        constants,
        set_overrides=overrides,
        options=options,
        plots=plots,
        quality=S2QualityStage(state_dir, cfg.quality.reference, cfg.quality.s2_tests, metrics),
    )


def _fit_text(fit: FitResult) -> str:
    """The set's fitted S2 mean, or why there is none yet."""
    if not fit.fit_success:
        return f"no S2 fit ({fit.message})" if fit.message else "no S2 fit yet"
    return f"S2 mean {fit.mean:.4g} ± {fit.ci95:.2g} mV·µs"


class S2Processor(BaseProcessor):
    """Every ``.wfm`` file to the S2 engine; in a batch, sets are published at its end."""

    name = "s2"
    formats = (WFM,)

    def __init__(self, context: ProcessorContext) -> None:
        super().__init__(context)
        self.metrics = S2Metrics(context.registry)
        self.engine = s2_engine_from_config(context.cfg, self.metrics, context.plots)

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every S2 kernel variant: ~25 s cold, ~1 s
        warm."""
        s2_warm_up()

    def begin_batch(self, paths: Sequence[Path]) -> None:
        self.engine.begin_batch(paths)

    def process(self, path: Path, completed_at: float | None = None) -> Outcome:
        result = self.engine.process_file(path, completed_at, publish=not self.context.batch)
        return Outcome(
            self.name,
            Path(path),
            events=result.n_frames,
            summary=_file_line(result),
            outputs=dict(result.outputs),
            plots=list(result.plots),
            seconds=result.processing_seconds,
            detail=result,
        )

    def end_batch(self) -> list[Outcome]:
        """One outcome per set published (its folder as ``path``)."""
        batch = self.engine.end_batch()
        outcomes = []
        for set_name, result in batch.set_results.items():
            outcomes.append(
                Outcome(
                    self.name,
                    self.engine.set_out_dir(result.run, set_name),
                    events=result.n_frames,
                    summary=(
                        f"set {result.run}/{set_name}: {result.n_files} file(s), "
                        f"{result.n_frames} frames, {_fit_text(result.ion_fit)}"
                    ),
                    outputs={k: v for k, v in batch.outputs.items() if k.startswith(set_name)},
                    detail=result,
                )
            )
        if outcomes:
            outcomes[-1].plots = list(batch.plots)
        return outcomes

    def close(self) -> None:
        self.engine.close()


def _file_line(result: SetOutcome) -> str:
    line = f"{result.n_frames} frames, set {result.run}/{result.set_name}"
    if result.skipped:
        return line + " (already done: outputs rewritten)"
    if result.result is not None:
        line += f", {_fit_text(result.result.ion_fit)}"
    return line
