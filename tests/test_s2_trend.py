"""How an S2 set changes file by file (wavedqm.analysis.s2_trend) against hand-computed values,
and the trend metrics the S2 engine exports after each file (mean shift, window drift, file
times, files behind)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from test_s2_pipeline import SET_A, pipeline, write_synthetic_set

from wavedqm.analysis import s2_trend as T
from wavedqm.analysis.ratag import fit_area_histogram, parse_set_name, set_physics
from wavedqm.analysis.ratag_run import FitSettings, set_stats
from wavedqm.analysis.s2_set import FileEntry, Frames, SetState
from wavedqm.errors import InputFileError
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.formats.wfm import open_wfm
from wavedqm.formats.wfm_writer import write_wfm

NAN = math.nan


def _state(per_file: list[dict[str, np.ndarray]]) -> SetState:
    """A set state holding the given per-file arrays (``area``, optionally ``t_s1``,
    ``t_start``, ``t_end``; the others NaN)."""
    names = ("t_s1", "t_start", "t_end", "area", "xray_area")
    arrays: dict[str, list[np.ndarray]] = {}
    files = []
    for k, arrs in enumerate(per_file):
        n = len(next(iter(arrs.values())))
        files.append(FileEntry(f"f{k}.wfm", 1, k, n, 0.004, -10.0, 1000))
        for name in names:
            arrays.setdefault(name, []).append(np.asarray(arrs.get(name, np.full(n, NAN))))
    frames = {name: np.concatenate(arrays[name]) for name in names}
    frames["reason"] = np.full(frames["area"].size, -1, np.int8)
    return SetState("RUN1", "FieldScan_Gate0200_Anode2100", Path("x"), files, Frames(frames))


def _gaussian_areas(mean: float, sigma: float, n: int) -> np.ndarray:
    """``n`` areas at the normal quantiles (a histogram as Gaussian as n allows; mV·µs)."""
    from scipy.stats import norm

    return mean + sigma * norm.ppf((np.arange(n) + 0.5) / n)


# --------------------------------------------------------------------------------------------
# the shift of the fitted mean


def test_standard_error_is_ci95_over_1_96() -> None:
    fit = fit_area_histogram(_gaussian_areas(20.0, 2.0, 2000), (0.0, 40.0), 100)
    assert fit.fit_success
    assert T.standard_error(fit) == pytest.approx(fit.ci95 / 1.96, rel=1e-15)
    failed = fit_area_histogram(np.array([1.0, 2.0]), (0.0, 40.0), 100)
    assert math.isnan(T.standard_error(failed))


def test_shift_in_standard_errors_by_hand() -> None:
    # (10.3 - 10.0) / sqrt(0.3² + 0.4²) = 0.3 / 0.5
    assert T.shift_in_standard_errors(10.3, 0.3, 10.0, 0.4) == pytest.approx(0.6)
    assert T.shift_in_standard_errors(9.0, 0.6, 10.0, 0.8) == pytest.approx(-1.0)
    assert T.shift_in_standard_errors(10.0, 0.0, 10.0, 0.1) == 0.0
    for args in ((NAN, 0.3, 10.0, 0.4), (10.3, NAN, 10.0, 0.4), (10.3, 0.3, 10.0, 0.0 * NAN),
                 (10.3, 0.0, 10.0, 0.0), (10.3, -0.1, 10.0, 0.4)):  # fmt: skip
        assert math.isnan(T.shift_in_standard_errors(*args)), args


def test_consecutive_publications_shift_equals_new_against_earlier() -> None:
    """The module's claim, for sample means: the jump of the cumulative mean between
    publication k-1 and k over its standard error is (m_new - m_earlier) / sqrt(se_new² +
    se_earlier²)."""
    rng = np.random.default_rng(1)
    earlier, new = rng.normal(20.0, 2.0, 3000), rng.normal(20.3, 2.0, 500)
    sigma = 2.0
    n, big_n = new.size, earlier.size
    m_prev, m_next = earlier.mean(), np.concatenate([earlier, new]).mean()
    se_jump = sigma * math.sqrt(n / ((n + big_n) * big_n))  # sqrt(se_{k-1}² - se_k²)
    z_jump = (m_next - m_prev) / se_jump
    z = T.shift_in_standard_errors(
        new.mean(), sigma / math.sqrt(n), earlier.mean(), sigma / math.sqrt(big_n)
    )
    assert z == pytest.approx(z_jump, rel=1e-12)


def test_mean_shift_of_the_new_file_against_the_earlier_files() -> None:
    fits = FitSettings(ion_bin_cuts=(0.0, 40.0), nbins=100, min_fit_events=50)
    earlier = [{"area": _gaussian_areas(20.0, 2.0, 1000)} for _ in range(2)]
    state = _state([*earlier, {"area": _gaussian_areas(21.0, 2.0, 1000)}])
    shift = T.mean_shift(state, [2], fits)
    f_new = fits.ion(_gaussian_areas(21.0, 2.0, 1000))
    f_old = fits.ion(np.concatenate([e["area"] for e in earlier]))
    se_new, se_old = f_new.ci95 / 1.96, f_old.ci95 / 1.96
    assert shift.new_mean == pytest.approx(21.0, abs=0.02)
    assert shift.earlier_mean == pytest.approx(20.0, abs=0.02)
    assert (shift.new_se, shift.earlier_se) == pytest.approx((se_new, se_old), rel=1e-12)
    expected = (f_new.mean - f_old.mean) / math.hypot(se_new, se_old)
    assert shift.shift_std_errors == pytest.approx(expected, rel=1e-12)
    assert shift.shift_std_errors > 5  # 1 mV·µs with ~0.06 mV·µs standard errors
    assert (shift.n_new_files, shift.n_earlier_files) == (1, 2)
    # the same areas everywhere: no shift
    same = _state([{"area": _gaussian_areas(20.0, 2.0, 1000)} for _ in range(3)])
    assert T.mean_shift(same, [2], fits).shift_std_errors == pytest.approx(0.0, abs=1e-6)


def test_mean_shift_is_nan_without_two_fits() -> None:
    fits = FitSettings(ion_bin_cuts=(0.0, 40.0), nbins=100, min_fit_events=50)
    one = _state([{"area": _gaussian_areas(20.0, 2.0, 1000)}])
    assert math.isnan(T.mean_shift(one, [0], fits).shift_std_errors)  # no earlier file
    two = _state([{"area": _gaussian_areas(20.0, 2.0, 1000)} for _ in range(2)])
    assert math.isnan(T.mean_shift(two, [], fits).shift_std_errors)  # no new file
    few = _state([{"area": _gaussian_areas(20.0, 2.0, 1000)}, {"area": np.full(30, 20.0)}])
    result = T.mean_shift(few, [1], fits)  # 30 areas: no fit of the new file
    assert math.isnan(result.shift_std_errors) and math.isnan(result.new_mean)
    assert result.earlier_mean == pytest.approx(20.0, abs=0.02)


# --------------------------------------------------------------------------------------------
# the window


def _timing(n: int, start_offset: float = 0.0) -> dict[str, np.ndarray]:
    """S1 at -1 µs for every frame; S2 starts 11-13 µs (even steps), ends 8 µs later."""
    start = np.linspace(11.0, 13.0, n) + start_offset
    return {"t_s1": np.full(n, -1.0), "t_start": start, "t_end": start + 8.0}


def test_window_of_by_hand() -> None:
    t = _timing(101)
    # expected start -1 + 13 = 12 µs: every start (11-13) inside 0.3-1.5 x 12, every end
    # (19-21) inside 1.2 x 12 .. 35, every duration (8) inside 5-25. Start median 12, p16
    # 11.32, p84 12.68: std 0.68, lo = 12 - 0.68; end median 20, std 0.68: hi = 20 + 0.34
    assert T.window_of(t["t_s1"], t["t_start"], t["t_end"], 13.0) == pytest.approx((11.32, 20.34))
    assert T.window_of(np.full(101, NAN), t["t_start"], t["t_end"], 13.0) is None
    assert T.window_of(t["t_s1"], t["t_start"][:5], t["t_end"][:5], 13.0) is None  # < 10


def test_window_of_is_the_window_of_the_set_statistics() -> None:
    state = _state([_timing(101) | {"area": np.ones(101)}])
    physics = set_physics(parse_set_name("FieldScan_Gate0200_Anode2100"))
    fr = state.frames
    assert T.window_of(fr["t_s1"], fr["t_start"], fr["t_end"], physics.time_drift) == (
        set_stats(state, physics).window
    )


def test_first_window_is_the_first_files_window() -> None:
    first = _timing(101) | {"area": np.ones(101)}
    later = _timing(101, start_offset=0.5) | {"area": np.ones(101)}
    state = _state([first, later])
    fw = T.first_window(state, 13.0)
    assert fw is not None and fw.n_files == 1
    assert fw.window_us == pytest.approx((11.32, 20.34))
    # a first file without S1 times gives no window: the first window is the first two's
    no_s1 = {"t_s1": np.full(101, NAN), "t_start": first["t_start"], "t_end": first["t_end"]}
    state = _state([no_s1 | {"area": np.ones(101)}, later])
    fw = T.first_window(state, 13.0)
    assert fw is not None and fw.n_files == 2
    assert T.first_window(_state([no_s1 | {"area": np.ones(101)}]), 13.0) is None


def test_window_drift_by_hand() -> None:
    drift = T.window_drift((11.5, 20.0), (11.32, 20.34))
    assert (drift.start_us, drift.end_us) == (11.5, 20.0)
    assert (drift.start_shift_us, drift.end_shift_us) == pytest.approx((0.18, -0.34))
    unknown_first = T.window_drift((11.5, 20.0), None)
    assert unknown_first.start_us == 11.5 and math.isnan(unknown_first.start_shift_us)
    assert all(math.isnan(v) for v in vars(T.window_drift(None, (1.0, 2.0))).values())


# --------------------------------------------------------------------------------------------
# file times, files behind


def test_file_timing_by_hand() -> None:
    timing = T.file_timing([3_000_000_000, 1_000_000_000, 2_000_000_000, 5_000_000_000])
    # sorted 1, 2, 3, 5 s: newest 5 s; intervals 1, 1, 2: median 1 s
    assert (timing.last_file_s, timing.median_interval_s) == (5.0, 1.0)
    assert T.file_timing([10_000_000_000, 16_000_000_000, 13_000_000_000]).median_interval_s == 3
    two = T.file_timing([1_000_000_000, 2_000_000_000])  # one interval: not yet "usual"
    assert two.last_file_s == 2.0 and math.isnan(two.median_interval_s)
    none = T.file_timing([])
    assert math.isnan(none.last_file_s) and math.isnan(none.median_interval_s)


def test_files_behind_by_hand() -> None:
    folder = ["a.wfm", "b.wfm", "c.wfm", "d.wfm"]
    assert T.files_behind(folder, ["a.wfm"], ["c.wfm"]) == 2
    assert T.files_behind(folder, folder) == 0
    assert T.files_behind([], ["a.wfm"]) == 0  # analysed files deleted since: not behind


# --------------------------------------------------------------------------------------------
# the engine's trend metrics, file by file


def _scaled_copy(src: Path, dst: Path, gain: float) -> Path:
    """``src`` with every pulse ``gain`` times larger (about the 60-count baseline of the
    synthetic sets): its S2 areas scale by ``gain``."""
    with open_wfm(src) as w:
        raw = np.array(w.raw, np.float64)
        h = w.header
    scaled = np.clip(np.rint(60.0 + gain * (raw - 60.0)), -32768, 32767).astype(np.int16)
    return write_wfm(dst, scaled, dt_s=h.dt_s, t0_s=h.t0_s, vscale=h.vscale, voffset=h.voffset)


def test_engine_exports_the_trend_after_each_file(tmp_path: Path) -> None:
    set_dir = tmp_path / "data" / "RUN3" / SET_A
    files = write_synthetic_set(set_dir, n_files=4, n_frames=60, seed=4)
    for k, f in enumerate(files):  # the scope wrote a file every 30 s
        os.utime(f, ns=(1_800_000_000_000_000_000 + k * 30_000_000_000,) * 2)
    files[3] = _scaled_copy(files[3], files[3], 1.3)  # a gain step in the fourth file
    os.utime(files[3], ns=(1_800_000_000_000_000_000 + 3 * 30_000_000_000,) * 2)
    (set_dir / "RUN9_20260101_Batch009_CH3.wfm").write_bytes(b"not a wfm file" * 20)
    registry = CollectorRegistry()
    p = pipeline(
        tmp_path, metrics=S2Metrics(registry), plots=False, min_fit_events=20,
        ion_bin_cuts=(0.0, 10.0),
    )  # fmt: skip
    labels = {"run": "RUN3", "set": SET_A}

    def value(name: str, **extra: str) -> float:
        v = registry.get_sample_value(name, labels | extra)
        assert v is not None, name
        return v

    windows, shifts = [], []
    for k, f in enumerate(files[:3]):
        outcome = p.process_file(f)
        assert outcome.result is not None and outcome.result.window_us is not None
        windows.append(outcome.result.window_us)
        shifts.append(value("wavedqm_s2_mean_shift_std_errors"))
        # 4 good files and a bad one in the folder, k + 1 done; the bad one is behind until
        # the S2 analysis refuses it
        assert value("wavedqm_s2_files_behind") == 4 - (k + 1) + 1
        assert value("wavedqm_s2_last_file_timestamp_seconds") == 1.8e9 + 30 * k
    assert math.isnan(shifts[0])  # the set's first file: nothing to compare with
    assert all(abs(s) < 5 for s in shifts[1:])
    assert value("wavedqm_s2_file_interval_seconds") == 30.0
    lo, hi = windows[-1]
    assert value("wavedqm_s2_window_start_us") == lo
    assert value("wavedqm_s2_window_end_us") == hi
    # the first window is the first file's
    assert value("wavedqm_s2_window_shift_us", edge="start") == pytest.approx(lo - windows[0][0])
    assert value("wavedqm_s2_window_shift_us", edge="end") == pytest.approx(hi - windows[0][1])
    assert lo != windows[0][0]  # the window did move (the set statistics grew)

    with pytest.raises(InputFileError):
        p.process_file(set_dir / "RUN9_20260101_Batch009_CH3.wfm")
    outcome = p.process_file(files[3])  # the gain step
    p.close()
    state = p._sets[("RUN3", SET_A)]
    expected = T.mean_shift(state, [3], p.runs.context(set_dir.parent).fits)
    assert value("wavedqm_s2_mean_shift_std_errors") == expected.shift_std_errors
    assert expected.shift_std_errors > 5
    # 30 % larger pulses: more samples above the 0.8 mV threshold too, so more than 1.3 x
    assert expected.new_mean > 1.3 * expected.earlier_mean
    assert value("wavedqm_s2_files_behind") == 0  # the refused file is not behind
    assert value("wavedqm_s2_fit_ok") == 1
    assert value("wavedqm_s2_fits_failed_total") == 0


def test_a_new_set_has_every_series_at_once(tmp_path: Path) -> None:
    """Counters at 0 (increase() sees the first failed fit) and gauges NaN until known."""
    registry = CollectorRegistry()
    metrics = S2Metrics(registry)
    metrics.set_updated(
        "R", "S", mean=None, sigma=None, ci95=None, s1_time_us=None, duration_us=None,
        drift_time_us=None, xray_accepted_ratio=None, new_rejections={}, new_frames=10,
        new_files=1,
    )  # fmt: skip
    labels = {"run": "R", "set": "S"}
    assert registry.get_sample_value("wavedqm_s2_fits_failed_total", labels) == 0
    assert registry.get_sample_value("wavedqm_s2_fit_ok", labels) == 0
    for name in (
        "wavedqm_s2_mean_shift_std_errors",
        "wavedqm_s2_window_start_us",
        "wavedqm_s2_last_file_timestamp_seconds",
        "wavedqm_s2_file_interval_seconds",
        "wavedqm_s2_files_behind",
    ):
        assert math.isnan(registry.get_sample_value(name, labels)), name
    for edge in ("start", "end"):
        shift = registry.get_sample_value("wavedqm_s2_window_shift_us", labels | {"edge": edge})
        assert math.isnan(shift)
