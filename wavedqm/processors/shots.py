"""The shot processor: shot files of pulsed experiments (seed 003, spec shots-and-voxels.md).

Per shot (``shot_NNNN.csv`` / ``.npz``, and its ``.meta.json`` sidecar; a complete shot whose
sidecar is not there yet waits for it up to ``[shots] sidecar_wait_seconds``, then goes on
without): read (:mod:`wavedqm.formats.shots`), metrics and flags per channel
(:mod:`wavedqm.analysis.shots` on :mod:`wavedqm.kernels.shots`), timing judged against the
earlier clean shots of its series, the record and reduced traces kept in the state folder
(:mod:`wavedqm.exporters.shot_store`), the quality tests against the shots part of the
reference run in use (:mod:`wavedqm.processors.shots_quality`: the JSON's ``quality`` section
and the ``wavedqm_shots_quality_*`` metrics), then ``OUT/<series>/<shot id>.json`` and
``shot_metrics.csv`` at once and the metrics; on the plotting thread, the overlay PNG per
channel, the trend PNGs (against the shot number and every control variable), the report
(PDF + Markdown; with a reference, its good shots' mean ± std on the trends and its peak on
the overlays) and the latest overlay / trends under ``OUT/images/`` for Grafana. A series
is the shot's folder (or ``[shots] folder_pattern``). No ``summary.json`` per file: the
shot's own JSON is its summary.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.shot_quality import ShotReference, peak_band, reference_bands
from wavedqm.analysis.shot_series import (
    SHOT_INDEX,
    ShotRecord,
    Trace,
    channel_names,
    clean_event_times,
    control_names,
    envelope,
    flag_streak,
    trend,
)
from wavedqm.analysis.shots import ChannelRules, judge_timing, shot_channels
from wavedqm.atomic import atomic_write_bytes
from wavedqm.config import Config
from wavedqm.constants import IMAGES_DIR
from wavedqm.errors import FileNotReady, InputFileError
from wavedqm.exporters.masks import figure_png
from wavedqm.exporters.shot_files import shot_document, write_metrics_csv, write_shot_json
from wavedqm.exporters.shot_metrics import ShotMetrics
from wavedqm.exporters.shot_plots import (
    OVERLAY_PNG,
    TRENDS_PNG,
    overlay_figure,
    overlay_grid_figure,
    overlay_png_name,
    trends_figure,
    trends_png_name,
)
from wavedqm.exporters.shot_report import (
    REPORT_PDF,
    SHOTS_SUBJECT,
    markdown_report,
    report_pages,
    write_markdown,
)
from wavedqm.exporters.shot_store import Series, ShotStore
from wavedqm.exporters.voxel_store import run_key
from wavedqm.formats.detect import SHOT
from wavedqm.formats.shots import Shot, read_shot, sidecar_path
from wavedqm.kernels.shots import bin_means
from wavedqm.kernels.shots import warm_up as warm_up_kernels
from wavedqm.logs import get_logger
from wavedqm.processors.base import (
    NOT_PREPARED,
    BaseProcessor,
    Outcome,
    ProcessorContext,
    unwrap,
)
from wavedqm.processors.charge_runs import run_of
from wavedqm.processors.shots_quality import ShotQualityStage, quality_document

log = get_logger(__name__)

Measured = tuple[ShotRecord, dict[str, tuple[np.ndarray, np.ndarray]]]
"""What :meth:`ShotProcessor.prepare` gives: the record before it has a place in its series
(index -1), and the reduced traces of each channel."""


class ShotProcessor(BaseProcessor):
    name = "shots"
    formats = (SHOT,)
    served = (f"{IMAGES_DIR}/{OVERLAY_PNG}", f"{IMAGES_DIR}/{TRENDS_PNG}")
    report_subject = SHOTS_SUBJECT

    def __init__(self, context: ProcessorContext) -> None:
        super().__init__(context)
        self.metrics = ShotMetrics(context.registry, self.cfg.shots.alert_streak)
        self.store = ShotStore(context.state_dir, keep_traces=self.cfg.shots.overlay_shots)
        self.quality = ShotQualityStage(self.cfg, context.state_dir, context.registry)
        self._threads = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1, thread_name_prefix="shot-channels"
        )
        """Channels of a shot are analysed in parallel (the kernels and FFT release the GIL)."""
        self._pending: dict[str, Path] = {}
        """Series touched by the current batch (drawn by ``end_batch``)."""

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the shot kernels."""
        warm_up_kernels()

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def rules(self, channel: str) -> ChannelRules:
        return ChannelRules(**self.cfg.shots.rules_for(channel))

    def _wait_for_sidecar(self, path: Path, completed_at: float | None) -> None:
        wait = self.cfg.shots.sidecar_wait_seconds
        if self.context.batch or completed_at is None or wait <= 0:
            return
        side = sidecar_path(path)
        if not side.exists() and time.time() - completed_at < wait:
            raise FileNotReady(path, f"waiting up to {wait:g} s for its sidecar {side.name}")

    def prepare(self, path: Path) -> Measured:
        """Read the shot and measure its channels (on a ``wavedqm reprocess`` worker): only the
        metrics and the reduced traces travel back. Touches no state."""
        return self.measure(read_shot(Path(path)))

    def process(
        self, path: Path, completed_at: float | None = None, prepared: Any = NOT_PREPARED
    ) -> Outcome:
        path = Path(path)
        started = time.perf_counter()
        self._wait_for_sidecar(path, completed_at)
        try:
            measured = self.prepare(path) if prepared is NOT_PREPARED else unwrap(prepared)
        except InputFileError as err:
            self.metrics.shot_failed(err.reason)
            raise
        series_name = run_of(path.absolute(), self.cfg.shots.folder_pattern)
        series = self.store.series(series_name)
        record, references, traces = self.judge(measured, series)
        quality = quality_document(self.quality.evaluate(record))
        self.store.put(series, record, traces)
        out_dir = self.context.out_root / run_key(series_name)
        records = series.ordered()
        document = shot_document(record, series_name, references, quality)
        outputs = {
            "shot": write_shot_json(out_dir, document),
            "shot_metrics": write_metrics_csv(out_dir, records),
        }
        streaks = {name: flag_streak(records, name) for name in record.channels}
        self.metrics.shot_done(record.channels, streaks, time.time())
        seconds = time.perf_counter() - started
        flags = record.flags()
        log_event = log.warning if flags else log.info
        log_event(
            "shot_done", file=str(path), series=series_name, shot=record.shot_id,
            flags=flags, quality=quality["status"], seconds=round(seconds, 3),
        )  # fmt: skip
        plots = []
        if self.context.batch:
            self._pending[series_name] = out_dir  # drawn once, at the end of the batch
        elif self.cfg.shots.plots:
            plots.append(self._submit_drawing(series, out_dir))
        return Outcome(
            self.name, path, events=1, summary=self._line(record, series_name, quality),
            outputs=outputs, plots=plots, seconds=seconds, detail=record,
        )  # fmt: skip

    def end_batch(self) -> list[Outcome]:
        """Draw every series the batch touched, once (``wavedqm process``)."""
        outcomes = []
        for series_name, out_dir in self._pending.items():
            if self.cfg.shots.plots:
                plot = self._submit_drawing(self.store.series(series_name), out_dir)
                outcomes.append(Outcome(self.name, out_dir, summary=f"series {series_name} "
                                        "drawn", plots=[plot], nothing=True))  # fmt: skip
        self._pending.clear()
        return outcomes

    def _submit_drawing(self, series: Series, out_dir: Path) -> Future[dict[str, Path]]:
        records = series.ordered()
        overlays = {
            c: series.channel_traces(c, self.cfg.shots.overlay_shots)
            for c in channel_names(records)
        }  # a snapshot: the plotting thread never reads what the next shot changes
        job = partial(draw_series, self.cfg, series.name, records, overlays, out_dir,
                      self.quality.reference())  # fmt: skip
        return self.context.plots.submit(job, key=f"shots:{series.name}")

    def measure(self, shot: Shot) -> Measured:
        """Metrics and flags of every channel, and the reduced traces (state-free)."""
        rules = {name: self.rules(name) for name in shot.channels}
        results = shot_channels(shot.t, shot.channels, rules, shot.dt_s, self._threads)
        n_points = min(C.SHOT_OVERLAY_POINTS, shot.n_samples)
        t_points = bin_means(shot.t, n_points)
        traces = {name: (t_points, bin_means(x, n_points)) for name, x in shot.channels.items()}
        record = ShotRecord(
            shot.shot_id, -1, shot.path.name, 0.0, shot.n_samples, shot.dt_s,
            float(shot.t[0]), float(shot.t[-1]), dict(shot.control_vars), results,
        )  # fmt: skip
        return record, traces

    def judge(
        self, measured: Measured, series: Series
    ) -> tuple[ShotRecord, dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The shot's record (its place in the series, timing judged against the earlier
        clean shots), the timing reference of each channel and its reduced traces."""
        measured_record, traces = measured
        index = series.next_index(measured_record.shot_id)
        record = replace(measured_record, index=index, processed_at=time.time())
        earlier = list(series.records.values())
        references = {}
        for name, result in record.channels.items():
            previous = clean_event_times(earlier, name, before=index)
            references[name] = judge_timing(
                result, previous, record.dt_s, self.rules(name), self.cfg.shots.timing_min_shots
            )
        return record, references, traces

    @staticmethod
    def _line(record: ShotRecord, series: str, quality: dict[str, Any]) -> str:
        flags = record.flags()
        text = "; ".join(f"{n}: {', '.join(f)}" for n, f in flags.items()) or "no flags"
        line = f"shot {record.shot_id} of {series}, {len(record.channels)} channels: {text}"
        if quality.get("reference"):
            failed = ", ".join(f"{f['channel']} {f['test']} {f['status']}"
                               for f in quality.get("failed", []))  # fmt: skip
            line += f"; quality vs {quality['reference']}: {quality['status']}"
            line += f" ({failed})" if failed else ""
        return line


def draw_series(
    cfg: Config, series_name: str, records: list[ShotRecord], traces: dict[str, list[Trace]],
    out_dir: Path, reference: ShotReference | None = None,
) -> dict[str, Path]:  # fmt: skip
    """A series' overlays, trends and report (a drawing job: a module function, so that it
    can run in another process); with the shots part of the reference in use, its good shots'
    mean ± std of each metric on the trends and of the peak on the overlays."""
    shots_cfg = cfg.shots
    channels = list(traces)
    overlays = {c: (tr, envelope(tr)) for c, tr in traces.items()}
    written: dict[str, Path] = {}
    for channel, (traces, env) in overlays.items():
        fig = overlay_figure(series_name, channel, traces, env, peak_band(reference, channel))
        name = overlay_png_name(channel)
        written[name] = atomic_write_bytes(out_dir / name, figure_png(fig))
    xs = [SHOT_INDEX, *control_names(records)]
    metrics = [m for m in shots_cfg.trend_metrics if any(
        m in c.metrics for r in records for c in r.channels.values())]  # fmt: skip

    def trends_builder(x: str) -> object:
        panels = {(m, c): trend(records, c, m, x) for m in metrics for c in channels}
        bands = reference_bands(reference, metrics, channels)
        return trends_figure(series_name, x, panels, metrics, channels, bands)

    for x in xs:
        name = trends_png_name(x)
        written[name] = atomic_write_bytes(out_dir / name, figure_png(trends_builder(x)))
    latest = Path(cfg.output.dir) / IMAGES_DIR
    peaks = {c: peak_band(reference, c) for c in channels}
    grid = partial(overlay_grid_figure, series_name, overlays, peaks=peaks)
    atomic_write_bytes(latest / OVERLAY_PNG, figure_png(grid()))
    by_shot = (out_dir / trends_png_name(SHOT_INDEX)).read_bytes()
    atomic_write_bytes(latest / TRENDS_PNG, by_shot)
    pngs = [out_dir / overlay_png_name(c) for c in channels]
    pngs += [out_dir / trends_png_name(x) for x in xs]
    md = markdown_report(series_name, records, pngs, shots_cfg.metrics)
    written["shot_report_md"] = write_markdown(out_dir, md)
    if cfg.output.reports:
        from wavedqm.exporters.report import write_report

        pages = report_pages(series_name, records, grid,
                             {x: partial(trends_builder, x) for x in xs})  # fmt: skip
        report = write_report(out_dir / REPORT_PDF, pages, out_dir, SHOTS_SUBJECT)
        written["shot_report"] = report.path
    return written
