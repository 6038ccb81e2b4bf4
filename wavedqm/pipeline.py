"""One file through the whole chain: read -> kernels -> analysis -> outputs and metrics.

Used by the daemon (``handle`` of ``daemon.service.Service``) and by ``wavedqm process``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm import __version__
from wavedqm.analysis.channels import ChannelMap, default_channel_status, read_channel_status
from wavedqm.analysis.history import (
    HISTORY_FILE,
    FileRecord,
    HistoryError,
    HistoryStore,
    Rollup,
    baseline_previous,
)
from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.jumps import JumpTracker
from wavedqm.analysis.light import LightAccumulator, LightResult, channel_status
from wavedqm.analysis.masks import baseline_cells, flatline_cells
from wavedqm.analysis.spectra import SpectraAccumulator, SpectraResult
from wavedqm.analysis.streaks import update_dead_streaks
from wavedqm.atomic import atomic_write_json
from wavedqm.config import Config
from wavedqm.constants import DEAD_STREAKS_FILE, IMAGES_DIR, REPORTS_DIR, SUMMARY_FILE
from wavedqm.errors import InputFileError
from wavedqm.exporters.masks import BASELINE_STYLE, FLATLINE_STYLE, render_mask, write_mask_png
from wavedqm.exporters.prometheus import DqmMetrics
from wavedqm.exporters.report import (
    LATEST_REPORT_FILE,
    REPORT_FILE,
    ReportInputs,
    write_file_report,
)
from wavedqm.formats.flow import FlowInfo, FlowLightReader
from wavedqm.kernels.light import LightFeatures, light_features
from wavedqm.kernels.light import warm_up as warm_up_light
from wavedqm.kernels.spectra import warm_up as warm_up_spectra
from wavedqm.logs import get_logger

log = get_logger(__name__)


@dataclass
class LightAnalysis:
    """What streaming one file through the kernels gives."""

    info: FlowInfo
    light: LightResult | None
    """None when the file holds no light data."""
    spectra: SpectraResult | None = None
    jump: JumpEvent | None = None


@dataclass
class FileOutcome:
    """What processing one file gave."""

    path: Path
    analysis: LightAnalysis
    processing_seconds: float
    summary: dict[str, Any]
    previous: Rollup | None = None
    """Rollup of the previous files this file was compared with (None: no history)."""
    outputs: dict[str, Path] = field(default_factory=dict)
    plots: Future[dict[str, Path]] | None = None
    """Masks and PDF report, drawn after the metrics are out (``.result()`` waits)."""

    @property
    def info(self) -> FlowInfo:
        return self.analysis.info

    @property
    def light(self) -> LightResult | None:
        return self.analysis.light


def output_dir_for(out_root: Path, path: Path) -> Path:
    """``OUT/<file name>/``: every output of one input file."""
    return out_root / path.name


class Pipeline:
    """Holds what stays fixed between files (config, channel map, known problems, metrics,
    history); ``close()`` waits for the plots still being drawn."""

    def __init__(self, cfg: Config, metrics: DqmMetrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.channel_map = ChannelMap.from_config(cfg.light)
        self.out_root = Path(cfg.output.dir)
        self.known_status = self._known_status()
        self.streaks_path = Path(cfg.output.state_dir) / DEAD_STREAKS_FILE
        self.dead_streaks = self._load_streaks()
        self.history = HistoryStore(
            Path(cfg.output.state_dir) / HISTORY_FILE,
            grid_shape=(cfg.light.n_adcs, cfg.light.n_channels),
        )
        # compile (or load from numba's cache) before the first file: 0.2-0.4 s per process
        warm_up_light()
        warm_up_spectra()
        # matplotlib work (masks, PDF) runs on one thread, off the path to /metrics
        self._plotter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wavedqm-plots")

    def close(self) -> None:
        self._plotter.shutdown(wait=True)
        self.history.close()

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

    def _load_streaks(self) -> np.ndarray | None:
        """Consecutive dead-file counts survive a restart (state folder)."""
        try:
            return np.array(json.loads(self.streaks_path.read_text())["dead_streaks"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as err:
            log.error("dead_streaks_unreadable", path=str(self.streaks_path), error=str(err))
            return None

    def _update_streaks(self, light: LightResult) -> np.ndarray:
        dead = np.zeros(light.active.shape, dtype=bool)
        for adc, channel in light.dead_new:
            dead[adc, channel] = True
        self.dead_streaks = update_dead_streaks(self.dead_streaks, dead)
        atomic_write_json(self.streaks_path, {"dead_streaks": self.dead_streaks.tolist()})
        return self.dead_streaks

    def _known_status(self) -> np.ndarray:
        csv = self.cfg.light.channel_status_csv
        if not csv:
            return default_channel_status(self.channel_map)
        return read_channel_status(Path(csv), self.cfg.light.n_adcs, self.cfg.light.n_channels)

    def analyse(self, path: Path, previous: Rollup | None = None) -> LightAnalysis:
        """Stream the file through the kernels once: light features of every waveform, power
        spectra of a bounded set of events, the largest sample-to-sample jump. ``previous`` is
        what the baseline-shift status (2) compares with."""
        light_cfg = self.cfg.light
        with FlowLightReader(
            path, chunk_bytes=self.cfg.reader.chunk_bytes, max_events=light_cfg.max_events
        ) as reader:
            info = reader.info
            if not info.has_light:
                return LightAnalysis(info, None)
            self._check_layout(path, info)
            accumulator = LightAccumulator(light_cfg, self.channel_map)
            spectra = None
            if light_cfg.spectra_events > 0:
                spectra = SpectraAccumulator(
                    light_cfg.n_adcs,
                    light_cfg.n_channels,
                    info.n_samples,
                    light_cfg.sample_period_us,
                    light_cfg.spectra_events,
                    self.channel_map.active,
                    expected_events=reader.n_events,
                    adc_range_v=light_cfg.adc_range_v,
                )
            jumps = JumpTracker(self.channel_map.active, light_cfg.sample_period_us)
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
        light = accumulator.result(self.known_status, previous=baseline_previous(previous))
        spectra_result = spectra.result() if spectra is not None and spectra.n_events else None
        return LightAnalysis(info, light, spectra_result, jumps.best)

    def _check_layout(self, path: Path, info: FlowInfo) -> None:
        light_cfg = self.cfg.light
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

    def process(self, path: Path, completed_at: float | None = None) -> FileOutcome:
        """Analyse ``path``, write its outputs and count it in the metrics.

        Order: summary.json and metrics first (what Prometheus and the crew wait for), then
        the history, then masks and the PDF report on the plotting thread.
        Raises ``InputFileError`` for a bad file and ``FileNotReady`` when its writer still
        holds it. Failures are counted by the caller (the daemon's service or ``process``),
        which also sees the failures that never reach the pipeline (``too_large``).
        """
        path = Path(path)
        log.info("file_processing", file=str(path))
        started = time.perf_counter()
        previous = self._previous()
        analysis = self.analyse(path, previous)
        light = analysis.light
        seconds = time.perf_counter() - started
        summary = build_summary(path, analysis, seconds)
        summary["previous_files"] = 0 if previous is None else previous.n_files
        outdir = output_dir_for(self.out_root, path)
        outputs = {"summary": atomic_write_json(outdir / SUMMARY_FILE, summary)}
        if light is not None and self.cfg.output.status_csv:
            outputs["status_csv"] = write_status_csv(Path(self.cfg.output.status_csv), light)
        streaks = self._update_streaks(light) if light is not None else None
        finished_at = time.time()
        if self.metrics is not None:
            self.metrics.file_processed(
                n_events=summary["events"],
                processing_seconds=seconds,
                latency_seconds=None if completed_at is None else finished_at - completed_at,
                finished_at=finished_at,
                light=light,
                dead_streaks=streaks,
                spectra=analysis.spectra,
            )
        plots = None
        if light is not None:
            self._remember(path, analysis, finished_at)
            plots = self._plotter.submit(
                self._draw, path, outdir, analysis, previous, summary, seconds
            )
        log.info(
            "file_done",
            file=str(path),
            events=summary["events"],
            seconds=round(seconds, 3),
            dead_channels=summary["dead_channels"],
            summary=str(outputs["summary"]),
        )
        return FileOutcome(path, analysis, seconds, summary, previous, outputs, plots)

    def _draw(
        self,
        path: Path,
        outdir: Path,
        analysis: LightAnalysis,
        previous: Rollup | None,
        summary: dict[str, Any],
        seconds: float,
    ) -> dict[str, Path]:
        """Masks (per file and latest), then the PDF report (per file and latest)."""
        light = analysis.light
        assert light is not None
        written: dict[str, Path] = {}
        try:
            written |= self._write_masks(path, outdir, light)
            if self.cfg.output.reports:
                inputs = ReportInputs(
                    file=path,
                    summary=summary,
                    config=self.cfg.to_dict(),
                    light=light,
                    previous=previous,
                    spectra=analysis.spectra,
                    jump=analysis.jump,
                    processing_seconds=seconds,
                )
                report = write_file_report(
                    outdir / REPORT_FILE,
                    inputs,
                    latest=self.out_root / REPORTS_DIR / LATEST_REPORT_FILE,
                )
                written["report"] = report.path
                log.info(
                    "report_written",
                    file=str(path),
                    report=str(report.path),
                    pages=len(report.pages),
                    failed_pages=[title for title, _ in report.failed],
                    seconds=round(report.seconds, 2),
                )
        except Exception:  # never lose the daemon's plotting thread to one bad figure
            log.exception("plots_failed", file=str(path))
        return written

    def _write_masks(self, path: Path, outdir: Path, light: LightResult) -> dict[str, Path]:
        """Per-file mask PNGs and their stable 'latest' copies under ``OUT/images/``."""
        latest_dir = self.out_root / IMAGES_DIR
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
                tpc_split_channel=self.cfg.light.tpc_split_channel,
            )
            written[name] = write_mask_png(
                outdir / f"{name}.png", fig, latest=latest_dir / f"{name}.png"
            )
        return written


def write_status_csv(path: Path, light: LightResult) -> Path:
    from wavedqm.analysis.channels import write_channel_status

    write_channel_status(path, channel_status(light))
    return path


def build_summary(path: Path, analysis: LightAnalysis, seconds: float) -> dict[str, Any]:
    """The per-file ``summary.json`` document."""
    info, light = analysis.info, analysis.light
    summary: dict[str, Any] = {
        "file": str(path),
        "format": "flow-hdf5",
        "wavedqm_version": __version__,
        "processing_seconds": round(seconds, 4),
        "has_light": info.has_light,
        "has_charge": info.has_charge,
        "events": info.n_light_events if light is not None else 0,
        "events_by_trigger": {"beam": 0, "self": 0},
        "time_start_s": info.time_start_s,
        "time_end_s": info.time_end_s,
        "light": None,
        "dead_channels": [],
        "known_dead_channels": [],
        "baseline_flagged": [],
        "clipped_channels": [],
        "negative_channels": [],
        "fractions": None,
    }
    if light is None:
        return summary
    light_dict = light.to_dict()
    summary["events"] = light_dict["n_events"]
    summary["events_by_trigger"] = light_dict["events_by_trigger"]
    for key in (
        "dead_channels",
        "known_dead_channels",
        "baseline_flagged",
        "clipped_channels",
        "negative_channels",
        "fractions",
        "time_start_s",
        "time_end_s",
    ):
        summary[key] = light_dict.pop(key)
    summary["light"] = light_dict
    summary["spectra"] = None if analysis.spectra is None else analysis.spectra.to_dict()
    if analysis.jump is not None:
        jump = analysis.jump
        summary["largest_jump"] = {
            "event": jump.event,
            "adc": jump.adc,
            "channel": jump.channel,
            "sample": jump.sample,
            "jump_adc16": jump.jump_adc16,
        }
    return summary
