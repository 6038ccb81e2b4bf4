"""Per-file light DQM: accumulate kernel features over streamed batches, then summarise.

:class:`LightAccumulator` takes each batch with its :class:`~wavedqm.kernels.light.LightFeatures`
and keeps, for the selections "all", "beam" (trig_type 1) and "self" (trig_type 0):

- every event's baseline and noise (float32 ADC16, NaN where the waveform is missing:
  4 KB per event, so that medians and quantiles are exact; kept in fixed blocks, so memory is
  what was added, and summarised 64 channels at a time, so ``result`` adds little to it);
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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap, has_status_bit
from wavedqm.analysis.fractions import FlagCounter, Fraction
from wavedqm.analysis.stats import Spread, median_with_errors, nan_quantiles, shift_in_sigmas
from wavedqm.config import LightConfig
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.groups import tally_cells
from wavedqm.kernels.light import LightFeatures

SELECTIONS = ("all", "beam", "self")
FLAGS = ("clipped", "negative")
_TRIGGER_OF = {"beam": C.TRIG_BEAM, "self": C.TRIG_SELF}


STORE_BLOCK_ROWS = 1024
"""Events per storage block of the per-event baselines and noises (2 MB per block each)."""
MEDIAN_BLOCK_VALUES = 2**20
"""Values (events × channels) whose medians are taken at once: bounds the working copies of
``result`` (~12 MB) whatever the number of events."""


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


class _RowBlocks:
    """Append-only float32 rows of ``n_columns`` values in fixed blocks of ``block_rows`` rows:
    memory is what was appended (no capacity doubling, no copy when growing), read back a few
    columns at a time."""

    def __init__(self, n_columns: int, block_rows: int) -> None:
        self.n_columns = n_columns
        self._block_rows = block_rows
        self._blocks: list[np.ndarray] = []
        self._size = 0

    def append(self, rows: np.ndarray, missing: np.ndarray | None = None) -> None:
        """Copy ``rows`` (n, n_columns); NaN where ``missing`` (bool, same shape) is set."""
        n = rows.shape[0]
        done = 0
        while done < n:
            block, offset = divmod(self._size, self._block_rows)
            if block == len(self._blocks):
                self._blocks.append(np.empty((self._block_rows, self.n_columns), np.float32))
            k = min(n - done, self._block_rows - offset)
            dst = self._blocks[block][offset : offset + k]
            np.copyto(dst, rows[done : done + k])
            if missing is not None:
                dst[missing[done : done + k]] = np.nan
            done += k
            self._size += k

    def __len__(self) -> int:
        return self._size

    def columns(self, c0: int, c1: int) -> np.ndarray:
        """Columns ``[c0, c1)`` of every row, (n, c1 - c0) float32 (a copy)."""
        parts = []
        for i, block in enumerate(self._blocks):
            rows = min(self._block_rows, self._size - i * self._block_rows)
            parts.append(block[:rows, c0:c1])
        if not parts:
            return np.empty((0, c1 - c0), np.float32)
        return np.concatenate(parts)


def _spreads(
    store: _RowBlocks, masks: list[np.ndarray | None], cl: float, shape: tuple[int, ...]
) -> tuple[list[Spread], np.ndarray, np.ndarray]:
    """Per-channel median and quantile errors of ``store``'s rows selected by each mask (None:
    every row), a block of channels at a time (same numbers as whole arrays); and the quantile
    profile (``constants.QUALITY_PROFILE_LEVELS`` levels, float32, shape ``(*shape, L)``) of
    the first mask's rows, taken from the same sort, with their valid (non-NaN) counts."""
    n_cols = store.n_columns
    step = max(1, min(n_cols, MEDIAN_BLOCK_VALUES // max(1, len(store))))
    parts: list[list[Spread]] = [[] for _ in masks]
    levels = tuple(np.linspace(0.0, 1.0, C.QUALITY_PROFILE_LEVELS))
    profile = np.empty((n_cols, len(levels)), np.float32)
    valid = np.zeros(n_cols, np.int64)
    q_spread = ((1 - cl) / 2, 0.5, (1 + cl) / 2)
    for c0 in range(0, n_cols, step):
        c1 = min(n_cols, c0 + step)
        cols = store.columns(c0, c1)
        for i, (part, mask) in enumerate(zip(parts, masks, strict=True)):
            selected = cols if mask is None else cols[mask]
            if i:
                part.append(median_with_errors(selected, cl))
                continue
            q_lo, q_mid, q_hi, *q_profile = nan_quantiles(selected, q_spread + levels)
            part.append(Spread(median=q_mid, err_low=q_mid - q_lo, err_high=q_hi - q_mid))
            profile[c0:c1] = np.stack(q_profile, axis=-1)
            valid[c0:c1] = np.count_nonzero(~np.isnan(selected), axis=0)
    spreads = [
        Spread(
            median=np.concatenate([p.median for p in part]).reshape(shape),
            err_low=np.concatenate([p.err_low for p in part]).reshape(shape),
            err_high=np.concatenate([p.err_high for p in part]).reshape(shape),
        )
        for part in parts
    ]
    return spreads, profile.reshape(*shape, len(levels)), valid.reshape(shape)


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
    """int8: the channel-status CSV used (−1..7: bits 1 dead, 2 baseline, 4 noisy)."""
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
    profiles: dict[str, np.ndarray] = field(default_factory=dict)
    """``"baseline"``/``"noise"`` → per-channel quantiles over all events at the levels
    ``np.linspace(0, 1, QUALITY_PROFILE_LEVELS)`` (float32 (a×c×L), ADC16; NaN where the channel
    had no valid waveform): what the quality tests compare with a reference (not in JSON)."""
    valid_events: np.ndarray | None = None
    """int64 (a×c): events with a valid waveform of the channel (the profiles' counts)."""

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
            shift = np.abs(shift_in_sigmas(baseline, previous)) > C.BASELINE_SHIFT_SIGMAS
    status = np.full(median.shape, C.BASELINE_OK, np.int8)
    status[spread] = C.BASELINE_SPREAD
    status[shift] = C.BASELINE_SHIFT
    status[spread & shift] = C.BASELINE_SPREAD_AND_SHIFT
    status[out_of_range] = C.BASELINE_OUT_OF_RANGE
    return status


class LightAccumulator:
    """Accumulates one file's light features batch by batch (memory: 4 KB per event).

    Events of another trigger type than 0 and 1 count in "all" only. ``add`` costs about
    0.03 ms per 4-event batch on top of the kernel: every count of a batch (alive channels,
    clipped / negative by channel, EPCB, TPC, total, for the three selections) is taken in one
    numba pass (:mod:`wavedqm.kernels.groups`).
    """

    def __init__(self, cfg: LightConfig, channel_map: ChannelMap) -> None:
        if channel_map.shape != (cfg.n_adcs, cfg.n_channels):
            raise ValueError(
                f"channel map {channel_map.shape} does not match the config "
                f"({cfg.n_adcs}, {cfg.n_channels})"
            )
        self.cfg = cfg
        self.channel_map = channel_map
        self._baseline = _RowBlocks(channel_map.active.size, STORE_BLOCK_ROWS)
        self._noise = _RowBlocks(channel_map.active.size, STORE_BLOCK_ROWS)
        self._trig = _Growing((), np.uint8)
        self._time_min = math.inf
        self._time_max = -math.inf
        self._alive = np.zeros((len(SELECTIONS), channel_map.active.size), np.int64)
        """Events with the channel alive, per selection (rows in ``SELECTIONS`` order)."""
        self._counter = FlagCounter(channel_map, len(FLAGS), len(SELECTIONS))

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
        if valid is not None and valid.shape != shape:
            raise ValueError(f"valid {valid.shape} does not match the batch {shape}")
        if valid is not None and valid.all():
            valid = None
        trig = np.asarray(batch.trig_type, dtype=np.uint8)

        missing = None if valid is None else ~valid.reshape(n, -1)
        self._baseline.append(feats.baseline.reshape(n, -1), missing)
        self._noise.append(feats.noise.reshape(n, -1), missing)
        self._trig.append(trig)
        self._add_times(np.asarray(batch.time_s, dtype=np.float64))

        max_above = feats.max_above_baseline
        over = max_above > self.cfg.ptp_threshold_adc16
        alive = max_above >= self.cfg.flatline_threshold_adc16
        selections = np.empty((len(SELECTIONS), n), np.bool_)
        for i, sel in enumerate(SELECTIONS):
            if sel == "all":
                selections[i] = True
            else:
                np.equal(trig, _TRIGGER_OF[sel], out=selections[i])
        flags = np.stack([getattr(feats, flag) for flag in FLAGS])
        self._counter.add(flags, over, selections, valid)
        tally_cells(alive, self._alive, selections, valid)

    def _add_times(self, times: np.ndarray) -> None:
        """Widen [time_min, time_max] by the finite event times (s)."""
        if times.size == 0:
            return
        lo = float(np.fmin.reduce(times))  # NaN only if every time is NaN
        hi = float(np.fmax.reduce(times))
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN or inf: keep finite ones only
            times = times[np.isfinite(times)]
            if times.size == 0:
                return
            lo, hi = float(times.min()), float(times.max())
        self._time_min = min(self._time_min, lo)
        self._time_max = max(self._time_max, hi)

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
        masks = [None if sel == "all" else trig == _TRIGGER_OF[sel] for sel in SELECTIONS]
        baselines, baseline_profile, valid = _spreads(self._baseline, masks, cl, cmap.shape)
        noises, noise_profile, _ = _spreads(self._noise, masks, cl, cmap.shape)
        selections = {
            sel: SelectionSummary(
                n_events=int(trig.shape[0] if mask is None else np.count_nonzero(mask)),
                baseline=baselines[i],
                noise=noises[i],
                alive_events=self._alive[i].reshape(cmap.shape).copy(),
            )
            for i, (sel, mask) in enumerate(zip(SELECTIONS, masks, strict=True))
        }

        monitored = cmap.active & (known != C.STATUS_INACTIVE)
        alive = self._alive[SELECTIONS.index("all")].reshape(cmap.shape) > 0
        known_dead = has_status_bit(known, C.STATUS_KNOWN_DEAD)
        status, flagged_baseline = _baseline_verdict(
            selections["all"].baseline, monitored, known, self.cfg, previous
        )

        fractions = {
            flag: {
                sel: self._counter.fractions(FLAGS.index(flag), SELECTIONS.index(sel), cl)
                for sel in SELECTIONS
            }
            for flag in FLAGS
        }
        flagged_cells = {
            flag: monitored & (fractions[flag]["all"]["channel"].k > 0) for flag in FLAGS
        }
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
            profiles={"baseline": baseline_profile, "noise": noise_profile},
            valid_events=valid,
        )


def _baseline_verdict(
    baseline: Spread,
    monitored: np.ndarray,
    known: np.ndarray,
    cfg: LightConfig,
    previous: Spread | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(status, flagged)``: the baseline status of every channel (0 where not monitored) and
    the monitored channels flagged (status != 0 and not a known baseline problem)."""
    known_baseline = has_status_bit(known, C.STATUS_KNOWN_BASELINE)
    status = baseline_status(baseline, cfg, previous)
    status[~monitored] = C.BASELINE_OK
    return status, monitored & (status != C.BASELINE_OK) & ~known_baseline


def compare_with_previous(
    light: LightResult, cfg: LightConfig, previous: Spread | None
) -> LightResult:
    """``light`` (summarised without a comparison) with its baseline shift test made against
    ``previous``: the same result as :meth:`LightAccumulator.result` given ``previous``. Lets
    the file's pass over the waveforms run before the previous files are known (``wavedqm
    reprocess``: the pass on a worker, the comparison on the client, in data-time order)."""
    status, flagged = _baseline_verdict(
        light.baseline, light.monitored, light.known_status, cfg, previous
    )
    return replace(
        light,
        baseline_status=status,
        baseline_flagged=[(a, c, int(status[a, c])) for a, c in _cells(flagged)],
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
