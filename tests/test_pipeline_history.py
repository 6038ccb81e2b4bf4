"""The pipeline keeps a history of files and flags a baseline shift against previous files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wavedqm.config import Config
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import write_flow_file

from routing import route_light


def _pipeline(tmp_path: Path, previous_files: int | str = 10) -> Router:
    cfg = Config().with_overrides(
        output={
            "dir": str(tmp_path / "out"),
            "state_dir": str(tmp_path / "state"),
            "reports": False,  # PDFs are tested elsewhere; these tests are about the history
        },
        history={"previous_files": previous_files},
    )
    return Router(cfg)


def test_history_counts_previous_files_across_restarts(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"h_p{i}.FLOW.hdf5"
        write_flow_file(path, n_events=8, seed=i, detector_seed=7)
        files.append(path)
    pipeline = _pipeline(tmp_path)
    first = route_light(pipeline, files[0])
    second = route_light(pipeline, files[1])
    pipeline.close()
    assert first.previous is None and first.summary["previous_files"] == 0
    assert second.previous is not None and second.previous.files == [files[0].name]
    restarted = _pipeline(tmp_path)
    third = route_light(restarted, files[2])
    restarted.close()
    assert third.summary["previous_files"] == 2
    # same detector: no baseline shift against the previous files
    assert third.summary["baseline_flagged"] == []


def test_baseline_shift_against_previous_files_is_status_2(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    for i in range(3):
        path = tmp_path / f"s_p{i}.FLOW.hdf5"
        write_flow_file(path, n_events=10, seed=i, detector_seed=3)
        route_light(pipeline, path)
    shifted = tmp_path / "s_p9.FLOW.hdf5"
    write_flow_file(shifted, n_events=10, seed=9, detector_seed=4)  # another detector: all moved
    outcome = route_light(pipeline, shifted)
    pipeline.close()
    flagged = outcome.summary["baseline_flagged"]
    assert flagged, "a different detector's baselines must show as shifted"
    assert {code for _, _, code in flagged} == {2}
    summary = json.loads((tmp_path / "out" / shifted.name / "summary.json").read_text())
    assert summary["previous_files"] == 3


def test_previous_files_none_disables_comparison(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, "none")
    a, b = tmp_path / "n_a.FLOW.hdf5", tmp_path / "n_b.FLOW.hdf5"
    write_flow_file(a, n_events=6, seed=1, detector_seed=1)
    write_flow_file(b, n_events=6, seed=2, detector_seed=2)
    route_light(pipeline, a)
    outcome = route_light(pipeline, b)
    pipeline.close()
    assert outcome.previous is None
    assert outcome.summary["baseline_flagged"] == []
    assert np.isfinite(np.array(outcome.summary["light"]["baseline_adc16"], dtype=float)).any()


def test_spectra_can_be_turned_off_and_are_in_the_summary_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "sp.FLOW.hdf5"
    write_flow_file(path, n_events=6, seed=5)
    off = Config().with_overrides(
        output={"dir": str(tmp_path / "a"), "state_dir": str(tmp_path / "sa"), "reports": False},
        light={"spectra_events": 0},
    )
    pipeline = Router(off)
    assert route_light(pipeline, path).summary["spectra"] is None
    pipeline.close()
    pipeline = _pipeline(tmp_path)
    spectra = route_light(pipeline, path).summary["spectra"]
    pipeline.close()
    assert spectra["n_events"] == 6
    assert len(spectra["roi_centres_mhz"]) == 11
