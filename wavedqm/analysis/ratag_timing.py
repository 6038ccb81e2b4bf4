"""Per-set timing statistics of RaTag kernel output: the S1 time, the S2 window, the
integration window, and the ``set_metadata`` keys of s2_results.json.

Pure functions and dataclasses, no I/O (spec: ratag-s2.md). Units: µs throughout.

- :func:`s1_statistics` — the set's S1 time (mode of the per-frame S1 times) ± std
  (:class:`S1Stats`).
- :func:`s2_window_statistics` — median and 16/84% spread (:class:`WindowSpread`) of S2 start, end
  and duration after their range cuts (:class:`S2WindowStats`).
- :func:`integration_window` — the S2 integration window ``[start − 1σ, end + 0.5σ]``.
- :func:`set_metadata` — the 13 ``set_metadata`` keys (S1, S2 window, fields and transport).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag_fields import SetPhysics, json_num

# --------------------------------------------------------------------------------------------
# per-set timing statistics


@dataclass(frozen=True)
class S1Stats:
    """The set's S1 time: mode of the per-frame S1 times (µs) ± their std (µs)."""

    t_s1: float
    t_s1_std: float
    n_frames: int
    """Frames with an S1 time before the cut."""
    n_used: int
    """Frames left after the time cut and the outlier rejection."""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.t_s1)

    def to_dict(self) -> dict[str, float | None]:
        return {"t_s1": json_num(self.t_s1), "t_s1_std": json_num(self.t_s1_std)}


def s1_statistics(
    t_s1_us: np.ndarray,
    max_time_us: float = C.RATAG_S1_MAX_TIME_US,
    outlier_sigma: float = C.RATAG_OUTLIER_SIGMA,
    bins: int = C.RATAG_S1_HIST_BINS,
) -> S1Stats:
    """Per set (RaTag): keep the S1 times < ``max_time_us``, drop those ≥ ``outlier_sigma``
    std from their mean, take the centre of the fullest of ``bins`` histogram bins ± the std
    of the kept times. NaN (no exception) when no time is left.

    Not rounded (RaTag rounds to 1 ns). When all kept times are equal the mode is that time.
    """
    t = np.asarray(t_s1_us, np.float64)
    t = t[np.isfinite(t)]
    n_frames = int(t.size)
    t = t[t < max_time_us]
    if t.size == 0:
        return S1Stats(math.nan, math.nan, n_frames, 0)
    std = float(np.std(t))
    if std > 0:
        t = t[np.abs(t - np.mean(t)) < outlier_sigma * std]
    if t.size == 0:
        return S1Stats(math.nan, math.nan, n_frames, 0)
    if t.min() == t.max():
        mode = float(t[0])
    else:
        counts, edges = np.histogram(t, bins=bins)
        i = int(np.argmax(counts))
        mode = float(0.5 * (edges[i] + edges[i + 1]))
    return S1Stats(mode, float(np.std(t)), n_frames, int(t.size))


@dataclass(frozen=True)
class WindowSpread:
    """Median and 16/84% quantiles of one timing quantity (µs) after its range cut."""

    median: float
    p16: float
    p84: float
    n: int
    """Values after the cut."""

    @property
    def std(self) -> float:
        """Half the 16–84% width, (p84 − p16) / 2: RaTag's ``*_std``."""
        return 0.5 * (self.p84 - self.p16)


@dataclass(frozen=True)
class S2WindowStats:
    """S2 start, end and duration of a set (µs); NaN when too few frames pass the cuts."""

    start: WindowSpread
    end: WindowSpread
    duration: WindowSpread
    expected_start_us: float
    """t_s1 + t_drift, the reference of the range cuts."""
    n_frames: int
    """Frames with an S2 (finite start and end, end > start) before the cuts."""

    @property
    def ok(self) -> bool:
        return all(math.isfinite(s.median) for s in (self.start, self.end, self.duration))

    def to_dict(self) -> dict[str, float | None]:
        """The s2_results.json ``set_metadata`` keys: ``*_mean`` is the median, ``*_std``
        half the 16–84% width (as RaTag's percentile method)."""
        out: dict[str, float | None] = {}
        for key, s in (
            ("t_s2_start", self.start),
            ("t_s2_end", self.end),
            ("s2_duration", self.duration),
        ):
            out[f"{key}_mean"] = json_num(s.median)
            out[f"{key}_std"] = json_num(s.std)
        return out


def _spread(values: np.ndarray, lo: float, hi: float, min_events: int) -> WindowSpread:
    kept = values[(values >= lo) & (values <= hi)]
    if kept.size < max(1, min_events):
        return WindowSpread(math.nan, math.nan, math.nan, int(kept.size))
    p16, p50, p84 = np.percentile(kept, [16.0, 50.0, 84.0])
    return WindowSpread(float(p50), float(p16), float(p84), int(kept.size))


def s2_window_statistics(
    t_s2_start_us: np.ndarray,
    t_s2_end_us: np.ndarray,
    expected_start_us: float,
    start_cut: tuple[float, float] = C.RATAG_S2_START_CUT,
    end_cut: tuple[float, float] = C.RATAG_S2_END_CUT,
    duration_cut_us: tuple[float, float] = C.RATAG_S2_DURATION_CUT_US,
    min_events: int = C.RATAG_S2_MIN_EVENTS,
) -> S2WindowStats:
    """Median and 16/84% spread of S2 start, end and duration over the frames of a set.

    Frames count when both times are finite and end > start. Each quantity has its own range
    cut (ends included): start within ``start_cut`` × expected, end from ``end_cut[0]`` ×
    expected to ``end_cut[1]`` µs, duration within ``duration_cut_us``; ``expected_start_us``
    is t_s1 + t_drift. Fewer than ``min_events`` values after a cut give NaN for it.
    """
    start = np.asarray(t_s2_start_us, np.float64)
    end = np.asarray(t_s2_end_us, np.float64)
    good = np.isfinite(start) & np.isfinite(end) & (end > start)
    start, end = start[good], end[good]
    e = float(expected_start_us)
    s_lo, s_hi = sorted((start_cut[0] * e, start_cut[1] * e))
    return S2WindowStats(
        start=_spread(start, s_lo, s_hi, min_events),
        end=_spread(end, end_cut[0] * e, end_cut[1], min_events),
        duration=_spread(end - start, duration_cut_us[0], duration_cut_us[1], min_events),
        expected_start_us=e,
        n_frames=int(start.size),
    )


def integration_window(
    stats: S2WindowStats,
    sigma_before: float = C.RATAG_WINDOW_SIGMA_BEFORE,
    sigma_after: float = C.RATAG_WINDOW_SIGMA_AFTER,
) -> tuple[float, float] | None:
    """S2 integration window ``[start − 1σ_start, end + 0.5σ_end]`` (µs); None if unknown."""
    lo = stats.start.median - sigma_before * stats.start.std
    hi = stats.end.median + sigma_after * stats.end.std
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi


def set_metadata(
    s1: S1Stats, windows: S2WindowStats, physics: SetPhysics
) -> dict[str, float | None]:
    """The ``set_metadata`` object of s2_results.json, keys in the seed's order."""
    return {**s1.to_dict(), **windows.to_dict(), **physics.to_dict()}
