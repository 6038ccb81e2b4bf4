"""Voxel quality tests against a reference run (issue 15): hand-computed values of every kind,
the windows and dead masks by brute force, a run that does not fit the reference, the reference
part's round trip; end to end through the CLI: a reference made from good simulated files, then
a run with a new dead region of ~10 % of the active volume is an error exactly in the
dead-region test, one of ~3 % a warning, a clean one ok everywhere; the metrics and their
removal; a damaged reference part reported, not fatal; another grid not compared."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.stats import kstwobign
from structlog.testing import capture_logs

from wavedqm import constants as C
from wavedqm.analysis.voxel_quality import (
    DEFAULT_TESTS,
    KINDS_BY_QUANTITY,
    VoxelReference,
    compare_occupancy,
    decode_voxel_reference,
    evaluate_voxels,
)
from wavedqm.analysis.voxel_windows import (
    WINDOW_HITS,
    block_counts,
    box_sums,
    dead_mask,
    window_voxels,
)
from wavedqm.analysis.voxels import Grid
from wavedqm.cli import main
from wavedqm.config import Config, ConfigError, QualityTestConfig, load_config
from wavedqm.exporters.reference_sections import load_section, save_section, section_path
from wavedqm.exporters.voxel_files import read_voxels
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import write_flow_file

HITS = "charge/calib_prompt_hits/data"
GRID = Grid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (4, 4, 4))
NEW_DEAD_BOX = ((5.0, 60.0), (-60.0, 0.0), (-60.0, 0.0))
"""cm: 55 x 60 x 60 cm, 10.6 % of the simulated active volume (4 modules, ~1.86 m³)."""
MILD_DEAD_BOX = ((5.0, 40.0), (-60.0, -20.0), (-60.0, -20.0))
"""cm: 35 x 40 x 40 cm, 3.0 %."""


def _test(quantity: str, kind: str, warning=(-math.inf, math.inf), error=(-math.inf, math.inf),
          min_events: int = 1) -> QualityTestConfig:  # fmt: skip
    return QualityTestConfig(quantity, kind, warning, error, min_events)


def _reference(count: np.ndarray, active: np.ndarray | None = None) -> VoxelReference:
    active = np.ones(GRID.shape, bool) if active is None else active
    return VoxelReference("ref", 1.0, [{"file": "a"}], GRID, active, 0, count.astype(np.int64))


# --- pure: hand-computed values ---------------------------------------------------------------


def test_every_kind_on_a_hand_computed_grid() -> None:
    # reference: 250 hits in each of the 64 voxels (16000); the run: the same but the 2x2x2
    # corner at the origin never hit (14000 hits). Windows: 14000 * 8 / 64 = 1750 >= 500
    # hits for 2x2x2 (1x1x1: 219 < 500).
    ref = np.full(GRID.shape, 250)
    run = ref.copy()
    run[:2, :2, :2] = 0
    tests = {
        "dead_range": _test("dead_region", "range"),
        "dead_diff": _test("dead_region", "difference", (-1, 0.02), (-1, 0.05)),
        "occ_range": _test("occupied_fraction", "range"),
        "occ_ratio": _test("occupied_fraction", "ratio", (0.95, 1.05), (0.8, 1.2)),
        "mean_ratio": _test("mean_hits_per_occupied", "ratio", (0.99, 1.01), (0.9, 1.1)),
        "ks_d": _test("drift_profile", "ks_distance", (0, 0.05), (0, 0.1)),
        "ks_p": _test("drift_profile", "ks"),
        "prof_chi2": _test("drift_profile", "chi2_ndf"),
        "prof_p": _test("drift_profile", "chi2"),
        "occ_chi2": _test("occupancy", "chi2_ndf"),
    }
    result = evaluate_voxels("r1", GRID, np.ones(GRID.shape, bool), 0, run, _reference(ref), tests)
    v = {t.name: t.value for t in result.tests}
    s = {t.name: t.status for t in result.tests}
    assert result.window_voxels == (2, 2, 2)
    assert v["dead_range"] == v["dead_diff"] == 8 / 64  # the corner window, and only it
    assert s["dead_diff"] == C.QUALITY_ERROR  # 0.125 > 0.05
    assert result.new_dead_box_cm == [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]
    assert v["occ_range"] == v["occ_ratio"] == 56 / 64
    assert s["occ_ratio"] == C.QUALITY_WARNING  # 0.875 in [0.8, 1.2], outside [0.95, 1.05]
    assert v["mean_ratio"] == 1.0 and s["mean_ratio"] == C.QUALITY_OK
    # drift (x) profile: run 3000, 3000, 4000, 4000; reference 4000 x 4: cumulative 6/14 vs 1/2
    assert v["ks_d"] == pytest.approx(1 / 14, abs=1e-15)
    assert s["ks_d"] == C.QUALITY_WARNING
    n_eff = 14000 * 16000 / 30000
    assert v["ks_p"] == pytest.approx(kstwobign.sf(1 / 14 * math.sqrt(n_eff)), rel=1e-12)
    # χ² = Σ (N_b a − N_a b)² / (a + b) / (N_a N_b): two slabs (16e3*3e3 − 14e3*4e3)² / 7e3,
    # two (16e3*4e3 − 14e3*4e3)² / 8e3; ndf 3
    chi2 = (2 * (8e6) ** 2 / 7000 + 2 * (8e6) ** 2 / 8000) / (14000 * 16000)
    assert v["prof_chi2"] == pytest.approx(chi2 / 3, rel=1e-12)
    from scipy.stats import chi2 as chi2_dist

    assert v["prof_p"] == pytest.approx(chi2_dist.sf(chi2, 3), rel=1e-9)
    # blocks of 2x2x2: run 0 and 7 x 2000, reference 8 x 2000
    occ = ((14000 * 2000) ** 2 / 2000 + 7 * (2000 * 2000) ** 2 / 4000) / (14000 * 16000)
    assert v["occ_chi2"] == pytest.approx(occ / 7, rel=1e-12)
    assert result.status == C.QUALITY_ERROR
    assert result.failed()[0].name == "dead_diff"
    doc = json.loads(json.dumps(result.to_dict()))  # JSON-ready (no NaN, no inf)
    assert doc["status"] == "error" and doc["tests"]["dead_diff"]["warning"] == [-1.0, 0.02]
    assert doc["tests"]["dead_range"]["error"] == [None, None]
    assert doc["failed"][0] == "dead_diff"
    clean = evaluate_voxels("r2", GRID, np.ones(GRID.shape, bool), 0, ref, _reference(ref), tests)
    assert {t.name: t.value for t in clean.tests}["dead_diff"] == 0.0
    assert {t.name: t.status for t in clean.tests}["ks_d"] == C.QUALITY_OK


def test_box_sums_dead_mask_and_windows_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, (5, 6, 7))
    w = (2, 3, 4)
    sums = box_sums(a, w)
    assert sums.shape == (4, 4, 4)
    for i, j, k in [(0, 0, 0), (3, 3, 3), (1, 2, 3)]:
        assert sums[i, j, k] == a[i : i + 2, j : j + 3, k : k + 4].sum()
    # a dead 4x4x4 box in a hit 10x10x10 grid, and a one-voxel chance hole: windows of 3
    count = np.ones((10, 10, 10), np.int64)
    count[2:6, 3:7, 4:8] = 0
    count[8, 8, 8] = 0
    dead = dead_mask(count, np.ones(count.shape, bool), (3, 3, 3))
    expected = np.zeros(count.shape, bool)
    expected[2:6, 3:7, 4:8] = True
    np.testing.assert_array_equal(dead, expected)  # the box whole, not the hole
    inactive = np.ones(count.shape, bool)
    inactive[:, :, 4:] = False  # windows mostly outside the active volume do not count
    assert not dead_mask(count, inactive, (3, 3, 3))[:, :, 4:].any()
    # blocks of 3 from the origin (the last ones shorter): 4 x 4 x 4 blocks
    blocks = block_counts(np.ones((10, 10, 10)), np.ones((10, 10, 10), bool), (3, 3, 3))
    assert blocks.size == 64 and blocks.sum() == 1000 and blocks.max() == 27
    # windows: the smallest cube holding WINDOW_HITS hits spread evenly, cut to the grid
    assert window_voxels(WINDOW_HITS * 1000, 1000, (10, 10, 10)) == (1, 1, 1)
    assert window_voxels(WINDOW_HITS * 1000 // 8, 1000, (10, 10, 10)) == (2, 2, 2)
    assert window_voxels(WINDOW_HITS * 100 // 25, 100, (100, 1, 1)) == (25, 1, 1)
    assert window_voxels(WINDOW_HITS - 1, 1000, (10, 10, 10)) is None  # not even the grid
    assert window_voxels(0, 1000, (10, 10, 10)) is None


def test_a_run_that_does_not_fit_the_reference_is_not_enough_data_with_the_reason() -> None:
    ref = _reference(np.full(GRID.shape, 250))
    tests = {name: QualityTestConfig(**spec) for name, spec in DEFAULT_TESTS.items()}  # type: ignore[arg-type]
    count = np.full(GRID.shape, 250)
    everywhere = np.ones(GRID.shape, bool)
    other = Grid((0.0, 0.0, 0.0), (2.0, 1.0, 1.0), (4, 4, 4))
    cases = [
        (other, everywhere, 0, "voxel_size_cm [2.0, 1.0, 1.0] vs [1.0, 1.0, 1.0]"),
        (GRID, ~np.eye(4, dtype=bool)[:, :, None].repeat(4, 2), 0, "active volume differs"),
        (GRID, everywhere, 2, "drift axis differs from reference 'ref''s: z vs x"),
    ]
    for grid, active, drift, why in cases:
        result = evaluate_voxels("r", grid, active, drift, count, ref, tests)
        assert why in result.reason
        assert [t.status for t in result.tests] == [C.QUALITY_NOT_ENOUGH] * len(tests)
        assert all(why in t.reason for t in result.tests)
        assert result.to_dict()["status"] == "not_enough_data"
    assert compare_occupancy(count, other, ref, result) is None  # nothing drawn beside it
    same = evaluate_voxels("r", GRID, everywhere, 0, count, ref, tests)  # 16000 hits >= 5000
    assert [t.status for t in same.tests] == [C.QUALITY_OK] * len(tests)
    strict = {"d": _test("dead_region", "range", min_events=20000)}
    few = evaluate_voxels("r", GRID, everywhere, 0, count, ref, strict)
    assert few.tests[0].status == C.QUALITY_NOT_ENOUGH
    assert "16000 hits in the run, 16000 in the reference (the test needs 20000)" in (
        few.tests[0].reason
    )


def test_the_reference_part_round_trips_and_damaged_arrays_raise(tmp_path: Path) -> None:
    count = np.zeros(GRID.shape, np.int64)
    count[1, 2, 3], count[3, 3, 3] = 7, 2
    active = np.ones(GRID.shape, bool)
    active[0] = False
    meta, arrays = _reference(count, active).encode()
    assert arrays["index"].tolist() == [1 * 16 + 2 * 4 + 3, 63]  # sparse, C order
    path = save_section(tmp_path, "ref", "voxels", meta, arrays)
    with np.load(path) as z:
        back = decode_voxel_reference(json.loads(str(z["meta"])), {k: z[k] for k in z.files})
    np.testing.assert_array_equal(back.count, count)
    np.testing.assert_array_equal(back.active, active)
    assert back.grid == GRID and back.name == "ref" and back.drift_axis == 0
    assert back.summary()["hits_in_grid"] == 9 and back.summary()["active_voxels"] == 48
    for key, bad in [
        ("index", np.array([64])),  # outside the grid
        ("count", np.array([1])),  # not the index's length
        ("active", np.ones((4, 4), bool)),
        ("shape", np.array([4, 4])),
    ]:
        with pytest.raises(ValueError):
            decode_voxel_reference(meta, {**arrays, key: bad})


def test_default_tests_are_valid_config_and_a_bad_kind_is_refused(tmp_path: Path) -> None:
    cfg = Config()
    assert set(cfg.quality.voxel_tests) == set(DEFAULT_TESTS) == {"dead_region", "drift_profile"}
    for test in cfg.quality.voxel_tests.values():
        assert test.kind in KINDS_BY_QUANTITY[test.quantity]
    toml = tmp_path / "c.toml"
    toml.write_text('[quality.voxel_tests.x]\nquantity = "dead_region"\nkind = "ks"\n')
    with pytest.raises(ConfigError, match="expected for dead_region one of: range, difference"):
        load_config(toml)


# --- end to end ----------------------------------------------------------------------------


def _flow(path: Path, seed: int, box: tuple | None = None, events: int = 200) -> Path:
    """A simulated file with charge; ``box`` (cm): no hit is recorded inside (a dead region)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_flow_file(path, n_events=events, n_samples=128, seed=seed, with_charge=True)
    if box is not None:
        with h5py.File(path, "r+") as f:
            table = f[HITS]
            hits = table[()]
            inside = np.ones(len(hits), bool)
            for axis, (lo, hi) in zip("xyz", box, strict=True):
                inside &= (hits[axis] >= lo) & (hits[axis] <= hi)
            kept = hits[~inside]
            table.resize((len(kept),))
            table[...] = kept
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference ``good`` made through the CLI from four good files (plus a light-only file,
    left out silently, and an HDF5 file with neither, skipped with its reason), and the runs
    to test (one file each)."""
    root = tmp_path_factory.mktemp("voxq")
    good = root / "good"
    for i in range(4):
        _flow(good / f"g{i}.FLOW.hdf5", 1 + i)
    write_flow_file(good / "light_only.FLOW.hdf5", n_events=4, n_samples=128, seed=9)
    with h5py.File(good / "empty.FLOW.hdf5", "w") as f:
        f.create_group("meta")
    config = root / "c.toml"
    config.write_text('[processors]\ndisabled = ["light"]\n[output]\nreports = false\n')
    state = root / "state"
    return {
        "root": root,
        "good": good,
        "config": config,
        "state": state,
        "clean": _flow(root / "clean" / "clean.FLOW.hdf5", 10),
        "bad": _flow(root / "bad" / "bad.FLOW.hdf5", 11, NEW_DEAD_BOX),
        "mild": _flow(root / "mild" / "mild.FLOW.hdf5", 12, MILD_DEAD_BOX),
    }


@pytest.fixture(scope="module")
def reference_state(made: dict[str, Path]) -> Path:
    state, config = made["state"], str(made["config"])
    args = ["--state", str(state), "--config", config]
    assert main(["reference", "create", "good", str(made["good"]), *args]) == 0
    assert main(["reference", "use", "good", *args]) == 0
    return state


def _router(tmp_path: Path, reference_state: Path, **overrides) -> Router:
    state = tmp_path / "state"
    shutil.copytree(reference_state / "references", state / "references")
    cfg = Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(state), "reports": False},
        processors={"disabled": ["light"]},
        **{"charge": {"plots": False}, **overrides},
    )
    return Router(cfg)


def _quality(router: Router, path: Path) -> dict:
    result = router.route(path)
    assert result.ok, result.error
    router.plots.wait_idle()
    return result.document["charge"]["quality"]


def _gauge(router: Router, name: str, **labels: str) -> float | None:
    return router.registry.get_sample_value(name, labels)


def test_reference_create_keeps_the_charge_files_and_says_what_it_skipped(
    made: dict[str, Path], reference_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["--state", str(reference_state), "--config", str(made["config"])]
    assert main(["reference", "show", "good", "--json", *args]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["voxels"]
    assert [Path(s["file"]).name for s in part["sources"]] == [f"g{i}.FLOW.hdf5" for i in range(4)]
    summary = part["summary"]
    assert summary["files"] == 4 and summary["grid_shape"] == [64, 62, 65]
    assert summary["hits_in_grid"] == sum(s["hits_in_grid"] for s in part["sources"]) > 150_000
    assert summary["drift_axis"] == "x" and 0 < summary["occupied_ratio"] < 1
    # made again: the light-only file is left out silently, the empty one said with its reason
    assert main(["reference", "create", "again", str(made["good"]), *args]) == 0
    err = capsys.readouterr().err
    assert "empty.FLOW.hdf5: no charge hits (and no light waveforms)" in err
    assert "light_only" not in err
    # only files without charge: not this kind's part, a clear error for the one with neither
    only = made["root"] / "nocharge"
    only.mkdir(exist_ok=True)
    shutil.copy(made["good"] / "empty.FLOW.hdf5", only)
    assert main(["reference", "create", "none", str(only), *args]) == 2
    assert "no charge hits (and no light waveforms)" in capsys.readouterr().err


def test_new_dead_region_is_an_error_a_smaller_one_a_warning_a_clean_run_ok(
    made: dict[str, Path], reference_state: Path, tmp_path: Path
) -> None:
    router = _router(tmp_path, reference_state)
    try:
        bad = _quality(router, made["bad"])
        assert bad["reference"] == "good" and bad["reference_files"] == 4
        assert bad["status"] == "error" and bad["failed"] == ["dead_region"]  # only that test
        assert bad["tests"]["drift_profile"]["status"] == "ok"
        dead = bad["tests"]["dead_region"]
        assert dead["status"] == "error" and 0.08 < dead["value"] < 0.13  # 10.6 % of the volume
        assert bad["reference_dead_region_ratio"] == 0.0
        low, high = bad["new_dead_box_cm"]  # where: the box given (± 2 voxels), to the edges
        assert (low[0], high[0], high[1], high[2]) == pytest.approx((5, 60, 0, 0), abs=4.5)
        assert low[1] < -55 and low[2] < -55
        assert _gauge(router, "wavedqm_voxels_quality_status", run="bad", test="dead_region") == 2
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="bad") == 2
        assert _gauge(router, "wavedqm_voxels_quality_value", run="bad",
                      test="dead_region") == dead["value"]  # fmt: skip

        mild = _quality(router, made["mild"])
        assert mild["status"] == "warning" and mild["failed"] == ["dead_region"]
        assert 0.02 < mild["tests"]["dead_region"]["value"] < 0.05
        assert mild["tests"]["drift_profile"]["status"] == "ok"
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="mild") == 1
        # only the run last tested has series
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="bad") is None

        clean = _quality(router, made["clean"])
        assert clean["status"] == "ok" and clean["failed"] == []
        assert {t["status"] for t in clean["tests"].values()} == {"ok"}
        assert clean["tests"]["dead_region"]["value"] == 0.0
        assert clean["new_dead_box_cm"] is None
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="clean") == 0
        assert _gauge(router, "wavedqm_voxels_quality_reference_errors_total") == 0

        (tmp_path / "state" / "references" / "ACTIVE").unlink()  # no reference in use
        gone = _quality(router, made["clean"])
        assert gone == {"reference": None, "status": "no_reference"}
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="clean") is None
        assert _gauge(router, "wavedqm_voxels_quality_status", run="clean",
                      test="dead_region") is None  # fmt: skip
    finally:
        router.close()
    summary = json.loads((tmp_path / "out" / "bad.FLOW.hdf5" / "summary.json").read_text())
    assert summary["charge"]["quality"]["tests"]["dead_region"]["status"] == "error"
    text = (tmp_path / "out" / "voxels" / "bad" / "voxel_summary.txt").read_text()
    assert "Quality against reference good: error" in text
    assert "dead_region (dead_region difference): 0.1" in text and "new dead region within" in text


def test_a_damaged_reference_part_is_reported_and_the_files_go_on(
    made: dict[str, Path], reference_state: Path, tmp_path: Path
) -> None:
    router = _router(tmp_path, reference_state)
    part = section_path(tmp_path / "state", "good", "voxels")
    try:
        part.write_bytes(b"not an npz")
        with capture_logs() as logs:
            first = _quality(router, made["clean"])
        said = [e for e in logs if e["event"] == "voxel_reference_unusable"]
        assert len(said) == 1 and said[0]["reference"] == "good" and str(part) in said[0]["error"]
        assert first["status"] == "reference_unusable" and first["reference"] == "good"
        assert str(part) in first["error"]
        assert _quality(router, made["clean"])["status"] == "reference_unusable"
        assert _gauge(router, "wavedqm_voxels_quality_reference_errors_total") == 1  # once
        assert _gauge(router, "wavedqm_voxels_quality_worst_status", run="clean") is None
        meta = {"created_at": 1.0, "sources": [], "summary": {}}
        save_section(tmp_path / "state", "good", "voxels", meta, {"shape": np.array([4, 4])})
        assert _quality(router, made["clean"])["status"] == "reference_unusable"
        assert _gauge(router, "wavedqm_voxels_quality_reference_errors_total") == 2
        shutil.copy(reference_state / "references" / "voxels" / "good.npz", part)
        assert _quality(router, made["clean"])["status"] == "ok"  # read again, in use
    finally:
        router.close()


def test_a_run_on_another_grid_is_not_compared_and_says_why(
    made: dict[str, Path], reference_state: Path, tmp_path: Path
) -> None:
    coarse = {"plots": False, "voxel_size_cm": (4.0, 4.0, 4.0)}
    router = _router(tmp_path, reference_state, charge=coarse)
    try:
        quality = _quality(router, made["clean"])
    finally:
        router.close()
    assert quality["status"] == "not_enough_data"
    assert "voxel grid differs" in quality["reason"] and "voxel_size_cm" in quality["reason"]
    assert {t["status"] for t in quality["tests"].values()} == {"not_enough_data"}


def test_the_occupancy_page_draws_the_reference_difference(
    made: dict[str, Path], reference_state: Path, tmp_path: Path
) -> None:
    router = _router(tmp_path, reference_state, charge={"plots": True})
    try:
        result = router.route(made["bad"])
        assert result.ok
        written = result.outcome("charge").wait(60)  # type: ignore[union-attr]
        detail = result.detail("charge")
        grid, quality = detail[1], detail[5]
    finally:
        router.close()
    png = written["voxel_occupancy.png"]
    assert png == tmp_path / "out" / "voxels" / "bad" / "voxel_occupancy.png"
    assert png.stat().st_size > 50_000
    count = read_voxels(png.parent / "voxels.h5").count.astype(np.int64)
    reference = decode_voxel_reference(
        *load_section(tmp_path / "state", "good", "voxels")  # type: ignore[misc]
    )
    drawn = compare_occupancy(count, grid, reference, quality)
    assert drawn is not None and drawn.reference == "good"
    assert drawn.scale == pytest.approx(count.sum() / reference.n_hits)
    for name in ("xy", "xz", "yz"):  # the run minus the reference scaled to the run's hits
        assert drawn.difference[name].sum() == pytest.approx(0.0, abs=1e-6)
    xz = drawn.new_dead["xz"]  # the new dead region's columns, outlined on the page
    centres_x, centres_z = grid.centres(0), grid.centres(2)
    in_z = (centres_z > -55) & (centres_z < -5)
    inside = (centres_x[:, None] > 10) & (centres_x[:, None] < 55) & in_z[None, :]
    assert xz[inside].all() and not xz[centres_x < 0].any()
