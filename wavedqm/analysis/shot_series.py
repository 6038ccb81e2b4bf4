"""Across the shots of one series (a folder of shots): the records kept, timing references,
flag streaks, trends and the overlay envelope. Pure functions on records, no I/O (the store
is :mod:`wavedqm.exporters.shot_store`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wavedqm.analysis.shots import ChannelResult

SHOT_INDEX = "shot"
"""The x of a trend against the shot number (the numeric shot id, else the arrival index)."""


@dataclass
class ShotRecord:
    """What is kept of one shot: its id and place in the series, its control variables and
    every channel's result (metrics, flags, event time)."""

    shot_id: str
    index: int
    """Arrival order in the series (0-based); a shot processed again keeps its index."""
    source: str
    """The file's name."""
    processed_at: float
    """Unix time (s)."""
    n_samples: int
    dt_s: float
    t_start_s: float
    t_end_s: float
    control_vars: dict[str, float] = field(default_factory=dict)
    channels: dict[str, ChannelResult] = field(default_factory=dict)

    @property
    def number(self) -> float:
        """The shot number of trends: the id as a number when it is one, else the index."""
        try:
            return float(int(self.shot_id))
        except ValueError:
            return float(self.index)

    @property
    def flagged(self) -> bool:
        return any(c.flags for c in self.channels.values())

    def flags(self) -> dict[str, list[str]]:
        return {name: list(c.flags) for name, c in self.channels.items() if c.flags}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = {n: _finite_dict(asdict(c)) for n, c in self.channels.items()}
        return _finite_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShotRecord:
        channels = {
            n: ChannelResult(**{k: _nan(v) if k != "flags" and k != "metrics" else v
                                for k, v in c.items()})
            for n, c in d["channels"].items()
        }  # fmt: skip
        for c in channels.values():
            c.metrics = {k: _nan(v) for k, v in c.metrics.items()}
        fields = {k: _nan(v) for k, v in d.items() if k != "channels"}
        return cls(**fields, channels=channels)


def _nan(v: Any) -> Any:
    return math.nan if v is None else v


def _finite_dict(d: Any) -> Any:
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(d, dict):
        return {k: _finite_dict(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_finite_dict(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def ordered(records: Sequence[ShotRecord]) -> list[ShotRecord]:
    return sorted(records, key=lambda r: r.index)


def clean_event_times(records: Sequence[ShotRecord], channel: str, before: int) -> list[float]:
    """Event times (s) of ``channel`` in the shots before index ``before`` whose timing is
    usable and that were not timing outliers themselves: the timing reference."""
    times = []
    for r in ordered(records):
        c = r.channels.get(channel)
        if r.index >= before or c is None:
            continue
        if c.timing_usable and "timing_outlier" not in c.flags:
            times.append(c.event_time_s)
    return times


def flag_streak(records: Sequence[ShotRecord], channel: str) -> int:
    """How many of the latest shots in a row have a flag on ``channel``."""
    n = 0
    for r in reversed(ordered(records)):
        c = r.channels.get(channel)
        if c is None or not c.flags:
            break
        n += 1
    return n


@dataclass(frozen=True)
class TrendSeries:
    """One metric of one channel against x across the shots (NaN points dropped)."""

    x: np.ndarray
    y: np.ndarray
    flagged: np.ndarray
    """bool: the channel has a flag in that shot."""
    shot_ids: tuple[str, ...]


def trend(records: Sequence[ShotRecord], channel: str, metric: str, x: str) -> TrendSeries:
    """``metric`` of ``channel`` against ``x``: :data:`SHOT_INDEX` or a control variable."""
    xs, ys, fl, ids = [], [], [], []
    for r in ordered(records):
        c = r.channels.get(channel)
        if c is None:
            continue
        xv = r.number if x == SHOT_INDEX else r.control_vars.get(x, math.nan)
        yv = c.metrics.get(metric, math.nan)
        if math.isfinite(xv) and math.isfinite(yv):
            xs.append(xv)
            ys.append(yv)
            fl.append(bool(c.flags))
            ids.append(r.shot_id)
    return TrendSeries(np.asarray(xs), np.asarray(ys), np.asarray(fl, dtype=bool), tuple(ids))


def control_names(records: Sequence[ShotRecord]) -> list[str]:
    """Every control variable seen in the series, sorted."""
    return sorted({k for r in records for k in r.control_vars})


def channel_names(records: Sequence[ShotRecord]) -> list[str]:
    """Every channel seen in the series, in first-seen order."""
    return list(dict.fromkeys(n for r in ordered(records) for n in r.channels))


@dataclass(frozen=True)
class Trace:
    """A shot's channel reduced for overlays: block means on its own time axis (s)."""

    shot_id: str
    t: np.ndarray
    y: np.ndarray
    good: bool
    """No flag on the channel in that shot."""


@dataclass(frozen=True)
class Envelope:
    """Mean ± std of the good shots' traces on the time axis ``t`` (s)."""

    t: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    shots: int


def envelope(traces: Sequence[Trace]) -> Envelope | None:
    """The envelope of the good traces, each interpolated onto the time axis of the last
    one (NaN outside a trace's span); None with fewer than 2 good traces."""
    good = [tr for tr in traces if tr.good]
    if len(good) < 2:
        return None
    axis = good[-1].t
    stack = np.vstack([np.interp(axis, tr.t, tr.y, left=np.nan, right=np.nan) for tr in good])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are NaN
        mean = np.nanmean(stack, axis=0)
        std = np.nanstd(stack, axis=0)
    return Envelope(axis, mean, std, len(good))
