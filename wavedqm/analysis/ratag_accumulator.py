"""Online accumulation of one RaTag set's per-frame kernel results, statistics on demand.

Pure in-memory buffers, no I/O. :class:`SetAccumulator` appends pass-1 features (S1 time,
S2 start/end, µs) and pass-2 results (S2 areas and X-ray areas, mV·µs; X-ray reason codes)
file by file, and recomputes the S1 time and S2 window statistics (µs,
:mod:`wavedqm.analysis.ratag_timing`) and the Gaussian area fits (mV·µs,
:mod:`wavedqm.analysis.ratag_fit`) from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag_fit import FitResult, fit_area_histogram
from wavedqm.analysis.ratag_timing import (
    S1Stats,
    S2WindowStats,
    s1_statistics,
    s2_window_statistics,
)
from wavedqm.kernels.s2 import AreaResult, FrameFeatures, XrayReason, XrayResult

# --------------------------------------------------------------------------------------------
# online accumulation


class _Column:
    """Append-only 1-D buffer with amortised doubling (no O(n²) concatenation)."""

    def __init__(self, dtype: Any) -> None:
        self._data = np.empty(1024, dtype)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values).reshape(-1)
        need = self._n + values.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = values
        self._n = need

    def view(self) -> np.ndarray:
        """The values so far (read-only view, valid until the next ``extend``)."""
        v = self._data[: self._n]
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        return self._n


class SetAccumulator:
    """Per-frame results of one set, appended as its files arrive; statistics on demand.

    Pass-1 features (:meth:`add_features`) and pass-2 results (:meth:`add_areas`, or
    :meth:`add_s2_areas` / :meth:`add_xray`) are kept in growable buffers (amortised
    doubling); the X-ray reason counts are kept incrementally. The statistics (:meth:`s1`,
    :meth:`s2_windows`, :meth:`ion_fit`, :meth:`xray_fit`) are recomputed from the buffers:
    O(frames), a few ms for 10⁵ frames.

    Online, the S1 time and S2 window a file's pass 2 used are those known when it arrived:
    they settle as the set grows. The caller decides whether to re-run pass 2 of earlier
    files when the window moves (the kernels are fast enough to redo a set) or to keep them.
    """

    def __init__(self) -> None:
        self._t_s1 = _Column(np.float64)
        self._t_start = _Column(np.float64)
        self._t_end = _Column(np.float64)
        self._area = _Column(np.float64)
        self._xray_area = _Column(np.float64)
        self._xray_reason = _Column(np.int8)
        self._reason_counts = np.zeros(len(XrayReason), np.int64)

    # -- adding
    def add_features(self, features: FrameFeatures) -> None:
        """Append pass-1 results of a batch of frames."""
        self._t_s1.extend(features.t_s1_us)
        self._t_start.extend(features.t_s2_start_us)
        self._t_end.extend(features.t_s2_end_us)

    def add_areas(self, result: AreaResult) -> None:
        """Append pass-2 results (S2 areas and X-ray classification) of a batch of frames."""
        self.add_s2_areas(result.s2_area_mv_us)
        self.add_xray(result.xray)

    def add_s2_areas(self, areas_mv_us: np.ndarray) -> None:
        """Append S2 areas (:func:`wavedqm.kernels.s2.s2_areas`) of a batch of frames."""
        self._area.extend(areas_mv_us)

    def add_xray(self, xray: XrayResult) -> None:
        """Append X-ray results (:func:`wavedqm.kernels.s2.xray_classify`) of a batch."""
        reason = np.asarray(xray.reason)
        self._xray_area.extend(xray.area_mv_us)
        self._xray_reason.extend(reason)
        codes = reason[reason >= 0].astype(np.int64)
        self._reason_counts += np.bincount(codes, minlength=len(XrayReason))

    # -- data
    @property
    def n_frames(self) -> int:
        """Frames with pass-1 results."""
        return len(self._t_s1)

    @property
    def t_s1_us(self) -> np.ndarray:
        return self._t_s1.view()

    @property
    def t_s2_start_us(self) -> np.ndarray:
        return self._t_start.view()

    @property
    def t_s2_end_us(self) -> np.ndarray:
        return self._t_end.view()

    @property
    def s2_areas_mv_us(self) -> np.ndarray:
        """One S2 area per frame with pass-2 results (NaN: empty window), as s2_areas.npy."""
        return self._area.view()

    @property
    def xray_reasons(self) -> np.ndarray:
        return self._xray_reason.view()

    @property
    def xray_event_areas_mv_us(self) -> np.ndarray:
        """X-ray area of every classified frame (NaN where the window was unusable)."""
        return self._xray_area.view()

    @property
    def xray_areas_mv_us(self) -> np.ndarray:
        """Areas of the accepted X-rays (as xray_areas.npy)."""
        accepted = self._xray_reason.view() == XrayReason.PASSED_ALL_CUTS
        return self._xray_area.view()[accepted]

    def xray_counts(self) -> dict[str, int]:
        """Frames per X-ray reason label."""
        return {r.label: int(self._reason_counts[r]) for r in XrayReason}

    # -- statistics
    def s1(self, **kwargs: Any) -> S1Stats:
        """:func:`s1_statistics` of the frames so far."""
        return s1_statistics(self.t_s1_us, **kwargs)

    def s2_windows(self, t_s1_us: float, t_drift_us: float, **kwargs: Any) -> S2WindowStats:
        """:func:`s2_window_statistics` of the frames so far, expected start t_s1 + t_drift."""
        return s2_window_statistics(
            self.t_s2_start_us, self.t_s2_end_us, t_s1_us + t_drift_us, **kwargs
        )

    def ion_fit(
        self,
        bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS,
        nbins: int = C.RATAG_FIT_BINS,
        exclude_first_bin: bool = False,
    ) -> FitResult:
        """Gaussian fit of the S2 areas so far."""
        return fit_area_histogram(self.s2_areas_mv_us, bin_cuts, nbins, exclude_first_bin)

    def xray_fit(
        self,
        bin_cuts: tuple[float, float] = C.RATAG_XRAY_BIN_CUTS,
        nbins: int = C.RATAG_FIT_BINS,
        exclude_first_bin: bool = False,
    ) -> FitResult:
        """Gaussian fit of the accepted X-ray areas so far."""
        return fit_area_histogram(self.xray_areas_mv_us, bin_cuts, nbins, exclude_first_bin)
