"""Prometheus metrics of the shot processor, on the daemon's registry (no per-shot labels:
channels × metrics of the last shot, counters by channel and flag). Nothing here computes
physics: the methods take the analysis' results.

- ``wavedqm_shots_processed_total``, ``wavedqm_shots_failed_total{reason}``;
- ``wavedqm_shot_flags_total{channel,flag}``: channel flags raised, over all shots;
- ``wavedqm_shot_flagged{channel,flag}``: 1 when the last shot has that flag on the channel;
- ``wavedqm_shot_flag_streak{channel}``: how many of the latest shots in a row have a flag on
  the channel; ``wavedqm_shot_flag_streak_limit``: ``[shots] alert_streak`` (the alert
  WavedqmShotChannelFlagged compares the two);
- ``wavedqm_shot_metric{channel,metric}``: the last shot's metrics (NaN where undefined);
- ``wavedqm_shot_last_timestamp_seconds``: when the last shot was processed (Unix time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from wavedqm import constants as C
from wavedqm.analysis.shots import ChannelResult


class ShotMetrics:
    def __init__(self, registry: CollectorRegistry, alert_streak: int) -> None:
        r = registry
        self.processed = Counter("wavedqm_shots_processed_total", "Shots analysed.", registry=r)
        self.failed = Counter(
            "wavedqm_shots_failed_total", "Shot files that could not be analysed, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.flags_total = Counter(
            "wavedqm_shot_flags_total", "Quality flags raised, by channel and flag.",
            ["channel", "flag"], registry=r,
        )  # fmt: skip
        self.flagged = Gauge(
            "wavedqm_shot_flagged", "1 when the last shot has this flag on this channel.",
            ["channel", "flag"], registry=r,
        )  # fmt: skip
        self.streak = Gauge(
            "wavedqm_shot_flag_streak",
            "Latest shots in a row with a quality flag on this channel.",
            ["channel"], registry=r,
        )  # fmt: skip
        self.streak_limit = Gauge(
            "wavedqm_shot_flag_streak_limit",
            "Shots in a row flagged that fire WavedqmShotChannelFlagged ([shots] alert_streak).",
            registry=r,
        )
        self.streak_limit.set(alert_streak)
        self.metric = Gauge(
            "wavedqm_shot_metric", "The last shot's metrics, by channel and metric.",
            ["channel", "metric"], registry=r,
        )  # fmt: skip
        self.last = Gauge(
            "wavedqm_shot_last_timestamp_seconds", "When the last shot was analysed (Unix s).",
            registry=r,
        )  # fmt: skip

    def shot_failed(self, reason: str) -> None:
        self.failed.labels(reason=reason).inc()

    def shot_done(
        self, channels: Mapping[str, ChannelResult], streaks: Mapping[str, int], at: float
    ) -> None:
        self.processed.inc()
        self.last.set(at)
        for name, c in channels.items():
            for flag in C.SHOT_FLAGS:
                on = flag in c.flags
                self.flagged.labels(channel=name, flag=flag).set(1.0 if on else 0.0)
                counter = self.flags_total.labels(channel=name, flag=flag)
                if on:
                    counter.inc()
            for metric, value in c.metrics.items():
                v = value if math.isfinite(value) else math.nan
                self.metric.labels(channel=name, metric=metric).set(v)
            self.streak.labels(channel=name).set(streaks.get(name, 0))
