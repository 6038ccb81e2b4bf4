"""A simulated field scan dropped into a watched folder: set by set, the seed's files and plots
and the Prometheus series appear, with the simulated S2 means recovered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wavedqm.simulate.wfm import simulate_field_scan

from daemonutil import start_daemon
from netutil import wait_for

SETS = ((200.0, 2100.0), (800.0, 2700.0))
SET_FILES = ("s2_areas.npy", "s2_results.json", "xray_areas.npy", "xray_results.json")
RUN_PLOTS = ("xray_histogram", "s2_vs_drift", "s2_vs_drift_normalized", "diffusion_analysis")


def test_field_scan_in_watched_folder(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    daemon = start_daemon(tmp_path, spool)  # the fit ranges: the simulated run's run.toml
    try:
        truths = simulate_field_scan(
            spool / "RUN5", sets=SETS, files_per_set=2, frames_per_file=300, seed=3
        )
        for truth in truths:
            labels = {"run": "RUN5", "set": truth.set_name}
            wait_for(
                lambda lb=labels: daemon.value("wavedqm_s2_files_processed_total", **lb) == 2,
                60,
                what=f"{truth.set_name} processed",
            )
            out = daemon.out / "RUN5" / truth.set_name
            results = json.loads((out / "s2_results.json").read_text())
            assert set(results) >= {"method", "params", "mean", "sigma", "ci95", "fit_success"}
            assert results["fit_success"] is True
            metadata = results["set_metadata"]
            assert metadata["drift_field"] == np.float64(truth.drift_field_v_cm)
            assert abs(metadata["time_drift"] - truth.drift_time_us) < 1e-6
            # the simulated mean, recovered within its statistical error (3 x stderr)
            stderr = truth.s2_sigma_mv_us / np.sqrt(truth.n_ion)
            assert (
                abs(results["mean"] - truth.s2_mean_mv_us) < 3 * stderr + 0.01 * truth.s2_mean_mv_us
            )
            mean = daemon.value("wavedqm_s2_area_mean_mv_us", **labels)
            assert mean == results["mean"]
            for name in SET_FILES:
                assert (out / name).stat().st_size > 0, name
            xray = json.loads((out / "xray_results.json").read_text())
            assert xray["n_events"] == truth.n_frames
            assert xray["n_accepted"] == truth.n_xray_accepted_expected
            assert {e["reason"] for e in xray["events"]} >= {"passed_all_cuts"}
            ratio = daemon.value("wavedqm_xray_accepted_ratio", **labels)
            assert ratio == xray["n_accepted"] / xray["n_events"]
        plots = daemon.out / "RUN5" / "plots"
        wait_for(
            lambda: all((plots / f"RUN5_{name}.png").exists() for name in RUN_PLOTS),
            60,
            what="run plots",
        )
        for truth in truths:
            for kind in ("s2_histogram", "waveform_validation"):
                assert (plots / f"{truth.set_name}_{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert daemon.value("wavedqm_run_g_s2", run="RUN5") > 0
        # inputs untouched: the daemon wrote nothing in the data folder
        written = {p.name for p in (spool / "RUN5").rglob("*") if p.is_file()}
        expected = {f.name for t in truths for f in t.files}
        expected |= {"simulation_truth.json", "run.toml"}  # the simulator's
        assert written == expected
    finally:
        daemon.kill()
