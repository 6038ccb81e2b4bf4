"""``wavedqm reprocess`` on real Dask clusters: a LocalCluster, and a `dask scheduler` with
two `dask worker` processes started here on loopback (one killed with SIGKILL mid-run).

Checked: per-file ``summary.json`` (and every other JSON output) identical to ``wavedqm
process`` of the same files apart from times; run voxel accumulators equal to the serial
fill (count and ΣQ exactly, M2 within 1e-12); the history store in data-time order; every
file in the ledger exactly once; a rerun does nothing; a bad file fails alone with its
reason; a file that kills its worker twice fails with reason ``worker_lost``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from wavedqm.cli import process_files
from wavedqm.config import load_config
from wavedqm.exporters.history_store import HISTORY_FILE, HistoryStore
from wavedqm.exporters.voxel_files import read_voxels
from wavedqm.reprocess.run import ReprocessOptions, reprocess
from wavedqm.simulate.flow import write_flow_file
from wavedqm.simulate.shots import simulate_shots
from wavedqm.simulate.wfm import simulate_field_scan

from netutil import free_port, wait_for
from toyproc import PREPARED_TOY

pytestmark = pytest.mark.slow

T0 = 1_780_000_000.0
TIME_KEYS = ("seconds", "processed_at", "_at")


def _timeless(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if not any(t in k for t in TIME_KEYS)}
    if isinstance(doc, list):
        return [_timeless(x) for x in doc]
    return doc


def _json_outputs(out: Path) -> dict[str, object]:
    return {
        str(p.relative_to(out)): _timeless(json.loads(p.read_text()))
        for p in sorted(out.rglob("*.json"))
    }


def _config(tmp: Path, name: str, extra: str = "") -> Path:
    shots_toml = (tmp / "data" / "shots" / "shots.toml").read_text() if extra == "shots" else ""
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[output]\ndir = "{tmp / name / "out"}"\nstate_dir = "{tmp / name / "state"}"\n'
        f"reports = false\n\n{shots_toml}"
    )
    return path


def _ledger_rows(state: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        return db.execute("SELECT path, status, reason FROM files ORDER BY path").fetchall()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of every kind: three FLOW files (light + charge, names in data-time
    order), six shots, one S2 run of two sets."""
    tmp = tmp_path_factory.mktemp("archive")
    flow = tmp / "data" / "flow"
    flow.mkdir(parents=True)
    for i in range(3):
        write_flow_file(
            flow / f"run_p{i:04d}.FLOW.hdf5", n_events=24, n_samples=256, seed=i,
            with_charge=True, start_time_s=T0 + 600 * i, detector_seed=7,
        )  # fmt: skip
    simulate_shots(tmp / "data" / "shots", shots=6, seed=3, n_samples=2000)
    simulate_field_scan(
        tmp / "data" / "RUN7", sets=((200.0, 2100.0), (400.0, 2300.0)), files_per_set=1,
        frames_per_file=60, seed=5,
    )  # fmt: skip
    return tmp


def test_reprocess_gives_what_process_gives(archive: Path) -> None:
    data = archive / "data"
    serial_cfg = load_config(_config(archive, "serial", "shots"))
    assert process_files(serial_cfg, [data]) == 0
    dask_cfg = load_config(_config(archive, "dask", "shots"))
    report = reprocess(dask_cfg, [data], ReprocessOptions(workers=2, progress=False))
    n_files = 3 + 6 + 2
    assert (report.done, report.failed, report.skipped) == (n_files, 0, 0), report.failures

    serial, dask = (
        _json_outputs(archive / "serial" / "out"),
        _json_outputs(archive / "dask" / "out"),
    )
    assert sorted(serial) == sorted(dask)
    assert any(k.endswith("summary.json") for k in serial)
    for name in serial:
        assert dask[name] == serial[name], name

    a = read_voxels(next((archive / "serial" / "out" / "voxels").rglob("voxels.h5")))
    b = read_voxels(next((archive / "dask" / "out" / "voxels").rglob("voxels.h5")))
    assert np.array_equal(a.count, b.count) and np.array_equal(a.sum, b.sum)
    np.testing.assert_allclose(b.m2, a.m2, rtol=1e-12, atol=0)
    assert a.files == b.files

    for name in ("run_p0000.FLOW.hdf5", "run_p0002.FLOW.hdf5"):  # drawn on the workers
        assert (archive / "dask" / "out" / name / "flatline.png").stat().st_size > 1000
    shots_out = archive / "dask" / "out" / "shots"
    for png in ("trends_vs_shot.png", "overlay_b_dot.png"):  # the series, drawn at the end
        assert (shots_out / png).stat().st_size > 1000
    serial_csv = (archive / "serial" / "out" / "shots" / "shot_metrics.csv").read_text()
    assert (shots_out / "shot_metrics.csv").read_text().count("\n") == serial_csv.count("\n")
    with HistoryStore(archive / "dask" / "state" / HISTORY_FILE) as store:
        assert [r.file for r in store.records()] == [f"run_p{i:04d}.FLOW.hdf5" for i in range(3)]

    rows = _ledger_rows(archive / "dask" / "state")
    assert len(rows) == n_files and {r[1] for r in rows} == {"ok"}
    assert len({r[0] for r in rows}) == n_files

    again = reprocess(dask_cfg, [data], ReprocessOptions(workers=2, progress=False))
    assert (again.done, again.failed, again.skipped) == (0, 0, n_files)
    assert _ledger_rows(archive / "dask" / "state") == rows


def test_history_follows_data_time_not_names(tmp_path: Path) -> None:
    """Files named against their data order: the history (and so each file's "previous
    files") follows the data."""
    flow = tmp_path / "flow"
    flow.mkdir()
    starts = {"a": T0 + 1200, "b": T0, "c": T0 + 600}
    for i, (name, start) in enumerate(starts.items()):
        write_flow_file(flow / f"{name}.FLOW.hdf5", n_events=12, n_samples=256, seed=i,
                        start_time_s=start)  # fmt: skip
    cfg = load_config(_config(tmp_path, "r"))
    report = reprocess(cfg, [flow], ReprocessOptions(workers=1, progress=False))
    assert report.done == 3, report.failures
    with HistoryStore(tmp_path / "r" / "state" / HISTORY_FILE) as store:
        assert [r.file for r in store.records()] == ["b.FLOW.hdf5", "c.FLOW.hdf5", "a.FLOW.hdf5"]
    previous = {
        n: json.loads((tmp_path / "r" / "out" / f"{n}.FLOW.hdf5" / "summary.json").read_text())[
            "previous_files"
        ]
        for n in starts
    }
    assert previous == {"b": 0, "c": 1, "a": 2}


def test_bad_file_and_worker_killer_fail_alone(tmp_path: Path) -> None:
    """A bad file fails with its reason; a file that kills every worker that prepares it
    fails with ``worker_lost`` after two deaths; the others are done."""
    toys = tmp_path / "toys"
    toys.mkdir()
    for i in range(4):
        (toys / f"good{i}.toy").write_text(f"TOYDQM1\n{i}\n{10 * i}\n")
    (toys / "bad.toy").write_text("TOYDQM1\n1\nfail\n")
    (toys / "killer.toy").write_text("TOYDQM1\npoison\n")
    cfg = load_config(_config(tmp_path, "t"))
    options = ReprocessOptions(workers=2, progress=False, registrations=[PREPARED_TOY])
    report = reprocess(cfg, [toys], options)
    reasons = {p.name: r for p, r, _ in report.failures}
    assert reasons == {"bad.toy": "wrong_layout", "killer.toy": "worker_lost"}
    assert report.done == 4
    for i in range(4):
        total = int((tmp_path / "t" / "out" / f"good{i}.toy" / "toy.txt").read_text())
        assert total == 11 * i
    rows = {Path(p).name: (s, r) for p, s, r in _ledger_rows(tmp_path / "t" / "state")}
    assert rows["killer.toy"] == ("failed", "worker_lost")
    assert rows["bad.toy"] == ("failed", "wrong_layout")
    assert sum(s == "ok" for s, _ in rows.values()) == 4


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env or os.environ.copy(),
        start_new_session=True,
    )  # fmt: skip


def test_real_scheduler_survives_a_killed_worker(tmp_path: Path) -> None:
    """`dask scheduler` + two `dask worker` (no nanny) on loopback; one worker is killed
    with SIGKILL while files remain: every file is done exactly once."""
    flow = tmp_path / "flow"
    flow.mkdir()
    n = 8
    for i in range(n):
        write_flow_file(flow / f"f{i:02d}.FLOW.hdf5", n_events=400, n_samples=1000, seed=i,
                        start_time_s=T0 + 60 * i, with_charge=True)  # fmt: skip
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    py = sys.executable
    procs = [
        _spawn(
            [
                py,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            tmp_path / "scheduler.log",
            env,
        )
    ]
    try:
        for k in range(2):
            procs.append(
                _spawn(
                    [
                        py,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        f"w{k}",
                    ],
                    tmp_path / f"worker{k}.log",
                )
            )
        cfg_path = _config(tmp_path, "ext")
        out = tmp_path / "ext" / "out"
        client = subprocess.Popen(
            ["wavedqm", "reprocess", str(flow), "--config", str(cfg_path), "--scheduler",
             address, "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for(lambda: len(list(out.glob("*/summary.json"))) >= 1, 120, what="a first file")
        done_at_kill = len(list(out.glob("*/summary.json")))
        os.killpg(procs[1].pid, signal.SIGKILL)
        _stdout, stderr = client.communicate(timeout=300)
        assert client.returncode == 0, stderr.decode()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    assert done_at_kill < n, "the worker was killed after the end: nothing was tested"
    assert len(list(out.glob("*/summary.json"))) == n
    rows = _ledger_rows(tmp_path / "ext" / "state")
    assert [Path(r[0]).name for r in rows] == [f"f{i:02d}.FLOW.hdf5" for i in range(n)]
    assert {r[1] for r in rows} == {"ok"}
    with HistoryStore(tmp_path / "ext" / "state" / HISTORY_FILE) as store:
        assert [r.file for r in store.records()] == [f"f{i:02d}.FLOW.hdf5" for i in range(n)]
    assert b"reprocess: 8 done, 0 failed" in stderr


def test_ctrl_c_then_rerun_does_the_rest_once(tmp_path: Path) -> None:
    """SIGINT to the process group mid-run: exit 130, the ledger holds the files done, each
    with its masks drawn; the same command again does exactly the others (history: every file
    once, in data order)."""
    flow = tmp_path / "flow"
    flow.mkdir()
    n = 8
    for i in range(n):
        write_flow_file(flow / f"g{i:02d}.FLOW.hdf5", n_events=300, n_samples=1000, seed=i,
                        start_time_s=T0 + 60 * i)  # fmt: skip
    cfg_path = _config(tmp_path, "c")
    out, state = tmp_path / "c" / "out", tmp_path / "c" / "state"
    command = ["wavedqm", "reprocess", str(flow), "--config", str(cfg_path), "--workers", "2",
               "--no-progress"]  # fmt: skip
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    wait_for(lambda: len(list(out.glob("*/summary.json"))) >= 1, 120, what="a first file")
    os.killpg(first.pid, signal.SIGINT)  # as Ctrl-C on a terminal: the workers get it too
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr.decode()[-3000:]
    done_first = len(_ledger_rows(state))
    assert 1 <= done_first < n, "stopped after the end: nothing was tested"
    for path, _status, _reason in _ledger_rows(state):  # their drawings were finished
        assert (out / Path(path).name / "baseline.png").stat().st_size > 1000
    second = subprocess.run(command, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    assert f"reprocess: {n - done_first} done, 0 failed, {done_first} already done".encode() in (
        second.stderr
    )
    rows = _ledger_rows(state)
    assert [Path(r[0]).name for r in rows] == [f"g{i:02d}.FLOW.hdf5" for i in range(n)]
    with HistoryStore(state / HISTORY_FILE) as store:
        assert [r.file for r in store.records()] == [f"g{i:02d}.FLOW.hdf5" for i in range(n)]
