"""Parameters and per-frame results of the RaTag S2 kernels (:mod:`wavedqm.kernels.s2`).

- :class:`FrameScale`: the file header's conversion of raw samples and sample indices,
  ``t_i = t0_us + dt_us · i`` (µs) and ``v_i = polarity · (raw_i · scale_v + offset_v) · 1000``
  (mV);
- :class:`S2Params`: the settings of the two passes: pedestal and moving-average lengths
  (samples), thresholds (mV), X-ray cuts (sums of mV samples, µs, mV·µs);
- :class:`FrameFeatures`: pass 1 results, float64 per frame (mV, µs);
- :class:`XrayResult` and :class:`AreaResult`: pass 2 results, float64 areas per frame
  (mV·µs) and int8 :class:`~wavedqm.xray_reasons.XrayReason` codes.

Plain Python: nothing here is compiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wavedqm import constants as C
from wavedqm.xray_reasons import XRAY_REASON_LABELS, XrayReason


@dataclass(frozen=True)
class FrameScale:
    """How raw samples become mV and sample indices become µs (from the file header)."""

    scale_v: float
    """Volts per raw unit."""
    offset_v: float
    """Volts added after scaling (cancels in the pedestal subtraction)."""
    dt_us: float
    """Sample period (µs), > 0."""
    t0_us: float
    """Time of sample 0 (µs)."""
    polarity: int = C.RATAG_POLARITY
    """−1: invert (negative PMT pulses), +1: keep."""

    def times_us(self, n_samples: int) -> np.ndarray:
        """``t0 + dt·i`` for ``i < n_samples`` (float64 µs)."""
        return self.t0_us + self.dt_us * np.arange(n_samples, dtype=np.float64)

    @property
    def mv_per_unit(self) -> float:
        """``polarity · scale_v · 1000``: mV per raw unit after inversion."""
        return float(self.polarity) * float(self.scale_v) * 1e3

    def check(self) -> None:
        if self.polarity not in (-1, 1):
            raise ValueError(f"polarity: {self.polarity} (expected -1 or +1)")
        if not (math.isfinite(self.dt_us) and self.dt_us > 0):
            raise ValueError(f"dt_us: {self.dt_us} (expected a finite sample period > 0 µs)")
        for name in ("scale_v", "offset_v", "t0_us"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: {getattr(self, name)} (expected a finite number)")


@dataclass(frozen=True)
class S2Params:
    """Thresholds of the two passes (defaults: ``wavedqm.constants``, spec ratag-s2.md)."""

    n_pedestal_timing: int = C.RATAG_N_PEDESTAL_TIMING
    """Pedestal samples of pass 1 (S1 time, S2 start/end)."""
    n_pedestal_area: int = C.RATAG_N_PEDESTAL_AREA
    """Pedestal samples of pass 2 (S2 area, X-rays)."""
    ma_window: int = C.RATAG_MA_WINDOW
    """Moving-average length (samples)."""
    s1_threshold_mv: float = C.RATAG_S1_THRESHOLD_MV
    s2_threshold_mv: float = C.RATAG_S2_THRESHOLD_MV
    s2_clip_mv: float = C.RATAG_S2_CLIP_MV
    """Smoothed values below this are zeroed before the S2 start/end search (mV)."""
    s2_search_drift_fraction: float = C.RATAG_S2_SEARCH_DRIFT_FRACTION
    """The S2 search starts at t > t_s1 + this × t_drift."""
    bs_threshold_mv: float = C.RATAG_BS_THRESHOLD_MV
    """S2 area: smoothed values below this are zeroed (mV)."""
    xray_bs_threshold_mv: float = C.RATAG_BS_THRESHOLD_MV
    """X-rays: threshold of the S1/S2 sums and of the smoothed drift window (mV)."""
    xray_max_area_s1: float = C.RATAG_XRAY_MAX_AREA_S1
    xray_max_area_s2: float = C.RATAG_XRAY_MAX_AREA_S2
    xray_min_s1_sep_us: float = C.RATAG_XRAY_MIN_S1_SEP_US
    xray_min_s2_sep_us: float = C.RATAG_XRAY_MIN_S2_SEP_US
    xray_min_area_mv_us: float = C.RATAG_XRAY_MIN_AREA_MV_US


@dataclass(frozen=True, eq=False)
class FrameFeatures:
    """Pass 1 results, one value per frame (float64)."""

    pedestal_mv: np.ndarray
    """Mean of the first n_pedestal_timing samples (mV, after polarity inversion)."""
    noise_mv: np.ndarray
    """Population std of the same samples (mV)."""
    t_s1_us: np.ndarray
    """Last sample with t < 0 above the S1 threshold (µs); NaN: none."""
    t_s2_start_us: np.ndarray
    """First smoothed sample above the S2 threshold after the search start (µs); NaN: none."""
    t_s2_end_us: np.ndarray
    """Last such sample (µs); NaN: none."""

    @property
    def n_frames(self) -> int:
        return int(self.t_s1_us.shape[0])

    @property
    def s2_duration_us(self) -> np.ndarray:
        """``t_s2_end − t_s2_start`` (µs); NaN where no S2 was found."""
        return self.t_s2_end_us - self.t_s2_start_us


@dataclass(frozen=True, eq=False)
class XrayResult:
    """X-ray classification, one value per frame."""

    area_mv_us: np.ndarray
    """float64: area of the smoothed drift window (mV·µs); NaN if the window is unusable."""
    reason: np.ndarray
    """int8 :class:`XrayReason` codes (−1: not classified)."""

    @property
    def accepted(self) -> np.ndarray:
        """bool: passed all cuts."""
        return self.reason == XrayReason.PASSED_ALL_CUTS

    def counts(self) -> dict[str, int]:
        """Frames per reason label (every label present, zeros included; frames not
        classified, code −1, are not counted)."""
        codes = self.reason[self.reason >= 0].astype(np.int64)
        n = np.bincount(codes, minlength=len(XrayReason))
        return {label: int(n[i]) for i, label in enumerate(XRAY_REASON_LABELS)}


@dataclass(frozen=True, eq=False)
class AreaResult:
    """Pass 2 results, one value per frame."""

    s2_area_mv_us: np.ndarray
    """float64 S2 area (mV·µs); NaN if the window holds no sample."""
    xray: XrayResult
