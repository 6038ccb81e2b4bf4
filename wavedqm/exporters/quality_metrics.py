"""Prometheus metrics of the quality tests against the reference run (issue 15).

- ``wavedqm_quality_channels{test, status}``: monitored channels per test and status in the last
  file (``test="worst"``: by the channel's worst test); every status pre-set to 0;
- ``wavedqm_channel_quality_status{adc, channel}``: the channel's worst status, −1 not enough
  data, 0 ok, 1 warning, 2 error (the 8×64 grid in one gauge);
- ``wavedqm_channel_alert_masked{adc, channel}``: 1 for a known-noisy channel (status-CSV bit
  4): the alert rules drop these with ``unless on(...)``; series only for masked channels;
- ``wavedqm_quality_status``: the last file's overall status (−1 also when no reference);
- ``wavedqm_quality_channels_failing_ratio``: fraction of monitored channels with an error, and
  ``wavedqm_quality_channels_failing_limit`` the configured limit for the alert;
- ``wavedqm_quality_reference_errors_total``: a reference that could not be used.

With no reference in use, the per-channel and per-test series are removed, so that a quality
alert resolves instead of holding the last value.
"""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from wavedqm import constants as C
from wavedqm.analysis.quality import QualityResult

WORST = "worst"


class QualityMetrics:
    """The quality gauges, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry, failing_limit: float) -> None:
        r = registry
        self.channels = Gauge(
            "wavedqm_quality_channels",
            "Monitored light channels per quality test and status in the last file "
            '(test="worst": by each channel\'s worst test).',
            ["test", "status"],
            registry=r,
        )
        self.channel_status = Gauge(
            "wavedqm_channel_quality_status",
            "Worst quality-test status of the light channel against the reference in the last "
            "file: -1 not enough data, 0 ok, 1 warning, 2 error.",
            ["adc", "channel"],
            registry=r,
        )
        self.alert_masked = Gauge(
            "wavedqm_channel_alert_masked",
            "1 for a channel marked known noisy in the channel-status CSV (bit 4): on the "
            "pages, kept out of the alerts.",
            ["adc", "channel"],
            registry=r,
        )
        self.status = Gauge(
            "wavedqm_quality_status",
            "Overall quality status of the last light file: -1 not enough data or no "
            "reference, 0 ok, 1 warning, 2 error.",
            registry=r,
        )
        self.failing_ratio = Gauge(
            "wavedqm_quality_channels_failing_ratio",
            "Fraction of the monitored light channels with a quality error in the last file.",
            registry=r,
        )
        self.failing_limit = Gauge(
            "wavedqm_quality_channels_failing_limit",
            "quality.channels_failing's error limit: a larger fraction of channels with an "
            "error fires WavedqmQualityChannelsFailing.",
            registry=r,
        )
        self.reference_errors = Counter(
            "wavedqm_quality_reference_errors",
            "Times the configured reference could not be read or did not fit a file.",
            registry=r,
        )
        self.status.set(C.QUALITY_NOT_ENOUGH)
        self.failing_ratio.set(math.nan)
        self.failing_limit.set(failing_limit)
        self._tests: set[str] = set()
        self._cells: set[tuple[str, str]] = set()
        self._masked: set[tuple[str, str]] = set()

    def file_done(self, quality: QualityResult | None, alert_masked: np.ndarray) -> None:
        """The gauges of one light file (``quality`` None: no reference in use);
        ``alert_masked``: bool (a×c), the known-noisy channels (with or without a reference:
        they are kept out of the noise alert too)."""
        self._set_masked(alert_masked)
        if quality is None:
            self._clear()
            return
        tests = {t.name: t.counts(quality.monitored) for t in quality.tests}
        tests[WORST] = {
            name: int(np.count_nonzero(quality.monitored & (quality.worst == code)))
            for code, name in C.QUALITY_STATUS_NAMES.items()
        }
        for name in self._tests - set(tests):
            for status in C.QUALITY_STATUS_NAMES.values():
                self.channels.remove(name, status)
        for name, counts in tests.items():
            for status, count in counts.items():
                self.channels.labels(test=name, status=status).set(count)
        self._tests = set(tests)
        cells = set()
        for adc, channel in zip(*np.nonzero(quality.monitored), strict=True):
            key = (str(adc), str(channel))
            cells.add(key)
            self.channel_status.labels(*key).set(int(quality.worst[adc, channel]))
        for key in self._cells - cells:
            self.channel_status.remove(*key)
        self._cells = cells
        self.status.set(quality.status)
        self.failing_ratio.set(quality.channels_failing)

    def _set_masked(self, alert_masked: np.ndarray) -> None:
        masked = {(str(a), str(c)) for a, c in zip(*np.nonzero(alert_masked), strict=True)}
        for key in masked:
            self.alert_masked.labels(*key).set(1)
        for key in self._masked - masked:
            self.alert_masked.remove(*key)
        self._masked = masked

    def _clear(self) -> None:
        for name in self._tests:
            for status in C.QUALITY_STATUS_NAMES.values():
                self.channels.remove(name, status)
        for key in self._cells:
            self.channel_status.remove(*key)
        self._tests, self._cells = set(), set()
        self.status.set(C.QUALITY_NOT_ENOUGH)
        self.failing_ratio.set(math.nan)
