"""Per-file light DQM: accumulate kernel features over streamed batches, then summarise.

:class:`LightAccumulator` takes each batch with its :class:`~wavedqm.kernels.light.LightFeatures`
and keeps, for the selections "all", "beam" (trig_type 1) and "self" (trig_type 0):

- every event's baseline and noise (float32 ADC16, NaN where the waveform is missing:
  4 KB per event, so that medians and quantiles are exact);
- per channel, the events whose max above baseline reaches the flatline threshold (alive);
- clipped and negative-excursion event counts by channel / EPCB / TPC / total
  (:mod:`wavedqm.analysis.fractions`).

:meth:`LightAccumulator.result` turns them into a :class:`LightResult` given the known channel
status (the channel-status CSV).

Conventions of the result (all ADC16 counts):

- A channel is *monitored* if it is active in the channel map and its known status is not −1.
  Only monitored channels appear in the lists (dead, flagged, clipped, negative).
- ``baseline_status`` codes (spec: light-dqm.md): −1 median baseline outside the range;
  1 68% spread (p84 − p16) over events above the limit; 2 median moved by more than 3σ
  against ``previous``; 3 both 1 and 2. −1 takes precedence over 1/2/3 (the baseline is
  wrong whatever its spread). Channels that are not monitored are 0 here (never flagged), and
  ``monitored`` tells them apart. A channel without any valid waveform has a NaN median and
  status 0: it is reported as dead instead.
- ``channel_status(result)``: the known status with the problems newly found in this file
  merged in as bits: new dead → 1, new baseline problem → 2, both → 3 (code = known | new).
  Known problems are never cleared; inactive channels stay −1. ``dead_channels`` and
  ``baseline_flagged`` in the result keep the new problems apart from the known ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.fractions import Fraction, GroupCounter
from wavedqm.analysis.stats import Spread, median_with_errors
from wavedqm.config import LightConfig
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import LightFeatures

SELECTIONS = ("all", "beam", "self")
FLAGS = ("clipped", "negative")
_TRIGGER_OF = {"beam": C.TRIG_BEAM, "self": C.TRIG_SELF}


class _Growing:
    """An append-only array along axis 0 with amortised O(1) appends (capacity doubling)."""

    def __init__(self, row_shape: tuple[int, ...], dtype: Any) -> None:
        self._data = np.empty((0, *row_shape), dtype)
        self._size = 0

    def append(self, rows: np.ndarray) -> None:
        n = rows.shape[0]
        if self._size + n > self._data.shape[0]:
            capacity = max(2 * self._data.shape[0], self._size + n, 16)
            grown = np.empty((capacity, *self._data.shape[1:]), self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : self._size + n] = rows
        self._size += n

    def view(self) -> np.ndarray:
        return self._data[: self._size]


@dataclass(frozen=True, eq=False)
class SelectionSummary:
    """Summary of one event selection ("all", "beam" or "self"); arrays are (a×c)."""

    n_events: int
    baseline: Spread
    """Median baseline with 16/84% quantile errors over events (ADC16)."""
    noise: Spread
    """Median noise with 16/84% quantile errors over events (ADC16)."""
    alive_events: np.ndarray
    """int64: events whose max above baseline is ≥ the flatline threshold."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_events": self.n_events,
            "baseline_adc16": _json(self.baseline.median),
            "baseline_err_adc16": [_json(self.baseline.err_low), _json(self.baseline.err_high)],
            "noise_adc16": _json(self.noise.median),
            "noise_err_adc16": [_json(self.noise.err_low), _json(self.noise.err_high)],
            "alive_events": self.alive_events.tolist(),
        }


@dataclass
class LightResult:
    """Light DQM of one file. Channel arrays are (n_adcs × n_channels); channel lists hold
    ``(adc, channel)`` pairs."""

    n_events: int
    events_by_trigger: dict[str, int]
    """Events with trig_type 1 ("beam") and 0 ("self")."""
    time_start_s: float | None
    """Unix time of the earliest event (s); None without events."""
    time_end_s: float | None
    selections: dict[str, SelectionSummary]
    channel_map: ChannelMap
    """The map used (active channels, EPCB and TPC of each channel)."""
    active: np.ndarray
    """bool: active in the channel map."""
    monitored: np.ndarray
    """bool: active and not marked inactive (−1) in the known status."""
    known_status: np.ndarray
    """int8: the channel-status CSV used (−1..3)."""
    alive: np.ndarray
    """bool: some event reached the flatline threshold."""
    dead_new: list[tuple[int, int]]
    """Monitored, not alive, not known dead (status 1 or 3): alert."""
    known_dead: list[tuple[int, int]]
    """Monitored channels with known status 1 or 3."""
    baseline_status: np.ndarray
    """int8: 0 ok, −1 out of range, 1 spread, 2 shift, 3 spread and shift (see module doc)."""
    baseline_flagged: list[tuple[int, int, int]]
    """``(adc, channel, status)``: monitored, status ≠ 0, not a known baseline problem (2/3)."""
    clipped_channels: list[tuple[int, int]]
    """Monitored channels with at least one clipped event."""
    negative_channels: list[tuple[int, int]]
    """Monitored channels with at least one negative excursion."""
    fractions: dict[str, dict[str, dict[str, Fraction]]] = field(default_factory=dict)
    """``fractions[flag][selection][granularity]``, flag "clipped"|"negative", selection
    "all"|"beam"|"self", granularity "channel"|"epcb"|"tpc"|"total"."""

    @property
    def baseline(self) -> Spread:
        """Baseline over all events."""
        return self.selections["all"].baseline

    @property
    def noise(self) -> Spread:
        """Noise over all events."""
        return self.selections["all"].noise

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: lists instead of arrays, NaN as None."""
        all_sel = self.selections["all"]
        return {
            "n_events": self.n_events,
            "events_by_trigger": dict(self.events_by_trigger),
            "time_start_s": self.time_start_s,
            "time_end_s": self.time_end_s,
            "noise_adc16": _json(all_sel.noise.median),
            "noise_err_adc16": [_json(all_sel.noise.err_low), _json(all_sel.noise.err_high)],
            "baseline_adc16": _json(all_sel.baseline.median),
            "baseline_err_adc16": [
                _json(all_sel.baseline.err_low),
                _json(all_sel.baseline.err_high),
            ],
            "selections": {name: s.to_dict() for name, s in self.selections.items()},
            "active": self.active.tolist(),
            "monitored": self.monitored.tolist(),
            "known_status": self.known_status.tolist(),
            "alive": self.alive.tolist(),
            "dead_channels": [list(c) for c in self.dead_new],
            "known_dead_channels": [list(c) for c in self.known_dead],
            "baseline_status": self.baseline_status.tolist(),
            "baseline_flagged": [list(c) for c in self.baseline_flagged],
            "clipped_channels": [list(c) for c in self.clipped_channels],
            "negative_channels": [list(c) for c in self.negative_channels],
            "fractions": {
                flag: {
                    sel: {g: f.to_dict() for g, f in by_gran.items()}
                    for sel, by_gran in by_sel.items()
                }
                for flag, by_sel in self.fractions.items()
            },
        }


def _json(a: np.ndarray) -> Any:
    """float array -> nested lists with NaN as None."""
    a = np.asarray(a, dtype=np.float64)
    obj = a.astype(object)
    obj[np.isnan(a)] = None
    return obj.tolist()


def _cells(mask: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(c)) for a, c in zip(*np.nonzero(mask), strict=True)]


def baseline_status(
    baseline: Spread, cfg: LightConfig, previous: Spread | None = None
) -> np.ndarray:
    """Baseline status codes (int8, shape of ``baseline.median``); see the module docstring.

    Shift: ``|median − previous.median| > 3σ``, σ the quadrature sum of the errors facing each
    other (current lower and previous upper error if the median went up, else current upper
    and previous lower), as the old tool. NaN anywhere means "not flagged" for that test.
    """
    lo, hi = cfg.baseline_range_adc16
    median = baseline.median
    with np.errstate(invalid="ignore"):
        out_of_range = (median < lo) | (median > hi)
        spread = baseline.width > cfg.baseline_spread_limit_adc16
        shift = np.zeros(median.shape, np.bool_)
        if previous is not None:
            if previous.median.shape != median.shape:
                raise ValueError(
                    f"previous: shape {previous.median.shape} (expected {median.shape})"
                )
            went_up = median > previous.median
            sigma = np.where(
                went_up,
                np.hypot(baseline.err_low, previous.err_high),
                np.hypot(baseline.err_high, previous.err_low),
            )
            shift = np.abs(median - previous.median) > 3 * sigma
    status = np.full(median.shape, C.BASELINE_OK, np.int8)
    status[spread] = C.BASELINE_SPREAD
    status[shift] = C.BASELINE_SHIFT
    status[spread & shift] = C.BASELINE_SPREAD_AND_SHIFT
    status[out_of_range] = C.BASELINE_OUT_OF_RANGE
    return status


class LightAccumulator:
    """Accumulates one file's light features batch by batch (memory: 4 KB per event).

    Events of another trigger type than 0 and 1 count in "all" only. ``add`` costs about
    0.5 ms per 32-event batch on top of the kernel.
    """

    def __init__(self, cfg: LightConfig, channel_map: ChannelMap) -> None:
        if channel_map.shape != (cfg.n_adcs, cfg.n_channels):
            raise ValueError(
                f"channel map {channel_map.shape} does not match the config "
                f"({cfg.n_adcs}, {cfg.n_channels})"
            )
        self.cfg = cfg
        self.channel_map = channel_map
        shape = channel_map.shape
        self._baseline = _Growing(shape, np.float32)
        self._noise = _Growing(shape, np.float32)
        self._trig = _Growing((), np.uint8)
        self._time_min = math.inf
        self._time_max = -math.inf
        self._alive = {s: np.zeros(shape, np.int64) for s in SELECTIONS}
        self._counters = {f: {s: GroupCounter(channel_map) for s in SELECTIONS} for f in FLAGS}

    @property
    def n_events(self) -> int:
        return int(self._trig.view().shape[0])

    def add(self, batch: WaveformBatch, feats: LightFeatures) -> None:
        """Add one batch; ``feats`` are the kernel features of ``batch.samples``.

        Copies what it keeps: ``batch`` and ``feats`` buffers may be reused afterwards.
        """
        n = batch.n_events
        shape = (n, *self.channel_map.shape)
        if feats.shape != shape:
            raise ValueError(f"features {feats.shape} do not match the batch {shape}")
        if n == 0:
            return
        valid = None if batch.valid is None else np.asarray(batch.valid, dtype=np.bool_)
        trig = np.asarray(batch.trig_type).astype(np.uint8)

        baseline = feats.baseline.astype(np.float32, copy=True)
        noise = feats.noise.astype(np.float32, copy=True)
        max_above = feats.max_above_baseline
        over = max_above > self.cfg.ptp_threshold_adc16
        alive = max_above >= self.cfg.flatline_threshold_adc16
        flags = {"clipped": feats.clipped, "negative": feats.negative}
        if valid is not None:
            baseline[~valid] = np.nan
            noise[~valid] = np.nan
            over &= valid
            alive &= valid
            flags = {k: v & valid for k, v in flags.items()}

        self._baseline.append(baseline)
        self._noise.append(noise)
        self._trig.append(trig)
        times = np.asarray(batch.time_s, dtype=np.float64)
        times = times[np.isfinite(times)]
        if times.size:
            self._time_min = min(self._time_min, float(times.min()))
            self._time_max = max(self._time_max, float(times.max()))

        for sel in SELECTIONS:
            mask = None if sel == "all" else trig == _TRIGGER_OF[sel]
            self._alive[sel] += (alive if mask is None else alive[mask]).sum(axis=0)
            for flag in FLAGS:
                self._counters[flag][sel].add(flags[flag], over, mask)

    def result(self, known_status: np.ndarray, previous: Spread | None = None) -> LightResult:
        """Summarise what was added so far.

        ``known_status``: int (a×c) channel-status codes (see
        :func:`~wavedqm.analysis.channels.read_channel_status`); ``previous``: the baseline of
        earlier files (rollup) for the 3σ shift test, or None.
        """
        cmap = self.channel_map
        known = np.asarray(known_status)
        if known.shape != cmap.shape:
            raise ValueError(f"known_status: shape {known.shape} (expected {cmap.shape})")
        known = known.astype(np.int8)
        cl = self.cfg.confidence_level
        trig = self._trig.view()
        baselines = self._baseline.view()
        noises = self._noise.view()

        selections = {}
        for sel in SELECTIONS:
            if sel == "all":
                b, nz = baselines, noises
            else:
                mask = trig == _TRIGGER_OF[sel]
                b, nz = baselines[mask], noises[mask]
            selections[sel] = SelectionSummary(
                n_events=int(b.shape[0]),
                baseline=median_with_errors(b, cl),
                noise=median_with_errors(nz, cl),
                alive_events=self._alive[sel].copy(),
            )

        monitored = cmap.active & (known != C.STATUS_INACTIVE)
        alive = self._alive["all"] > 0
        known_dead = np.isin(known, (C.STATUS_KNOWN_DEAD, C.STATUS_KNOWN_BOTH))
        known_baseline = np.isin(known, (C.STATUS_KNOWN_BASELINE, C.STATUS_KNOWN_BOTH))
        status = baseline_status(selections["all"].baseline, self.cfg, previous)
        status[~monitored] = C.BASELINE_OK

        fractions = {
            flag: {sel: self._counters[flag][sel].fractions(cl) for sel in SELECTIONS}
            for flag in FLAGS
        }
        flagged_cells = {
            flag: monitored & (fractions[flag]["all"]["channel"].k > 0) for flag in FLAGS
        }
        flagged_baseline = monitored & (status != C.BASELINE_OK) & ~known_baseline
        have_time = self._time_min <= self._time_max
        return LightResult(
            n_events=int(trig.shape[0]),
            events_by_trigger={
                sel: int(np.count_nonzero(trig == t)) for sel, t in _TRIGGER_OF.items()
            },
            time_start_s=self._time_min if have_time else None,
            time_end_s=self._time_max if have_time else None,
            selections=selections,
            channel_map=cmap,
            active=cmap.active.copy(),
            monitored=monitored,
            known_status=known,
            alive=alive,
            dead_new=_cells(monitored & ~alive & ~known_dead),
            known_dead=_cells(monitored & known_dead),
            baseline_status=status,
            baseline_flagged=[(a, c, int(status[a, c])) for a, c in _cells(flagged_baseline)],
            clipped_channels=_cells(flagged_cells["clipped"]),
            negative_channels=_cells(flagged_cells["negative"]),
            fractions=fractions,
        )


def channel_status(result: LightResult) -> np.ndarray:
    """Channel-status array for the output CSV: the known status with this file's new problems
    merged in (new dead → 1, new baseline problem → 2, both → 3; known codes kept; channels
    inactive in the map or in the known status stay −1). int8 (a×c)."""
    merged = result.known_status.astype(np.int8).copy()
    new = np.zeros(merged.shape, np.int8)
    for a, c in result.dead_new:
        new[a, c] |= C.STATUS_KNOWN_DEAD
    for a, c, _ in result.baseline_flagged:
        new[a, c] |= C.STATUS_KNOWN_BASELINE
    monitored = result.monitored
    merged[monitored] = np.maximum(merged[monitored], C.STATUS_GOOD) | new[monitored]
    merged[~monitored] = C.STATUS_INACTIVE
    return merged
