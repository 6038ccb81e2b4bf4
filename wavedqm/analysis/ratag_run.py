"""A RaTag set's statistics and a run's combination of its sets, from the sets' states.

Per set (:func:`set_result`): S1 time and S2 window statistics over all its frames, the
integration window, the Gaussian fits of the ion S2 areas and of the accepted X-ray areas,
X-ray counts by reason, the seed's 13 ``set_metadata`` keys. Per run (:func:`combine_run`): the
X-ray areas of every set and their fit, the calibration (g_S2), recombination and normalised
S2 per set, diffusion fits. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag import (
    Calibration,
    DiffusionFits,
    FitResult,
    Recombination,
    RunConstants,
    S1Stats,
    S2WindowStats,
    SetInfo,
    SetPhysics,
    calibrate,
    diffusion_fits,
    fit_area_histogram,
    integration_window,
    recombination,
    s1_statistics,
    s2_window_statistics,
    set_metadata,
)
from wavedqm.analysis.s2_set import Pass2Key, SetState
from wavedqm.kernels.s2 import XrayReason


@dataclass(frozen=True)
class FitSettings:
    """How the Gaussian fits of a set's and a run's areas are made (mV·µs ranges)."""

    ion_bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS
    xray_bin_cuts: tuple[float, float] = C.RATAG_XRAY_BIN_CUTS
    nbins: int = C.RATAG_FIT_BINS
    ion_exclude_first_bin: bool = False
    xray_exclude_first_bin: bool = False
    min_fit_events: int = C.RATAG_MIN_FIT_EVENTS
    """Areas inside the bin cuts before a Gaussian fit is tried."""

    def ion(self, areas: np.ndarray) -> FitResult:
        return fit_area_histogram(
            areas, self.ion_bin_cuts, self.nbins, self.ion_exclude_first_bin, self.min_fit_events
        )

    def xray(self, areas: np.ndarray) -> FitResult:
        return fit_area_histogram(
            areas,
            self.xray_bin_cuts,
            self.nbins,
            self.xray_exclude_first_bin,
            self.min_fit_events,
        )


@dataclass
class SetStats:
    """A set's S1/S2 timing statistics and the pass-2 inputs they give."""

    s1: S1Stats
    windows: S2WindowStats
    window: tuple[float, float] | None
    """Integration window (µs); None while the S1 time is unknown."""
    key: Pass2Key | None
    """Inputs of pass 2 (None: not enough frames yet)."""


def set_stats(state: SetState, physics: SetPhysics) -> SetStats:
    """The set's statistics over all its frames so far."""
    fr = state.frames
    s1 = s1_statistics(fr["t_s1"])
    expected = s1.t_s1 + physics.time_drift
    windows = s2_window_statistics(fr["t_start"], fr["t_end"], expected)
    window = integration_window(windows) if s1.ok else None
    key: Pass2Key | None = None
    if window is not None and math.isfinite(windows.start.median):
        key = (window[0], window[1], s1.t_s1, windows.start.median)
    return SetStats(s1, windows, window, key)


@dataclass(frozen=True, eq=False)
class SetResult:
    """A set's statistics after its latest file (what its files and metrics show)."""

    run: str
    set_name: str
    info: SetInfo
    physics: SetPhysics
    s1: S1Stats
    windows: S2WindowStats
    window_us: tuple[float, float] | None
    """Integration window (µs); None while unknown."""
    ion_fit: FitResult
    xray_fit: FitResult
    """Fit of this set's accepted X-ray areas (the run combines every set's)."""
    xray_counts: dict[str, int]
    """Classified frames by reason label."""
    n_frames: int
    n_files: int
    metadata: dict[str, float | None]
    """The 13 set_metadata keys of s2_results.json."""

    @property
    def n_classified(self) -> int:
        return int(sum(self.xray_counts.values()))

    @property
    def n_accepted(self) -> int:
        return int(self.xray_counts.get(XrayReason.PASSED_ALL_CUTS.label, 0))

    @property
    def xray_accepted_ratio(self) -> float:
        n = self.n_classified
        return self.n_accepted / n if n else math.nan


@dataclass(frozen=True, eq=False)
class RunResult:
    """A run's combination of its sets (sets in name order)."""

    run: str
    sets: list[str]
    xray_areas: np.ndarray
    """Accepted X-ray areas of every set (mV·µs)."""
    xray_fit: FitResult
    calibration: Calibration | None
    """None while the combined X-ray fit has not succeeded."""
    drift_field: np.ndarray
    """Per set (V/cm)."""
    ion_mean: np.ndarray
    """Per set, fitted mean ion S2 area (mV·µs; NaN without a good fit)."""
    ion_ci95: np.ndarray
    recombination: Recombination | None
    """Per set (all sets, NaN where the ion fit failed); None without calibration."""
    diffusion: DiffusionFits

    def recombination_by_set(self) -> dict[str, float | None]:
        if self.recombination is None:
            return {}
        return {
            s: (float(r) if math.isfinite(r) else None)
            for s, r in zip(self.sets, self.recombination.r, strict=True)
        }


def accepted_xray_areas(state: SetState) -> np.ndarray:
    """The X-ray areas of the set's frames that passed every cut (mV·µs)."""
    fr = state.frames
    return fr["xray_area"][fr["reason"] == XrayReason.PASSED_ALL_CUTS]


def set_result(state: SetState, info: SetInfo, physics: SetPhysics, fits: FitSettings) -> SetResult:
    """The set's statistics and fits after its latest file."""
    stats = set_stats(state, physics)
    fr = state.frames
    reason = fr["reason"]
    counts = np.bincount(reason[reason >= 0].astype(np.int64), minlength=len(XrayReason))
    return SetResult(
        run=state.run,
        set_name=state.name,
        info=info,
        physics=physics,
        s1=stats.s1,
        windows=stats.windows,
        window_us=stats.window,
        ion_fit=fits.ion(fr["area"]),
        xray_fit=fits.xray(accepted_xray_areas(state)),
        xray_counts={r.label: int(counts[r]) for r in XrayReason},
        n_frames=fr.n,
        n_files=len(state.files),
        metadata=set_metadata(stats.s1, stats.windows, physics),
    )


def combine_run(
    run: str,
    results: Sequence[SetResult],
    xray_areas: Sequence[np.ndarray],
    constants: RunConstants,
    fits: FitSettings,
) -> RunResult:
    """A run from its sets' results (name order) and their accepted X-ray areas."""
    xray = np.concatenate(list(xray_areas)) if len(xray_areas) else np.zeros(0)
    xfit = fits.xray(xray)
    calibration = calibrate(xfit.mean, xfit.ci95, constants) if xfit.fit_success else None
    drift = np.array([r.physics.drift_field for r in results], np.float64)
    good = [r.ion_fit.fit_success for r in results]
    mean = np.array(
        [r.ion_fit.mean if ok else math.nan for r, ok in zip(results, good, strict=True)]
    )
    ci95 = np.array(
        [r.ion_fit.ci95 if ok else math.nan for r, ok in zip(results, good, strict=True)]
    )
    recomb = None
    if calibration is not None:
        recomb = recombination(mean, ci95, drift, calibration)
    diffusion = diffusion_fits(
        [r.windows.duration.std for r in results],
        [r.physics.time_drift for r in results],
        [r.physics.speed_drift for r in results],
        drift,
        constants.pressure_bar,
    )
    return RunResult(
        run=run,
        sets=[r.set_name for r in results],
        xray_areas=xray,
        xray_fit=xfit,
        calibration=calibration,
        drift_field=drift,
        ion_mean=mean,
        ion_ci95=ci95,
        recombination=recomb,
        diffusion=diffusion,
    )
