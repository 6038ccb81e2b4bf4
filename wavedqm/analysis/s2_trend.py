"""How an S2 set changes from one publication (file) to the next: the shift of its fitted mean
in standard errors, how far its integration window moved since its first file, when its files
arrive and how many of them are still to be analysed. Pure functions, no I/O; the engine
(:mod:`wavedqm.processors.s2_publish`) gives them the set's state and the names it listed.

- :func:`standard_error` — a fit's standard error of the mean: ``ci95 / 1.96`` (mV·µs), the
  Gaussian fit's covariance (``sqrt(pcov[mean, mean])`` scaled by the residual variance,
  :func:`~wavedqm.analysis.ratag_fit.fit_area_histogram`).
- :func:`shift_in_standard_errors` / :func:`mean_shift` — the new file's fitted mean against
  the set's earlier files' (same window), over the quadrature sum of their standard errors
  (:class:`MeanShift`).
- :func:`window_of` / :func:`first_window` / :func:`window_drift` — the integration window
  (µs) the set's statistics give, the one its first file(s) gave, and the move between them
  (:class:`WindowDrift`).
- :func:`file_timing` — the newest file time (unix s) and the median interval between the
  set's files (s) (:class:`FileTiming`); :func:`files_behind` — files of the set's folder not
  analysed yet (count).

Why the new file against the earlier files rather than the difference of two consecutive
publications' means over ``sqrt(se_k² + se_{k−1}²)``: the set grows, so publication *k*
contains publication *k − 1*'s frames and the two means are strongly correlated. For sample
means of ``n`` new and ``N`` earlier frames, ``m_k − m_{k−1} = n/(n+N) · (m_new − m_earlier)``
and its standard error is ``n/(n+N) · sqrt(se_new² + se_earlier²)``: the shift in standard
errors of consecutive publications *is* ``(m_new − m_earlier) / sqrt(se_new² + se_earlier²)``,
computed from two independent fits (the nested form, ``sqrt(se_{k−1}² − se_k²)``, is the
difference of two noisy fit errors and can be 0 or negative). Both fits use the set's current
window, so re-integrating earlier files after the window moved never shows as a jump.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag_fit import FitResult
from wavedqm.analysis.ratag_run import FitSettings
from wavedqm.analysis.ratag_timing import (
    integration_window,
    s1_statistics,
    s2_window_statistics,
)
from wavedqm.analysis.s2_set import SetState

MIN_FILES_FOR_INTERVAL = 3
"""Files (two intervals) before a set's usual file interval is known."""


# --------------------------------------------------------------------------------------------
# the fitted mean, file by file


def standard_error(fit: FitResult) -> float:
    """Standard error of the fitted mean (mV·µs): ``ci95 / 1.96``; NaN without a good fit."""
    if not fit.fit_success or not math.isfinite(fit.ci95):
        return math.nan
    return float(fit.ci95) / C.RATAG_CI95_Z


def shift_in_standard_errors(
    new_mean: float, new_se: float, earlier_mean: float, earlier_se: float
) -> float:
    """``(new_mean − earlier_mean) / sqrt(new_se² + earlier_se²)`` (dimensionless; means and
    standard errors in the same unit). NaN when any input is not finite or both errors are
    0 (no error to compare with)."""
    values = (new_mean, new_se, earlier_mean, earlier_se)
    if not all(math.isfinite(v) for v in values) or new_se < 0 or earlier_se < 0:
        return math.nan
    se = math.hypot(new_se, earlier_se)
    if se == 0.0:
        return math.nan
    return (new_mean - earlier_mean) / se


@dataclass(frozen=True)
class MeanShift:
    """The set's newest file(s) against its earlier files (mV·µs; shift dimensionless)."""

    shift_std_errors: float
    """``(new_mean − earlier_mean) / sqrt(new_se² + earlier_se²)``; NaN unless both fits
    succeeded."""
    new_mean: float
    new_se: float
    earlier_mean: float
    earlier_se: float
    n_new_files: int
    n_earlier_files: int


def mean_shift(state: SetState, new_files: Sequence[int], fits: FitSettings) -> MeanShift:
    """Gaussian fits (``fits.ion``) of the ion S2 areas of the files at indices ``new_files``
    of ``state.files`` and of the set's other files, compared (module doc). No new file or
    no earlier file: NaN."""
    new = sorted({int(i) for i in new_files if 0 <= int(i) < len(state.files)})
    chosen = set(new)
    earlier = [i for i in range(len(state.files)) if i not in chosen]
    nan = math.nan
    if not new or not earlier:
        return MeanShift(nan, nan, nan, nan, nan, len(new), len(earlier))
    area = state.frames["area"]
    offsets = state.offsets()
    in_new = np.zeros(area.size, bool)
    for i in new:
        in_new[offsets[i] : offsets[i + 1]] = True
    f_new, f_old = fits.ion(area[in_new]), fits.ion(area[~in_new])
    m_new = f_new.mean if f_new.fit_success else nan
    m_old = f_old.mean if f_old.fit_success else nan
    se_new, se_old = standard_error(f_new), standard_error(f_old)
    return MeanShift(
        shift_in_standard_errors(m_new, se_new, m_old, se_old),
        m_new,
        se_new,
        m_old,
        se_old,
        len(new),
        len(earlier),
    )


# --------------------------------------------------------------------------------------------
# the integration window


def window_of(
    t_s1_us: np.ndarray, t_start_us: np.ndarray, t_end_us: np.ndarray, time_drift_us: float
) -> tuple[float, float] | None:
    """The S2 integration window (µs) the per-frame S1 times and S2 starts/ends (µs) give, as
    the set's statistics compute it (:func:`~wavedqm.analysis.ratag_run.set_stats`); None
    while the S1 time or the S2 start/end spreads are unknown."""
    s1 = s1_statistics(t_s1_us)
    if not s1.ok:
        return None
    windows = s2_window_statistics(t_start_us, t_end_us, s1.t_s1 + float(time_drift_us))
    return integration_window(windows)


@dataclass(frozen=True)
class FirstWindow:
    """The first window the set had: after its first ``n_files`` files (µs)."""

    n_files: int
    window_us: tuple[float, float]


def first_window(state: SetState, time_drift_us: float) -> FirstWindow | None:
    """The window of the smallest first files of the set (in the order they were analysed)
    that give one: usually the first file alone; None when no prefix (the whole set
    included) gives a window."""
    fr = state.frames
    t_s1, start, end = fr["t_s1"], fr["t_start"], fr["t_end"]
    offsets = state.offsets()
    for k in range(1, len(state.files) + 1):
        n = int(offsets[k])
        window = window_of(t_s1[:n], start[:n], end[:n], time_drift_us)
        if window is not None:
            return FirstWindow(k, window)
    return None


@dataclass(frozen=True)
class WindowDrift:
    """The set's integration window now and how far each edge moved since its first window
    (µs, signed: later is positive). NaN while unknown."""

    start_us: float
    end_us: float
    start_shift_us: float
    end_shift_us: float


def window_drift(
    window_us: tuple[float, float] | None, first: tuple[float, float] | None
) -> WindowDrift:
    """Current window ``window_us`` against the set's first window ``first`` (µs)."""
    nan = math.nan
    if window_us is None:
        return WindowDrift(nan, nan, nan, nan)
    lo, hi = float(window_us[0]), float(window_us[1])
    if first is None:
        return WindowDrift(lo, hi, nan, nan)
    return WindowDrift(lo, hi, lo - float(first[0]), hi - float(first[1]))


# --------------------------------------------------------------------------------------------
# when the files come


@dataclass(frozen=True)
class FileTiming:
    """When the set's files were written (their modification times)."""

    last_file_s: float
    """Modification time of the set's newest file (unix s); NaN without files."""
    median_interval_s: float
    """Median of the intervals between consecutive files (by modification time, s); NaN
    with fewer than :data:`MIN_FILES_FOR_INTERVAL` files."""


def file_timing(mtimes_ns: Iterable[int], min_files: int = MIN_FILES_FOR_INTERVAL) -> FileTiming:
    """The newest modification time and the median interval of ``mtimes_ns`` (ns since the
    epoch, any order)."""
    t = np.sort(np.asarray(list(mtimes_ns), np.float64)) / 1e9
    if t.size == 0:
        return FileTiming(math.nan, math.nan)
    interval = float(np.median(np.diff(t))) if t.size >= max(2, min_files) else math.nan
    return FileTiming(float(t[-1]), interval)


def files_behind(
    in_folder: Iterable[str], analysed: Iterable[str], refused: Iterable[str] = ()
) -> int:
    """Files of the set's folder (names) neither analysed by the set nor refused (a file that
    failed is not behind: it will not be analysed). Counts a file still being written under
    its final name and one waiting in the daemon's queue alike."""
    done = set(analysed) | set(refused)
    return len(set(in_folder) - done)
