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
reached through one 1-D view of the whole span, see :func:`_flat_rows`) and convert each
sample when they read it, ``mV = k · (raw_i − pedestal_raw)`` with ``k = polarity·scale·1000``
(the offset cancels in the subtraction). A copy is made only for a non-native byte order
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
``Fraction`` (:func:`_exact_threshold`). The float reference agrees everywhere except where a
value lies within rounding (~1e-15) of a threshold — which quantised 8-bit data do produce
(a smoothed value exactly on 0.8 mV): there the reference's answer depends on its summation
order, the kernels' does not. Float samples use the float tests of the reference and must be
finite (a NaN poisons the rest of its frame's running sums). Areas are accumulated in raw
units and converted once (≈1e-15 relative to the reference).

**Block skipping.** In the interior of a frame, outputs are handled in blocks of
:data:`_BLOCK`: one vectorisable min/max of the block's samples shows whether they all lie
below a (positive) threshold — no average of them can reach it: the block is skipped — or
all above it — every average is kept: the block's sum is taken at once. Only mixed blocks run
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numba
import numpy as np

from wavedqm import constants as C
from wavedqm.xray_reasons import XRAY_REASON_LABELS, XrayReason

SUPPORTED_TYPES = (
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float32,
    np.float64,
)
"""Sample types the kernels read (either byte order); float16 and others are refused."""




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


# --------------------------------------------------------------------------------------------
# compiled helpers


@numba.njit(cache=True, nogil=True)
def _first_above(t, x):  # pragma: no cover - compiled
    """First index with ``t[i] > x`` (``len(t)`` if none); ``t`` non-decreasing."""
    lo = 0
    hi = t.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if t[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True, nogil=True)
def _window_sum(flat, base, nw, j, before, off, acc0):  # pragma: no cover - compiled
    """``(Σ x[i], count)`` over ``max(0, j − before) ≤ i ≤ min(nw − 1, j + off)`` of the
    segment ``flat[base : base + nw]``: the moving-average window of output ``j``."""
    lo = max(0, j - before)
    hi = min(nw - 1, j + off)
    s = acc0
    for i in range(lo, hi + 1):
        s += flat[base + i]
    return s, max(0, hi - lo + 1)


@numba.njit(cache=True, nogil=True)
def _test(s, cnt, g, thr, strict):  # pragma: no cover - compiled
    """Is the value of the window sum ``s`` of ``cnt`` raw samples above the threshold
    (``> thr`` if ``strict``, else ``≥ thr``, i.e. not zeroed)?

    ``g`` is a frame tuple ``(exact, sgk, S_p, p, ped, kw)`` (:func:`_frame`). Exact mode
    (integer samples): the integer test ``sgk·(s·p − cnt·S_p) ≥ thr`` where ``thr`` is the
    integer ``T`` of :func:`_exact_threshold`; float mode: ``(s − cnt·ped)·kw`` against
    ``thr`` (mV), evaluated as the reference does.
    """
    exact, sgk, sp, p, ped, kw = g
    if exact:
        return sgk * (s * p - cnt * sp) >= thr
    v = (s - cnt * ped) * kw
    if strict:
        return v > thr
    return not v < thr


@numba.njit(cache=True, nogil=True)
def _frame(flat, b, p, acc0, exact, sgk, kw):  # pragma: no cover - compiled
    """Frame tuple ``(exact, sgk, S_p, p, ped, kw)``: the sum ``S_p`` of the first ``p``
    samples (raw units) and their mean ``ped``."""
    sp = acc0
    for i in range(p):
        sp += flat[b + i]
    return exact, sgk, sp, p, sp / p, kw


@numba.njit(cache=True, nogil=True)
def _sum_above(flat, start, stop, g1, thr, acc0):  # pragma: no cover - compiled
    """Σ ``k·(x − ped)`` over the samples of ``flat[start:stop]`` above ``thr`` (strict
    single-sample test; ``g1``: frame tuple with ``kw = k``), summed as raw values and a
    count."""
    s = acc0
    c = 0
    for i in range(start, stop):
        x = flat[i]
        if _test(x, 1, g1, thr, True):
            s += x
            c += 1
    return (s - c * g1[4]) * g1[5]


_BLOCK = 256
"""Outputs per block of the block skipping in :func:`_scan` and :func:`_smoothed_window`."""


@numba.njit(cache=True, nogil=True)
def _block_class(flat, lo, hi, g1, ss_thr):  # pragma: no cover - compiled
    """Classify the samples of ``flat[lo:hi]`` against the non-strict single-sample test of
    threshold ``ss_thr`` (``T`` of ``w = 1`` in exact mode; mV in float mode, with a 1e-9
    relative margin so that the answer is conservative): −1 every sample is below it, +1
    every sample is at or above it, 0 mixed. One vectorisable min/max pass.

    With a threshold > 0, −1 means that no moving average of those samples (zero padding
    included) reaches it, +1 that every full-window average does: a block of outputs whose
    windows lie in ``[lo, hi)`` is then all zeroed, or all kept."""
    exact, sgk, sp, p, ped, k = g1
    mn = sgk * flat[lo]
    mx = mn
    for i in range(lo + 1, hi):
        v = sgk * flat[i]
        mn = min(mn, v)
        mx = max(mx, v)
    if exact:
        if mx * p - sgk * sp < ss_thr:
            return -1
        if mn * p - sgk * sp >= ss_thr:
            return 1
        return 0
    margin = 1e-9 * abs(ss_thr)
    if (sgk * mx - ped) * k < ss_thr - margin:
        return -1
    if (sgk * mn - ped) * k >= ss_thr + margin:
        return 1
    return 0


@numba.njit(cache=True, nogil=True)
def _sum_of_window_sums(flat, start, j0, j1, before, off, acc0):  # pragma: no cover
    """``Σ_{j0 ≤ j < j1} s_j`` for full windows ``s_j = Σ x[j − before .. j + off]``: each
    sample counted once per window that holds it."""
    tot = acc0
    for i in range(j0 - before, j1 + off):
        c = min(i + before, j1 - 1) - max(i - off, j0) + 1
        tot += flat[start + i] * c
    return tot


@numba.njit(cache=True, nogil=True)
def _scan(flat, b, n, j0, step, w, g, thr, strict, acc0, g1, skip, ss_thr):  # pragma: no cover
    """First ``j ≥ j0`` (``step`` +1) or last ``j ≥ j0`` (``step`` −1, scanning down from
    ``n − 1``) whose full-frame moving average passes ``_test(…, thr, strict)``; −1 if none.
    ``n ≥ w``. Direct sums where the frame edges cut the window; in the interior, blocks of
    :data:`_BLOCK` outputs are skipped when :func:`_block_class` finds all their samples
    below the threshold (``skip``: the threshold is > 0), else scanned with a running sum."""
    off = (w - 1) // 2
    before = w - 1 - off
    exact = g[0]
    sgk_p = g[1] * g[3]
    r = thr + g[1] * w * g[2]  # exact mode, full windows: sgk·s·p ≥ T + sgk·w·S_p
    if step > 0:
        j = j0
        while j < n and j < before:
            s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
            if _test(s, cnt, g, thr, strict):
                return j
            j += 1
        jend = n - off
        while j < jend:
            j1 = min(j + _BLOCK, jend)
            if skip and _block_class(flat, b + j - before, b + j1 + off, g1, ss_thr) < 0:
                j = j1
                continue
            s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
            if _test(s, w, g, thr, strict):
                return j
            j += 1
            if exact:
                while j < j1:
                    s += flat[b + j + off]
                    s -= flat[b + j - before - 1]
                    if s * sgk_p >= r:
                        return j
                    j += 1
            else:
                while j < j1:
                    s += flat[b + j + off]
                    s -= flat[b + j - before - 1]
                    if _test(s, w, g, thr, strict):
                        return j
                    j += 1
        while j < n:
            s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
            if _test(s, cnt, g, thr, strict):
                return j
            j += 1
        return -1
    j = n - 1
    while j >= j0 and j >= n - off:
        s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
        if _test(s, cnt, g, thr, strict):
            return j
        j -= 1
    lower = max(j0, before)
    while j >= lower:
        j1 = max(j - _BLOCK + 1, lower)
        if skip and _block_class(flat, b + j1 - before, b + j + off + 1, g1, ss_thr) < 0:
            j = j1 - 1
            continue
        s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
        if _test(s, w, g, thr, strict):
            return j
        j -= 1
        if exact:
            while j >= j1:
                s += flat[b + j - before]
                s -= flat[b + j + off + 1]
                if s * sgk_p >= r:
                    return j
                j -= 1
        else:
            while j >= j1:
                s += flat[b + j - before]
                s -= flat[b + j + off + 1]
                if _test(s, w, g, thr, strict):
                    return j
                j -= 1
    while j >= j0:
        s, cnt = _window_sum(flat, b, n, j, before, off, acc0)
        if _test(s, cnt, g, thr, strict):
            return j
        j -= 1
    return -1


@numba.njit(cache=True, nogil=True)
def _visit(s, cnt, j, g, thr, pos, s_kept, c_kept, j_first, j_last):  # pragma: no cover
    """Accumulate output ``j`` of a smoothed window (see :func:`_smoothed_window`)."""
    if _test(s, cnt, g, thr, False):
        s_kept += s
        c_kept += cnt
        if _test(s, cnt, g, pos, True):
            if j_first < 0:
                j_first = j
            j_last = j
    return s_kept, c_kept, j_first, j_last


@numba.njit(cache=True, nogil=True)
def _smoothed_window(
    flat, start, nw, w, g, thr, pos, acc0, g1, skip, ss_thr
):  # pragma: no cover - compiled
    """Moving average of the segment ``flat[start : start + nw]`` (``np.convolve`` "same",
    ``max(nw, w)`` values) with values below ``thr`` zeroed; ``pos`` is the threshold of the
    test "value > 0" (0.0, or its integer ``T`` in exact mode). ``nw ≥ 1``. With ``skip``
    (threshold > 0), blocks of full windows whose samples are all below the threshold are
    skipped (all zeroed) and those whose samples are all above it are summed at once (all
    kept): :func:`_block_class`.

    Returns ``(total, first_value, last_value, j_first, j_last)`` in mV: the sum of all
    values, the first and last value (for the trapezoid rule) and the first/last output index
    with a value > 0 (−1 if none). The kept window sums and their counts are accumulated in
    raw units: ``total = kw·(Σ s_j − ped·Σ cnt_j)`` over the kept outputs ``j``.
    """
    ped, kw = g[4], g[5]
    length = max(nw, w)
    off = (min(nw, w) - 1) // 2
    before = w - 1 - off  # output j averages i in [j - before, j + off] within [0, nw - 1]
    s_kept = acc0
    c_kept = 0
    j_first = -1
    j_last = -1
    if nw < w:  # short segment: direct sums (np.convolve returns w values)
        for j in range(length):
            s, cnt = _window_sum(flat, start, nw, j, before, off, acc0)
            s_kept, c_kept, j_first, j_last = _visit(
                s, cnt, j, g, thr, pos, s_kept, c_kept, j_first, j_last
            )
    else:
        for j in range(min(before, length)):
            s, cnt = _window_sum(flat, start, nw, j, before, off, acc0)
            s_kept, c_kept, j_first, j_last = _visit(
                s, cnt, j, g, thr, pos, s_kept, c_kept, j_first, j_last
            )
        sgk_p = g[1] * g[3]
        r_keep = thr + g[1] * w * g[2]  # exact mode, full windows: sgk·s·p ≥ T + sgk·w·S_p
        r_pos = pos + g[1] * w * g[2]
        jend = nw - off
        j = before
        while j < jend:
            j1 = min(j + _BLOCK, jend)
            cls = 0
            if skip:
                cls = _block_class(flat, start + j - before, start + j1 + off, g1, ss_thr)
            if cls < 0:  # all zeroed
                j = j1
                continue
            if cls > 0:  # all kept, and > 0
                s_kept += _sum_of_window_sums(flat, start, j, j1, before, off, acc0)
                c_kept += w * (j1 - j)
                if j_first < 0:
                    j_first = j
                j_last = j1 - 1
                j = j1
                continue
            s, cnt = _window_sum(flat, start, nw, j, before, off, acc0)
            s_kept, c_kept, j_first, j_last = _visit(
                s, w, j, g, thr, pos, s_kept, c_kept, j_first, j_last
            )
            if g[0]:
                for jj in range(j + 1, j1):
                    s += flat[start + jj + off]
                    s -= flat[start + jj - before - 1]
                    q = s * sgk_p
                    if q >= r_keep:
                        s_kept += s
                        c_kept += w
                        if q >= r_pos:
                            if j_first < 0:
                                j_first = jj
                            j_last = jj
            else:
                for jj in range(j + 1, j1):
                    s += flat[start + jj + off]
                    s -= flat[start + jj - before - 1]
                    s_kept, c_kept, j_first, j_last = _visit(
                        s, w, jj, g, thr, pos, s_kept, c_kept, j_first, j_last
                    )
            j = j1
        for j in range(max(before, jend), length):
            s, cnt = _window_sum(flat, start, nw, j, before, off, acc0)
            s_kept, c_kept, j_first, j_last = _visit(
                s, cnt, j, g, thr, pos, s_kept, c_kept, j_first, j_last
            )
    s, cnt = _window_sum(flat, start, nw, 0, before, off, acc0)
    first_value = (s - cnt * ped) * kw if _test(s, cnt, g, thr, False) else 0.0
    s, cnt = _window_sum(flat, start, nw, length - 1, before, off, acc0)
    last_value = (s - cnt * ped) * kw if _test(s, cnt, g, thr, False) else 0.0
    total = (s_kept - c_kept * ped) * kw
    return total, first_value, last_value, j_first, j_last


@numba.njit(parallel=True, cache=True, nogil=True)
def _pass1(
    flat,
    n_frames,
    row_stride,
    n,
    t,
    k,
    offset_mv,
    p,
    i_zero,
    w,
    t_s1_set,
    search_dt,
    acc0,
    exact,
    sgk,
    s1_thr,
    hit_thr,
    hit_strict,
    hit_exact,
    hit_ss,
    hit_skip,
    pedestal,
    noise,
    t_s1,
    t_start,
    t_end,
):  # pragma: no cover - compiled
    """Pass 1 over ``n_frames`` rows of ``n ≥ w`` samples, row ``f`` at ``flat[f * row_stride]``.

    ``s1_thr`` / ``hit_thr``: thresholds of the S1 test and of the S2 search test (integers
    ``T`` in exact mode). The moving average is slid forward from the search start to the
    first sample above threshold and backward from the end of the record to the last one, so
    the samples between S2 start and end are not read.
    """
    kw = k / w
    for f in numba.prange(n_frames):
        b = f * row_stride
        g1 = _frame(flat, b, p, acc0, exact, sgk, k)
        ped = g1[4]
        ss = 0.0
        for i in range(p):
            d = flat[b + i] - ped
            ss += d * d
        pedestal[f] = k * ped + offset_mv
        noise[f] = abs(k) * math.sqrt(ss / p)
        # S1: last sample before t = 0 above threshold (pedestal subtracted, not smoothed)
        i_s1 = -1
        for i in range(i_zero - 1, -1, -1):
            if _test(flat[b + i], 1, g1, s1_thr, True):
                i_s1 = i
                break
        ts1 = t[i_s1] if i_s1 >= 0 else np.nan
        t_s1[f] = ts1
        t_start[f] = np.nan
        t_end[f] = np.nan
        ref = t_s1_set if not math.isnan(t_s1_set) else ts1
        if math.isnan(ref):
            continue
        i0 = _first_above(t, ref + search_dt)
        g = (hit_exact, sgk, g1[2], p, ped, kw)
        gs = (hit_exact, sgk, g1[2], p, ped, k)
        j_first = _scan(flat, b, n, i0, 1, w, g, hit_thr, hit_strict, acc0, gs, hit_skip, hit_ss)
        if j_first < 0:
            continue
        j_last = _scan(
            flat, b, n, j_first, -1, w, g, hit_thr, hit_strict, acc0, gs, hit_skip, hit_ss
        )
        t_start[f] = t[j_first]
        t_end[f] = t[j_last]


@numba.njit(parallel=True, cache=True, nogil=True)
def _pass2(
    flat,
    n_frames,
    row_stride,
    n,
    t,
    k,
    dt,
    p,
    w,
    acc0,
    exact,
    sgk,
    do_area,
    area_lo,
    area_n,
    keep_thr,
    keep_ss,
    keep_skip,
    do_xray,
    t_s1,
    t_s2,
    i_s1,
    i_s2,
    x_lo,
    x_n,
    x_sum_thr,
    x_keep_thr,
    x_keep_ss,
    x_keep_skip,
    pos_thr,
    max_s1,
    max_s2,
    min_s1_sep,
    min_s2_sep,
    min_area,
    area,
    x_area,
    reason,
):  # pragma: no cover - compiled
    """Pass 2: S2 area over ``[area_lo, area_lo + area_n)`` and X-ray classification.
    Thresholds (``*_thr``) are integers ``T`` in exact mode, mV otherwise."""
    kw = k / w
    for f in numba.prange(n_frames):
        b = f * row_stride
        g1 = _frame(flat, b, p, acc0, exact, sgk, k)
        g = (exact, sgk, g1[2], p, g1[4], kw)
        if do_area and area_n > 0:
            total, y0, y1, _, _ = _smoothed_window(
                flat, b + area_lo, area_n, w, g, keep_thr, pos_thr, acc0, g1, keep_skip, keep_ss
            )
            area[f] = dt * (total - 0.5 * (y0 + y1)) if max(area_n, w) > 1 else 0.0
        if not do_xray:
            continue
        s1_sum = _sum_above(flat, b, b + i_s1, g1, x_sum_thr, acc0)
        s2_sum = _sum_above(flat, b + i_s2, b + n, g1, x_sum_thr, acc0)
        code = 0
        xa = np.nan
        if x_n < w:
            code = 3  # EMPTY_WINDOW
        else:
            total, y0, y1, j_first, j_last = _smoothed_window(
                flat, b + x_lo, x_n, w, g, x_keep_thr, pos_thr, acc0, g1, x_keep_skip, x_keep_ss
            )
            xa = dt * (total - 0.5 * (y0 + y1))
            if j_first < 0:
                code = 4  # NO_SIGNAL
            elif not t[x_lo + j_first] - t_s1 > min_s1_sep:
                code = 5  # TOO_CLOSE_TO_S1
            elif not t_s2 - t[x_lo + j_last] > min_s2_sep:
                code = 6  # TOO_CLOSE_TO_S2
            elif xa < min_area:
                code = 7  # AREA_TOO_SMALL
        if s1_sum > max_s1:
            code = 1  # S1_AREA_TOO_LARGE
        elif s2_sum > max_s2:
            code = 2  # S2_AREA_TOO_LARGE
        x_area[f] = xa
        reason[f] = code


_T_LIMIT = 2**62
"""Clamp of the integer thresholds (|sgk·(s·p − cnt·S_p)| stays far below)."""


def _exact_threshold(thr_mv: float, scale: FrameScale, w: int, p: int, strict: bool) -> int:
    """Integer ``T`` such that, for integers ``s`` (sum of ``cnt`` raw samples) and ``S_p``
    (sum of the ``p`` pedestal samples), the value ``k·(s − cnt·S_p/p)/w`` in exact real
    arithmetic (``k = polarity·scale_v·1000`` from the float ``scale_v``) is ``> thr_mv``
    (``strict``) or ``≥ thr_mv`` ⇔ ``sign(k)·(s·p − cnt·S_p) ≥ T``. Computed with
    ``Fraction`` (exact); ``w = 1`` for single samples."""
    k = Fraction(scale.polarity) * Fraction(scale.scale_v) * 1000
    r = Fraction(thr_mv) * w * p / abs(k)
    t = math.floor(r) + 1 if strict else math.ceil(r)
    return max(-_T_LIMIT, min(_T_LIMIT, t))


def _exact_mode(acc0: np.int64 | float, scale: FrameScale, dtype: np.dtype, w: int, p: int) -> bool:
    """Integer window sums, a non-zero scale, and ``s·p − cnt·S_p`` safely inside int64
    (``2·w·p·max|x| < 2⁶²``): decisions in exact integer arithmetic."""
    if not isinstance(acc0, np.integer) or scale.scale_v == 0.0:
        return False
    info = np.iinfo(dtype)
    return 2 * w * p * max(abs(int(info.min)), int(info.max)) < _T_LIMIT


def _threshold(
    thr_mv: float, scale: FrameScale, w: int, p: int, strict: bool, exact: bool
) -> int | float:
    """The threshold argument of the compiled tests: ``T`` in exact mode, else mV."""
    if exact:
        return _exact_threshold(float(thr_mv), scale, w, p, strict)
    return float(thr_mv)


def _check_thresholds(params: S2Params) -> None:
    for name, value in vars(params).items():
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value} (expected a finite number)")
    if params.s2_threshold_mv < 0:
        raise ValueError(f"s2_threshold_mv: {params.s2_threshold_mv} (expected ≥ 0 mV)")


def _accumulator(dtype: np.dtype) -> np.int64 | float:
    """Zero of the type the kernels sum raw samples in: int64 (exact) for integer samples of
    up to 32 bits, float64 otherwise."""
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        return np.int64(0)
    return 0.0


# --------------------------------------------------------------------------------------------
# Python wrappers


def _flat_rows(raw: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """``(flat, n_frames, row_stride, n_samples)``: a read-only 1-D, unit-stride view spanning
    all rows of ``raw`` (row ``f`` starts at ``flat[f * row_stride]``), without copying when
    the rows are unit-stride and the row stride is a non-negative multiple of the item size.
    """
    raw = np.asarray(raw)
    if raw.ndim == 1:
        raw = raw[np.newaxis, :]
    if raw.ndim != 2:
        raise ValueError(f"raw: shape {raw.shape} (expected (n_frames, n_samples))")
    if raw.dtype.newbyteorder("=").type not in SUPPORTED_TYPES:
        raise ValueError(
            f"raw: dtype {raw.dtype} (expected samples of an integer type, float32 or float64)"
        )
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    n_frames, n = raw.shape
    item = raw.itemsize
    if n_frames == 0 or n == 0:
        return np.zeros(max(n, 1), raw.dtype), n_frames, n, n
    s0, s1 = raw.strides
    if (n > 1 and s1 != item) or (n_frames > 1 and (s0 < 0 or s0 % item)):
        raw = np.ascontiguousarray(raw)
        s0 = raw.strides[0]
    row_stride = s0 // item if n_frames > 1 else n
    span = (n_frames - 1) * row_stride + n
    flat = np.lib.stride_tricks.as_strided(raw, shape=(span,), strides=(item,), writeable=False)
    return flat, n_frames, row_stride, n


def _check_pedestal(p: int, n: int, name: str) -> int:
    p = int(p)
    if not 1 <= p <= n:
        raise ValueError(f"{name}: {p} (expected 1..{n} for frames of {n} samples)")
    return p


def _check_ma(w: int) -> int:
    w = int(w)
    if w < 1:
        raise ValueError(f"ma_window: {w} (expected ≥ 1 samples)")
    return w


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


def _index_range(t: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """``(first, count)`` of the samples with ``lo ≤ t ≤ hi``."""
    first = int(np.searchsorted(t, lo, side="left"))
    end = int(np.searchsorted(t, hi, side="right"))
    return first, max(0, end - first)


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
