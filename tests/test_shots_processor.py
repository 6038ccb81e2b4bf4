"""The shot processor end to end: simulated shots with known flaws give exactly the flags of
the simulator's truth; outputs, metrics, restarts, reprocessing, bad files, the sidecar wait,
a watched folder with a real daemon, and the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from wavedqm import constants as C
from wavedqm.config import Config
from wavedqm.errors import FileNotReady
from wavedqm.processors.router import Router
from wavedqm.simulate.shots import SHOTS_CONFIG, TRUTH_FILE, simulate_shots

from daemonutil import start_daemon
from netutil import http_get, metric_value, wait_for

N_SHOTS = 20  # six flaw slots: every imperfection once


def _config(tmp_path: Path, plots: bool = False, **shots: object) -> Config:
    return Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state"),
                "reports": plots},
        shots={**SHOTS_CONFIG, "plots": plots, **shots},
    )  # fmt: skip


def _metric(router: Router, name: str, **labels: str) -> float | None:
    return metric_value(generate_latest(router.registry).decode(), name, **labels)


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spool = tmp_path_factory.mktemp("shots") / "run7"
    simulate_shots(spool, shots=N_SHOTS, seed=11, n_samples=2000, dt_s=2e-6)
    return spool


def _truth(spool: Path) -> list[dict]:
    return json.loads((spool / TRUTH_FILE).read_text())["shots"]


def test_flags_are_exactly_the_simulators_truth(shots_dir: Path, tmp_path: Path) -> None:
    truth = _truth(shots_dir)
    assert {t["imperfection"] for t in truth} >= {
        "missing_data", "saturation", "noise", "drift", "low_signal", "timing"}  # fmt: skip
    with Router(_config(tmp_path, plots=True)) as router:
        for t in truth:
            result = router.route(shots_dir / t["file"])
            assert result.ok, result.error
            assert result.detail("shots").flags() == t["flags"], t
        router.plots.wait_idle()
        assert _metric(router, "wavedqm_shots_processed_total") == N_SHOTS
        assert _metric(router, "wavedqm_shot_flags_total", channel="photodiode",
                       flag="saturation") == 1  # fmt: skip
        assert _metric(router, "wavedqm_shot_flags_total", channel="b_dot",
                       flag="timing_outlier") == 1  # fmt: skip
        assert _metric(router, "wavedqm_shot_flag_streak_limit") == C.SHOT_ALERT_STREAK
        last = truth[-1]
        assert _metric(router, "wavedqm_shot_flag_streak", channel="photodiode") == (
            1 if "photodiode" in last["flags"] else 0)  # fmt: skip
        peak = _metric(router, "wavedqm_shot_metric", channel="photodiode", metric="peak")
        assert peak == pytest.approx(last["amplitudes"]["photodiode"], rel=0.1)
    out = tmp_path / "out" / "run7"
    doc = json.loads((out / f"{truth[4]['shot_id']}.json").read_text())
    assert doc["control_vars"] == truth[4]["control_vars"] and doc["series"] == "run7"
    assert set(doc["channels"]["b_dot"]["metrics"]) == set(
        SHOTS_CONFIG["channel"]["b_dot"]["metrics"])  # fmt: skip
    freq = doc["channels"]["b_dot"]["metrics"]["dominant_freq_hz"]
    assert freq == pytest.approx(truth[4]["bdot_frequency_hz"], rel=0.02)
    rows = list(csv.reader((out / "shot_metrics.csv").open()))
    assert rows[0] == ["shot_id", "channel", *C.SHOT_METRICS, "flags",
                       "coil_current_kA", "gas_pressure_mTorr", "injector_voltage_V"]  # fmt: skip
    assert len(rows) == 1 + N_SHOTS * 4
    flagged = {(r[0], r[1]): r[10] for r in rows[1:] if r[10]}
    want = {(t["shot_id"], c): ";".join(f) for t in truth for c, f in t["flags"].items()}
    assert flagged == want
    b_dot_rise = [r[7] for r in rows[1:] if r[1] == "b_dot"]
    assert set(b_dot_rise) == {""}  # not configured for the B-dot
    for name in [
        "overlay_photodiode.png",
        "trends_vs_shot.png",
        "trends_vs_gas_pressure_mTorr.png",
        "shot_report.md",
        "shot_report.pdf",
    ]:
        assert (out / name).stat().st_size > 1000, name  # fmt: skip
    assert (out / "overlay_b_dot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "images" / "shot_overlay.png").exists()
    md = (out / "shot_report.md").read_text()
    assert "![overlay_photodiode](overlay_photodiode.png)" in md
    from pdfutil import pdf_pages

    assert pdf_pages(out / "shot_report.pdf") == 3 + 4  # 3 + shot number, 3 controls


def test_restart_keeps_the_history_and_reprocessing_replaces(
    shots_dir: Path, tmp_path: Path
) -> None:
    truth = _truth(shots_dir)
    timing = next(i for i, t in enumerate(truth) if t["imperfection"] == "timing")
    cfg = _config(tmp_path)
    with Router(cfg) as router:
        for t in truth[:timing]:
            assert router.route(shots_dir / t["file"]).ok
    with Router(cfg) as router:  # a restart: the timing reference comes from the state
        for t in truth[timing:]:
            assert router.route(shots_dir / t["file"]).detail("shots").flags() == t["flags"]
        again = router.route(shots_dir / truth[3]["file"]).detail("shots")
        assert again.index == 3 and again.flags() == truth[3]["flags"]
    rows = list(csv.reader((tmp_path / "out" / "run7" / "shot_metrics.csv").open()))
    assert len(rows) == 1 + N_SHOTS * 4  # no shot twice
    assert [r[0] for r in rows[1::4]] == [t["shot_id"] for t in truth]


def test_bad_shot_files_fail_with_their_reason_and_the_next_one_is_fine(
    shots_dir: Path, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "shot_0001.csv").write_text("t,a\n0,1\n1,x\n")
    (spool / "shot_0002.csv").write_text("t,a\n0,1\n1,2\n2,3\n")
    (spool / "shot_0002.meta.json").write_text("{oops")
    (spool / "shot_0003.csv").write_text("a,b\n0,1\n")
    with Router(_config(tmp_path)) as router:
        reasons = [router.route(spool / f"shot_000{i}.csv").failure for i in (1, 2, 3)]
        assert reasons == ["non_numeric", "bad_sidecar", "no_time_column"]
        assert router.route(shots_dir / "shot_0001.csv").ok
        for reason in reasons:
            assert _metric(router, "wavedqm_shots_failed_total", reason=reason) == 1
            assert _metric(router, "wavedqm_files_failed_total", reason=reason) == 1


def test_a_shot_waits_for_its_sidecar_then_goes_on_without(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    simulate_shots(spool, shots=1, n_samples=500)
    (spool / "shot_0001.meta.json").unlink()
    cfg = _config(tmp_path, sidecar_wait_seconds=5.0)
    with Router(cfg) as router:
        with pytest.raises(FileNotReady, match=r"sidecar shot_0001\.meta\.json"):
            router.route(spool / "shot_0001.csv", completed_at=time.time())
        late = router.route(spool / "shot_0001.csv", completed_at=time.time() - 6)
        assert late.ok and late.detail("shots").control_vars == {}
    with Router(cfg, batch=True) as router:  # `wavedqm process` never waits
        assert router.route(spool / "shot_0001.csv", completed_at=time.time()).ok


def test_watched_folder_with_a_real_daemon(tmp_path: Path) -> None:
    """Shots published like a DAQ, the sidecar 0.6 s after its CSV (longer than the settle
    time): every shot is processed once, with its control variables."""
    spool = tmp_path / "spool" / "day1"
    spool.mkdir(parents=True)
    daemon = start_daemon(tmp_path, spool.parent, "[shots]\nsidecar_wait_seconds = 5\n")
    try:
        simulate_shots(spool, shots=4, interval_s=0.2, sidecar_delay_s=0.6, n_samples=1000)
        wait_for(lambda: daemon.value("wavedqm_shots_processed_total") == 4, 60,
                 what="4 shots processed")  # fmt: skip
        for i in range(1, 5):
            doc = json.loads((daemon.out / "day1" / f"{i:04d}.json").read_text())
            assert set(doc["control_vars"]) == {"gas_pressure_mTorr", "injector_voltage_V",
                                                "coil_current_kA"}  # fmt: skip
        wait_for(lambda: http_get(f"{daemon.url}/images/shot_overlay.png")[0] == 200, 60,
                 what="overlay served")  # fmt: skip
        assert daemon.value("wavedqm_files_processed_total") == 4
    finally:
        assert daemon.stop() == 0


def test_cli_simulate_inspect_and_process(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wavedqm.cli", *args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    spool = tmp_path / "sim"
    sim = run("simulate", "shots", "--out", str(spool), "--shots", "3", "--samples", "400")
    assert sim.returncode == 0, sim.stderr
    assert "shots.toml" in sim.stdout
    info = run("inspect", str(spool / "shot_0001.csv"))
    assert info.returncode == 0, info.stderr
    for word in ("b_dot", "xray_proxy", "samples", "dt_s", "nan"):
        assert word in info.stdout
    (spool / "shot_0009.csv").write_text("t,a\n1,1\n0,2\n")
    proc = run("process", "--config", str(spool / "shots.toml"), "--out", str(tmp_path / "o"),
               "--state", str(tmp_path / "s"), str(spool))  # fmt: skip
    assert proc.returncode == 1
    assert "time_not_increasing" in proc.stderr and "shot_0009.csv" in proc.stderr
    assert (tmp_path / "o" / "sim" / "0003.json").exists()
