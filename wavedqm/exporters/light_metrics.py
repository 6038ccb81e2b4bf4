"""Prometheus metrics of the light processor (``.FLOW.hdf5`` light waveforms), on the process'
one registry.

Per-channel series (8x64) only where Grafana or an alert needs the channel: alive, noise,
baseline, baseline status, consecutive dead files. Per TPC: clipped and negative fractions; per
ADC: the noise power in the spectrum's regions of interest. Methods take analysis results,
never raw data.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from wavedqm.constants import TRIGGER_SELECTIONS

if TYPE_CHECKING:
    from wavedqm.analysis.light import LightResult
    from wavedqm.analysis.spectra import SpectraResult


class LightMetrics:
    """The light processor's gauges, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
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

    def file_done(
        self,
        light: LightResult,
        dead_streaks: np.ndarray | None = None,
        spectra: SpectraResult | None = None,
    ) -> None:
        """The gauges of one file with light data."""
        self._light(light, dead_streaks)
        if spectra is not None:
            for adc, row in enumerate(spectra.roi_power_adc):
                for centre, power in zip(spectra.roi_centres_mhz, row, strict=True):
                    roi = {"adc": str(adc), "roi_mhz": f"{centre:g}"}
                    self.adc_roi_power.labels(**roi).set(float(power))

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
