"""Plain numpy references for the light kernel and the light analysis (tests only).

Written for clarity, not speed, and independently of the code under test: the kernel
quantities follow the old tool's numpy ``features()`` (seed 002, section 6) in ADC16 units,
and the group fractions loop over groups and events on whole (non-streamed) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RefFeatures:
    baseline: np.ndarray  # float64 ADC16
    noise: np.ndarray  # float64 ADC16
    max_above_baseline: np.ndarray  # float64 ADC16
    clipped: np.ndarray  # bool
    negative: np.ndarray  # bool
    max_jump: np.ndarray  # int64: largest |s[i+1] - s[i]|


def features(
    samples: np.ndarray, pedestal_samples: int, ptp_threshold: float, clip_level: int
) -> RefFeatures:
    """The old tool's ``features()`` in ADC16 (no unit conversion), all float64."""
    wf = samples.astype(np.float64)
    pedestal = wf[..., :pedestal_samples]
    noise = np.std(pedestal, axis=-1)
    baseline = np.mean(pedestal, axis=-1)
    max_val = np.max(wf - baseline[..., None], axis=-1)
    clipped = np.any(wf >= clip_level, axis=-1)
    negative = np.any(wf - baseline[..., None] < -ptp_threshold, axis=-1)
    steps = np.abs(np.diff(samples.astype(np.int64), axis=-1))
    max_jump = steps.max(axis=-1, initial=0)
    return RefFeatures(baseline, noise, max_val, clipped, negative, max_jump)


def group_counts(
    granularity: str,
    flags: np.ndarray,
    over: np.ndarray,
    active: np.ndarray,
    group_of_cell: np.ndarray | None = None,
    n_groups: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(k, n) per channel / group / total, by explicit loops over events and groups.

    k: events with some active cell of the group flagged; n: events with some active cell of
    the group over threshold or flagged ("total": all events).
    """
    n_events = flags.shape[0]
    if granularity == "channel":
        k = np.zeros(active.shape, np.int64)
        n = np.zeros(active.shape, np.int64)
        for a, c in zip(*np.nonzero(active), strict=True):
            for e in range(n_events):
                k[a, c] += bool(flags[e, a, c])
                n[a, c] += bool(flags[e, a, c] or over[e, a, c])
        return k, n
    if granularity == "total":
        k_total = 0
        for e in range(n_events):
            k_total += bool(np.any(flags[e][active]))
        return np.asarray(k_total), np.asarray(n_events)
    assert group_of_cell is not None
    k = np.zeros(n_groups, np.int64)
    n = np.zeros(n_groups, np.int64)
    for g in range(n_groups):
        cells = (group_of_cell == g) & active
        for e in range(n_events):
            f = bool(np.any(flags[e][cells]))
            k[g] += f
            n[g] += f or bool(np.any(over[e][cells]))
    return k, n


def nan_median_errors(values: np.ndarray, cl: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, median − q_low, q_high − median) over axis 0 with np.nanquantile (float64)."""
    import warnings

    v = values.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q_lo, med, q_hi = np.nanquantile(v, [(1 - cl) / 2, 0.5, (1 + cl) / 2], axis=0)
    return med, med - q_lo, q_hi - med
