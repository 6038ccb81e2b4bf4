"""RaTag physics: fields and transport, set statistics, fits, calibration, diffusion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from wavedqm import constants as C
from wavedqm.analysis import ratag as R
from wavedqm.analysis import ratag_fit as RF
from wavedqm.kernels import s2

import s2_reference as ref
from s2_reference import SEED_SET_METADATA_KEYS

# --------------------------------------------------------------------------------------------
# names, fields, transport


def test_spec_check_200_v_gate() -> None:
    """Spec: 200 V gate → 142.9 V/cm, 0.289 Td, 1.058 mm/µs, 13.2 µs."""
    info = R.parse_set_name("FieldScan_Gate0200_Anode2100")
    phys = R.set_physics(info)
    assert round(phys.drift_field, 1) == 142.9
    assert round(phys.red_drift_field, 3) == 0.289
    assert round(phys.speed_drift, 3) == 1.058
    assert round(phys.time_drift, 1) == 13.2
    assert phys.el_field == pytest.approx((2100 - 200) / 0.8)


def test_fields_and_transport_by_hand() -> None:
    n = R.gas_density_cm3(2.0, 293.0)
    assert n == pytest.approx(2e5 / (1.380649e-23 * 293.0) * 1e-6, rel=1e-15)
    assert R.RunConstants().gas_density_cm3 == pytest.approx(n, rel=1e-15)
    # E/n = 1e-17 V·cm² is 1 Td
    assert R.reduced_field_td(1e-17 * n, n) == pytest.approx(1.0)
    p0, p1, p2, p3 = C.RATAG_DRIFT_SPEED_PARAMS
    assert R.drift_speed_mm_us(1.0) == pytest.approx(p0 * (1 - math.exp(-p1)) + p2 / (1 + p3))
    assert R.drift_speed_mm_us(0.0) == 0.0
    # vectorised over sets
    gates = np.array([50.0, 200.0, 600.0])
    e = R.drift_field_v_cm(gates)
    np.testing.assert_allclose(e, gates / 1.4)
    speed = R.drift_speed_mm_us(R.reduced_field_td(e, n))
    np.testing.assert_allclose(R.drift_time_us(speed), 14.0 / speed)
    assert np.all(np.diff(speed) > 0)
    np.testing.assert_allclose(R.el_field_v_cm(2100.0, gates, 0.8), (2100.0 - gates) / 0.8)


def test_run_constants_defaults_and_dict() -> None:
    rc = R.RunConstants()
    assert (rc.pressure_bar, rc.temperature_k, rc.el_gap_cm, rc.drift_gap_cm) == (
        2.0, 293.0, 0.8, 1.4,
    )  # fmt: skip
    assert (rc.w_value_ev, rc.xray_energy_kev) == (22.0, 12.3)
    d = rc.to_dict()
    assert d["drift_speed_params"] == list(C.RATAG_DRIFT_SPEED_PARAMS)
    json.dumps(d)


@pytest.mark.parametrize(
    ("name", "gate", "anode", "rate"),
    [
        ("FieldScan_Gate0200_Anode2100", 200.0, 2100.0, None),
        ("FieldScan_Gate0050_EL1750_2GSsec", 50.0, 1750.0, 2.0),
        ("FieldScan_5GSsec_EL2500_Gate1000", 1000.0, 2500.0, 5.0),
    ],
)
def test_parse_set_name(name: str, gate: float, anode: float, rate: float | None) -> None:
    info = R.parse_set_name(name)
    assert (info.name, info.gate_v, info.anode_v, info.sampling_gs_s) == (name, gate, anode, rate)
    assert R.is_set_name(name)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("FieldScan_Anode2100", "Gate"),
        ("FieldScan_Gate0200", "Anode<volts> or EL<volts>"),
        ("RUN34_EL25k", "Gate"),
        ("", "Gate<volts> and no Anode"),
    ],
)
def test_parse_set_name_refuses_with_a_clear_message(name: str, missing: str) -> None:
    with pytest.raises(ValueError, match=f"set name {name!r}: no {missing}"):
        R.parse_set_name(name)
    assert not R.is_set_name("RUN34_EL25k")


# --------------------------------------------------------------------------------------------
# S1 and S2 window statistics


def test_s1_statistics_by_hand() -> None:
    # -10 is a 3σ outlier; -0.5 and later are cut; NaN (no S1) ignored
    peak = [-1.3, -1.2, -1.1, -1.0, -1.0, -1.0, -1.0, -1.0, -0.9, -0.7]
    times = np.array([*peak, -10.0, -0.5, -0.2, 0.3, np.nan])
    s = R.s1_statistics(times)
    # 50 bins over [-1.3, -0.7]: width 0.012, -1.0 falls in bin 25 = [-1.0, -0.988)
    assert s.t_s1 == pytest.approx(-0.994, abs=1e-12)
    assert s.t_s1_std == pytest.approx(np.std(peak), rel=1e-12)
    assert (s.n_frames, s.n_used) == (14, 10)
    assert s.ok and s.to_dict() == {"t_s1": s.t_s1, "t_s1_std": s.t_s1_std}


def test_s1_statistics_degenerate_inputs() -> None:
    for times in ([], [np.nan, np.nan], [0.5, -0.1]):
        s = R.s1_statistics(np.array(times, float))
        assert math.isnan(s.t_s1) and not s.ok
        assert s.to_dict() == {"t_s1": None, "t_s1_std": None}
    s = R.s1_statistics(np.full(7, -2.25))
    assert (s.t_s1, s.t_s1_std, s.n_used) == (-2.25, 0.0, 7)


def test_s2_window_statistics_by_hand() -> None:
    expected = 10.0  # t_s1 + t_drift: starts kept in [3, 15], ends in [12, 35]
    rng = np.random.default_rng(1)
    start = rng.uniform(8.0, 12.0, 200)
    end = start + rng.uniform(6.0, 14.0, 200)
    start_all = np.concatenate([start, [2.0, 16.0, np.nan, 11.0, 11.0, 9.0]])
    end_all = np.concatenate([end, [20.0, 30.0, 20.0, np.nan, 10.0, 36.0]])
    w = R.s2_window_statistics(start_all, end_all, expected)
    # frames: finite start and end with end > start (drops the NaN pair members and 11 → 10)
    good = np.isfinite(start_all) & np.isfinite(end_all) & (end_all > start_all)
    s_all, e_all = start_all[good], end_all[good]
    assert w.n_frames == int(good.sum()) == 203
    s_kept = s_all[(s_all >= 3.0) & (s_all <= 15.0)]
    e_kept = e_all[(e_all >= 12.0) & (e_all <= 35.0)]
    d = e_all - s_all
    d_kept = d[(d >= 5.0) & (d <= 25.0)]
    for spread, kept in ((w.start, s_kept), (w.end, e_kept), (w.duration, d_kept)):
        p16, p50, p84 = np.percentile(kept, [16, 50, 84])
        assert (spread.median, spread.p16, spread.p84, spread.n) == (p50, p16, p84, kept.size)
        assert spread.std == pytest.approx((p84 - p16) / 2)
    assert w.start.n == 201 and w.end.n == 202  # 2.0 and 16.0 out; 36.0 out
    d = w.to_dict()
    assert list(d) == SEED_SET_METADATA_KEYS[2:8]
    assert d["t_s2_start_mean"] == w.start.median and d["s2_duration_std"] == w.duration.std
    lo, hi = R.integration_window(w)
    assert lo == w.start.median - w.start.std and hi == w.end.median + 0.5 * w.end.std


def test_s2_window_statistics_too_few_events() -> None:
    w = R.s2_window_statistics(np.array([10.0] * 9), np.array([20.0] * 9), 10.0)
    assert not w.ok and math.isnan(w.start.median) and w.start.n == 9
    assert R.integration_window(w) is None
    assert all(v is None for v in w.to_dict().values())
    w = R.s2_window_statistics(np.array([10.0] * 10), np.array([20.0] * 10), 10.0)
    assert w.ok and (w.start.median, w.end.median, w.duration.median) == (10.0, 20.0, 10.0)
    assert R.integration_window(w) == (10.0, 20.0)


def test_set_metadata_has_the_seed_keys() -> None:
    info = R.parse_set_name("FieldScan_Gate0200_Anode2100")
    rng = np.random.default_rng(0)
    start = rng.normal(12.0, 0.5, 100)
    w = R.s2_window_statistics(start, start + rng.normal(10.0, 1.0, 100), 11.7)
    meta = R.set_metadata(R.s1_statistics(rng.normal(-1.5, 0.05, 100)), w, R.set_physics(info))
    assert list(meta) == SEED_SET_METADATA_KEYS
    json.dumps(meta, allow_nan=False)


# --------------------------------------------------------------------------------------------
# Gaussian fits


def test_gaussian_fit_recovers_a_normal_sample() -> None:
    rng = np.random.default_rng(3)
    areas = rng.normal(2.0, 0.3, 20000)
    fit = R.fit_area_histogram(areas, (0.0, 4.0))
    assert fit.fit_success and fit.message == ""
    assert fit.mean == pytest.approx(2.0, abs=0.01)
    assert fit.sigma == pytest.approx(0.3, abs=0.01)
    assert 0.0 < fit.ci95 < 0.02
    assert fit.n_events == int(np.sum((areas > 0) & (areas < 4)))
    assert fit.counts.sum() == fit.n_events and fit.bin_edges.size == 101
    # the histogram is over the selected areas' own range (as RaTag)
    sel = areas[(areas > 0) & (areas < 4)]
    assert (fit.bin_edges[0], fit.bin_edges[-1]) == (sel.min(), sel.max())
    assert fit.curve(fit.mean) == pytest.approx(fit.amplitude)
    d = fit.to_dict()
    assert {"mean", "sigma", "ci95", "fit_success", "n_events", "amplitude"} <= set(d)
    json.dumps(d, allow_nan=False)


def test_gaussian_fit_first_bin_exclusion() -> None:
    """A pedestal leak (many areas near 0) pulls the fit unless the first bin is left out."""
    rng = np.random.default_rng(4)
    areas = np.concatenate([rng.normal(2.0, 0.3, 5000), rng.uniform(0.0, 0.02, 3000)])
    with_leak = R.fit_area_histogram(areas, (0.0, 4.0))
    without = R.fit_area_histogram(areas, (0.0, 4.0), exclude_first_bin=True)
    assert without.fit_success and without.exclude_first_bin
    assert without.mean == pytest.approx(2.0, abs=0.02)
    assert abs(with_leak.mean - 2.0) > 1.0  # the leak's spike wins


@pytest.mark.parametrize(
    "areas",
    [[], [1.0], [1.0, 2.0], [np.nan] * 10, [5.0] * 10, [2.0] * 50, [-1.0, 7.0, 4.0, 0.0]],
)
def test_gaussian_fit_never_raises(areas: list[float]) -> None:
    fit = R.fit_area_histogram(np.array(areas, float), (0.0, 4.0))
    assert not fit.fit_success and math.isnan(fit.mean) and fit.message
    d = fit.to_dict()
    assert d["mean"] is None and d["fit_success"] is False
    json.dumps(d, allow_nan=False)


# --------------------------------------------------------------------------------------------
# calibration, recombination, diffusion


def test_calibration_and_recombination_by_hand() -> None:
    a_x = 2.795
    cal = R.calibrate(a_x, 0.05)
    n_e = 12300.0 / 22.0
    assert cal.n_e_expected == pytest.approx(n_e)
    assert cal.g_s2 == pytest.approx(a_x / n_e)
    # ions that kept 70% and 40% of their electrons
    a_ion = np.array([0.7, 0.4]) * n_e * cal.g_s2
    rec = R.recombination(a_ion, [0.01, 0.02], [142.9, 357.1], cal)
    np.testing.assert_allclose(rec.r, [0.3, 0.6])
    np.testing.assert_allclose(rec.normalised_s2, [0.7, 0.4])
    np.testing.assert_allclose(rec.n_e_measured, [0.7 * n_e, 0.4 * n_e])
    np.testing.assert_allclose(rec.r_err, np.array([0.01, 0.02]) / a_x)
    np.testing.assert_allclose(rec.normalised_s2_err, np.array([0.01, 0.02]) / a_x)
    json.dumps(rec.to_dict(), allow_nan=False)
    json.dumps(cal.to_dict(), allow_nan=False)


def test_diffusion_fits_recover_lines() -> None:
    info = [R.parse_set_name(f"FieldScan_Gate{g:04d}_Anode2100") for g in (100, 200, 400, 800)]
    phys = [R.set_physics(i) for i in info]
    td = np.array([p.time_drift for p in phys])
    vd = np.array([p.speed_drift for p in phys])
    field = np.array([p.drift_field for p in phys])
    sigma = np.sqrt(0.02 * td + 0.1)  # σ² exactly linear in t_d
    fit = R.diffusion_fits(sigma, td, vd, field, 2.0)
    assert fit.vs_drift_time.slope == pytest.approx(0.02)
    assert fit.vs_drift_time.intercept == pytest.approx(0.1)
    assert fit.vs_drift_time.slope_err == pytest.approx(0.0, abs=1e-9)
    assert fit.vs_drift_time.fit_success and fit.vs_drift_time.n_points == 4
    np.testing.assert_allclose(fit.e_over_p, field / 2.0)
    np.testing.assert_allclose(fit.td_over_vd2, td / vd**2)
    json.dumps(fit.to_dict(), allow_nan=False)


def test_linear_fit_errors_match_scipy() -> None:
    rng = np.random.default_rng(5)
    x = np.linspace(0, 10, 12)
    y = 0.3 * x + 1.0 + rng.normal(0, 0.2, x.size)
    got = R.linear_fit(x, y)
    want = stats.linregress(x, y)
    assert got.slope == pytest.approx(want.slope)
    assert got.intercept == pytest.approx(want.intercept)
    assert got.slope_err == pytest.approx(want.stderr)
    assert got.intercept_err == pytest.approx(want.intercept_stderr)
    two = R.linear_fit([1.0, 2.0], [3.0, 5.0])
    assert (two.slope, two.intercept, two.fit_success) == (2.0, 1.0, False)
    assert math.isnan(two.slope_err)
    for bad in (R.linear_fit([1.0], [2.0]), R.linear_fit([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])):
        assert not bad.fit_success and math.isnan(bad.slope)
        json.dumps(bad.to_dict(), allow_nan=False)


def test_linear_fit_covariance_and_band_by_hand() -> None:
    """x = 0, 1, 2; y = 0, 1, 3: x̄ = 1, Sxx = 2, slope 3/2, intercept −1/6, residuals
    1/6, −1/3, 1/6 so s² = (1/6) / (3 − 2) = 1/6; σ_slope² = s²/Sxx = 1/12, σ_intercept² =
    s²(1/n + x̄²/Sxx) = 5/36, cov = −x̄ s²/Sxx = −1/12; the line's σ² at x is
    s²(1/n + (x − x̄)²/Sxx): 1/18 at x = 1, 5/36 at x = 0 and 2."""
    fit = R.linear_fit([0.0, 1.0, 2.0], [0.0, 1.0, 3.0])
    assert fit.fit_success and fit.n_points == 3
    assert fit.slope == pytest.approx(1.5)
    assert fit.intercept == pytest.approx(-1 / 6)
    assert fit.slope_err == pytest.approx(math.sqrt(1 / 12))
    assert fit.intercept_err == pytest.approx(math.sqrt(5 / 36))
    assert fit.slope_intercept_cov == pytest.approx(-1 / 12)
    np.testing.assert_allclose(
        fit.band([0.0, 1.0, 2.0]), np.sqrt([5 / 36, 1 / 18, 5 / 36]), rtol=1e-12
    )
    # numpy's scaled covariance (χ²/(n − 2)) agrees
    _, cov = np.polyfit([0.0, 1.0, 2.0], [0.0, 1.0, 3.0], 1, cov=True)
    assert fit.slope_intercept_cov == pytest.approx(cov[0, 1])
    # the JSON keys of calibration.json are unchanged
    assert set(fit.to_dict()) == {
        "x_name", "slope", "intercept", "slope_err", "intercept_err", "n_points", "fit_success"
    }  # fmt: skip
    two = R.linear_fit([1.0, 2.0], [3.0, 5.0])
    assert math.isnan(two.slope_intercept_cov) and np.isnan(two.band([1.0])).all()


def test_histogram_bins_rule() -> None:
    """numpy's "auto" (larger of Sturges and Freedman–Diaconis), bounded to 5–100."""
    assert [RF.histogram_bins(v) for v in ([], [1.0], [2.0] * 50, [np.nan] * 9)] == [5] * 4
    # by hand: 1..100: Sturges ⌈log2 100⌉ + 1 = 8; IQR 75.25 − 25.75 = 49.5, FD width
    # 2·49.5/100^(1/3) = 21.3 over a range of 99: 5 bins; the larger is 8
    assert RF.histogram_bins(np.arange(1.0, 101.0)) == 8
    rng = np.random.default_rng(11)
    for n in (30, 294, 1000, 5000):
        v = rng.normal(26.0, 4.0, n)
        assert RF.histogram_bins(v) == len(np.histogram_bin_edges(v, "auto")) - 1
    few_hundred = RF.histogram_bins(rng.normal(26.0, 4.0, 294))
    assert 10 <= few_hundred <= 20  # not the fit's 100
    big = np.concatenate([rng.normal(0, 1, 10**6), [1e12]])  # one far outlier
    assert RF.histogram_bins(big) == RF.PLOT_MAX_BINS
    assert RF.histogram_bins(np.arange(10.0), lo=3, hi=4) == 4


def test_display_histogram_and_area_counts() -> None:
    areas = np.array([np.nan, -1.0, 0.0, 1.0, 1.5, 2.0, 4.0, 5.0, np.inf])
    counts, edges = RF.display_histogram(areas, (0.0, 4.0))
    assert counts.sum() == 3 and (edges[0], edges[-1]) == (1.0, 2.0)
    assert counts.size == RF.histogram_bins([1.0, 1.5, 2.0])
    c = RF.area_counts(areas, (0.0, 4.0))
    assert (c.n_total, c.n_in_range, c.n_no_area, c.n_below, c.n_above) == (9, 3, 2, 2, 2)
    assert c.n_outside == 6
    assert RF.area_counts(areas, (0.0, 4.0), n_total=12).n_no_area == 5
    assert RF.display_histogram([np.nan], (0.0, 4.0))[0].size == 0
    # the fit counts the same areas inside its range; its curve scales with the bar width
    rng = np.random.default_rng(12)
    a = np.concatenate([rng.normal(2.0, 0.3, 2000), [np.nan] * 4, [9.0] * 3])
    fit = R.fit_area_histogram(a, (0.0, 4.0))
    assert RF.area_counts(a, (0.0, 4.0)).n_in_range == fit.n_events
    assert fit.bin_width == pytest.approx((fit.bin_edges[-1] - fit.bin_edges[0]) / 100)
    assert fit.curve(fit.mean, bin_width=3 * fit.bin_width) == pytest.approx(3 * fit.amplitude)
    assert fit.curve(fit.mean) == pytest.approx(fit.amplitude)


# --------------------------------------------------------------------------------------------
# online accumulation, end to end on simulated frames


def test_accumulator_appends_and_recomputes() -> None:
    acc = R.SetAccumulator()
    rng = np.random.default_rng(6)
    t_all = []
    for size in (700, 900, 1500):  # grows past its first buffer
        t = rng.normal(-1.5, 0.05, size)
        feats = s2.FrameFeatures(
            np.zeros(size), np.zeros(size), t, np.full(size, 12.0), np.full(size, 22.0)
        )
        acc.add_features(feats)
        reason = rng.integers(0, len(s2.XrayReason), size).astype(np.int8)
        xa = rng.uniform(0.5, 3.0, size)
        acc.add_areas(s2.AreaResult(rng.uniform(0, 4, size), s2.XrayResult(xa, reason)))
        t_all.append(t)
    t_cat = np.concatenate(t_all)
    assert acc.n_frames == 3100 and acc.s2_areas_mv_us.size == 3100
    np.testing.assert_array_equal(acc.t_s1_us, t_cat)
    assert acc.s1() == R.s1_statistics(t_cat)
    w = acc.s2_windows(-1.5, 13.2)
    assert w.expected_start_us == pytest.approx(11.7) and w.start.median == 12.0
    counts = acc.xray_counts()
    assert sum(counts.values()) == 3100
    assert counts["passed_all_cuts"] == acc.xray_areas_mv_us.size
    with pytest.raises(ValueError):
        acc.t_s1_us[0] = 0.0  # read-only views


def test_end_to_end_on_simulated_frames() -> None:
    """Kernels → accumulator → set statistics → areas → fit, file by file."""
    info = R.parse_set_name("FieldScan_Gate0200_Anode2100")
    phys = R.set_physics(info)
    acc = R.SetAccumulator()
    files = [
        ref.make_frames(
            60, 9000, dt_us=0.005, s2_start_us=-1.5 + phys.time_drift, s2_mv=1.5,
            xray_fraction=0.3, seed=seed,
        )
        for seed in range(3)
    ]  # fmt: skip
    for syn in files:
        acc.add_features(s2.frame_features(syn.raw, syn.scale, phys.time_drift))
    s1 = acc.s1()
    assert s1.t_s1 == pytest.approx(-1.5, abs=0.05) and s1.n_used > 150
    windows = acc.s2_windows(s1.t_s1, phys.time_drift)
    assert windows.ok
    assert windows.start.median == pytest.approx(11.74, abs=0.5)
    assert windows.duration.median == pytest.approx(10.0, abs=1.5)
    window = R.integration_window(windows)
    truth = []
    for syn in files:
        acc.add_areas(s2.area_pass(syn.raw, syn.scale, window, s1.t_s1, windows.start.median))
        truth.append(syn.s2_area_mv_us)
    fit = acc.ion_fit(bin_cuts=(0.0, 40.0))
    assert fit.fit_success
    # the S2 box carries 15 mV·µs on average; the window and the 0.8 mV cut lose a little
    assert fit.mean == pytest.approx(np.mean(np.concatenate(truth)), rel=0.15)
    assert sum(acc.xray_counts().values()) == 180
    meta = R.set_metadata(s1, windows, phys)
    assert list(meta) == SEED_SET_METADATA_KEYS
