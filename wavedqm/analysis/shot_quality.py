"""Quality tests of the shots against a reference run (pure, no I/O).

The reference part (:class:`ShotReference`) holds, per channel and per quantity (the shot
metrics of :data:`wavedqm.constants.SHOT_METRICS` plus the baseline region's mean and std,
``baseline_mean`` / ``baseline_std``, in the channel's units or s / Hz / units·s as the metric),
the distribution over the reference's *good* shots of that channel (no flag on it): count,
mean, standard deviation (``ddof=1``), median and a quantile profile (the levels of
:func:`~wavedqm.analysis.quality_stats.profile_levels`); and where it came from (one source
entry per shot file).

Each configured test (``[quality.shot_tests.<name>]``: quantity, kind, ``warning`` and
``error`` intervals, ``min_events``) gives every channel of a shot a value and a status: ok
inside ``warning``, warning inside ``error``, error outside, not enough data when the reference
has fewer than ``min_events`` good shots of the channel with that quantity, or the value is
undefined (the metric does not apply to the channel or is NaN, a median or std of 0). Kinds:

- ``range``: the shot's value itself;
- ``ratio``: the value / the reference median;
- ``sigma``: (value − reference mean) / reference std.

A channel's worst status is the highest of its tests (not enough data only when every test
said so); the shot's status the highest of its channels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.quality_stats import grade, profile_levels
from wavedqm.analysis.ratag_fields import json_bounds, json_num

if TYPE_CHECKING:  # not imported at run time: the configuration imports this module
    from wavedqm.analysis.shot_series import ShotRecord
    from wavedqm.analysis.shots import ChannelResult
    from wavedqm.config_sections import QualityTestConfig

KIND = "shots"
"""The reference part's kind (``STATE/references/shots/<name>.npz``)."""
BASELINE_QUANTITIES = ("baseline_mean", "baseline_std")
"""Besides the metrics: the baseline region's mean and std (the channel's noise, its units)."""
QUANTITIES = (*C.SHOT_METRICS, *BASELINE_QUANTITIES)
KINDS = ("range", "ratio", "sigma")
KINDS_BY_QUANTITY: dict[str, tuple[str, ...]] = {q: KINDS for q in QUANTITIES}
"""Quantity -> the test kinds that apply to it."""
MIN_REFERENCE_SHOTS = 5
"""Default ``min_events`` (good reference shots of the channel): a std from fewer than five
values is off by more than a third (its relative error is about 1/√(2(n−1)))."""
INF = math.inf
DEFAULT_TESTS: dict[str, dict[str, object]] = {
    "peak_level": {"quantity": "peak", "kind": "ratio", "warning": (0.67, 1.5),
                   "error": (0.55, 1.8), "min_events": MIN_REFERENCE_SHOTS},
    "peak_time": {"quantity": "time_of_peak", "kind": "sigma", "warning": (-4.0, 4.0),
                  "error": (-6.0, 6.0), "min_events": MIN_REFERENCE_SHOTS},
    "noise_level": {"quantity": "baseline_std", "kind": "ratio", "warning": (0.8, 1.25),
                    "error": (0.57, 1.75), "min_events": MIN_REFERENCE_SHOTS},
}  # fmt: skip
"""The tests when none is configured (name -> QualityTestConfig keyword arguments):

- ``peak_level``: the peak over the good shots' median. Good shots differ by their control
  variables (±25 % in the simulated run), which stays inside [0.67, 1.5]; a peak that halves
  (0.5 < 0.55) is an error, one down to 60 % a warning;
- ``peak_time``: the time of the peak in σ of the good shots' spread (the trigger jitter): a
  clean shot stays well inside ±4 σ, a late discharge (the simulator's 150 µs, ~10 σ) is an
  error;
- ``noise_level``: the baseline region's std over the good shots' median, the light tests'
  thresholds (its estimate from a few hundred samples is good to a few %): 1.5× the noise
  warns, 2× is an error.
"""


@dataclass(frozen=True)
class MetricStats:
    """One channel's distribution of one quantity over the reference's good shots."""

    count: int
    mean: float
    std: float
    """Sample standard deviation (``ddof=1``); NaN with fewer than two shots."""
    median: float

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": json_num(self.mean), "std": json_num(self.std),
                "median": json_num(self.median)}  # fmt: skip


@dataclass(eq=False)
class ShotReference:
    """The shots part of a reference (see module doc); arrays are (channels × quantities)."""

    name: str
    created_at: float
    """Unix time it was made (s)."""
    sources: list[dict[str, Any]]
    """One entry per shot: ``file``, ``series``, ``shot_id``, ``good_channels``, ``flags``."""
    channels: tuple[str, ...]
    quantities: tuple[str, ...]
    count: np.ndarray
    """int64: good shots with a finite value."""
    mean: np.ndarray
    std: np.ndarray
    median: np.ndarray
    profile: np.ndarray
    """(channels × quantities × L) float64 quantiles at ``profile_levels(L)``, NaN without
    shots."""

    def __post_init__(self) -> None:
        shape = (len(self.channels), len(self.quantities))
        for name in ("count", "mean", "std", "median"):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name}: shape {np.shape(getattr(self, name))} "
                                 f"(expected {shape}: channels x quantities)")  # fmt: skip
        if np.ndim(self.profile) != 3 or np.shape(self.profile)[:2] != shape:
            raise ValueError(f"profile: shape {np.shape(self.profile)} (expected {shape} x levels)")

    @property
    def n_shots(self) -> int:
        return len(self.sources)

    def stats(self, channel: str, quantity: str) -> MetricStats | None:
        """The distribution of ``quantity`` on ``channel`` (None: not in the reference)."""
        if channel not in self.channels or quantity not in self.quantities:
            return None
        i, j = self.channels.index(channel), self.quantities.index(quantity)
        return MetricStats(int(self.count[i, j]), float(self.mean[i, j]),
                           float(self.std[i, j]), float(self.median[i, j]))  # fmt: skip

    def good_shots(self) -> dict[str, int]:
        """Good shots per channel."""
        return {c: sum(c in s.get("good_channels", ()) for s in self.sources)
                for c in self.channels}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (``wavedqm reference show`` and the shot JSON)."""
        return {
            "name": self.name,
            "created_at": self.created_at,
            "shots": self.n_shots,
            "series": sorted({str(s.get("series", "")) for s in self.sources}),
            "good_shots_by_channel": self.good_shots(),
        }


def quantity_value(result: ChannelResult, quantity: str) -> float:
    """The value of ``quantity`` in one channel's result (NaN when absent or undefined)."""
    if quantity in BASELINE_QUANTITIES:
        return float(getattr(result, quantity))
    return float(result.metrics.get(quantity, math.nan))


def build_shot_reference(
    name: str,
    shots: Sequence[tuple[dict[str, Any], ShotRecord]],
    created_at: float,
    n_levels: int = C.QUALITY_PROFILE_LEVELS,
) -> ShotReference:
    """The reference of ``shots`` (``(source entry, record)``, flags judged): per channel the
    distributions over the shots with no flag on it. Raises ValueError without any good
    channel value."""
    channels = list(dict.fromkeys(c for _, r in shots for c in r.channels))
    levels = profile_levels(n_levels)
    shape = (len(channels), len(QUANTITIES))
    count = np.zeros(shape, np.int64)
    mean, std, median = (np.full(shape, np.nan) for _ in range(3))
    profile = np.full((*shape, n_levels), np.nan)
    for i, channel in enumerate(channels):
        good = [r.channels[channel] for _, r in shots
                if channel in r.channels and not r.channels[channel].flags]  # fmt: skip
        for j, quantity in enumerate(QUANTITIES):
            v = np.asarray([quantity_value(c, quantity) for c in good], np.float64)
            v = v[np.isfinite(v)]
            count[i, j] = v.size
            if v.size:
                mean[i, j], median[i, j] = float(v.mean()), float(np.median(v))
                std[i, j] = float(v.std(ddof=1)) if v.size > 1 else math.nan
                profile[i, j] = np.quantile(v, levels)
    if not count.any():
        raise ValueError(f"no good channel in any of the {len(shots)} shots (every channel of "
                         "every shot has a quality flag)")  # fmt: skip
    sources = [dict(entry, good_channels=[c for c, r in rec.channels.items() if not r.flags],
                    flags=rec.flags()) for entry, rec in shots]  # fmt: skip
    return ShotReference(name, created_at, sources, tuple(channels), QUANTITIES, count, mean,
                         std, median, profile)  # fmt: skip


def encode_reference(ref: ShotReference) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` to store (``reference_sections.save_section``)."""
    meta = {
        "created_at": ref.created_at,
        "sources": ref.sources,
        "channels": list(ref.channels),
        "quantities": list(ref.quantities),
        "summary": {k: v for k, v in ref.describe().items() if k not in ("name", "created_at")},
    }
    arrays = {"count": ref.count, "mean": ref.mean, "std": ref.std, "median": ref.median,
              "profile": ref.profile}  # fmt: skip
    return meta, arrays


def decode_reference(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ShotReference:
    """The reference of a stored part; ValueError (or KeyError) when it does not fit."""
    channels = tuple(str(c) for c in meta["channels"])
    quantities = tuple(str(q) for q in meta["quantities"])
    unknown = set(quantities) - set(QUANTITIES)
    if unknown:
        raise ValueError(f"unknown quantities {sorted(unknown)} (expected some of {QUANTITIES})")
    return ShotReference(
        name=str(meta["name"]), created_at=float(meta["created_at"]),
        sources=list(meta["sources"]), channels=channels, quantities=quantities,
        count=np.asarray(arrays["count"], np.int64), mean=np.asarray(arrays["mean"], float),
        std=np.asarray(arrays["std"], float), median=np.asarray(arrays["median"], float),
        profile=np.asarray(arrays["profile"], float),
    )  # fmt: skip


def kind_value(kind: str, value: float, stats: MetricStats) -> float:
    """The value of a test of ``kind`` (NaN when undefined: NaN value, median or std 0)."""
    if not math.isfinite(value):
        return math.nan
    if kind == "range":
        return value
    if kind == "ratio":
        ok = math.isfinite(stats.median) and stats.median != 0
        return value / stats.median if ok else math.nan
    if kind == "sigma":
        ok = math.isfinite(stats.std) and stats.std > 0 and math.isfinite(stats.mean)
        return (value - stats.mean) / stats.std if ok else math.nan
    raise ValueError(f"test kind {kind!r} (expected one of {KINDS})")


@dataclass(frozen=True)
class ChannelTest:
    """One test on one channel of one shot."""

    measured: float
    """The shot's value of the quantity (its units)."""
    value: float
    """The test's value (the kind's units; NaN: not enough data)."""
    status: int
    reference: MetricStats | None

    def to_dict(self) -> dict[str, Any]:
        ref = None if self.reference is None else self.reference.to_dict()
        return {"measured": json_num(self.measured), "value": json_num(self.value),
                "status": C.QUALITY_STATUS_NAMES[self.status], "reference": ref}  # fmt: skip


@dataclass(frozen=True)
class ShotTestOutcome:
    """One configured test over the channels of a shot."""

    name: str
    quantity: str
    kind: str
    warning: tuple[float, float]
    error: tuple[float, float]
    min_events: int
    channels: dict[str, ChannelTest]


@dataclass(frozen=True)
class ShotQualityResult:
    """Every test of one shot against one reference."""

    reference: str
    reference_shots: int
    tests: list[ShotTestOutcome]
    worst: dict[str, int]
    """Channel -> the highest status of its tests."""

    @property
    def status(self) -> int:
        """The shot's status: the worst of its channels (not enough data without any)."""
        return max(self.worst.values(), default=C.QUALITY_NOT_ENOUGH)

    def failed(self) -> list[dict[str, Any]]:
        """Each (test, channel) with a warning or an error, errors first."""
        rows = [
            {"test": t.name, "quantity": t.quantity, "kind": t.kind, "channel": channel,
             "status": C.QUALITY_STATUS_NAMES[ct.status], "value": json_num(ct.value),
             "measured": json_num(ct.measured), "warning": json_bounds(t.warning),
             "error": json_bounds(t.error)}
            for t in self.tests for channel, ct in t.channels.items()
            if ct.status >= C.QUALITY_WARNING
        ]  # fmt: skip
        rows.sort(key=lambda r: (r["status"] != "error", r["test"], r["channel"]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The ``quality`` section of the shot's JSON."""
        return {
            "reference": self.reference,
            "reference_shots": self.reference_shots,
            "status": C.QUALITY_STATUS_NAMES[self.status],
            "tests": {
                t.name: {"quantity": t.quantity, "kind": t.kind, "warning": json_bounds(t.warning),
                         "error": json_bounds(t.error), "min_events": t.min_events,
                         "channels": {c: ct.to_dict() for c, ct in t.channels.items()}}
                for t in self.tests
            },
            "worst_by_channel": {c: C.QUALITY_STATUS_NAMES[s] for c, s in self.worst.items()},
            "failed": self.failed(),
        }  # fmt: skip


def evaluate_shot(
    channels: Mapping[str, ChannelResult],
    reference: ShotReference,
    tests: Mapping[str, QualityTestConfig],
) -> ShotQualityResult:
    """Run every test in ``tests`` on every channel of a shot against ``reference``."""
    outcomes = []
    for name, test in tests.items():
        per_channel = {}
        for channel, result in channels.items():
            measured = quantity_value(result, test.quantity)
            stats = reference.stats(channel, test.quantity)
            value = math.nan
            if stats is not None and stats.count >= test.min_events:
                value = kind_value(test.kind, measured, stats)
            status = int(grade(np.asarray(value), test.warning, test.error))
            per_channel[channel] = ChannelTest(measured, value, status, stats)
        outcomes.append(ShotTestOutcome(name, test.quantity, test.kind, test.warning,
                                        test.error, test.min_events, per_channel))  # fmt: skip
    worst = {
        channel: max((t.channels[channel].status for t in outcomes),
                     default=C.QUALITY_NOT_ENOUGH)
        for channel in channels
    }  # fmt: skip
    return ShotQualityResult(reference.name, reference.n_shots, outcomes, worst)


def reference_bands(
    reference: ShotReference | None, metrics: Sequence[str], channels: Sequence[str]
) -> dict[tuple[str, str], MetricStats]:
    """``(metric, channel) -> its distribution`` in ``reference`` (the trend plots' bands);
    empty without a reference, channels and metrics it lacks left out."""
    if reference is None:
        return {}
    bands = {}
    for metric in metrics:
        for channel in channels:
            stats = reference.stats(channel, metric)
            if stats is not None and stats.count:
                bands[(metric, channel)] = stats
    return bands


def peak_band(
    reference: ShotReference | None, channel: str
) -> tuple[MetricStats, MetricStats] | None:
    """``(time_of_peak, peak)`` distributions of ``channel`` (the overlay's reference peak);
    None without a reference or either of them."""
    if reference is None:
        return None
    t, y = reference.stats(channel, "time_of_peak"), reference.stats(channel, "peak")
    if t is None or y is None or not t.count or not y.count:
        return None
    return t, y
