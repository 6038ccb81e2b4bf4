"""Plain numpy reference of the RaTag S2 algorithm (tests and benchmark only).

Written from the spec (ratag-s2.md) and RaTag's numpy code, frame by frame, for clarity: every
frame is converted to float64 mV, the pedestal subtracted, smoothed with ``np.convolve`` and
integrated with ``np.trapezoid`` on boolean-masked time windows. Independent of
``wavedqm.kernels.s2`` (only the parameter dataclasses are shared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavedqm.kernels.s2 import FrameScale, S2Params


def times(scale: FrameScale, n: int) -> np.ndarray:
    return scale.t0_us + scale.dt_us * np.arange(n, dtype=np.float64)


def to_mv(raw_frame: np.ndarray, scale: FrameScale) -> np.ndarray:
    """float64 mV after polarity inversion."""
    volts = raw_frame.astype(np.float64) * scale.scale_v + scale.offset_v
    return scale.polarity * volts * 1e3


def moving_average(x: np.ndarray, w: int) -> np.ndarray:
    return np.convolve(x, np.ones(w) / w, mode="same")


def clip_below(x: np.ndarray, threshold: float) -> np.ndarray:
    y = x.copy()
    y[y < threshold] = 0.0
    return y


@dataclass
class RefFeatures:
    pedestal_mv: np.ndarray
    noise_mv: np.ndarray
    t_s1_us: np.ndarray
    t_s2_start_us: np.ndarray
    t_s2_end_us: np.ndarray


def frame_features(
    raw: np.ndarray,
    scale: FrameScale,
    t_drift_us: float,
    params: S2Params,
    t_s1_us: float = np.nan,
) -> RefFeatures:
    n_frames, n = raw.shape
    t = times(scale, n)
    p = params.n_pedestal_timing
    out = RefFeatures(*(np.full(n_frames, np.nan) for _ in range(5)))
    for f in range(n_frames):
        v = to_mv(raw[f], scale)
        out.pedestal_mv[f] = v[:p].mean()
        out.noise_mv[f] = v[:p].std()
        v = v - v[:p].mean()
        above = np.nonzero((t < 0) & (v > params.s1_threshold_mv))[0]
        t_s1 = t[above[-1]] if above.size else np.nan
        out.t_s1_us[f] = t_s1
        ref = t_s1_us if np.isfinite(t_s1_us) else t_s1
        if not np.isfinite(ref):
            continue
        ma = clip_below(moving_average(v, params.ma_window), params.s2_clip_mv)
        mask = t > ref + params.s2_search_drift_fraction * t_drift_us
        hits = t[mask][ma[mask] > params.s2_threshold_mv]
        if hits.size:
            out.t_s2_start_us[f] = hits[0]
            out.t_s2_end_us[f] = hits[-1]
    return out


def s2_areas(
    raw: np.ndarray, scale: FrameScale, window_us: tuple[float, float], params: S2Params
) -> np.ndarray:
    """RaTag ``s2_area_pipeline``: pedestal, window cut, moving average, clip, trapezoid."""
    n_frames, n = raw.shape
    t = times(scale, n)
    mask = (t >= window_us[0]) & (t <= window_us[1])
    p = params.n_pedestal_area
    areas = np.full(n_frames, np.nan)
    for f in range(n_frames):
        v = to_mv(raw[f], scale)
        v = v - v[:p].mean()
        seg = v[mask]
        if seg.size == 0:  # np.convolve refuses an empty array: RaTag stores NaN
            continue
        y = clip_below(moving_average(seg, params.ma_window), params.bs_threshold_mv)
        areas[f] = np.trapezoid(y, dx=scale.dt_us)
    return areas


REASONS = (
    "passed_all_cuts",
    "s1_area_too_large",
    "s2_area_too_large",
    "empty_window",
    "no_signal",
    "too_close_to_s1",
    "too_close_to_s2",
    "area_too_small",
)


def xray_classify(
    raw: np.ndarray,
    scale: FrameScale,
    t_s1_us: float,
    t_s2_start_us: float,
    params: S2Params,
) -> tuple[np.ndarray, np.ndarray]:
    """(area, reason code) per frame, following RaTag's classify_xray_in_frame."""
    n_frames, n = raw.shape
    t = times(scale, n)
    p = params.n_pedestal_area
    bs = params.xray_bs_threshold_mv
    w = params.ma_window
    area = np.full(n_frames, np.nan)
    reason = np.zeros(n_frames, np.int8)
    window = (t >= t_s1_us) & (t <= t_s2_start_us)
    tw = t[window]
    for f in range(n_frames):
        v = to_mv(raw[f], scale)
        v = v - v[:p].mean()
        before = v[t < t_s1_us]
        after = v[t >= t_s2_start_us]
        code = "passed_all_cuts"
        if before[before > bs].sum() > params.xray_max_area_s1:
            code = "s1_area_too_large"
        elif after[after > bs].sum() > params.xray_max_area_s2:
            code = "s2_area_too_large"
        if tw.size < w:
            if code == "passed_all_cuts":
                code = "empty_window"
            reason[f] = REASONS.index(code)
            continue
        y = clip_below(moving_average(v[window], w), bs)
        area[f] = np.trapezoid(y, dx=scale.dt_us)
        if code == "passed_all_cuts":
            t_thresh = tw[y > 0]
            if t_thresh.size == 0:
                code = "no_signal"
            elif not t_thresh[0] - t_s1_us > params.xray_min_s1_sep_us:
                code = "too_close_to_s1"
            elif not t_s2_start_us - t_thresh[-1] > params.xray_min_s2_sep_us:
                code = "too_close_to_s2"
            elif area[f] < params.xray_min_area_mv_us:
                code = "area_too_small"
        reason[f] = REASONS.index(code)
    return area, reason


# --------------------------------------------------------------------------------------------
# synthetic frames


def smeared_box(t: np.ndarray, start: float, end: float, sigma: float) -> np.ndarray:
    """A box of height 1 on [start, end] with Gaussian-smeared edges (σ µs): area end − start."""
    from scipy.special import erf

    s = np.sqrt(2.0) * sigma
    return 0.5 * (erf((t - start) / s) - erf((t - end) / s))


@dataclass
class Synthetic:
    raw: np.ndarray
    scale: FrameScale
    signal_mv: np.ndarray
    """The noiseless positive-going signal of each frame (mV, before digitisation)."""
    s2_area_mv_us: np.ndarray
    """Area of each frame's S2 box (mV·µs)."""
    t_s1_us: np.ndarray
    has_xray: np.ndarray


def make_frames(
    n_frames: int,
    n_samples: int,
    *,
    dtype: type = np.int16,
    dt_us: float = 0.0005,
    t0_us: float = -10.0,
    scale_v: float = 5e-5,
    offset_v: float = 0.002,
    baseline_v: float = 0.004,
    polarity: int = -1,
    noise_mv: float = 0.2,
    s1_us: float = -1.5,
    s1_jitter_us: float = 0.05,
    s1_mv: float = 6.0,
    s2_start_us: float = 12.0,
    s2_duration_us: float = 10.0,
    s2_mv: float = 2.0,
    s2_edge_sigma_us: float = 0.5,
    xray_fraction: float = 0.2,
    xray_mv: float = 4.0,
    seed: int = 0,
) -> Synthetic:
    """Frames with an S1 spike, a Gaussian-smeared S2 box of known area, X-ray pulses in the
    drift region of some frames and white noise, digitised like a scope (negative pulses for
    ``polarity = -1``) into ``dtype`` (clipped to its range)."""
    rng = np.random.default_rng(seed)
    scale = FrameScale(scale_v, offset_v, dt_us, t0_us, polarity)
    t = times(scale, n_samples)
    sig = np.zeros((n_frames, n_samples))
    t_s1 = s1_us + rng.normal(0.0, s1_jitter_us, n_frames)
    width = max(dt_us, 0.004)
    for f in range(n_frames):
        sig[f] += s1_mv * np.exp(-0.5 * ((t - t_s1[f]) / width) ** 2)
    amp = s2_mv * rng.uniform(0.7, 1.3, n_frames)
    dur = s2_duration_us * rng.uniform(0.8, 1.2, n_frames)
    start = s2_start_us + rng.normal(0.0, 0.2, n_frames)
    for f in range(n_frames):
        sig[f] += amp[f] * smeared_box(t, start[f], start[f] + dur[f], s2_edge_sigma_us)
    has_xray = rng.random(n_frames) < xray_fraction
    for f in np.nonzero(has_xray)[0]:
        gap = s2_start_us - s1_us
        tx = rng.uniform(s1_us + 0.3 * gap, s2_start_us - 0.3 * gap)
        sig[f] += xray_mv * np.exp(-0.5 * ((t - tx) / 0.15) ** 2)
    noisy = sig + rng.normal(0.0, noise_mv, sig.shape)
    volts = polarity * noisy / 1e3 + baseline_v
    codes = np.rint((volts - offset_v) / scale_v)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        codes = np.clip(codes, info.min, info.max)
        raw = codes.astype(dtype)
    else:
        raw = ((volts - offset_v) / scale_v).astype(dtype)
    return Synthetic(raw, scale, sig, amp * dur, t_s1, has_xray)


# the set_metadata keys of s2_results.json, in the seed's order (seed 000)
SEED_SET_METADATA_KEYS = [
    "t_s1",
    "t_s1_std",
    "t_s2_start_mean",
    "t_s2_start_std",
    "t_s2_end_mean",
    "t_s2_end_std",
    "s2_duration_mean",
    "s2_duration_std",
    "drift_field",
    "EL_field",
    "time_drift",
    "speed_drift",
    "red_drift_field",
]
