"""S2 quality tests against a reference run (wavedqm.analysis.s2_quality,
wavedqm.processors.s2_quality): hand-computed values of every test kind; a reference made with
the CLI from a simulated good field scan, then runs whose set A lost 10 % (5 %) of its gain and
whose set B's S2 comes 0.6 µs (0.35 µs) early give errors (warnings) exactly there, a clean run
passes every test and its set of fields the reference lacks says not enough data; the metrics
per set and test, cleared without a reference; a damaged reference part is reported, not fatal;
the reference drawn over the set's histogram."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from prometheus_client import CollectorRegistry

from wavedqm import constants as C
from wavedqm.analysis import s2_quality as Q
from wavedqm.analysis.quality_stats import profile_levels
from wavedqm.cli import main
from wavedqm.config import QualityTestConfig, config_from_dict
from wavedqm.errors import ConfigError
from wavedqm.exporters.reference_sections import load_section, save_section, section_path
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.exporters.s2_plots import s2_histogram_figure
from wavedqm.processors.s2 import s2_engine_from_config
from wavedqm.simulate.wfm import set_name, simulate_field_scan, write_set
from wavedqm.simulate.wfm_run import write_run_config

SETS = ((200.0, 2100.0), (400.0, 2300.0))
SET_A, SET_B = (set_name(*s) for s in SETS)
SET_C = set_name(800, 2700)
"""A field setting the reference does not have."""
FRAMES, FILES = 200, 2
AREA_TESTS = ("area_mean_ratio", "area_mean_shift", "area_shape")
WINDOW_TESTS = ("window_start_shift", "window_end_shift")
LATE_T0 = {"t0_us": -22.0}
"""An earlier S1 needs the record to start earlier (the simulator's pedestal rule)."""


def _bad_run(run_dir: Path, seed: int, gain: float, s1_shift_us: float) -> None:
    """Set A with its EL gain (hence S2 areas) × ``gain``; set B with S1 and S2
    ``s1_shift_us`` earlier (its integration window moves with them)."""
    write_run_config(run_dir, SETS)
    gate, anode = SETS[0]
    write_set(run_dir / SET_A, gate_v=gate, anode_v=gate + gain * (anode - gate), files=FILES,
              frames_per_file=FRAMES, seed=seed, run_id=run_dir.name)  # fmt: skip
    gate, anode = SETS[1]
    write_set(run_dir / SET_B, gate_v=gate, anode_v=anode, files=FILES, frames_per_file=FRAMES,
              seed=seed + 1, run_id=run_dir.name, s1_time_us=-1.0 - s1_shift_us,
              **LATE_T0)  # fmt: skip


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference ``good`` from RUN1 (CLI), then RUN2 clean (+ a set of other fields),
    RUN3 bad, RUN4 mildly bad, processed with ``wavedqm process``."""
    root = tmp_path_factory.mktemp("s2q")
    simulate_field_scan(root / "good" / "RUN1", sets=SETS, files_per_set=FILES,
                        frames_per_file=FRAMES, seed=1)  # fmt: skip
    data = root / "data"
    simulate_field_scan(data / "RUN2", sets=(*SETS, (800.0, 2700.0)), files_per_set=FILES,
                        frames_per_file=FRAMES, seed=11)  # fmt: skip
    _bad_run(data / "RUN3", 21, gain=0.90, s1_shift_us=0.6)
    _bad_run(data / "RUN4", 31, gain=0.95, s1_shift_us=0.35)
    state, out = root / "state", root / "out"
    assert main(["reference", "create", "good", str(root / "good"), "--state", str(state)]) == 0
    assert main(["reference", "use", "good", "--state", str(state)]) == 0
    assert main(["process", str(data), "--state", str(state), "--out", str(out)]) == 0
    return {"root": root, "state": state, "out": out, "data": data}


def quality(scan: dict[str, Path], run: str, set_dir: str) -> dict[str, Any]:
    doc = json.loads((scan["out"] / run / set_dir / "s2_results.json").read_text())
    return doc["quality"]


def statuses(q: dict[str, Any]) -> dict[str, str]:
    return {name: t["status"] for name, t in q["tests"].items()}


# --------------------------------------------------------------------------------------------
# hand-computed values


def _reference(**kw: Any) -> Q.S2SetReference:
    """A reference set on edges 0, 1, 2, 3 mV·µs with 10/20/30 areas and a uniform [0, 1]
    profile (its CDF is x on [0, 1])."""
    values = {
        "key": "FieldScan_Gate0200_Anode2100", "n_frames": 60, "edges": np.arange(4.0),
        "counts": np.array([0, 10, 20, 30, 0]), "profile": profile_levels(), "mean": 10.0,
        "mean_se": 0.3, "median": 2.0, "window_us": (12.2, 19.75),
    }  # fmt: skip
    return Q.S2SetReference(**(values | kw))


def _sample(areas: list[float], **kw: Any) -> Q.SetSample:
    values = {
        "run": "RUN9", "set_name": "FieldScan_Gate0200_Anode2100",
        "areas": np.array(areas, np.float64), "n_frames": len(areas), "mean": 9.0,
        "mean_se": 0.4, "window_us": (12.5, 20.0),
    }  # fmt: skip
    return Q.SetSample(**(values | kw))


def _test(quantity: str, kind: str, min_events: int = 1, **kw: Any) -> QualityTestConfig:
    return QualityTestConfig(quantity=quantity, kind=kind, min_events=min_events, **kw)


def test_mean_and_window_values_by_hand() -> None:
    ref, sample = _reference(), _sample([1.0, 2.0, 4.0, math.nan])
    value = {
        kind: Q.value_of(_test(q, kind), sample, ref)[0]
        for q, kind in (("area", "range"), ("area", "ratio"), ("area", "sigma"))
    }
    assert value["range"] == 2.0  # median of the finite areas
    assert value["ratio"] == pytest.approx(0.9)  # 9 / 10
    assert value["sigma"] == pytest.approx(-2.0)  # (9 - 10) / sqrt(0.4² + 0.3²) = -1 / 0.5
    assert Q.value_of(_test("window_start", "difference"), sample, ref)[0] == pytest.approx(0.3)
    assert Q.value_of(_test("window_end", "difference"), sample, ref)[0] == pytest.approx(0.25)
    assert Q.value_of(_test("window_end", "range"), sample, ref)[0] == 20.0
    no_fit = _sample([1.0, 2.0], mean=math.nan, mean_se=math.nan)
    value, why = Q.value_of(_test("area", "ratio"), no_fit, ref)
    assert math.isnan(value) and "no Gaussian fit" in why


def test_ks_by_hand() -> None:
    """Areas 0.1, 0.2, 0.9 against the uniform [0, 1] profile: D = max over i of
    |i/3 − x_i| and |(i−1)/3 − x_i| = |2/3 − 0.2| = 0.4667; p = kstwobign.sf(D √(3·60/63))."""
    ref, sample = _reference(), _sample([0.1, 0.2, 0.9])
    d = Q.value_of(_test("area", "ks_distance"), sample, ref)[0]
    assert d == pytest.approx(2 / 3 - 0.2, abs=1e-12)
    x = d * math.sqrt(3 * 60 / 63)
    p_by_hand = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 50))
    assert Q.value_of(_test("area", "ks"), sample, ref)[0] == pytest.approx(p_by_hand, rel=1e-9)


def test_chi2_by_hand() -> None:
    """20 areas in each bin against the reference's 10/20/30 (60 and 60 entries):
    χ² = Σ (60·aᵢ − 60·bᵢ)² / (aᵢ + bᵢ) / (60·60) = (600²/30 + 0 + 600²/50) / 3600 = 16/3,
    2 degrees of freedom (empty under/overflow dropped): p = exp(−χ²/2)."""
    ref = _reference()
    sample = _sample([0.5] * 20 + [1.5] * 20 + [2.5] * 20)
    assert Q.value_of(_test("area", "chi2_ndf"), sample, ref)[0] == pytest.approx(8 / 3)
    p = Q.value_of(_test("area", "chi2"), sample, ref)[0]
    assert p == pytest.approx(math.exp(-8 / 3))
    # an area beyond the edges lands in the overflow bin: 3 bins with entries, ndf 3
    over = _sample([0.5] * 20 + [1.5] * 20 + [2.5] * 19 + [7.0])
    chi2_ndf = Q.value_of(_test("area", "chi2_ndf"), over, ref)[0]
    counts = np.array([20, 20, 19, 1.0]), np.array([10, 20, 30, 0.0])
    chi2 = sum((60 * a - 60 * b) ** 2 / (a + b) for a, b in zip(*counts, strict=True)) / 3600
    assert chi2_ndf == pytest.approx(chi2 / 3)


def test_grades_min_events_and_a_set_without_counterpart() -> None:
    reference = Q.S2Reference("good", 0.0, [], {_reference().key: _reference()})
    tests = {
        "ratio": _test("area", "ratio", warning=(0.95, 1.05), error=(0.85, 1.15)),
        "shift": _test("area", "sigma", warning=(-1.0, 1.0), error=(-1.5, 1.5)),
        "start": _test("window_start", "difference", warning=(-0.5, 0.5), error=(-1, 1)),
        "few": _test("area", "range", min_events=5),
    }
    q = Q.evaluate_set(reference, _sample([1.0, 2.0, 4.0]), tests)
    assert q.statuses() == {"ratio": C.QUALITY_WARNING, "shift": C.QUALITY_ERROR,
                            "start": C.QUALITY_OK, "few": C.QUALITY_NOT_ENOUGH}  # fmt: skip
    assert q.status == C.QUALITY_ERROR
    doc = json.loads(json.dumps(q.to_dict(), allow_nan=False))  # NaN -> null
    assert doc["tests"]["few"] == {
        "quantity": "area", "kind": "range", "value": None, "warning": [None, None],
        "error": [None, None], "status": "not_enough_data",
        "reason": "the set has 3 frames (min_events 5)",
    }  # fmt: skip
    assert [f["test"] for f in doc["failed"]] == ["shift", "ratio"]  # errors first
    other = Q.evaluate_set(reference, _sample([1.0], set_name=SET_C), tests)
    assert other.status == C.QUALITY_NOT_ENOUGH
    assert other.reason.startswith(f"the reference 'good' has no set {SET_C}")
    assert {t.status for t in other.tests} == {C.QUALITY_NOT_ENOUGH}


def test_reference_round_trip_and_arrays_that_do_not_fit() -> None:
    areas = np.concatenate([np.random.default_rng(1).normal(20, 3, 500), [np.nan, 900.0]])
    ref_set = Q.build_set_reference(SET_A, areas, 510, 20.1, 0.26, (0.0, 50.0), (12.2, 19.7))
    assert ref_set.edges.size == Q.REFERENCE_BINS + 1 and ref_set.n_areas == 501
    assert ref_set.counts[-1] == 1 and ref_set.counts[0] == 0  # 900 in the overflow bin
    assert ref_set.mean_se == pytest.approx(0.26 / 1.96)
    ref = Q.S2Reference("good", 1.5, [{"file": "x.wfm", "frames": 510}], {SET_A: ref_set})
    meta, arrays = Q.encode_reference(ref)
    back = Q.decode_reference({"name": "good", **json.loads(json.dumps(meta))}, arrays)
    got = back.sets[SET_A]
    np.testing.assert_array_equal(got.counts, ref_set.counts)
    np.testing.assert_array_equal(got.profile, ref_set.profile)
    assert (got.mean, got.window_us, got.n_frames) == (20.1, (12.2, 19.7), 510)
    arrays["set0.counts"] = arrays["set0.counts"][:-1]
    with pytest.raises(ValueError, match="counts"):
        Q.decode_reference(meta, arrays)


def test_s2_tests_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="window_start one of: range, difference"):
        config_from_dict({"quality": {"s2_tests": {"x": {"quantity": "window_start",
                                                         "kind": "ks"}}}})  # fmt: skip
    cfg = config_from_dict({"quality": {"s2_tests": {"m": {"quantity": "area", "kind": "chi2",
                                                           "warning": [0.01, 1.0]}}}})  # fmt: skip
    assert list(cfg.quality.s2_tests) == ["m"]


# --------------------------------------------------------------------------------------------
# reference made with the CLI, runs processed with the CLI


def test_reference_part_holds_each_set_and_where_it_came_from(scan) -> None:
    meta, _ = load_section(scan["state"], "good", "s2")
    assert [s["key"] for s in meta["sets"]] == [SET_A, SET_B]
    assert [s["frames"] for s in meta["sets"]] == [FILES * FRAMES] * 2
    assert len(meta["sources"]) == 2 * FILES and meta["summary"]["frames"] == 2 * FILES * FRAMES
    assert all(s["file"].endswith(".wfm") and s["frames"] == FRAMES for s in meta["sources"])
    assert meta["sets"][0]["sources"] == [{"run": "RUN1", "set": SET_A, "files": FILES,
                                           "frames": FILES * FRAMES}]  # fmt: skip


def test_a_clean_run_passes_every_test_and_unknown_fields_are_not_enough_data(scan) -> None:
    for set_dir in (SET_A, SET_B):
        q = quality(scan, "RUN2", set_dir)
        assert q["reference"] == "good" and q["reference_set"] == set_dir
        assert set(statuses(q).values()) == {"ok"}, q["tests"]
        assert q["status"] == "ok" and q["failed"] == []
    other = quality(scan, "RUN2", SET_C)
    assert other["status"] == "not_enough_data" and set(statuses(other).values()) == {
        "not_enough_data"
    }
    assert SET_C in other["reason"] and other["reference_set"] is None


def test_a_bad_run_fails_exactly_where_it_is_bad(scan) -> None:
    gain = quality(scan, "RUN3", SET_A)  # 10 % less gain: every area test, not the window
    assert {t: statuses(gain)[t] for t in AREA_TESTS} == dict.fromkeys(AREA_TESTS, "error")
    assert {t: statuses(gain)[t] for t in WINDOW_TESTS} == dict.fromkeys(WINDOW_TESTS, "ok")
    assert gain["tests"]["area_mean_ratio"]["value"] == pytest.approx(0.91, abs=0.02)
    window = quality(scan, "RUN3", SET_B)  # S2 0.6 µs early: the window tests, not the areas
    assert {t: statuses(window)[t] for t in WINDOW_TESTS} == dict.fromkeys(WINDOW_TESTS, "error")
    assert {t: statuses(window)[t] for t in AREA_TESTS} == dict.fromkeys(AREA_TESTS, "ok")
    assert window["tests"]["window_start_shift"]["value"] == pytest.approx(-0.6, abs=0.05)
    assert gain["status"] == window["status"] == "error"


def test_a_mildly_bad_run_only_warns(scan) -> None:
    gain, window = quality(scan, "RUN4", SET_A), quality(scan, "RUN4", SET_B)
    assert gain["status"] == window["status"] == "warning"
    assert statuses(gain)["area_mean_ratio"] == "warning"
    assert {t: statuses(window)[t] for t in WINDOW_TESTS} == dict.fromkeys(WINDOW_TESTS, "warning")
    assert all(statuses(gain)[t] == "ok" for t in WINDOW_TESTS)


# --------------------------------------------------------------------------------------------
# the daemon's path: set by set, file by file, with metrics


def _engine(scan: dict[str, Path], tmp_path: Path, registry: CollectorRegistry, **quality: Any):
    state = tmp_path / "state"
    shutil.copytree(scan["state"] / "references", state / "references")
    cfg = config_from_dict({
        "output": {"dir": str(tmp_path / "out"), "state_dir": str(state)},
        "s2": {"plots": False}, "quality": quality,
    })  # fmt: skip
    return s2_engine_from_config(cfg, S2Metrics(registry)), state


def test_metrics_per_set_and_test_from_the_first_file_then_cleared(scan, tmp_path) -> None:
    registry = CollectorRegistry()
    engine, state = _engine(scan, tmp_path, registry)
    value = registry.get_sample_value
    bad_a = sorted((scan["data"] / "RUN3" / SET_A).glob("*.wfm"))
    engine.process_file(bad_a[0])
    labels = {"run": "RUN3", "set": SET_A}
    assert value("wavedqm_s2_quality_worst_status", labels) == C.QUALITY_ERROR  # 200 frames
    engine.process_file(bad_a[1])
    for test in AREA_TESTS:
        assert value("wavedqm_s2_quality_status", {**labels, "test": test}) == C.QUALITY_ERROR
    for test in WINDOW_TESTS:
        assert value("wavedqm_s2_quality_status", {**labels, "test": test}) == C.QUALITY_OK
    doc = json.loads((tmp_path / "out" / "RUN3" / SET_A / "s2_results.json").read_text())
    assert doc["quality"]["status"] == "error"
    section_path(state, "good", "s2").unlink()  # the reference no longer has an S2 part
    engine.process_file(sorted((scan["data"] / "RUN3" / SET_B).glob("*.wfm"))[0])
    assert value("wavedqm_s2_quality_worst_status", labels) is None  # alerts resolve
    assert value("wavedqm_s2_quality_status", {**labels, "test": AREA_TESTS[0]}) is None
    out_b = tmp_path / "out" / "RUN3" / SET_B / "s2_results.json"
    assert json.loads(out_b.read_text())["quality"] == {"reference": None, "status": "no_reference"}
    engine.close()


def test_tests_follow_the_set_as_it_accumulates(scan, tmp_path) -> None:
    registry = CollectorRegistry()
    tests = {"s2_tests": {"median": {"quantity": "area", "kind": "range", "min_events": 300}}}
    engine, _ = _engine(scan, tmp_path, registry, **tests)
    files = sorted((scan["data"] / "RUN2" / SET_A).glob("*.wfm"))
    out = tmp_path / "out" / "RUN2" / SET_A / "s2_results.json"
    engine.process_file(files[0])
    first = json.loads(out.read_text())["quality"]["tests"]["median"]
    assert first["status"] == "not_enough_data" and "200 frames" in first["reason"]
    engine.process_file(files[1])
    second = json.loads(out.read_text())["quality"]["tests"]["median"]
    areas = np.load(out.parent / "s2_areas.npy")
    assert second["status"] == "ok" and second["value"] == pytest.approx(np.nanmedian(areas))
    engine.close()


def test_a_damaged_reference_part_is_reported_not_fatal(scan, tmp_path) -> None:
    registry = CollectorRegistry()
    engine, state = _engine(scan, tmp_path, registry)
    section_path(state, "good", "s2").write_bytes(b"not an npz")
    files = sorted((scan["data"] / "RUN2" / SET_A).glob("*.wfm"))
    outcome = engine.process_file(files[0])
    assert outcome.result is not None and outcome.result.ion_fit.fit_success  # files go on
    out = tmp_path / "out" / "RUN2" / SET_A / "s2_results.json"
    assert json.loads(out.read_text())["quality"]["status"] == "no_reference"
    errors = "wavedqm_s2_quality_reference_errors_total"
    assert registry.get_sample_value(errors) == 1
    engine.process_file(files[1])
    assert registry.get_sample_value(errors) == 1  # once per version of the file
    meta, arrays = load_section(scan["state"], "good", "s2")
    arrays["set0.profile"] = arrays["set0.profile"][:7]  # arrays that do not fit
    save_section(state, "good", "s2", {k: v for k, v in meta.items() if k not in
                                       ("format_version", "kind", "name")}, arrays)  # fmt: skip
    engine.process_file(sorted((scan["data"] / "RUN2" / SET_B).glob("*.wfm"))[0])
    assert registry.get_sample_value(errors) == 2
    engine.close()


# --------------------------------------------------------------------------------------------
# the reference drawn over the set's histogram


def test_the_reference_is_drawn_over_the_set_histogram(scan) -> None:
    reference = Q.decode_reference(*load_section(scan["state"], "good", "s2"))
    overlay = Q.reference_overlay(reference, SET_A, 200)
    assert overlay is not None and Q.reference_overlay(reference, SET_C, 200) is None
    ref_set = reference.sets[SET_A]
    assert overlay.counts.sum() == pytest.approx(ref_set.counts[1:-1].sum() * 200 / 400)
    areas = np.load(scan["out"] / "RUN3" / SET_A / "s2_areas.npy")
    from wavedqm.analysis.ratag_fit import fit_area_histogram

    fit = fit_area_histogram(areas, (0.0, 63.3), 100, min_events=50)
    fig: Figure = s2_histogram_figure(SET_A, fit, areas, reference=overlay)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("reference 'good' (400 frames)") for label in labels)
    assert (scan["out"] / "RUN3" / "plots" / f"{SET_A}_s2_histogram.png").stat().st_size > 0
