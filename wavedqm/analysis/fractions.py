"""Fractions of flagged events (clipped, negative) by channel, EPCB, TPC and in total.

One definition for every granularity (:func:`group_counts`), one streaming counter
(:class:`GroupCounter`) that sums its per-batch counts, and Clopper-Pearson intervals on top.

Semantics, for a set of events and a group of active channels (one channel, one EPCB, one
TPC; inactive channels never count):

- numerator ``k``: events in which some channel of the group is flagged;
- denominator ``n``: events in which some channel of the group has a max above baseline over
  the ptp threshold (strictly greater, as the old tool) *or is flagged*;
- ``"total"``: ``k`` = events in which some active channel is flagged, ``n`` = all events.

The "or is flagged" keeps ``k ≤ n``: a negative excursion does not imply a positive one over
the threshold, and a channel stuck at the clip level has no excursion at all, so the old tool's
literal denominator could be smaller than its numerator (fractions above 1, NaN intervals).

The "any channel of the group" reduction is per event, so with streamed data it is done per
batch and the integer counts are summed. ``k`` and ``n`` are kept so that fractions of several
files can be combined by summing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.intervals import clopper_pearson

GRANULARITIES = ("channel", "epcb", "tpc", "total")


@dataclass(frozen=True, eq=False)
class Fraction:
    """Counts and Clopper-Pearson interval, shape ``(n_adcs, n_channels)`` for "channel",
    ``(n_epcb,)``, ``(n_tpc,)``, or 0-d for "total"."""

    k: np.ndarray
    """int64: events flagged."""
    n: np.ndarray
    """int64: events in the denominator."""
    fraction: np.ndarray
    """float64 ``k/n`` (0 where ``n = 0``)."""
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_counts(
        cls, k: np.ndarray | int, n: np.ndarray | int, cl: float = C.CONFIDENCE_LEVEL
    ) -> Fraction:
        k_arr = np.asarray(k, dtype=np.int64)
        n_arr = np.asarray(n, dtype=np.int64)
        frac, lower, upper = clopper_pearson(k_arr, n_arr, cl)
        return cls(k=k_arr.copy(), n=n_arr.copy(), fraction=frac, lower=lower, upper=upper)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nested lists (or scalars for "total")."""
        return {
            "k": self.k.tolist(),
            "n": self.n.tolist(),
            "fraction": self.fraction.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
        }


class _GroupIndex:
    """Cells of each group in one contiguous run, for ``np.logical_or.reduceat``."""

    def __init__(self, group_of_cell: np.ndarray, n_groups: int) -> None:
        flat = group_of_cell.reshape(-1)
        members = np.flatnonzero(flat >= 0)
        order = members[np.argsort(flat[members], kind="stable")]
        groups_sorted = flat[order]
        self.n_groups = n_groups
        self.order = order
        self.present, self.starts = np.unique(groups_sorted, return_index=True)

    def any_per_event(self, cells: np.ndarray) -> np.ndarray:
        """``cells`` bool ``(n_events, n_cells)`` -> bool ``(n_events, n_present_groups)``."""
        if self.order.size == 0:
            return np.zeros((cells.shape[0], 0), np.bool_)
        return np.logical_or.reduceat(cells[:, self.order], self.starts, axis=1)

    def counts(self, cells: np.ndarray) -> np.ndarray:
        """Events with some cell of each group set: int64 ``(n_groups,)``."""
        out = np.zeros(self.n_groups, np.int64)
        out[self.present] = self.any_per_event(cells).sum(axis=0)
        return out


def _check(flags: np.ndarray, over_threshold: np.ndarray, channel_map: ChannelMap) -> None:
    if flags.shape != over_threshold.shape or flags.shape[1:] != channel_map.shape:
        raise ValueError(
            f"flags {flags.shape} and over_threshold {over_threshold.shape}: expected both "
            f"(n_events, {channel_map.n_adcs}, {channel_map.n_channels})"
        )


class GroupCounter:
    """Streaming counts of one flag (e.g. clipped) at every granularity.

    ``add`` each batch; ``counts``/``fraction`` give the totals so far.
    """

    def __init__(self, channel_map: ChannelMap) -> None:
        self.channel_map = channel_map
        self._index = {g: _GroupIndex(*channel_map.groups(g)) for g in ("epcb", "tpc")}
        self._k = {
            "channel": np.zeros(channel_map.shape, np.int64),
            "epcb": np.zeros(channel_map.n_epcb, np.int64),
            "tpc": np.zeros(channel_map.n_tpc, np.int64),
            "total": np.zeros((), np.int64),
        }
        self._n = {g: np.zeros_like(v) for g, v in self._k.items()}

    def add(
        self,
        flags: np.ndarray,
        over_threshold: np.ndarray,
        event_mask: np.ndarray | None = None,
    ) -> None:
        """Count one batch: ``flags`` and ``over_threshold`` bool ``(n, a, c)`` (already False
        for missing waveforms); ``event_mask`` bool ``(n,)`` selects the events (None: all)."""
        k, n = _batch_counts(flags, over_threshold, self.channel_map, event_mask, self._index)
        for g in GRANULARITIES:
            self._k[g] += k[g]
            self._n[g] += n[g]

    def counts(self, granularity: str) -> tuple[np.ndarray, np.ndarray]:
        """``(k, n)`` copies for one granularity."""
        _check_granularity(granularity)
        return self._k[granularity].copy(), self._n[granularity].copy()

    def fraction(self, granularity: str, cl: float = C.CONFIDENCE_LEVEL) -> Fraction:
        k, n = self.counts(granularity)
        return Fraction.from_counts(k, n, cl)

    def fractions(self, cl: float = C.CONFIDENCE_LEVEL) -> dict[str, Fraction]:
        return {g: self.fraction(g, cl) for g in GRANULARITIES}


def _check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: {granularity!r} (expected one of {GRANULARITIES})")


def _batch_counts(
    flags: np.ndarray,
    over_threshold: np.ndarray,
    channel_map: ChannelMap,
    event_mask: np.ndarray | None,
    index: dict[str, _GroupIndex] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    _check(flags, over_threshold, channel_map)
    if event_mask is not None:
        flags = flags[event_mask]
        over_threshold = over_threshold[event_mask]
    n_events = flags.shape[0]
    active = channel_map.active.reshape(-1)
    n_cells = active.size
    flagged = flags.reshape(n_events, n_cells) & active
    hit = (over_threshold.reshape(n_events, n_cells) | flagged) & active
    if index is None:
        index = {g: _GroupIndex(*channel_map.groups(g)) for g in ("epcb", "tpc")}
    k = {
        "channel": flagged.sum(axis=0, dtype=np.int64).reshape(channel_map.shape),
        "total": np.asarray(np.count_nonzero(flagged.any(axis=1)), np.int64),
    }
    n = {
        "channel": hit.sum(axis=0, dtype=np.int64).reshape(channel_map.shape),
        "total": np.asarray(n_events, np.int64),
    }
    for g in ("epcb", "tpc"):
        k[g] = index[g].counts(flagged)
        n[g] = index[g].counts(hit)
    return k, n


def group_counts(
    granularity: str,
    flags: np.ndarray,
    over_threshold: np.ndarray,
    channel_map: ChannelMap,
    event_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(k, n)`` of one set of events (see the module docstring for the definition)."""
    _check_granularity(granularity)
    k, n = _batch_counts(flags, over_threshold, channel_map, event_mask)
    return k[granularity], n[granularity]


def fraction_by(
    granularity: str,
    flags: np.ndarray,
    over_threshold: np.ndarray,
    channel_map: ChannelMap,
    event_mask: np.ndarray | None = None,
    cl: float = C.CONFIDENCE_LEVEL,
) -> Fraction:
    """Fraction of flagged events at one granularity, on whole (non-streamed) arrays.

    ``granularity``: "channel" | "epcb" | "tpc" | "total". ``flags``: bool ``(n, a, c)`` (clipped
    or negative, False where the waveform is missing); ``over_threshold``: bool ``(n, a, c)``
    max above baseline > ptp threshold; ``event_mask``: bool ``(n,)`` event selection.
    """
    k, n = group_counts(granularity, flags, over_threshold, channel_map, event_mask)
    return Fraction.from_counts(k, n, cl)
