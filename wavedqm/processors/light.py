"""The light processor: ``.FLOW.hdf5`` light waveforms through reader -> kernels -> analysis
-> exporters.

Per file: the light reader streams the waveforms in bounded batches through the fused light
kernel (baseline, noise, max above baseline, clipped, negative, largest jump); the accumulator
gives medians, dead channels, baseline status and fractions, compared with the rollup of the
previous files (history store in the state folder); power spectra of a bounded set of events.
Outputs: the file's ``summary.json`` section (written by the router), the channel-status CSV,
the per-channel light metrics, a history row, the dead-file streaks, the two mask PNGs (on
the plotting thread, with stable copies under ``OUT/images/``) and the pages of the per-file
PDF report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.analysis.channels import ChannelMap, default_channel_status, read_channel_status
from wavedqm.analysis.history import FileRecord, Rollup, baseline_previous
from wavedqm.analysis.jump import JumpEvent, JumpTracker
from wavedqm.analysis.light import (
    LightAccumulator,
    LightResult,
    channel_status,
    compare_with_previous,
)
from wavedqm.analysis.masks import baseline_cells, flatline_cells
from wavedqm.analysis.spectra import SpectraAccumulator, SpectraResult
from wavedqm.analysis.streaks import update_dead_streaks
from wavedqm.config import Config
from wavedqm.constants import DEAD_STREAKS_FILE, IMAGES_DIR
from wavedqm.errors import InputFileError
from wavedqm.exporters.history_store import HISTORY_FILE, HistoryError, HistoryStore
from wavedqm.exporters.light_metrics import LightMetrics
from wavedqm.exporters.light_state import (
    DeadStreaks,
    light_summary_document,
    load_dead_streaks,
    save_dead_streaks,
)
from wavedqm.exporters.masks import BASELINE_STYLE, FLATLINE_STYLE, render_mask, write_mask_png
from wavedqm.exporters.paths import file_output_dir
from wavedqm.exporters.quality_metrics import QualityMetrics
from wavedqm.exporters.report import LIGHT_SUBJECT, ReportInputs, build_pages
from wavedqm.formats.detect import FLOW
from wavedqm.formats.flow import FlowInfo, FlowLightReader
from wavedqm.formats.h5checks import check_allocation
from wavedqm.kernels.light import LightFeatures, light_features
from wavedqm.kernels.light import warm_up as warm_up_light
from wavedqm.kernels.spectra import n_bins
from wavedqm.kernels.spectra import warm_up as warm_up_spectra
from wavedqm.logs import get_logger
from wavedqm.processors.base import (
    NOT_PREPARED,
    BaseProcessor,
    Outcome,
    ProcessorContext,
    unwrap,
)
from wavedqm.processors.light_quality import (
    QUALITY_IMAGE,
    QualityStage,
    quality_document,
    write_quality_mask,
)

log = get_logger(__name__)

MASK_IMAGES = ("flatline", "baseline")
"""The mask PNGs of every file with light data (``<name>.png``)."""


REPORT_SECTIONS = ("light", "history", "output", "reader", "watch", "metrics", "processors")
"""The configuration sections the light report's first page shows (those that shape its
results; the other processors' sections are in their own reports)."""


@dataclass
class LightAnalysis:
    """What streaming one file through the kernels gives."""

    info: FlowInfo
    light: LightResult | None
    """None when the file holds no light data."""
    spectra: SpectraResult | None = None
    jump: JumpEvent | None = None


@dataclass
class LightFileResult:
    """What the light processor made of one file (``Outcome.detail``)."""

    path: Path
    analysis: LightAnalysis
    processing_seconds: float
    summary: dict[str, Any]
    """This file's ``summary.json`` document (as written by the router)."""
    previous: Rollup | None = None
    """Rollup of the previous files this file was compared with (None: no history)."""
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def info(self) -> FlowInfo:
        return self.analysis.info

    @property
    def light(self) -> LightResult | None:
        return self.analysis.light


class LightProcessor(BaseProcessor):
    """Holds what stays fixed between files (config, channel map, known problems, metrics,
    history, dead streaks)."""

    name = "light"
    formats = (FLOW,)
    served = tuple(f"{IMAGES_DIR}/{name}.png" for name in (*MASK_IMAGES, QUALITY_IMAGE))
    report_subject = LIGHT_SUBJECT

    def __init__(self, context: ProcessorContext) -> None:
        super().__init__(context)
        cfg = context.cfg
        self.metrics = LightMetrics(context.registry)
        quality_metrics = QualityMetrics(context.registry, cfg.quality.channels_failing[1])
        self.quality = QualityStage(cfg, context.state_dir, quality_metrics)
        self.channel_map = ChannelMap.from_config(cfg.light)
        self.out_root = context.out_root
        self.known_status = self._known_status()
        self.streaks_path = context.state_dir / DEAD_STREAKS_FILE
        self.dead_streaks = load_dead_streaks(self.streaks_path)
        """Counts after the last file, and before it (a repeat of it replaces its count)."""
        self.history = HistoryStore(
            context.state_dir / HISTORY_FILE,
            grid_shape=(cfg.light.n_adcs, cfg.light.n_channels),
        )

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the light and spectra kernels: 0.2-0.4 s."""
        warm_up_light()
        warm_up_spectra()

    def close(self) -> None:
        self.history.close()

    # -- state -----------------------------------------------------------------------------

    def _known_status(self) -> np.ndarray:
        return known_status_of(self.cfg, self.channel_map)

    def _previous(self) -> Rollup | None:
        """The rollup of the previous files (before this one is appended)."""
        try:
            return self.history.rollup(self.cfg.history.previous_count())
        except HistoryError as err:
            log.error("history_unavailable", error=str(err))
            return None

    def _remember(self, path: Path, analysis: LightAnalysis, processed_at: float) -> None:
        assert analysis.light is not None
        spectra = analysis.spectra
        try:
            self.history.append(
                FileRecord.from_light(
                    path.name,
                    analysis.light,
                    processed_at,
                    spectra_roi=None if spectra is None else spectra.roi_power_adc,
                    roi_centres_mhz=None if spectra is None else spectra.roi_centres_mhz,
                )
            )
        except HistoryError as err:
            log.error("history_append_failed", file=str(path), error=str(err))

    def _update_streaks(self, path: Path, light: LightResult) -> np.ndarray:
        dead = np.zeros(light.active.shape, dtype=bool)
        for adc, channel in light.dead_new:
            dead[adc, channel] = True
        before = self.dead_streaks.base_for(path.name)
        after = update_dead_streaks(before, dead)
        state = DeadStreaks(after, path.name, before)
        save_dead_streaks(self.streaks_path, state)
        self.dead_streaks = state
        return after

    # -- analysis --------------------------------------------------------------------------

    def analyse(self, path: Path, previous: Rollup | None = None) -> LightAnalysis:
        """Stream the file through the kernels once (:func:`analyse_light_file`)."""
        return analyse_light_file(self.cfg, self.channel_map, self.known_status, path, previous)

    # -- one file --------------------------------------------------------------------------

    def prepare(self, path: Path) -> LightAnalysis:
        """The pass over the file's waveforms, before the previous files are known (on a
        ``wavedqm reprocess`` worker): :meth:`process` given it makes the comparison and the
        rest, as if it had read the file itself. Touches no state."""
        return self.analyse(Path(path), None)

    def process(
        self, path: Path, completed_at: float | None = None, prepared: Any = NOT_PREPARED
    ) -> Outcome:
        """Analyse ``path`` (or take ``prepared``, what :meth:`prepare` gave); the status
        CSV, light metrics, history row and dead streaks first, then the masks on the plotting
        thread; the report pages go to the router.

        Raises ``InputFileError`` for a bad file and ``FileNotReady`` when its writer still
        holds it (the router counts both)."""
        path = Path(path)
        log.info("light_processing", file=str(path))
        started = time.perf_counter()
        previous = self._previous()
        if prepared is NOT_PREPARED:
            analysis = self.analyse(path, previous)
        else:
            analysis = _compared(unwrap(prepared), self.cfg, previous)
        light = analysis.light
        seconds = time.perf_counter() - started
        document = light_summary_document(
            path, analysis.info, light, analysis.spectra, analysis.jump, seconds
        )
        document["previous_files"] = 0 if previous is None else previous.n_files
        result = LightFileResult(path, analysis, seconds, document, previous)
        if light is None:
            return Outcome(
                self.name, path, summary="no light data", nothing=True,
                document=document, seconds=seconds, detail=result,
            )  # fmt: skip
        if light.n_events == 0:  # no events: no verdict on any channel (never "all dead")
            log.warning("light_no_events", file=str(path))
            return Outcome(
                self.name, path, summary="0 light events: no verdict on the channels",
                nothing=True, seconds=seconds, detail=result,
            )  # fmt: skip
        if self.cfg.output.status_csv:
            result.outputs["status_csv"] = write_status_csv(Path(self.cfg.output.status_csv), light)
        streaks = self._update_streaks(path, light)
        self.metrics.file_done(light, streaks, analysis.spectra)
        quality = self.quality.evaluate(path, light)
        document["quality"] = quality_document(quality)
        self._remember(path, analysis, time.time())
        outdir = file_output_dir(self.out_root, path)
        split = self.cfg.light.tpc_split_channel
        drawings = [self.context.plots.submit(
            partial(write_light_masks, self.out_root, split, path, outdir, light)
        )]  # fmt: skip
        if quality is not None:
            drawings.append(self.context.plots.submit(
                partial(write_quality_mask, self.out_root, split, path, outdir, light, quality)
            ))  # fmt: skip
        pages = []
        if self.cfg.output.reports:
            inputs = ReportInputs(
                file=path,
                summary=document,
                config={k: v for k, v in self.cfg.to_dict().items() if k in REPORT_SECTIONS},
                light=light,
                previous=previous,
                spectra=analysis.spectra,
                jump=analysis.jump,
                processing_seconds=seconds,
                quality=quality,
                reference=self.quality.reference() if quality is not None else None,
            )
            pages = build_pages(inputs)
        log.info(
            "light_done",
            file=str(path),
            events=document["events"],
            seconds=round(seconds, 3),
            dead_channels=document["dead_channels"],
            baseline_flagged=document["baseline_flagged"],
        )
        return Outcome(
            self.name,
            path,
            events=document["events"],
            summary=light_summary_line(document),
            outputs=dict(result.outputs),
            document=document,
            plots=drawings,
            pages=pages,
            seconds=seconds,
            detail=result,
        )


def known_status_of(cfg: Config, channel_map: ChannelMap) -> np.ndarray:
    """The known channel status: the configured channel-status CSV, or every active channel
    good."""
    csv = cfg.light.channel_status_csv
    if not csv:
        return default_channel_status(channel_map)
    return read_channel_status(Path(csv), cfg.light.n_adcs, cfg.light.n_channels)


def analyse_light_file(
    cfg: Config,
    channel_map: ChannelMap,
    known_status: np.ndarray,
    path: Path,
    previous: Rollup | None = None,
) -> LightAnalysis:
    """Stream the file through the kernels once: light features of every waveform, power
    spectra of a bounded set of events, the largest sample-to-sample jump. ``previous`` is
    what the baseline-shift status (2) compares with."""
    light_cfg = cfg.light
    limit = cfg.reader.max_allocation_bytes
    with FlowLightReader(
        path,
        chunk_bytes=cfg.reader.chunk_bytes,
        max_events=light_cfg.max_events,
        max_allocation_bytes=limit,
    ) as reader:
        info = reader.info
        if not info.has_light:
            return LightAnalysis(info, None)
        _check_layout(cfg, path, info)
        accumulator = LightAccumulator(light_cfg, channel_map)
        spectra = None
        if light_cfg.spectra_events > 0:
            n_active = int(channel_map.active.sum())
            check_allocation(
                path,
                f"the power spectra of {light_cfg.spectra_events} events of "
                f"{info.n_samples} samples",
                light_cfg.spectra_events * n_active * n_bins(info.n_samples) * 4,
                limit,
            )
            spectra = SpectraAccumulator(
                light_cfg.n_adcs,
                light_cfg.n_channels,
                info.n_samples,
                light_cfg.sample_period_us,
                light_cfg.spectra_events,
                channel_map.active,
                expected_events=reader.n_events,
                adc_range_v=light_cfg.adc_range_v,
            )
        jumps = JumpTracker(channel_map.active, light_cfg.sample_period_us)
        features: LightFeatures | None = None
        for batch in reader.batches():
            features = light_features(
                batch.samples,
                light_cfg.pedestal_samples,
                light_cfg.ptp_threshold_adc16,
                light_cfg.clip_level_adc16,
                out=features,
            )
            accumulator.add(batch, features)
            if spectra is not None and not spectra.full:
                spectra.add(batch)
            jumps.add(batch, features)
    light = accumulator.result(known_status, previous=baseline_previous(previous))
    spectra_result = spectra.result() if spectra is not None and spectra.n_events else None
    return LightAnalysis(info, light, spectra_result, jumps.best)


def _check_layout(cfg: Config, path: Path, info: FlowInfo) -> None:
    light_cfg = cfg.light
    if (info.n_adcs, info.n_channels) != (light_cfg.n_adcs, light_cfg.n_channels):
        raise InputFileError(
            path,
            "wrong_layout",
            f"light waveforms have {info.n_adcs} ADCs x {info.n_channels} channels",
            f"{light_cfg.n_adcs} x {light_cfg.n_channels} as configured",
        )
    if info.n_samples < light_cfg.pedestal_samples:
        raise InputFileError(
            path,
            "wrong_layout",
            f"waveforms have {info.n_samples} samples",
            f"at least the {light_cfg.pedestal_samples} pedestal samples",
        )


def _compared(analysis: LightAnalysis, cfg: Config, previous: Rollup | None) -> LightAnalysis:
    """A prepared analysis with its baseline compared with the previous files."""
    if analysis.light is None:
        return analysis
    light = compare_with_previous(analysis.light, cfg.light, baseline_previous(previous))
    return replace(analysis, light=light)


def write_light_masks(
    out_root: Path, tpc_split_channel: int, path: Path, outdir: Path, light: LightResult
) -> dict[str, Path]:
    """Per-file mask PNGs and their stable 'latest' copies under ``OUT/images/`` (a drawing
    job: a module function, so that it can run in another process)."""
    latest_dir = out_root / IMAGES_DIR
    written = {}
    for name, style, cells in (
        ("flatline", FLATLINE_STYLE, flatline_cells(light)),
        ("baseline", BASELINE_STYLE, baseline_cells(light)),
    ):
        fig = render_mask(
            cells,
            style,
            time_start_s=light.time_start_s,
            time_end_s=light.time_end_s,
            source=path.name,
            tpc_split_channel=tpc_split_channel,
        )
        written[name] = write_mask_png(
            outdir / f"{name}.png", fig, latest=latest_dir / f"{name}.png"
        )
    return written


def _channels_text(channels: list[list[int]]) -> str:
    """``"1:9 6:40"`` (ADC:channel; a third item, a status code, in parentheses) or
    ``"none"``."""
    parts = [f"{c[0]}:{c[1]}" + (f"({c[2]})" if len(c) > 2 else "") for c in channels]
    return " ".join(parts) or "none"


def light_summary_line(document: dict[str, Any]) -> str:
    """One line for a human: events and the channels (ADC:channel) with problems."""
    return (
        f"{document['events']} events, dead {_channels_text(document['dead_channels'])}, "
        f"baseline flagged {_channels_text(document['baseline_flagged'])}, "
        f"clipped {_channels_text(document['clipped_channels'])}"
    )


def write_status_csv(path: Path, light: LightResult) -> Path:
    from wavedqm.analysis.channels import write_channel_status

    write_channel_status(path, channel_status(light))
    return path
