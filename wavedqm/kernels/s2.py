"""RaTag S2 kernels: per-frame S1/S2 timing, S2 areas and X-ray classification (numba).

Input: the raw samples of a FastFrame file, ``raw`` of shape ``(n_frames, n_samples)`` in any
integer or float dtype (int8/uint8/int16/uint16/int32/uint32/int64/uint64/float32/float64),
either byte order, and possibly a strided, read-only view of a memory-mapped file whose rows
are further apart than a record (pre/post-charge points between frames). Sample ``i`` of a frame
is, with :class:`FrameScale`::

    t_i = t0_us + dt_us · i                                   (µs)
    v_i = polarity · (raw_i · scale_v + offset_v) · 1000      (mV; polarity −1: PMT pulses
                                                               are negative and get inverted)

and every quantity below uses the **pedestal-subtracted** signal ``v_i − mean(v[:n_pedestal])``.
No float copy of the data is made: the kernels read the raw samples in place (the rows are
reached through one 1-D view of the whole span, see
:func:`~wavedqm.kernels.s2_prep._flat_rows`) and convert each sample when they read it,
``mV = k · (raw_i − pedestal_raw)`` with ``k = polarity·scale·1000`` (the offset cancels in
the subtraction). A copy is made only for a non-native byte order
(converted once to the same width) or an unusable layout (inner stride ≠ item size, negative
row stride).

**Moving average.** ``ma`` is exactly ``np.convolve(x, np.ones(w) / w, mode="same")`` of the
segment ``x`` (``n`` samples) it is applied to: with ``off = (min(n, w) − 1) // 2`` it has
``max(n, w)`` values and ``ma[j] = Σ x[i] / w`` over ``j + off − w + 1 ≤ i ≤ j + off``,
``0 ≤ i < n``: samples outside the segment count as 0, so the first and last ``w // 2``
values are pulled towards 0 (for ``w = 9``: ``ma[j]`` is the mean of ``x[j−4 .. j+4]``; the
first value is ``(x0 + … + x4) / 9``). The trapezoid rule over ``m`` values ``y`` is
``dt · (Σ y − (y[0] + y[m−1]) / 2)`` (``np.trapezoid(y, dx=dt)``; 0 for one value).

**Numerics and exactness.** Window sums are running sums of the raw values: int64 for integer
samples of up to 32 bits (exact), float64 otherwise. A value is
``(Σ raw − count·S_p/p) · k / w`` with ``k = polarity·scale_v·1000`` and ``S_p`` the sum of the
``p`` pedestal samples. For integer samples every threshold decision (S1, S2 search, zeroing
below ``bs_threshold``, X-ray sums and signal) is made in **exact arithmetic** on the given
float values of ``scale_v`` and the thresholds: ``value > thr`` ⇔
``sign(k)·(s·p − count·S_p) ≥ T``, an integer test with ``T`` computed once per call with
``Fraction`` (:func:`~wavedqm.kernels.s2_prep._exact_threshold`). The float reference
agrees everywhere except where a value lies within rounding (~1e-15) of a threshold — which
quantised 8-bit data do produce (a smoothed value exactly on 0.8 mV): there the reference's
answer depends on its summation order, the kernels' does not. Float samples use the float
tests of the reference and must be finite (a NaN poisons the rest of its frame's running
sums). Areas are accumulated in raw units and converted once (≈1e-15 relative to the
reference).

**Block skipping.** In the interior of a frame, outputs are handled in blocks of
:data:`~wavedqm.kernels.s2_compiled._BLOCK`: one vectorisable min/max of the block's samples
shows whether they all lie below a (positive) threshold — no average of them can reach it:
the block is skipped — or all above it — every average is kept: the block's sum is taken at
once. Only mixed blocks run
the per-sample running sum. Quiet drift regions and the baseline after an S2 thus cost little
more than one read.

**Deviations from RaTag (deliberate).** The S2 start/end search uses the pedestal-subtracted
signal (RaTag's ``s2_window_pipeline`` left the pedestal in: a DC offset of 0.8 mV faked an
S2); the per-frame S1 search is done on the same pass-1 pedestal; RaTag's per-set statistics
rounded to 1 ns, these do not.

**Two passes** (the set statistics sit between them):

1. :func:`frame_features` — per frame: pedestal (mean, mV) and its noise (population std,
   mV) over the first ``n_pedestal_timing`` samples; the S1 time (the last sample with
   ``t < 0`` above ``s1_threshold_mv``, NaN if none); the S2 start/end: the first/last sample
   with ``t > t_s1 + 0.3·t_drift`` at which the moving average of the whole frame, with
   values below ``s2_clip_mv`` zeroed, is above ``s2_threshold_mv`` (NaN if none).
   ``t_s1`` is the set's S1 time when given (RaTag's way), else the frame's own (a frame
   without S1 then gets no S2). Reads: the pedestal, back from ``t = 0`` to S1, forward from
   the search start to the S2 start, back from the end of the record to the S2 end.
2. :func:`area_pass` (or its parts :func:`s2_areas` / :func:`xray_classify`) — per frame,
   pedestal over the first ``n_pedestal_area`` samples, then

   - S2 area: the window ``[lo, hi]`` (µs, both ends included: the set's
     ``[start − 1σ_start, end + 0.5σ_end]``) is cut out, smoothed (moving average of the
     window), values below ``bs_threshold_mv`` zeroed, integrated with the trapezoid rule ×
     ``dt`` → mV·µs; an empty window gives NaN;
   - X-ray classification (events in the drift region between the set's S1 time and S2
     start): each frame gets one :class:`XrayReason` — the first cut it fails, in this order:
     sum of the samples above ``xray_bs_threshold_mv`` with ``t < t_s1`` >
     ``xray_max_area_s1`` (a sum of mV samples, not × dt, as RaTag); the same sum over
     ``t ≥ t_s2_start`` > ``xray_max_area_s2``; drift window ``t_s1 ≤ t ≤ t_s2_start`` shorter
     than the moving average; no smoothed sample above threshold in it; first such sample
     not > ``min_s1_sep`` after ``t_s1``; last not > ``min_s2_sep`` before ``t_s2_start``;
     area (smoothed, zeroed below threshold, trapezoid) < ``xray_min_area_mv_us``. The area is
     returned for every frame whose window is usable (NaN otherwise): accepted X-ray areas
     are ``area[reason == PASSED_ALL_CUTS]``.

   One read of the record (the S2 window is read twice, from cache).

Frames are spread over threads with ``prange``; every function returns new per-frame arrays
(float64 µs / mV / mV·µs, int8 reason codes) in dataclasses.

**Modules.** This module holds the public entry points (:func:`frame_features`,
:func:`area_pass`, :func:`s2_areas`, :func:`xray_classify`, :func:`warm_up`) and re-exports
the rest of the public API. The parts:

- :mod:`wavedqm.kernels.s2_types`: :class:`FrameScale`, :class:`S2Params` and the result
  dataclasses :class:`FrameFeatures`, :class:`XrayResult`, :class:`AreaResult`;
- :mod:`wavedqm.kernels.s2_prep`: the raw layout (:data:`SUPPORTED_TYPES`, the 1-D view),
  the exact integer thresholds and the argument checks (plain Python);
- :mod:`wavedqm.kernels.s2_compiled`: all the compiled code — the moving-average primitives
  (window sums, threshold tests, block skipping, S2 search, smoothed-window integral) and
  the per-frame loops of the two passes, in one file for numba's cache (see there).
"""

from __future__ import annotations

import math

import numpy as np

from wavedqm.kernels.s2_compiled import _pass1, _pass2
from wavedqm.kernels.s2_prep import (
    SUPPORTED_TYPES,
    _accumulator,
    _check_ma,
    _check_pedestal,
    _check_thresholds,
    _exact_mode,
    _exact_threshold,
    _flat_rows,
    _index_range,
    _threshold,
)
from wavedqm.kernels.s2_types import (
    AreaResult,
    FrameFeatures,
    FrameScale,
    S2Params,
    XrayResult,
)
from wavedqm.xray_reasons import XRAY_REASON_LABELS, XrayReason


def frame_features(
    raw: np.ndarray,
    scale: FrameScale,
    t_drift_us: float,
    params: S2Params | None = None,
    t_s1_us: float = math.nan,
) -> FrameFeatures:
    """Pass 1: pedestal, noise, S1 time and S2 start/end of every frame (see module doc).

    ``t_drift_us``: expected drift time (µs); the S2 search starts at
    ``t > t_s1 + s2_search_drift_fraction · t_drift``. ``t_s1_us``: the set's S1 time (µs),
    or NaN to use each frame's own S1 time.
    """
    params = params or S2Params()
    scale.check()
    _check_thresholds(params)
    if not math.isfinite(t_drift_us):
        raise ValueError(f"t_drift_us: {t_drift_us} (expected a finite drift time in µs)")
    flat, n_frames, row_stride, n = _flat_rows(raw)
    w = _check_ma(params.ma_window)
    out = FrameFeatures(*(np.empty(n_frames, np.float64) for _ in range(5)))
    if n_frames == 0:
        return out
    if n < w:
        raise ValueError(f"frames of {n} samples are shorter than the moving average ({w})")
    p = _check_pedestal(params.n_pedestal_timing, n, "n_pedestal_timing")
    t = scale.times_us(n)
    i_zero = int(np.searchsorted(t, 0.0, side="left"))
    k = scale.mv_per_unit
    acc0 = _accumulator(flat.dtype)
    exact = _exact_mode(acc0, scale, flat.dtype, w, p)
    thr, clip = float(params.s2_threshold_mv), float(params.s2_clip_mv)
    # with thr ≥ 0, "clipped value > thr" is "value > thr" if thr ≥ clip, else "value ≥ clip"
    hit_strict = thr >= clip
    hit_level = thr if hit_strict else clip
    _pass1(
        flat,
        n_frames,
        row_stride,
        n,
        t,
        k,
        float(scale.polarity) * float(scale.offset_v) * 1e3,
        p,
        i_zero,
        w,
        float(t_s1_us),
        float(params.s2_search_drift_fraction) * float(t_drift_us),
        acc0,
        exact,
        1 if k > 0 else -1,
        _threshold(params.s1_threshold_mv, scale, 1, p, True, exact),
        _threshold(hit_level, scale, w, p, hit_strict, exact),
        hit_strict,
        exact,
        _threshold(hit_level, scale, 1, p, False, exact),
        hit_level > 0,
        out.pedestal_mv,
        out.noise_mv,
        out.t_s1_us,
        out.t_s2_start_us,
        out.t_s2_end_us,
    )
    return out


def area_pass(
    raw: np.ndarray,
    scale: FrameScale,
    window_us: tuple[float, float] | None,
    t_s1_us: float | None,
    t_s2_start_us: float | None,
    params: S2Params | None = None,
) -> AreaResult:
    """Pass 2: S2 areas in ``window_us`` and X-ray classification, in one read of the frames.

    ``window_us``: the set's integration window ``(lo, hi)`` (µs, ends included), e.g.
    :func:`wavedqm.analysis.ratag.integration_window`; ``None`` skips the areas (NaN).
    ``t_s1_us`` / ``t_s2_start_us``: the set's S1 time and S2 start (µs) bounding the drift
    region of the X-ray search; ``None`` for either skips the classification (NaN areas,
    reason codes −1).
    """
    params = params or S2Params()
    scale.check()
    _check_thresholds(params)
    flat, n_frames, row_stride, n = _flat_rows(raw)
    w = _check_ma(params.ma_window)
    area = np.full(n_frames, np.nan)
    x_area = np.full(n_frames, np.nan)
    reason = np.full(n_frames, -1, np.int8)
    result = AreaResult(area, XrayResult(x_area, reason))
    do_area = window_us is not None
    do_xray = t_s1_us is not None and t_s2_start_us is not None
    if n_frames == 0 or not (do_area or do_xray):
        return result
    p = _check_pedestal(params.n_pedestal_area, n, "n_pedestal_area")
    t = scale.times_us(n)
    area_lo = area_n = 0
    if do_area:
        lo, hi = (float(x) for x in window_us)  # type: ignore[union-attr]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"window_us: {window_us} (expected finite (lo, hi) in µs)")
        area_lo, area_n = _index_range(t, lo, hi)
    ts1 = ts2 = 0.0
    i_s1 = i_s2 = x_lo = x_n = 0
    if do_xray:
        ts1, ts2 = float(t_s1_us), float(t_s2_start_us)  # type: ignore[arg-type]
        if not (math.isfinite(ts1) and math.isfinite(ts2)):
            raise ValueError(
                f"t_s1_us, t_s2_start_us: {t_s1_us}, {t_s2_start_us} (expected finite µs)"
            )
        i_s1 = int(np.searchsorted(t, ts1, side="left"))  # t < t_s1
        i_s2 = int(np.searchsorted(t, ts2, side="left"))  # t >= t_s2_start
        x_lo, x_n = _index_range(t, ts1, ts2)
    acc0 = _accumulator(flat.dtype)
    exact = _exact_mode(acc0, scale, flat.dtype, w, p)
    k = scale.mv_per_unit
    bs, xbs = float(params.bs_threshold_mv), float(params.xray_bs_threshold_mv)
    _pass2(
        flat,
        n_frames,
        row_stride,
        n,
        t,
        k,
        float(scale.dt_us),
        p,
        w,
        acc0,
        exact,
        1 if k > 0 else -1,
        do_area,
        area_lo,
        area_n,
        _threshold(bs, scale, w, p, False, exact),
        _threshold(bs, scale, 1, p, False, exact),
        bs > 0,
        do_xray,
        ts1,
        ts2,
        i_s1,
        i_s2,
        x_lo,
        x_n,
        _threshold(xbs, scale, 1, p, True, exact),
        _threshold(xbs, scale, w, p, False, exact),
        _threshold(xbs, scale, 1, p, False, exact),
        xbs > 0,
        _threshold(0.0, scale, w, p, True, exact),
        float(params.xray_max_area_s1),
        float(params.xray_max_area_s2),
        float(params.xray_min_s1_sep_us),
        float(params.xray_min_s2_sep_us),
        float(params.xray_min_area_mv_us),
        area,
        x_area,
        reason,
    )
    return result


def s2_areas(
    raw: np.ndarray,
    scale: FrameScale,
    window_us: tuple[float, float],
    params: S2Params | None = None,
) -> np.ndarray:
    """S2 area of every frame in ``window_us`` (float64 mV·µs; NaN for an empty window)."""
    return area_pass(raw, scale, window_us, None, None, params).s2_area_mv_us


def xray_classify(
    raw: np.ndarray,
    scale: FrameScale,
    t_s1_us: float,
    t_s2_start_us: float,
    params: S2Params | None = None,
) -> XrayResult:
    """X-ray classification of every frame (drift region ``t_s1 ≤ t ≤ t_s2_start``)."""
    return area_pass(raw, scale, None, t_s1_us, t_s2_start_us, params).xray


WARM_UP_DTYPES = (np.int8, np.int16, np.float32, np.float64)
"""Sample types compiled by :func:`warm_up` (others compile on first use, then are cached)."""


def warm_up(dtypes: tuple[type, ...] = WARM_UP_DTYPES) -> None:
    """Compile (or load from the numba cache) both passes for these sample types, so the
    first real file never waits for the compiler."""
    scale = FrameScale(scale_v=1e-3, offset_v=0.0, dt_us=0.5, t0_us=-2.0)
    params = S2Params(n_pedestal_timing=2, n_pedestal_area=2, ma_window=3)
    for dtype in dtypes:
        raw = np.zeros((2, 16), dtype)
        frame_features(raw, scale, t_drift_us=1.0, params=params)
        area_pass(raw, scale, (0.0, 2.0), -1.0, 2.0, params)


__all__ = [
    "SUPPORTED_TYPES",
    "WARM_UP_DTYPES",
    "XRAY_REASON_LABELS",
    "AreaResult",
    "FrameFeatures",
    "FrameScale",
    "S2Params",
    "XrayReason",
    "XrayResult",
    "_exact_threshold",  # private, but tests call it as ``s2._exact_threshold``
    "_flat_rows",  # private, but tests call it as ``s2._flat_rows``
    "area_pass",
    "frame_features",
    "s2_areas",
    "warm_up",
    "xray_classify",
]
