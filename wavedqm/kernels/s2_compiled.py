"""Compiled code of the S2 kernels: the moving-average primitives (numba, ``nogil``, one
frame each) and the two passes' per-frame loops.

They read the raw samples in place: a frame is the segment ``flat[b : b + n]`` of the 1-D
view made by :func:`~wavedqm.kernels.s2_prep._flat_rows`. Sums are taken in raw units (int64
or float64, the type of ``acc0``) and converted to mV only at the end, ``mV = k·(raw − ped)``
with ``k = polarity·scale_v·1000`` (mV per raw unit). A frame's pedestal and conversion
travel in the frame tuple ``g = (exact, sgk, S_p, p, ped, kw)`` of :func:`_frame`. Thresholds
are integers ``T`` in exact mode and mV otherwise (see "Numerics and exactness" in
:mod:`wavedqm.kernels.s2`).

The primitives: a binary search in the sample times (:func:`_first_above`); window sums and
their threshold test, a frame's pedestal, the X-ray sums (:func:`_window_sum`, :func:`_test`,
:func:`_frame`, :func:`_sum_above`); block skipping (:func:`_block_class`,
:func:`_sum_of_window_sums`); the S2 start/end search of pass 1 (:func:`_scan`); the
smoothed-window integral of pass 2 (:func:`_visit`, :func:`_smoothed_window`). The moving
average is exactly ``np.convolve(x, np.ones(w) / w, mode="same")``.

The per-frame loops, at the end (``parallel=True``, frames spread over threads with
``prange``): :func:`_pass1` (pedestal and noise, mV; S1 time, S2 start/end, µs) and
:func:`_pass2` (S2 area, mV·µs; X-ray area and :class:`~wavedqm.xray_reasons.XrayReason`),
into arrays the wrappers of :mod:`wavedqm.kernels.s2` allocate (thresholds via ``s2_prep``).

One module on purpose: numba's cache (``cache=True``) checks a compiled function against the
file it is defined in only, so the loops and the primitives compiled into them must share a
file, or an edit of a primitive would leave stale cached loops.
"""

from __future__ import annotations

import math

import numba
import numpy as np


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
