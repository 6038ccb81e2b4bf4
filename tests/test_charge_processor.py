"""The charge processor end to end: real 2x2 file against an independent h5py computation,
runs across files and restarts, reprocessing, damaged state, wrong layouts, voxels.h5 and its
merge."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from wavedqm.cli import main
from wavedqm.config import Config
from wavedqm.exporters.voxel_files import read_voxels
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import write_flow_file

HITS = "charge/calib_prompt_hits/data"
REPORTS_OFF = "[output]\nreports = false\n"


def _config(tmp_path: Path, **charge) -> Config:
    return Config().with_overrides(
        output={
            "dir": str(tmp_path / "out"),
            "state_dir": str(tmp_path / "state"),
            "reports": False,
        },
        charge={"plots": False, **charge},
    )


def _route(router: Router, path: Path) -> dict:
    result = router.route(path)
    assert result.ok, result.error
    router.plots.wait_idle()
    return result.document["charge"]


def test_real_2x2_file_counts_and_sums_equal_h5py(tmp_path: Path, shared_dir: Path) -> None:
    sample = shared_dir / "data" / "flow" / "UCD_2x2_sample_data.hdf5"
    with h5py.File(sample, "r") as f:
        hits = f[HITS][()]
        rows = f["geometry_info/det_bounds/data"][()]
        n_events = f["charge/events/data"].shape[0]
    boxes = rows["data"][rows["filled"]].astype(np.float64)
    low, high = boxes.min(axis=(0, 1)), boxes.max(axis=(0, 1))
    size = 2.0
    shape = np.maximum(1, np.ceil((high - low) / size - 1e-9)).astype(int)
    xyz = np.stack([hits["x"], hits["y"], hits["z"]], 1)
    idx = np.floor((xyz - low) / size)
    inside = np.all((idx >= 0) & (idx < shape), axis=1) & ~hits["is_disabled"]
    router = Router(_config(tmp_path))
    try:
        section = _route(router, sample)
    finally:
        router.close()
    assert section["hits"] == len(hits) == 15297
    assert section["events"] == n_events
    assert section["hits_in_grid"] == int(inside.sum())
    assert section["hits_outside_grid"] == int((~inside).sum()) > 1000  # drift x beyond bounds
    assert section["hits_disabled"] == 0 and section["hits_invalid"] == 0
    assert section["sum_q_ke"] == pytest.approx(float(np.sum(hits["Q"])), rel=1e-13)
    assert section["sum_q_in_grid_ke"] == pytest.approx(float(np.sum(hits["Q"][inside])), rel=1e-13)
    assert section["grid"]["shape"] == shape.tolist()
    voxels = read_voxels(tmp_path / "out" / "voxels" / section["run"] / "voxels.h5")
    ref = np.zeros(shape, np.int64)
    np.add.at(ref, tuple(idx[inside].astype(int).T), 1)
    np.testing.assert_array_equal(voxels.count, ref)
    with h5py.File(tmp_path / "out" / "voxels" / section["run"] / "voxels.h5", "r") as h5:
        assert h5.attrs["axes"] == "x,y,z"
        mean = h5["mean"][()]
        assert np.isnan(mean[ref == 0]).all()
        np.testing.assert_allclose(mean[ref > 0], voxels.sum[ref > 0] / ref[ref > 0])


def _two_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "a.FLOW.hdf5", folder / "b.FLOW.hdf5"
    write_flow_file(a, n_events=8, seed=1, with_charge=True)
    write_flow_file(b, n_events=8, seed=2, with_charge=True)
    return a, b


def _in_grid(path: Path, tmp: Path) -> int:
    router = Router(_config(tmp))
    try:
        return _route(router, path)["hits_in_grid"]
    finally:
        router.close()


def test_a_run_accumulates_across_files_restarts_and_reprocessing(tmp_path: Path) -> None:
    a, b = _two_files(tmp_path / "run7")
    n_a, n_b = _in_grid(a, tmp_path / "alone_a"), _in_grid(b, tmp_path / "alone_b")
    router = Router(_config(tmp_path))
    try:
        first = _route(router, a)
        assert first["run"] == "run7"
    finally:
        router.close()
    router = Router(_config(tmp_path))  # a restart: the run comes back from the state folder
    try:
        _route(router, b)
        _route(router, a)  # processed again (e.g. rewritten): replaces its contribution
    finally:
        router.close()
    voxels = read_voxels(tmp_path / "out" / "voxels" / "run7" / "voxels.h5")
    assert sorted(voxels.files) == ["a.FLOW.hdf5", "b.FLOW.hdf5"]
    assert int(voxels.count.sum()) == n_a + n_b == voxels.tallies["hits_in_grid"]


def test_a_damaged_run_state_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    a, b = _two_files(tmp_path / "run8")
    router = Router(_config(tmp_path))
    try:
        n_a = _route(router, a)["hits_in_grid"]
    finally:
        router.close()
    state = tmp_path / "state" / "voxels" / "run8" / "run.npz"
    state.write_bytes(b"not a zip file")
    router = Router(_config(tmp_path))
    try:
        n_b = _route(router, b)["hits_in_grid"]
    finally:
        router.close()
    aside = list(state.parent.glob("run.npz.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"not a zip file"
    voxels = read_voxels(tmp_path / "out" / "voxels" / "run8" / "voxels.h5")
    assert int(voxels.count.sum()) == n_a + n_b  # rebuilt from the files' contributions


def test_wrong_layout_charge_data_fails_with_its_reason_and_the_next_file_goes_on(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "in" / "bad.FLOW.hdf5"
    bad.parent.mkdir()
    with h5py.File(bad, "w") as f:
        f.create_dataset(HITS, data=np.zeros(5, [("x", "f8"), ("y", "f8"), ("z", "f8")]))
    good = tmp_path / "in" / "good.FLOW.hdf5"
    write_flow_file(good, n_events=4, seed=3, with_charge=True)
    router = Router(_config(tmp_path))
    try:
        result = router.route(bad)
        assert not result.ok and result.failure == "wrong_layout"
        assert "has no field Q" in result.error and str(bad) in result.error
        assert _route(router, good)["hits"] > 0
    finally:
        router.close()


def test_run_from_a_pattern_and_merge_of_runs(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for run, seed in (("r1", 4), ("r2", 5)):
        p = folder / f"mpd_{run}_p0.FLOW.hdf5"
        write_flow_file(p, n_events=5, seed=seed, with_charge=True)
        paths.append(p)
    config = tmp_path / "c.toml"
    config.write_text(
        REPORTS_OFF + '[charge]\nrun_pattern = "mpd_(?P<run>r[0-9]+)_"\nplots = false\n'
    )
    args = ["process", str(folder), "--config", str(config), "--out", str(tmp_path / "out")]
    assert main([*args, "--state", str(tmp_path / "state")]) == 0
    r1, r2 = (tmp_path / "out" / "voxels" / r / "voxels.h5" for r in ("r1", "r2"))
    merged = tmp_path / "m.h5"
    assert main(["voxels", "merge", str(r1), str(r2), "--out", str(merged)]) == 0
    a, b, m = read_voxels(r1), read_voxels(r2), read_voxels(merged)
    np.testing.assert_array_equal(m.count, a.count + b.count)
    np.testing.assert_allclose(m.sum, a.sum + b.sum, rtol=1e-15)
    assert m.files == a.files + b.files
    both = tmp_path / "both"
    config.write_text(
        REPORTS_OFF + '[charge]\nrun_pattern = "(mpd)_r"\nplots = false\n'
    )  # one run for both
    args = ["process", str(folder), "--config", str(config), "--out", str(both)]
    assert main([*args, "--state", str(tmp_path / "state_both")]) == 0
    one = read_voxels(both / "voxels" / "mpd" / "voxels.h5")
    np.testing.assert_array_equal(one.count, m.count)
    np.testing.assert_allclose(one.m2, m.m2, rtol=1e-12, atol=1e-9)
    # another grid: a clear error, exit 2
    config.write_text(REPORTS_OFF + "[charge]\nvoxel_size_cm = [3.0, 3.0, 3.0]\nplots = false\n")
    other = tmp_path / "other"
    args = ["process", str(paths[0]), "--config", str(config), "--out", str(other)]
    assert main([*args, "--state", str(tmp_path / "s3")]) == 0
    capsys.readouterr()
    odd = next((other / "voxels").glob("*/voxels.h5"))
    assert main(["voxels", "merge", str(r1), str(odd), "--out", str(tmp_path / "x.h5")]) == 2
    assert "has another grid" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / paths[0].name / "summary.json").read_text())
    assert summary["charge"]["run"] == "r1"
