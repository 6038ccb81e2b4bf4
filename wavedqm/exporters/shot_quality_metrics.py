"""Prometheus metrics of the shots' quality tests against the reference run (issue 15). Nothing
here computes physics: it exports :class:`~wavedqm.analysis.shot_quality.ShotQualityResult`.

- ``wavedqm_shots_quality_status{channel, test}``: the last shot's status of each test on each
  channel: −1 not enough data, 0 ok, 1 warning, 2 error;
- ``wavedqm_shots_quality_worst_status{channel}``: the channel's worst test in the last shot;
- ``wavedqm_shots_quality_value{channel, test}``: the test's value (ratio, σ or the metric
  itself; NaN when undefined);
- ``wavedqm_shots_quality_error_streak{channel}``: how many of the latest shots in a row the
  channel had a quality error in (WavedqmShotQualityError compares it with
  ``wavedqm_shot_flag_streak_limit``, ``[shots] alert_streak``). Counted by the running daemon:
  it starts again from 0 after a restart;
- ``wavedqm_shots_quality_reference_errors_total``: the shots part of the reference in use
  could not be used.

The series exist from the first shot tested; a (channel, test) the last shot did not have is
removed, and with no reference in use every series is, so that an alert resolves instead of
holding the last value.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge

from wavedqm.analysis.shot_quality import ShotQualityResult
from wavedqm.constants import QUALITY_ERROR


class ShotQualityMetrics:
    """The shot quality gauges, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.status = Gauge(
            "wavedqm_shots_quality_status",
            "Status of a quality test of the channel against the reference in the last shot: "
            "-1 not enough data, 0 ok, 1 warning, 2 error.",
            ["channel", "test"], registry=r,
        )  # fmt: skip
        self.worst = Gauge(
            "wavedqm_shots_quality_worst_status",
            "Worst quality-test status of the channel against the reference in the last shot: "
            "-1 not enough data, 0 ok, 1 warning, 2 error.",
            ["channel"], registry=r,
        )  # fmt: skip
        self.value = Gauge(
            "wavedqm_shots_quality_value",
            "Value of a quality test of the channel in the last shot (range: the metric; "
            "ratio: over the reference median; sigma: (value - mean) / std); NaN: undefined.",
            ["channel", "test"], registry=r,
        )  # fmt: skip
        self.error_streak = Gauge(
            "wavedqm_shots_quality_error_streak",
            "Latest shots in a row in which the channel had a quality error against the "
            "reference (counted since the daemon started).",
            ["channel"], registry=r,
        )  # fmt: skip
        self.reference_errors = Counter(
            "wavedqm_shots_quality_reference_errors",
            "Times the shots part of the reference in use could not be read or decoded.",
            registry=r,
        )
        self._cells: set[tuple[str, str]] = set()
        self._channels: set[str] = set()
        self._streaks: dict[str, int] = {}

    def shot_done(self, quality: ShotQualityResult | None) -> None:
        """The gauges of one shot (``quality`` None: no reference in use)."""
        if quality is None:
            self._drop(self._cells, self._channels)
            self._cells, self._channels, self._streaks = set(), set(), {}
            return
        cells = set()
        for test in quality.tests:
            for channel, ct in test.channels.items():
                cells.add((channel, test.name))
                self.status.labels(channel=channel, test=test.name).set(ct.status)
                v = ct.value if math.isfinite(ct.value) else math.nan
                self.value.labels(channel=channel, test=test.name).set(v)
        streaks = {}
        for channel, code in quality.worst.items():
            self.worst.labels(channel=channel).set(code)
            streaks[channel] = self._streaks.get(channel, 0) + 1 if code >= QUALITY_ERROR else 0
            self.error_streak.labels(channel=channel).set(streaks[channel])
        self._streaks = streaks
        channels = set(quality.worst)
        self._drop(self._cells - cells, self._channels - channels)
        self._cells, self._channels = cells, channels

    def _drop(self, cells: set[tuple[str, str]], channels: set[str]) -> None:
        for channel, test in cells:
            self.status.remove(channel, test)
            self.value.remove(channel, test)
        for channel in channels:
            self.worst.remove(channel)
            self.error_streak.remove(channel)
