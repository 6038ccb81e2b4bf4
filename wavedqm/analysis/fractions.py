"""Fractions of flagged events (clipped, negative) by channel, EPCB, TPC and in total.

One definition for every granularity (:func:`group_counts`), streaming counters that sum
their per-batch counts (:class:`GroupCounter` for one flag, :class:`FlagCounter` for several
flags and event selections at once, both on the numba kernel
:func:`wavedqm.kernels.groups.count_groups`), and Clopper-Pearson intervals on top.

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
batch (every flag, selection and granularity in one pass over the batch) and the integer counts
are summed. ``k`` and ``n`` are kept so that fractions of several
files can be combined by summing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.intervals import clopper_pearson
from wavedqm.kernels.groups import GroupCounts, count_groups

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


_GROUPINGS = ("epcb", "tpc")
"""Granularities made of channel groups, in the order of the counting kernel's groupings."""


def _check(flags: np.ndarray, over_threshold: np.ndarray, channel_map: ChannelMap) -> None:
    if flags.shape != over_threshold.shape or flags.shape[1:] != channel_map.shape:
        raise ValueError(
            f"flags {flags.shape} and over_threshold {over_threshold.shape}: expected both "
            f"(n_events, {channel_map.n_adcs}, {channel_map.n_channels})"
        )


def _check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: {granularity!r} (expected one of {GRANULARITIES})")


class FlagCounter:
    """Streaming counts of ``n_flags`` flags (e.g. clipped, negative) for ``n_selections``
    event selections (e.g. all, beam, self) at every granularity.

    ``add`` each batch (one pass of :func:`wavedqm.kernels.groups.count_groups` for all flags
    and selections); ``counts``/``fraction`` give the totals so far.
    """

    def __init__(self, channel_map: ChannelMap, n_flags: int = 1, n_selections: int = 1) -> None:
        self.channel_map = channel_map
        self.n_flags = int(n_flags)
        self.n_selections = int(n_selections)
        self._active = np.array(channel_map.active, dtype=np.bool_)  # writeable: one numba type
        self._groups = np.stack([channel_map.groups(g)[0] for g in _GROUPINGS])
        self._n_groups = tuple(channel_map.groups(g)[1] for g in _GROUPINGS)
        self._counts = GroupCounts.zeros(
            self.n_flags, self.n_selections, channel_map.active.size, self._n_groups
        )

    def add(
        self,
        flags: np.ndarray,
        over_threshold: np.ndarray,
        selections: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Count one batch. ``flags``: bool ``(n_flags, n, a, c)``; ``over_threshold``: bool
        ``(n, a, c)``; ``selections``: bool ``(n_selections, n)`` (None: every event, only
        with one selection); ``valid``: bool ``(n, a, c)`` waveform present (None: all).
        Flags and excursions of missing waveforms never count."""
        flags = np.asarray(flags)
        if flags.ndim != 4 or flags.shape[0] != self.n_flags:
            raise ValueError(f"flags: shape {flags.shape} (expected ({self.n_flags}, n, a, c))")
        _check(flags[0], over_threshold, self.channel_map)
        if valid is not None and np.shape(valid) != over_threshold.shape:
            raise ValueError(f"valid: shape {np.shape(valid)} (expected {over_threshold.shape})")
        if selections is None and self.n_selections != 1:
            raise ValueError(f"selections: None with {self.n_selections} selections")
        count_groups(
            flags,
            over_threshold,
            self._active,
            self._groups,
            self._counts,
            selections,
            valid,
        )

    def counts(
        self, granularity: str, flag: int = 0, selection: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(k, n)`` copies for one granularity, flag and selection."""
        _check_granularity(granularity)
        c = self._counts
        if granularity == "channel":
            shape = self.channel_map.shape
            return (
                c.k_cell[flag, selection].reshape(shape).copy(),
                c.n_cell[flag, selection].reshape(shape).copy(),
            )
        if granularity == "total":
            return np.asarray(c.k_total[flag, selection]), np.asarray(c.n_total[selection])
        g = _GROUPINGS.index(granularity)
        m = self._n_groups[g]
        return c.k_group[flag, selection, g, :m].copy(), c.n_group[flag, selection, g, :m].copy()

    def fraction(
        self,
        granularity: str,
        flag: int = 0,
        selection: int = 0,
        cl: float = C.CONFIDENCE_LEVEL,
    ) -> Fraction:
        k, n = self.counts(granularity, flag, selection)
        return Fraction.from_counts(k, n, cl)

    def fractions(
        self, flag: int = 0, selection: int = 0, cl: float = C.CONFIDENCE_LEVEL
    ) -> dict[str, Fraction]:
        return {g: self.fraction(g, flag, selection, cl) for g in GRANULARITIES}


class GroupCounter:
    """Streaming counts of one flag (e.g. clipped) at every granularity.

    ``add`` each batch; ``counts``/``fraction`` give the totals so far.
    """

    def __init__(self, channel_map: ChannelMap) -> None:
        self.channel_map = channel_map
        self._counter = FlagCounter(channel_map)

    def add(
        self,
        flags: np.ndarray,
        over_threshold: np.ndarray,
        event_mask: np.ndarray | None = None,
    ) -> None:
        """Count one batch: ``flags`` and ``over_threshold`` bool ``(n, a, c)`` (already False
        for missing waveforms); ``event_mask`` bool ``(n,)`` selects the events (None: all)."""
        _check(flags, over_threshold, self.channel_map)
        selections = None
        if event_mask is not None:
            mask = np.asarray(event_mask, dtype=np.bool_)
            if mask.shape != flags.shape[:1]:
                raise ValueError(f"event_mask: shape {mask.shape} (expected {flags.shape[:1]})")
            selections = mask[None, :]
        self._counter.add(flags[None], over_threshold, selections)

    def counts(self, granularity: str) -> tuple[np.ndarray, np.ndarray]:
        """``(k, n)`` copies for one granularity."""
        return self._counter.counts(granularity)

    def fraction(self, granularity: str, cl: float = C.CONFIDENCE_LEVEL) -> Fraction:
        return self._counter.fraction(granularity, cl=cl)

    def fractions(self, cl: float = C.CONFIDENCE_LEVEL) -> dict[str, Fraction]:
        return self._counter.fractions(cl=cl)


def group_counts(
    granularity: str,
    flags: np.ndarray,
    over_threshold: np.ndarray,
    channel_map: ChannelMap,
    event_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(k, n)`` of one set of events (see the module docstring for the definition)."""
    _check_granularity(granularity)
    counter = GroupCounter(channel_map)
    counter.add(flags, over_threshold, event_mask)
    return counter.counts(granularity)


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
