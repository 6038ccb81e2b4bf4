"""Frames of one simulated set (:mod:`wavedqm.simulate.wfm_model` has the model): the time axis
and the placements that must fit the record (:class:`_Geometry`, µs, mV), the frame kinds at
random positions, the pulses (S1 Gaussians, Gaussian-smoothed boxes for S2s, X-rays and
pile-ups; mV over µs, areas in mV·µs) vectorised over a chunk of frames, and their
digitisation (inverted signal + Gaussian noise, quantised to int8/int16 counts as a scope
does, V per count and V offset)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

from wavedqm import constants as C
from wavedqm.simulate.wfm_model import (
    CLEAN_MARGIN_US,
    NEAR_S1_US,
    NEAR_S2_US,
    PILEUP_FACTOR,
    PRE_S1_PILEUP_US,
    RAW_DEFAULTS,
    S1_AMPLITUDE_MV,
    S1_JITTER_US,
    SMALL_AREA_MV_US,
    SMALL_SIGMA_US,
    TRUNCATE_SIGMA,
    XRAY_KINDS,
    XRAY_S1_MARGIN_US,
    XRAY_S2_MARGIN_US,
    FrameKind,
    SetModel,
)

# --------------------------------------------------------------------------------------------
# frames


def _add_pulses(
    sig: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    height: np.ndarray,
    sigma: float,
) -> None:
    """Add to ``sig[rows]`` boxes of ``height`` (mV) on ``[start, end]`` (µs) convolved with a
    Gaussian of ``sigma`` µs: area ``height · (end − start)``. Evaluated only over the samples
    any of them can reach (± 7 σ)."""
    if rows.size == 0:
        return
    lo = int(np.searchsorted(t, start.min() - 7 * sigma))
    hi = int(np.searchsorted(t, end.max() + 7 * sigma, side="right"))
    if hi <= lo:
        return
    tt = t[lo:hi][None, :]
    s = math.sqrt(2.0) * sigma
    shape = 0.5 * (erf((tt - start[:, None]) / s) - erf((tt - end[:, None]) / s))
    sig[rows, lo:hi] += height[:, None] * shape


def _add_gaussians(
    sig: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    centre: np.ndarray,
    height: np.ndarray,
    sigma: float,
) -> None:
    """Add Gaussians of ``height`` (mV) at ``centre`` (µs) of width ``sigma`` to ``sig[rows]``."""
    if rows.size == 0:
        return
    lo = int(np.searchsorted(t, centre.min() - 7 * sigma))
    hi = int(np.searchsorted(t, centre.max() + 7 * sigma, side="right"))
    tt = t[lo:hi][None, :]
    sig[rows, lo:hi] += height[:, None] * np.exp(-0.5 * ((tt - centre[:, None]) / sigma) ** 2)


def _normal(
    rng: np.random.Generator, mean: float, sigma: float, n: int, k: float = TRUNCATE_SIGMA
) -> np.ndarray:
    """``n`` draws of N(mean, sigma) truncated at ± ``k`` sigma (out-of-range draws redrawn):
    symmetric, so the mean is unchanged (the std shrinks by 0.05 % for k = 4)."""
    x = rng.normal(mean, sigma, n)
    while True:
        out = np.flatnonzero(np.abs(x - mean) > k * sigma)
        if out.size == 0:
            return x
        x[out] = rng.normal(mean, sigma, out.size)


def _kinds(rng: np.random.Generator, n: int, fractions: Mapping[FrameKind, float]) -> np.ndarray:
    """``round(fraction × n)`` frames of each kind at random positions, the rest ION."""
    counts = {k: round(f * n) for k, f in fractions.items() if k != FrameKind.ION}
    if sum(counts.values()) > n:
        raise ValueError(f"kind fractions {dict(fractions)} add up to more than 1")
    kind = np.zeros(n, np.int8)
    order = rng.permutation(n)
    pos = 0
    for k in sorted(counts):
        kind[order[pos : pos + counts[k]]] = k
        pos += counts[k]
    return kind


def _frames(
    rng: np.random.Generator, kind: np.ndarray, model: SetModel, geo: _Geometry
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(signal_mv, per_frame)`` of frames of the given kinds: the positive-going signal
    (mV, ``(n, record_length)``) and the per-frame arrays of :class:`SetTruth`
    (``frame_kind``, ``t_s1_frame_us``, …)."""
    t = geo.t
    n = kind.size
    sig = np.zeros((n, t.size))
    all_rows = np.arange(n)
    # S1
    t_s1 = geo.s1_peak_us + rng.normal(0.0, S1_JITTER_US, n)
    _add_gaussians(sig, t, all_rows, t_s1, rng.uniform(*S1_AMPLITUDE_MV, n), geo.s1_sigma_us)
    # ion S2 (every frame; S2_PILEUP frames get a huge one instead)
    width = _normal(rng, model.s2_width_us, model.s2_width_sigma_us, n)
    area = _normal(rng, model.s2_mean_mv_us, model.s2_sigma_mv_us, n)
    pile = kind == FrameKind.S2_PILEUP
    height = area / width
    height[pile] = geo.s2_pileup_mv
    area[pile] = geo.s2_pileup_mv * width[pile]
    start = t_s1 + model.drift_time_us
    _add_pulses(sig, t, all_rows, start, start + width, height, model.s2_edge_sigma_us)
    # pulses in the drift region
    xray_area = np.full(n, np.nan)
    xray_start = np.full(n, np.nan)
    w_x = model.el_transit_us
    for k in XRAY_KINDS:
        rows = np.flatnonzero(kind == k)
        m = rows.size
        if m == 0:
            continue
        s1, s2 = t_s1[rows], start[rows]
        if k == FrameKind.XRAY_SMALL:
            a = rng.uniform(*SMALL_AREA_MV_US, m)
            lo, hi = geo.xray_range_us
            centre = s1 + rng.uniform(lo, hi + w_x, m)
            _add_gaussians(
                sig, t, rows, centre, a / (SMALL_SIGMA_US * math.sqrt(2 * math.pi)), SMALL_SIGMA_US
            )
            xray_area[rows] = a
            xray_start[rows] = centre
            continue
        a = _normal(rng, model.xray_mean_mv_us, model.xray_sigma_mv_us, m)
        if k == FrameKind.XRAY:
            x0 = s1 + rng.uniform(*geo.xray_range_us, m)
        elif k == FrameKind.XRAY_NEAR_S1:
            x0 = s1 + rng.uniform(*NEAR_S1_US, m)
        else:  # XRAY_NEAR_S2
            x0 = s2 - rng.uniform(*NEAR_S2_US, m) - w_x
        _add_pulses(sig, t, rows, x0, x0 + w_x, a / w_x, model.s2_edge_sigma_us)
        xray_area[rows] = a
        xray_start[rows] = x0
    # pile-up before S1
    rows = np.flatnonzero(kind == FrameKind.PRE_S1_PILEUP)
    if rows.size:
        before, after = PRE_S1_PILEUP_US
        _add_pulses(
            sig,
            t,
            rows,
            t_s1[rows] - before,
            t_s1[rows] - after,
            np.full(rows.size, geo.pre_s1_pileup_mv),
            model.s2_edge_sigma_us,
        )
    return sig, {
        "frame_kind": kind,
        "t_s1_frame_us": t_s1,
        "s2_area_mv_us": area,
        "s2_width_frame_us": width,
        "xray_area_mv_us": xray_area,
        "xray_start_us": xray_start,
    }


@dataclass(frozen=True, eq=False)
class _Geometry:
    """Time axis and derived placements of one set (µs, mV)."""

    t: np.ndarray
    s1_peak_us: float
    s1_sigma_us: float
    xray_range_us: tuple[float, float]
    """Start of an accepted X-ray after S1 (µs)."""
    pre_s1_pileup_mv: float
    s2_pileup_mv: float


def _geometry(
    model: SetModel, *, dt_us: float, t0_us: float, record_length: int, s1_time_us: float
) -> _Geometry:
    """Check that every pulse fits the record and the pedestals stay clean; placements."""
    if not (math.isfinite(dt_us) and dt_us > 0):
        raise ValueError(f"dt_us={dt_us} (expected a sample period > 0 µs)")
    t = t0_us + dt_us * np.arange(record_length, dtype=np.float64)
    s1_peak = s1_time_us + 0.5 * dt_us
    before, _ = PRE_S1_PILEUP_US
    clean_end = t0_us + C.RATAG_N_PEDESTAL_AREA * dt_us
    first_pulse = s1_peak - before - CLEAN_MARGIN_US
    if clean_end > first_pulse:
        raise ValueError(
            f"t0_us={t0_us}: the {C.RATAG_N_PEDESTAL_AREA} pedestal samples end at "
            f"{clean_end:.3f} µs, after the first pulse may start ({first_pulse:.3f} µs); "
            f"start the record earlier"
        )
    if s1_peak + 0.05 >= 0.0:
        raise ValueError(f"s1_time_us={s1_time_us}: the S1 must come before t = 0")
    edge = 7 * model.s2_edge_sigma_us
    longest = model.s2_width_us + TRUNCATE_SIGMA * model.s2_width_sigma_us
    s2_end = s1_peak + model.drift_time_us + longest + edge
    if s2_end + 1.0 > t[-1]:
        raise ValueError(
            f"gate {model.gate_v:g} V: the ion S2 ends near {s2_end:.2f} µs, beyond the record "
            f"({t[-1]:.2f} µs + 1 µs margin needed); raise record_length"
        )
    lo = C.RATAG_XRAY_MIN_S1_SEP_US + XRAY_S1_MARGIN_US
    hi = model.drift_time_us - C.RATAG_XRAY_MIN_S2_SEP_US - XRAY_S2_MARGIN_US
    hi -= model.el_transit_us
    if hi <= lo:
        raise ValueError(
            f"gate {model.gate_v:g} V: drift time {model.drift_time_us:.2f} µs leaves no room "
            f"for an accepted X-ray of {model.el_transit_us:.2f} µs"
        )
    width = PRE_S1_PILEUP_US[0] - PRE_S1_PILEUP_US[1]
    pre = PILEUP_FACTOR * C.RATAG_XRAY_MAX_AREA_S1 * dt_us / width
    shortest = model.s2_width_us - TRUNCATE_SIGMA * model.s2_width_sigma_us
    s2p = PILEUP_FACTOR * C.RATAG_XRAY_MAX_AREA_S2 * dt_us / shortest
    return _Geometry(t, s1_peak, 0.5 * dt_us, (lo, hi), pre, s2p)


def _raw_scale(
    raw_dtype: Any, vscale_v: float | None, voffset_v: float | None, baseline_mv: float
) -> tuple[np.dtype, float, float]:
    dtype = np.dtype(raw_dtype)
    if dtype.name not in RAW_DEFAULTS:
        raise ValueError(f"raw_dtype {dtype} (expected int8 or int16)")
    scale, base_count = RAW_DEFAULTS[dtype.name]
    vscale = scale if vscale_v is None else float(vscale_v)
    if not (math.isfinite(vscale) and vscale > 0):
        raise ValueError(f"vscale_v={vscale_v} (expected V per count > 0)")
    voffset = baseline_mv / 1e3 - base_count * vscale if voffset_v is None else float(voffset_v)
    return dtype, vscale, voffset


def _range_mv(dtype: np.dtype, vscale: float, voffset: float, baseline_mv: float) -> float:
    """Largest negative pulse (mV) the raw range holds below the baseline."""
    lowest_v = np.iinfo(dtype).min * vscale + voffset
    return (baseline_mv / 1e3 - lowest_v) * 1e3


def _digitise(
    sig: np.ndarray,
    rng: np.random.Generator,
    noise_mv: float,
    baseline_mv: float,
    dtype: np.dtype,
    vscale: float,
    voffset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(raw, clipped)``: rint((volts − voffset) / vscale) of the inverted signal + noise,
    clipped to the dtype as a scope does; ``clipped`` per frame."""
    noise = rng.standard_normal(sig.shape, dtype=np.float32)
    mv = baseline_mv - sig - noise_mv * noise
    codes = np.rint((mv * 1e-3 - voffset) / vscale)
    info = np.iinfo(dtype)
    clipped = ((codes < info.min) | (codes > info.max)).any(axis=1)
    return np.clip(codes, info.min, info.max).astype(dtype), clipped
