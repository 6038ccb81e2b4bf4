"""Prometheus metrics of wavedqm: one registry per process, filled from analysis results.

Naming follows ``shared/spec/operations.md``: prefix ``wavedqm_``, base units as suffix,
counters end in ``_total``. Per-channel series (8x64) only where Grafana or an alert needs the
channel: alive, noise, baseline, baseline status, consecutive dead files.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.errors import FAILURE_REASONS

if TYPE_CHECKING:
    from wavedqm.analysis.light import LightResult
    from wavedqm.analysis.spectra import SpectraResult

PROCESSING_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
TRIGGER_SELECTIONS = ("all", "beam", "self")


class DqmMetrics:
    """The metrics a daemon or a batch run exposes. Methods take results, never raw data."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        data_taking_expected: bool = True,
        max_file_gap_seconds: float = C.MAX_FILE_GAP_SECONDS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.files_processed = Counter(
            "wavedqm_files_processed", "Files processed successfully.", registry=r
        )
        self.files_failed = Counter(
            "wavedqm_files_failed",
            "Files that could not be processed, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in FAILURE_REASONS:  # every series exists from the start, at 0
            self.files_failed.labels(reason=reason)
        self.processing_seconds = Histogram(
            "wavedqm_file_processing_seconds",
            "Wall time to read and analyse one file (s).",
            buckets=PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.latency_seconds = Histogram(
            "wavedqm_file_latency_seconds",
            "Time from the file being complete to its results being out (s).",
            buckets=PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.events_processed = Counter(
            "wavedqm_events_processed", "Events (triggers) analysed.", registry=r
        )
        self.last_file_timestamp = Gauge(
            "wavedqm_last_file_processed_timestamp_seconds",
            "Unix time at which the last file was processed successfully (s).",
            registry=r,
        )
        self.queue_files = Gauge(
            "wavedqm_queue_files", "Complete files waiting to be processed.", registry=r
        )
        self.channel_alive = Gauge(
            "wavedqm_channel_alive",
            "1 if the active channel saw a pulse above the flatline threshold in the last file.",
            ["adc", "channel"],
            registry=r,
        )
        self.channel_noise = Gauge(
            "wavedqm_channel_noise_adc",
            "Median pedestal noise (std) of the channel in the last file (ADC16 counts).",
            ["adc", "channel"],
            registry=r,
        )
        self.channel_baseline = Gauge(
            "wavedqm_channel_baseline_adc",
            "Median pedestal baseline of the channel in the last file (ADC16 counts).",
            ["adc", "channel"],
            registry=r,
        )
        self.channel_dead_streak = Gauge(
            "wavedqm_channel_dead_consecutive_files",
            "Consecutive files, up to the last one, in which the channel was newly dead.",
            ["adc", "channel"],
            registry=r,
        )
        self.channel_baseline_status = Gauge(
            "wavedqm_channel_baseline_status",
            "New baseline problem of the channel in the last file: 0 ok, -1 median out of "
            "range, 1 spread too wide, 2 shifted against previous files, 3 both 1 and 2.",
            ["adc", "channel"],
            registry=r,
        )
        self.dead_channels = Gauge(
            "wavedqm_dead_channels",
            "Active channels newly dead (flatline, not known dead) in the last file.",
            registry=r,
        )
        self.baseline_flagged_channels = Gauge(
            "wavedqm_baseline_flagged_channels",
            "Active channels with a new baseline problem in the last file.",
            registry=r,
        )
        self.tpc_ratio = {
            flag: Gauge(
                f"wavedqm_tpc_{flag}_ratio",
                f"Fraction of events with a {flag} waveform in the TPC, among events with a "
                "pulse above the ptp threshold in it, in the last file.",
                ["tpc", "trigger"],
                registry=r,
            )
            for flag in ("clipped", "negative")
        }
        self.adc_roi_power = Gauge(
            "wavedqm_adc_roi_power_volts2",
            "Median noise power summed over a region of interest of the spectrum, mean over "
            "the ADC's active channels, last file (V^2).",
            ["adc", "roi_mhz"],
            registry=r,
        )
        self.light_events = Gauge(
            "wavedqm_file_events",
            "Events in the last file, by trigger type.",
            ["trigger"],
            registry=r,
        )
        Gauge(
            "wavedqm_start_time_seconds", "Unix time the process started (s).", registry=r
        ).set_to_current_time()
        Gauge(
            "wavedqm_data_taking_expected",
            "1 while files are expected (config metrics.data_taking_expected).",
            registry=r,
        ).set(1.0 if data_taking_expected else 0.0)
        Gauge(
            "wavedqm_max_file_gap_seconds",
            "Longest expected gap between files before WavedqmNoRecentFiles fires (s).",
            registry=r,
        ).set(max_file_gap_seconds)
        Info("wavedqm_build", "wavedqm version.", registry=r).info({"version": __version__})

    def file_failed(self, reason: str) -> None:
        self.files_failed.labels(reason=reason).inc()

    def set_queue_size(self, n: int) -> None:
        self.queue_files.set(n)

    def file_processed(
        self,
        *,
        n_events: int,
        processing_seconds: float,
        latency_seconds: float | None,
        finished_at: float,
        light: LightResult | None,
        dead_streaks: np.ndarray | None = None,
        spectra: SpectraResult | None = None,
    ) -> None:
        """Record one successful file; per-channel gauges only change when it had light data."""
        self.files_processed.inc()
        self.events_processed.inc(n_events)
        self.processing_seconds.observe(processing_seconds)
        if latency_seconds is not None:
            self.latency_seconds.observe(max(latency_seconds, 0.0))
        if light is not None:
            self._light(light, dead_streaks)
        if spectra is not None:
            for adc, row in enumerate(spectra.roi_power_adc):
                for centre, power in zip(spectra.roi_centres_mhz, row, strict=True):
                    roi = {"adc": str(adc), "roi_mhz": f"{centre:g}"}
                    self.adc_roi_power.labels(**roi).set(float(power))
        self.last_file_timestamp.set(finished_at)

    def _light(self, light: LightResult, dead_streaks: np.ndarray | None) -> None:
        summary = light.to_dict()
        monitored = light.monitored
        noise = summary["noise_adc16"]
        baseline = summary["baseline_adc16"]
        new_status = np.zeros(light.monitored.shape)
        for adc, channel, code in light.baseline_flagged:
            new_status[adc, channel] = code
        for adc, channel in zip(*monitored.nonzero(), strict=True):
            labels = {"adc": str(adc), "channel": str(channel)}
            self.channel_alive.labels(**labels).set(1.0 if light.alive[adc, channel] else 0.0)
            self.channel_baseline_status.labels(**labels).set(new_status[adc, channel])
            if dead_streaks is not None:
                streak = float(dead_streaks[adc, channel])
                self.channel_dead_streak.labels(**labels).set(streak)
            self.channel_noise.labels(**labels).set(_gauge_value(noise[adc][channel]))
            self.channel_baseline.labels(**labels).set(_gauge_value(baseline[adc][channel]))
        self.dead_channels.set(len(light.dead_new))
        self.baseline_flagged_channels.set(len(light.baseline_flagged))
        for trigger, n in summary["events_by_trigger"].items():
            self.light_events.labels(trigger=trigger).set(n)
        for flag, gauge in self.tpc_ratio.items():
            for trigger in TRIGGER_SELECTIONS:
                tpc = summary["fractions"][flag][trigger]["tpc"]
                for i, value in enumerate(tpc["fraction"]):
                    gauge.labels(tpc=str(i), trigger=trigger).set(_gauge_value(value))


def _gauge_value(value: float | None) -> float:
    return math.nan if value is None else float(value)
