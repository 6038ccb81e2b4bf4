"""Per-batch event counts by channel, channel group and in total: one numba pass per batch.

The light accumulator counts, for every batch, the events in which some channel of a group
(one channel, an EPCB, a TPC, all channels) is flagged (clipped, negative excursion), for
several flags and several event selections (all / beam / self triggers) at once. In numpy that
is one ``any`` reduction per flag, selection and granularity (~30 calls per batch); here every
event is visited once and all counts are added in the same loop.

Definitions (the fraction semantics of :mod:`wavedqm.analysis.fractions`), for flag ``f``,
selection ``s`` and an event ``e`` of ``s``, over the *counted* cells (active and, when
``valid`` is given, with a waveform present):

- ``k_cell[f, s, c]`` += 1 if cell ``c`` is counted and flagged;
- ``n_cell[f, s, c]`` += 1 if cell ``c`` is counted and flagged or over threshold;
- ``k_group[f, s, g, j]`` += 1 if some counted cell of group ``j`` of grouping ``g`` is flagged;
- ``n_group[f, s, g, j]`` += 1 if some counted cell of that group is flagged or over threshold;
- ``k_total[f, s]`` += 1 if some counted cell is flagged; ``n_total[s]`` += 1 (every event).

:func:`tally_cells` adds per cell and selection the events in which a condition holds (e.g. a
channel is alive), with the same ``valid`` masking but no activity requirement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_NO_VALID = np.ones((0, 0), np.bool_)
"""Stands for "every waveform present" (the kernels take one array type)."""


@dataclass(frozen=True, eq=False)
class GroupCounts:
    """Running int64 counts of ``n_flags`` flags × ``n_selections`` selections (see the module
    docstring). ``n_groups[g]`` groups in grouping ``g``; ``k_group``/``n_group`` are padded to
    the largest grouping (the padding stays 0)."""

    k_cell: np.ndarray
    """(n_flags, n_selections, n_cells)"""
    n_cell: np.ndarray
    """(n_flags, n_selections, n_cells)"""
    k_group: np.ndarray
    """(n_flags, n_selections, n_groupings, max groups)"""
    n_group: np.ndarray
    """(n_flags, n_selections, n_groupings, max groups)"""
    k_total: np.ndarray
    """(n_flags, n_selections)"""
    n_total: np.ndarray
    """(n_selections,)"""

    @classmethod
    def zeros(
        cls, n_flags: int, n_selections: int, n_cells: int, n_groups: tuple[int, ...]
    ) -> GroupCounts:
        m = max(n_groups, default=0)
        g = len(n_groups)
        return cls(
            k_cell=np.zeros((n_flags, n_selections, n_cells), np.int64),
            n_cell=np.zeros((n_flags, n_selections, n_cells), np.int64),
            k_group=np.zeros((n_flags, n_selections, g, m), np.int64),
            n_group=np.zeros((n_flags, n_selections, g, m), np.int64),
            k_total=np.zeros((n_flags, n_selections), np.int64),
            n_total=np.zeros(n_selections, np.int64),
        )


@numba.njit(cache=True, nogil=True)
def _count_groups(
    flags: np.ndarray,
    over: np.ndarray,
    valid: np.ndarray,
    use_valid: bool,
    selections: np.ndarray,
    active: np.ndarray,
    groups: np.ndarray,
    k_cell: np.ndarray,
    n_cell: np.ndarray,
    k_group: np.ndarray,
    n_group: np.ndarray,
    k_total: np.ndarray,
    n_total: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """flags (F, n, C), over/valid (n, C), selections (S, n), active (C,), groups (G, C)."""
    n_flags, n_events, n_cells = flags.shape
    n_sel = selections.shape[0]
    n_groupings = groups.shape[0]
    m = k_group.shape[3]
    sel = np.empty(n_sel, np.int64)
    ev_k = np.zeros((n_flags, n_groupings, m), np.bool_)
    ev_n = np.zeros((n_flags, n_groupings, m), np.bool_)
    ev_total = np.zeros(n_flags, np.bool_)
    for e in range(n_events):
        n_in = 0
        for s in range(n_sel):
            if selections[s, e]:
                sel[n_in] = s
                n_in += 1
        if n_in == 0:
            continue
        ev_k[:] = False
        ev_n[:] = False
        ev_total[:] = False
        for c in range(n_cells):
            if not active[c] or (use_valid and not valid[e, c]):
                continue
            o = over[e, c]
            for f in range(n_flags):
                flagged = flags[f, e, c]
                if not (flagged or o):
                    continue
                for i in range(n_in):
                    n_cell[f, sel[i], c] += 1
                for g in range(n_groupings):
                    j = groups[g, c]
                    if j >= 0:
                        ev_n[f, g, j] = True
                if flagged:
                    ev_total[f] = True
                    for i in range(n_in):
                        k_cell[f, sel[i], c] += 1
                    for g in range(n_groupings):
                        j = groups[g, c]
                        if j >= 0:
                            ev_k[f, g, j] = True
        for i in range(n_in):
            s = sel[i]
            n_total[s] += 1
            for f in range(n_flags):
                k_total[f, s] += ev_total[f]
                for g in range(n_groupings):
                    for j in range(m):
                        k_group[f, s, g, j] += ev_k[f, g, j]
                        n_group[f, s, g, j] += ev_n[f, g, j]


@numba.njit(cache=True, nogil=True)
def _tally_cells(
    mask: np.ndarray,
    valid: np.ndarray,
    use_valid: bool,
    selections: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """mask/valid (n, C), selections (S, n), out (S, C)."""
    n_events, n_cells = mask.shape
    for s in range(selections.shape[0]):
        for e in range(n_events):
            if not selections[s, e]:
                continue
            for c in range(n_cells):
                if mask[e, c] and (not use_valid or valid[e, c]):
                    out[s, c] += 1


def _typed(a: np.ndarray, dtype: type) -> np.ndarray:
    """C-contiguous, writeable ``dtype`` array (copied only if needed): numba compiles one
    variant per array type, and read-only arrays (e.g. ``ChannelMap``'s) are another type."""
    return np.require(a, dtype=dtype, requirements="CW")


def _cells_2d(a: np.ndarray, n_events: int, n_cells: int, name: str) -> np.ndarray:
    if a.size != n_events * n_cells:
        raise ValueError(f"{name}: shape {a.shape} (expected {n_events} events x {n_cells} cells)")
    return _typed(a, np.bool_).reshape(n_events, n_cells)


def _selections_2d(selections: np.ndarray | None, n_events: int) -> np.ndarray:
    if selections is None:
        return np.ones((1, n_events), np.bool_)
    sel = _typed(selections, np.bool_)
    if sel.ndim != 2 or sel.shape[1] != n_events:
        raise ValueError(f"selections: shape {sel.shape} (expected (n_selections, {n_events}))")
    return sel


def count_groups(
    flags: np.ndarray,
    over: np.ndarray,
    active: np.ndarray,
    groups: np.ndarray,
    counts: GroupCounts,
    selections: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> None:
    """Add one batch to ``counts`` (see the module docstring).

    ``flags``: bool ``(n_flags, n_events, *cells)``; ``over``: bool ``(n_events, *cells)``,
    over threshold; ``active``: bool ``cells``; ``groups``: int ``(n_groupings, *cells)`` group
    index of each cell (−1: none); ``selections``: bool ``(n_selections, n_events)`` (None: one
    selection, every event); ``valid``: bool ``(n_events, *cells)`` (None: all present).
    """
    n_flags, n_events = flags.shape[0], flags.shape[1]
    n_cells = int(np.asarray(active).size)
    flags3 = _typed(flags, np.bool_).reshape(n_flags, n_events, n_cells)
    over2 = _cells_2d(over, n_events, n_cells, "over")
    valid2 = _NO_VALID if valid is None else _cells_2d(valid, n_events, n_cells, "valid")
    sel = _selections_2d(selections, n_events)
    act = _typed(active, np.bool_).reshape(n_cells)
    grp = _typed(groups, np.int64).reshape(-1, n_cells)
    want = (n_flags, sel.shape[0])
    if counts.k_total.shape != want or counts.k_cell.shape[2] != n_cells:
        raise ValueError(
            f"counts for {counts.k_total.shape} flags x selections and "
            f"{counts.k_cell.shape[2]} cells; batch has {want} and {n_cells}"
        )
    if grp.shape[0] != counts.k_group.shape[2] or (
        grp.size and grp.max() >= counts.k_group.shape[3]
    ):
        raise ValueError(f"groups: {grp.shape[0]} groupings do not fit the counts")
    _count_groups(
        flags3,
        over2,
        valid2,
        valid is not None,
        sel,
        act,
        grp,
        counts.k_cell,
        counts.n_cell,
        counts.k_group,
        counts.n_group,
        counts.k_total,
        counts.n_total,
    )


def tally_cells(
    mask: np.ndarray,
    out: np.ndarray,
    selections: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> None:
    """``out[s, cell]`` (int64 ``(n_selections, n_cells)``) += events of selection ``s`` in
    which ``mask`` (bool ``(n_events, *cells)``) is set and the waveform is ``valid``."""
    n_events = mask.shape[0]
    n_cells = out.shape[1]
    mask2 = _cells_2d(mask, n_events, n_cells, "mask")
    valid2 = _NO_VALID if valid is None else _cells_2d(valid, n_events, n_cells, "valid")
    sel = _selections_2d(selections, n_events)
    if out.dtype != np.int64 or out.shape[0] != sel.shape[0] or not out.flags.c_contiguous:
        raise ValueError(f"out: {out.dtype} {out.shape} (expected int64 ({sel.shape[0]}, cells))")
    _tally_cells(mask2, valid2, valid is not None, sel, out)


def warm_up() -> None:
    """Compile (or load from the numba cache) both kernels on tiny arrays."""
    flags = np.zeros((1, 1, 1), np.bool_)
    counts = GroupCounts.zeros(1, 1, 1, (1,))
    for valid in (None, flags[0]):
        count_groups(flags, flags[0], flags[0, 0], np.zeros((1, 1), np.int64), counts, None, valid)
        tally_cells(flags[0], np.zeros((1, 1), np.int64), None, valid)
