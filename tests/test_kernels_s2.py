"""S2 kernels against the plain numpy reference (tests/s2_reference.py) and hand cases."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavedqm.kernels import s2
from wavedqm.kernels.s2 import FrameScale, S2Params, XrayReason

import s2_reference as ref

FEATURES = ("pedestal_mv", "noise_mv", "t_s1_us", "t_s2_start_us", "t_s2_end_us")
TIMES = ("t_s1_us", "t_s2_start_us", "t_s2_end_us")


def assert_features_match(
    raw: np.ndarray,
    scale: FrameScale,
    t_drift: float,
    params: S2Params,
    t_s1: float = math.nan,
) -> s2.FrameFeatures:
    got = s2.frame_features(raw, scale, t_drift, params, t_s1_us=t_s1)
    want = ref.frame_features(np.atleast_2d(raw), scale, t_drift, params, t_s1_us=t_s1)
    for name in TIMES:  # sample times: the same samples, hence bit-identical
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    for name in ("pedestal_mv", "noise_mv"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-9, err_msg=name
        )
    return got


def assert_pass2_match(
    raw: np.ndarray,
    scale: FrameScale,
    window: tuple[float, float],
    t_s1: float,
    t_s2: float,
    params: S2Params,
) -> s2.AreaResult:
    got = s2.area_pass(raw, scale, window, t_s1, t_s2, params)
    raw = np.atleast_2d(raw)
    want_area = ref.s2_areas(raw, scale, window, params)
    want_xarea, want_reason = ref.xray_classify(raw, scale, t_s1, t_s2, params)
    atol = 1e-9 * max(1.0, abs(scale.mv_per_unit) * scale.dt_us * raw.shape[-1])
    np.testing.assert_allclose(got.s2_area_mv_us, want_area, rtol=1e-9, atol=atol)
    np.testing.assert_array_equal(got.xray.reason, want_reason)
    np.testing.assert_allclose(got.xray.area_mv_us, want_xarea, rtol=1e-9, atol=atol)
    # the separate entry points give the same numbers
    np.testing.assert_array_equal(s2.s2_areas(raw, scale, window, params), got.s2_area_mv_us)
    x = s2.xray_classify(raw, scale, t_s1, t_s2, params)
    np.testing.assert_array_equal(x.reason, got.xray.reason)
    return got


# --------------------------------------------------------------------------------------------
# realistic synthetic frames

P = S2Params()
T_DRIFT = 13.2
WINDOW = (11.0, 24.0)


@pytest.mark.parametrize(
    ("dtype", "scale_v", "offset_v", "baseline_v"),
    [
        (np.int8, 4e-4, 0.0, 0.004),
        (np.uint8, 4e-4, -0.05, 0.004),
        (np.int16, 5e-5, 0.002, 0.004),
        (np.uint16, 5e-5, -1.0, 0.004),
        (np.int32, 5e-5, 0.0, -0.3),
        (np.int64, 5e-5, 0.0, 0.004),
        (np.float32, 5e-5, 0.0, 0.004),
        (np.float64, 1.0, 0.0, 0.004),
    ],
)
def test_realistic_frames_match_reference(
    dtype: type, scale_v: float, offset_v: float, baseline_v: float
) -> None:
    syn = ref.make_frames(
        24, 8000, dtype=dtype, dt_us=0.005, scale_v=scale_v, offset_v=offset_v,
        baseline_v=baseline_v, seed=5,
    )  # fmt: skip
    feats = assert_features_match(syn.raw, syn.scale, T_DRIFT, P)
    assert np.isfinite(feats.t_s1_us).all() and np.isfinite(feats.t_s2_start_us).all()
    # set-level S1 time (RaTag's way) gives the same search for every frame
    assert_features_match(syn.raw, syn.scale, T_DRIFT, P, t_s1=-1.5)
    got = assert_pass2_match(syn.raw, syn.scale, WINDOW, -1.5, 12.0, P)
    assert np.isfinite(got.s2_area_mv_us).all()


def test_positive_polarity_matches_reference() -> None:
    syn = ref.make_frames(10, 6000, dt_us=0.005, polarity=1, seed=2)
    assert syn.scale.polarity == 1
    assert_features_match(syn.raw, syn.scale, T_DRIFT, P)
    assert_pass2_match(syn.raw, syn.scale, WINDOW, -1.5, 12.0, P)


def test_s1_times_and_s2_found_where_simulated() -> None:
    syn = ref.make_frames(30, 10000, dt_us=0.005, noise_mv=0.05, xray_fraction=0.0, seed=3)
    f = s2.frame_features(syn.raw, syn.scale, T_DRIFT, P)
    # S1 spike (Gaussian, 4 ns): the last sample above 1 mV is just after its peak
    np.testing.assert_allclose(f.t_s1_us, syn.t_s1_us, atol=0.012)
    # S2 box starts at 12 ± 0.2 µs (edges smeared by 0.5 µs), lasts 8–12 µs
    assert np.all((f.t_s2_start_us > 10.0) & (f.t_s2_start_us < 13.0))
    assert np.all((f.s2_duration_us > 7.0) & (f.s2_duration_us < 15.0))


# --------------------------------------------------------------------------------------------
# layouts: strided views, memory maps, byte order


def _embed(raw: np.ndarray, pre: int = 16, post: int = 16) -> np.ndarray:
    """``raw`` inside a buffer with pre/post-charge points around each record (as .wfm)."""
    n = raw.shape[1]
    buf = np.full((raw.shape[0], pre + n + post), 99, raw.dtype)
    buf[:, pre : pre + n] = raw
    return buf


def test_strided_view_reads_in_place_and_matches() -> None:
    syn = ref.make_frames(12, 5000, dt_us=0.005, seed=7)
    view = _embed(syn.raw)[:, 16:-16]
    assert not view.flags.c_contiguous and view.strides[1] == view.itemsize
    flat, _, row_stride, n = s2._flat_rows(view)
    assert np.shares_memory(flat, view) and row_stride == 5032 and n == 5000
    a = s2.frame_features(view, syn.scale, T_DRIFT, P)
    b = s2.frame_features(syn.raw, syn.scale, T_DRIFT, P)
    for name in FEATURES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = s2.area_pass(view, syn.scale, WINDOW, -1.5, 12.0, P)
    d = s2.area_pass(syn.raw, syn.scale, WINDOW, -1.5, 12.0, P)
    np.testing.assert_array_equal(c.s2_area_mv_us, d.s2_area_mv_us)
    np.testing.assert_array_equal(c.xray.reason, d.xray.reason)


def test_read_only_memmap_view(tmp_path) -> None:
    syn = ref.make_frames(8, 4000, dtype=np.int8, scale_v=4e-4, dt_us=0.005, seed=11)
    buf = _embed(syn.raw, 32, 32)
    path = tmp_path / "frames.bin"
    buf.tofile(path)
    mm = np.memmap(path, dtype=np.int8, mode="r", shape=buf.shape)
    view = mm[:, 32:-32]
    assert not view.flags.writeable
    assert_features_match(view, syn.scale, T_DRIFT, P)
    assert_pass2_match(view, syn.scale, WINDOW, -1.5, 12.0, P)
    flat, *_ = s2._flat_rows(view)
    assert np.shares_memory(flat, mm)


def test_big_endian_and_non_unit_stride() -> None:
    syn = ref.make_frames(6, 6000, dt_us=0.005, seed=13)
    native = s2.frame_features(syn.raw, syn.scale, T_DRIFT, P)
    big = syn.raw.astype(">i2")
    got = s2.frame_features(big, syn.scale, T_DRIFT, P)
    for name in FEATURES:
        np.testing.assert_array_equal(getattr(got, name), getattr(native, name))
    # every other sample: inner stride ≠ item size (copied once, then read)
    scale2 = FrameScale(syn.scale.scale_v, syn.scale.offset_v, 0.01, syn.scale.t0_us, -1)
    assert_features_match(syn.raw[:, ::2], scale2, T_DRIFT, P)
    assert_pass2_match(syn.raw[:, ::2], scale2, WINDOW, -1.5, 12.0, P)


def test_single_frame_and_zero_frames() -> None:
    syn = ref.make_frames(1, 5000, dt_us=0.005, seed=17)
    assert_features_match(syn.raw[0], syn.scale, T_DRIFT, P)  # 1-D = one frame
    empty = np.zeros((0, 5000), np.int16)
    f = s2.frame_features(empty, syn.scale, T_DRIFT, P)
    assert f.n_frames == 0
    r = s2.area_pass(empty, syn.scale, WINDOW, -1.5, 12.0, P)
    assert r.s2_area_mv_us.shape == (0,) and r.xray.reason.shape == (0,)


# --------------------------------------------------------------------------------------------
# random frames (hypothesis)

UGLY_SCALES = (3.0517578e-4 * 1.0731, 1.9e-4 * 1.3371, 7.7e-4 * 0.9137, 4.1e-5 * 1.771)


@st.composite
def random_case(draw: st.DrawFn) -> dict:
    dtype = draw(st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.int64, np.float32]))
    n = draw(st.integers(12, 160))
    n_frames = draw(st.integers(1, 4))
    w = draw(st.integers(1, 12))
    lo, hi = (0, 60) if dtype == np.uint8 else (-30, 30)
    base = draw(st.integers(0, 40)) if dtype == np.uint8 else 0
    raw = np.array(
        draw(st.lists(st.integers(lo, hi), min_size=n * n_frames, max_size=n * n_frames)),
        dtype=np.float64,
    ).reshape(n_frames, n)
    raw = (raw + base).astype(dtype)
    if dtype == np.float32:
        raw = (raw * np.float32(1.37)).astype(np.float32)
    dt = draw(st.sampled_from([0.01, 0.0371, 0.25]))
    t0 = -dt * draw(st.integers(0, n))
    scale = FrameScale(
        draw(st.sampled_from(UGLY_SCALES)) * draw(st.sampled_from([1.0, 9.3])),
        draw(st.sampled_from([0.0, 0.0123])),
        dt,
        t0,
        draw(st.sampled_from([-1, 1])),
    )
    t_end = t0 + dt * (n - 1)

    def time() -> float:
        return t0 + (t_end - t0) * draw(st.floats(-0.1, 1.1)) + 0.1234 * dt

    params = S2Params(
        n_pedestal_timing=draw(st.integers(1, min(n, 20))),
        n_pedestal_area=draw(st.integers(1, min(n, 20))),
        ma_window=w,
        s1_threshold_mv=draw(st.sampled_from([1.0, 0.37])),
        s2_threshold_mv=draw(st.sampled_from([0.8, 0.0113, 2.21])),
        s2_clip_mv=draw(st.sampled_from([0.02, 1.13])),
        s2_search_drift_fraction=0.3,
        bs_threshold_mv=draw(st.sampled_from([0.8, 0.0217, 1.71])),
        xray_bs_threshold_mv=draw(st.sampled_from([0.8, 0.0311])),
        xray_max_area_s1=draw(st.sampled_from([1e5, 3.17, 41.3])),
        xray_max_area_s2=draw(st.sampled_from([1e5, 5.13, 61.7])),
        xray_min_s1_sep_us=draw(st.sampled_from([0.5, 0.0])) * (t_end - t0) * 0.1,
        xray_min_s2_sep_us=draw(st.sampled_from([1.0, 0.0])) * (t_end - t0) * 0.1,
        xray_min_area_mv_us=draw(st.sampled_from([0.2, 0.0013])) * dt * 10,
    )
    a, b = sorted((time(), time()))
    x1, x2 = sorted((time(), time()))
    return {
        "raw": raw,
        "scale": scale,
        "params": params,
        "t_drift": (t_end - t0) * draw(st.floats(0.0, 2.0)),
        "t_s1_set": time() if draw(st.booleans()) else math.nan,
        "window": (a, b),
        "xray": (x1, x2),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_case())
def test_random_frames_match_reference(case: dict) -> None:
    raw, scale, params = case["raw"], case["scale"], case["params"]
    if raw.shape[1] >= params.ma_window:
        assert_features_match(raw, scale, case["t_drift"], params)
        assert_features_match(raw, scale, case["t_drift"], params, t_s1=case["t_s1_set"])
    else:
        with pytest.raises(ValueError, match="shorter than the moving average"):
            s2.frame_features(raw, scale, case["t_drift"], params)
    assert_pass2_match(raw, scale, case["window"], *case["xray"], params)


@st.composite
def sparse_case(draw: st.DrawFn) -> dict:
    """Longer frames, quiet but for a few pulses: most blocks of outputs are skipped, the
    pulses sit anywhere relative to the block edges."""
    dtype = draw(st.sampled_from([np.int8, np.int16, np.float32]))
    n = draw(st.integers(300, 1500))
    n_frames = draw(st.integers(1, 3))
    raw = np.zeros((n_frames, n))
    raw += draw(st.integers(-3, 3))  # baseline
    for f in range(n_frames):
        for _ in range(draw(st.integers(0, 4))):
            first = draw(st.integers(0, n - 1))
            width = draw(st.sampled_from([1, 5, 17, 40, 300, 700]))
            raw[f, first : first + width] += draw(st.integers(-12, 12))
    raw = raw.astype(dtype)
    dt = 0.01
    scale = FrameScale(draw(st.sampled_from(UGLY_SCALES)) * 2, 0.0, dt, -2.0, -1)
    t_end = -2.0 + dt * (n - 1)
    params = S2Params(
        n_pedestal_timing=draw(st.integers(1, 50)),
        n_pedestal_area=draw(st.integers(1, 50)),
        ma_window=draw(st.sampled_from([1, 4, 9])),
        s2_threshold_mv=draw(st.sampled_from([0.8, 2.21])),
        bs_threshold_mv=draw(st.sampled_from([0.8, 1.71])),
        xray_min_s1_sep_us=0.3,
        xray_min_s2_sep_us=0.3,
        xray_min_area_mv_us=0.002,
    )
    a, b = sorted(draw(st.floats(-2.0, t_end)) for _ in range(2))
    x1, x2 = sorted(draw(st.floats(-2.0, t_end)) for _ in range(2))
    return {"raw": raw, "scale": scale, "params": params, "window": (a, b), "xray": (x1, x2)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_case())
def test_sparse_long_frames_match_reference(case: dict) -> None:
    raw, scale, params = case["raw"], case["scale"], case["params"]
    assert_features_match(raw, scale, 5.0, params)
    assert_features_match(raw, scale, 5.0, params, t_s1=-3.0)
    assert_pass2_match(raw, scale, case["window"], *case["xray"], params)


@settings(max_examples=400, deadline=None)
@given(
    s_=st.integers(-(2**20), 2**20),
    cnt=st.integers(1, 12),
    sp=st.integers(-(2**24), 2**24),
    p=st.integers(1, 4000),
    scale_v=st.sampled_from([*UGLY_SCALES, 2.0**-12, 3.90625e-4, 1e-3, -2.5e-4]),
    polarity=st.sampled_from([-1, 1]),
    thr=st.sampled_from([0.0, 0.8, 1.0, 0.02, 0.9765625, 2.44140625e-4, -0.5, 1e5]),
    strict=st.booleans(),
)
def test_exact_threshold_decides_in_exact_arithmetic(
    s_: int, cnt: int, sp: int, p: int, scale_v: float, polarity: int, thr: float, strict: bool
) -> None:
    """The integer test equals the test of the exact rational value of a moving average of
    ``cnt`` samples summing to ``s_`` (window ``w = cnt``), pedestal ``sp / p``."""
    scale = FrameScale(scale_v, 0.0, 0.01, 0.0, polarity)
    w = cnt
    k = Fraction(polarity) * Fraction(scale_v) * 1000
    value = k * (s_ - cnt * Fraction(sp, p)) / w
    want = value > Fraction(thr) if strict else value >= Fraction(thr)
    t = s2._exact_threshold(thr, scale, w, p, strict)
    sgk = 1 if k > 0 else -1
    assert (sgk * (s_ * p - cnt * sp) >= t) == want
    # and the same decisions hold at the boundary itself
    for d in (t - 1, t, t + 1):
        assert (d >= t) == (Fraction(d) * abs(k) / (w * p) > thr if strict else
                            Fraction(d) * abs(k) / (w * p) >= thr)  # fmt: skip


# --------------------------------------------------------------------------------------------
# hand-computed cases


def _box_frames(n: int, pulses: list[tuple[int, int, int]], dtype: type = np.int16) -> np.ndarray:
    """Zero pedestal, negative boxes ``(first, last, height)`` in raw counts (inverted: +)."""
    raw = np.zeros((len(pulses), n), dtype)
    for f, (first, last, height) in enumerate(pulses):
        raw[f, first : last + 1] = -height
    return raw


def test_rectangular_s2_area_is_height_times_width() -> None:
    """A box of h mV and N samples (width W = N·dt): the moving average spreads every sample
    over w outputs inside the window, so Σ ma = N·h, the ends are 0 and the trapezoid gives
    dt·N·h = h·W — minus the ramp values h·m/w (m < w) below bs_threshold, zeroed at both
    edges: 2·dt·Σ_{h·m/w < bs} h·m/w. With a dyadic scale (2⁻¹² V per count) the ramp can
    land exactly on bs: a value equal to bs is not below it and is kept (exact decisions)."""
    dt = 0.002
    scale = FrameScale(2.0**-12, 0.0, dt, -1.0, -1)
    mv = Fraction(2.0**-12) * 1000  # 0.244140625 mV per count, exactly
    n, first, last = 3000, 1200, 1899  # 700 samples = 1.4 µs
    cases = ((20, 9, 0.8), (20, 9, 2.0), (32, 8, 1.953125), (32, 8, 1.9531), (20, 1, 0.8))
    for height, w, bs in cases:
        h = height * mv
        raw = _box_frames(n, [(first, last, height)])
        params = S2Params(n_pedestal_area=200, ma_window=w, bs_threshold_mv=bs)
        window = (-1.0 + dt * (first - 50), -1.0 + dt * (last + 50))
        got = s2.s2_areas(raw, scale, window, params)[0]
        lost = 2 * sum(h * m / w for m in range(1, w) if h * m / w < Fraction(bs))
        want = float((h * (last - first + 1) - lost) * Fraction(dt))
        assert got == pytest.approx(want, rel=1e-12), (height, w, bs)
        assert got == pytest.approx(ref.s2_areas(raw, scale, window, params)[0], rel=1e-12)


def test_s1_time_is_last_spike_before_zero() -> None:
    scale = FrameScale(2.0**-10, 0.0, 0.01, -5.0, -1)  # 0.9765625 mV/count, t = -5 + 0.01 i
    n = 1000
    raw = np.zeros((4, n), np.int16)
    raw[0, [100, 300]] = -3  # two spikes before t = 0 (t = -4, -2): the last one
    raw[1, [300, 700]] = -3  # one after t = 0 (t = 2) is ignored
    raw[2, 300] = -1  # exactly the threshold is not above it
    params = S2Params(n_pedestal_timing=50, s1_threshold_mv=0.9765625)
    f = s2.frame_features(raw, scale, 1.0, params)
    np.testing.assert_array_equal(f.t_s1_us[:2], [scale.times_us(n)[300]] * 2)
    assert np.isnan(f.t_s1_us[2:]).all()


def test_s2_start_end_on_a_box() -> None:
    """A 5 mV box on samples a..b: the 9-sample average is 5·m/9 with m box samples in the
    window, > 0.8 mV from m = 2, i.e. from sample a − 3 to b + 3."""
    scale = FrameScale(1e-3, 0.0, 0.01, -2.0, -1)
    t = scale.times_us(2000)
    raw = _box_frames(2000, [(900, 1300, 5)])
    raw[0, 150] = -4  # S1 at t = -0.5
    params = S2Params(n_pedestal_timing=100)
    f = s2.frame_features(raw, scale, t_drift_us=10.0, params=params)
    assert f.t_s1_us[0] == t[150]
    assert (f.t_s2_start_us[0], f.t_s2_end_us[0]) == (t[897], t[1303])
    # search start after the box: nothing found
    g = s2.frame_features(raw, scale, t_drift_us=40.0, params=params)
    assert np.isnan(g.t_s2_start_us[0]) and np.isnan(g.t_s2_end_us[0])
    # a set-level S1 time moves the search start
    h = s2.frame_features(raw, scale, 10.0, params, t_s1_us=-5.0)  # search from -2 µs
    assert h.t_s2_start_us[0] == t[897]
    h = s2.frame_features(raw, scale, 10.0, params, t_s1_us=9.0)  # search from 12 µs
    assert np.isnan(h.t_s2_start_us[0])
    # no S1 in the frame and no set time: no S2 search
    raw[0, 150] = 0
    assert np.isnan(s2.frame_features(raw, scale, 10.0, params).t_s2_start_us[0])


def test_every_xray_reason() -> None:
    """t = −2 … 10 µs (dt 0.01), drift region [0, 8] µs: one frame per reason."""
    scale = FrameScale(1e-3, 0.0, 0.01, -2.0, -1)  # 1 mV per count
    n = 1201
    t = scale.times_us(n)

    def box(start_us: float, width_us: float, mv: int) -> tuple[int, int, int]:
        i = int(np.searchsorted(t, start_us))
        return i, i + round(width_us / 0.01) - 1, mv

    frames = {
        XrayReason.PASSED_ALL_CUTS: [box(4.0, 0.5, 3)],
        XrayReason.S1_AREA_TOO_LARGE: [box(4.0, 0.5, 3), box(-1.0, 0.4, 5)],  # Σ 200 > 50
        XrayReason.S2_AREA_TOO_LARGE: [box(4.0, 0.5, 3), box(9.0, 0.4, 5)],
        XrayReason.NO_SIGNAL: [],
        XrayReason.TOO_CLOSE_TO_S1: [box(0.2, 0.5, 3)],
        XrayReason.TOO_CLOSE_TO_S2: [box(7.2, 0.5, 3)],
        XrayReason.AREA_TOO_SMALL: [box(4.0, 0.1, 2)],  # ≈ 0.2 mV·µs… minus the ramps
    }
    raw = np.zeros((len(frames), n), np.int16)
    for f, boxes in enumerate(frames.values()):
        for first, last, mv in boxes:
            raw[f, first : last + 1] = -mv
    params = S2Params(
        n_pedestal_area=100, xray_max_area_s1=50.0, xray_max_area_s2=50.0, xray_min_area_mv_us=0.2
    )
    got = assert_pass2_match(raw, scale, (3.0, 5.0), 0.0, 8.0, params).xray
    np.testing.assert_array_equal(got.reason, [int(r) for r in frames])
    # the accepted X-ray: a 3 mV box of 0.5 µs, ramps of 3·m/9 mV all above 0.8 but m = 1, 2
    lost = 2 * (3 / 9 + 6 / 9) * 0.01
    assert got.area_mv_us[0] == pytest.approx(1.5 - lost, rel=1e-12)
    assert got.area_mv_us[6] < 0.2
    counts = got.counts()
    assert counts["empty_window"] == 0 and sum(counts.values()) == len(frames)
    # a drift region shorter than the moving average: every frame EMPTY_WINDOW, area NaN
    loose = dataclasses.replace(params, xray_max_area_s1=1e5, xray_max_area_s2=1e5)
    short = s2.xray_classify(raw, scale, 4.0, 4.05, loose)
    assert (short.reason == XrayReason.EMPTY_WINDOW).all()
    assert np.isnan(short.area_mv_us).all()
    short = s2.xray_classify(raw, scale, 4.0, 4.05, params)  # the sums are checked first
    assert short.reason[1] == XrayReason.S1_AREA_TOO_LARGE
    assert XrayReason(4).label == "no_signal" and s2.XRAY_REASON_LABELS[0] == "passed_all_cuts"


def test_area_windows_empty_short_and_outside() -> None:
    syn = ref.make_frames(3, 3000, dt_us=0.01, seed=19)
    scale = syn.scale
    t = scale.times_us(3000)
    for window in ((5.0, 4.0), (t[100] + 1e-9, t[101] - 1e-9), (100.0, 200.0)):
        assert np.isnan(s2.s2_areas(syn.raw, scale, window, P)).all()
    for window in ((t[100], t[100]), (t[100], t[104]), (-1e9, 1e9), (t[2990], 1e9)):
        assert_pass2_match(syn.raw, scale, window, -1.5, 12.0, P)
    # skipping both parts returns NaN / -1
    r = s2.area_pass(syn.raw, scale, None, None, None)
    assert np.isnan(r.s2_area_mv_us).all() and (r.xray.reason == -1).all()
    assert sum(r.xray.counts().values()) == 0


def test_bad_inputs_are_refused() -> None:
    raw = np.zeros((2, 500), np.int16)
    good = FrameScale(1e-3, 0.0, 0.01, -1.0)
    with pytest.raises(ValueError, match="polarity"):
        s2.frame_features(raw, FrameScale(1e-3, 0.0, 0.01, -1.0, 0), 1.0)
    with pytest.raises(ValueError, match="dt_us"):
        s2.frame_features(raw, FrameScale(1e-3, 0.0, 0.0, -1.0), 1.0)
    with pytest.raises(ValueError, match="shape"):
        s2.frame_features(np.zeros((1, 2, 500), np.int16), good, 1.0)
    with pytest.raises(ValueError, match="dtype"):
        s2.frame_features(raw.astype(np.float16), good, 1.0)
    with pytest.raises(ValueError, match="n_pedestal_timing"):
        s2.frame_features(raw, good, 1.0, S2Params(n_pedestal_timing=501))
    with pytest.raises(ValueError, match="n_pedestal_area"):
        s2.s2_areas(raw, good, (0.0, 1.0), S2Params(n_pedestal_area=0))
    with pytest.raises(ValueError, match="t_drift_us"):
        s2.frame_features(raw, good, math.nan)
    with pytest.raises(ValueError, match="window_us"):
        s2.s2_areas(raw, good, (0.0, math.nan), S2Params(n_pedestal_area=10))
    with pytest.raises(ValueError, match="s2_threshold_mv"):
        s2.frame_features(raw, good, 1.0, S2Params(s2_threshold_mv=-0.1))
    with pytest.raises(ValueError, match="bs_threshold_mv"):
        s2.s2_areas(raw, good, (0.0, 1.0), S2Params(bs_threshold_mv=math.nan))
    with pytest.raises(ValueError, match="t_s1_us"):
        s2.xray_classify(raw, good, math.nan, 1.0, S2Params(n_pedestal_area=10))


def test_warm_up_compiles_every_default_type() -> None:
    from wavedqm.kernels import s2_compiled

    s2.warm_up()
    for kernel in (s2_compiled._pass1, s2_compiled._pass2):
        compiled = {str(sig[0].dtype) for sig in kernel.signatures}
        assert compiled >= {np.dtype(d).name for d in s2.WARM_UP_DTYPES}, compiled
