"""Issue 11: a file that hangs or kills the daemon is failed as ``stalled`` after a bounded
number of tries instead of taking the service down again and again.

In process: the ledger's in-progress marks, the time limit (``/healthz`` 503 while a file is
in hand too long), files failed from a pre-seeded ledger and from the stacks a previous run
left. Under a real ``wavedqm watch`` (``stress/hangpoint.py``: opening a file named
``poison*`` blocks in a C call that holds the GIL, as HDF5 did on a damaged global heap,
HDFGroup/hdf5#1707): the daemon exits by itself, restarts (as systemd would) and fails the
file on the third start, a good file after it is processed; systemd's watchdog SIGABRT counts
a stall the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_service import Events, make_cfg, publish, running, wait_until

from wavedqm.config import ConfigError, load_config
from wavedqm.daemon.guard import HANG_TRACE_NAME
from wavedqm.daemon.ledger import FileKey, Ledger, fingerprint

from daemonutil import start_daemon
from netutil import free_port, http_get, metric_value, wait_for

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class Blocking:
    """A ``handle`` that blocks on files whose name starts with ``prefix`` until released."""

    def __init__(self, prefix: str = "poison") -> None:
        self.prefix = prefix
        self.release = threading.Event()
        self.calls: list[Path] = []

    def __call__(self, path: Path, completed_at: float) -> None:
        self.calls.append(path)
        if path.name.startswith(self.prefix):
            self.release.wait(30)


# -- the ledger ----------------------------------------------------------------------------


def test_in_progress_marks_count_starts_and_one_stall_per_start(tmp_path):
    f = tmp_path / "a.FLOW.hdf5"
    f.write_bytes(b"x" * 100)
    key = fingerprint(f)
    with Ledger(tmp_path / "state") as ledger:
        assert ledger.pending(key) == (0, 0)
        ledger.begin(key)
        ledger.mark_stalled(key)
        ledger.mark_stalled(key)  # the time limit and the trace both saw this start
        assert ledger.pending(key) == (1, 1)
        ledger.begin(key)
        assert ledger.pending(key) == (2, 1)
    with Ledger(tmp_path / "state") as ledger:  # survives a restart
        assert ledger.pending(key) == (2, 1)
        ledger.mark_stalled(key)
        assert ledger.pending(key) == (2, 2)
        assert [r["attempts"] for r in ledger.in_progress()] == [2]
        ledger.record(key, "ok")
        assert ledger.pending(key) == (0, 0)  # a result clears the mark
        assert ledger.in_progress() == []
        ledger.begin(key)
        ledger.end(key)
        assert ledger.pending(key) == (0, 0)
        other = tmp_path / "b.FLOW.hdf5"
        other.write_bytes(b"y")
        ledger.mark_stalled(fingerprint(other))  # not in progress: nothing to count
        assert ledger.in_progress() == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_processing_seconds", 0), ("max_attempts", 0), ("max_stalls", 0)],
)
def test_guard_settings_are_checked(tmp_path, key, value):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[watch]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=rf"c\.toml: watch\.{key}: 0(\.0)? \(expected "):
        load_config(cfg)


# -- the time limit, in process ------------------------------------------------------------


def test_a_file_in_hand_too_long_makes_the_service_unhealthy_until_it_ends(tmp_path):
    handle, events = Blocking(), Events()
    cfg = make_cfg(tmp_path, max_processing_seconds=0.4)
    with running(cfg, handle, on_event=events) as svc:
        poison = publish(tmp_path / "daq", "poison.FLOW.hdf5", b"p" * 1000)
        assert wait_until(lambda: svc.stalled() is not None, 5)
        ok, line = svc.health_report()
        assert not ok and line.startswith(f"stalled: {poison} in hand for ")
        assert "watch.max_processing_seconds = 0.4" in line
        assert not svc.healthy()  # the systemd heartbeat is withheld
        assert wait_until(lambda: events.named("file_stalled"), 2)
        time.sleep(0.5)  # several settle ticks: said once
        assert [e["path"] for e in events.named("file_stalled")] == [str(poison)]
        assert svc.in_hand_seconds() > 0.4
        assert svc.ledger.pending(fingerprint(poison)) == (1, 1)
        handle.release.set()
        assert svc.wait_idle(5)
        assert svc.health_report()[0] and svc.stalled() is None
        assert svc.in_hand_seconds() == 0.0
        assert svc.ledger.pending(fingerprint(poison)) == (0, 0)
        good = publish(tmp_path / "daq", "good.FLOW.hdf5", b"g" * 1000)
        assert wait_until(lambda: good in handle.calls, 5) and svc.wait_idle(5)
        rows = {r["path"]: r for r in svc.ledger.recent(10)}
    assert rows[str(poison)]["status"] == "ok" and rows[str(good)]["status"] == "ok"
    assert not events.named("file_failed")


def test_a_file_that_stalled_too_often_is_failed_without_a_try(tmp_path):
    cfg = make_cfg(tmp_path)
    poison = publish(tmp_path / "daq", "poison.FLOW.hdf5", b"p" * 1000)
    with Ledger(tmp_path / "state") as ledger:
        for _ in range(2):
            ledger.begin(fingerprint(poison))
            ledger.mark_stalled(fingerprint(poison))
    handle, events = Blocking(), Events()
    with running(cfg, handle, on_event=events) as svc:
        assert wait_until(lambda: events.named("file_failed"), 5)
        good = publish(tmp_path / "daq", "good.FLOW.hdf5", b"g" * 1000)
        assert wait_until(lambda: good in handle.calls, 5) and svc.wait_idle(5)
        rows = {r["path"]: r for r in svc.ledger.recent(10)}
        assert svc.ledger.in_progress() == []
    assert handle.calls == [good]
    (failed,) = events.named("file_failed")
    assert failed["reason"] == "stalled" and "on 2 of its 2 starts" in failed["error"]
    assert str(poison) in failed["error"] and "wavedqm process" in failed["error"]
    assert (rows[str(poison)]["status"], rows[str(poison)]["reason"]) == ("failed", "stalled")
    assert rows[str(good)]["status"] == "ok"


def test_traceless_deaths_defer_a_file_behind_the_waiting_ones_and_never_fail_it(tmp_path):
    """Five kill -9 on the same file (no stacks: not its fault as far as anyone can tell):
    the files waiting go first, then it is processed; it is never failed."""
    cfg = make_cfg(tmp_path)
    handle, events = Blocking(prefix="gate"), Events()
    with running(cfg, handle, on_event=events, not_ready_retry_seconds=0.3) as svc:
        gate = publish(tmp_path / "daq", "gate.FLOW.hdf5", b"x" * 1000)
        assert wait_until(lambda: gate in handle.calls, 5)
        # the ledger remembers five traceless deaths on the file about to be renamed in
        staged = tmp_path / "poison.FLOW.hdf5"
        staged.write_bytes(b"p" * 1000)
        poison = tmp_path / "daq" / staged.name
        st = staged.stat()
        with Ledger(tmp_path / "state") as other:  # a second connection (WAL)
            for _ in range(5):
                other.begin(FileKey(poison, st.st_size, st.st_mtime_ns, ""))
        os.replace(staged, poison)
        assert wait_until(lambda: svc.status()["queue"] == 1, 5)
        goods = [publish(tmp_path / "daq", f"good{i}.FLOW.hdf5", b"g" * 1000) for i in (1, 2)]
        assert wait_until(lambda: svc.status()["queue"] == 3, 5)
        handle.release.set()
        assert wait_until(lambda: poison in handle.calls, 10) and svc.wait_idle(10)
        rows = {r["path"]: r for r in svc.ledger.recent(10)}
        assert svc.ledger.in_progress() == []
    assert handle.calls == [gate, *goods, poison]
    assert [e["path"] for e in events.named("file_deferred")] == [str(poison)]
    assert "died each time without a trace" in events.named("file_deferred")[0]["why"]
    assert all(rows[str(p)]["status"] == "ok" for p in (gate, poison, *goods))
    assert not events.named("file_failed")


def test_fewer_starts_than_the_limit_are_tried_again(tmp_path):
    """Four kills on the same file (max_attempts 5) do not fail it."""
    cfg = make_cfg(tmp_path)
    poison = publish(tmp_path / "daq", "poison.FLOW.hdf5", b"p" * 1000)
    with Ledger(tmp_path / "state") as ledger:
        for _ in range(4):
            ledger.begin(fingerprint(poison))
    handle = Blocking()
    handle.release.set()
    with running(cfg, handle) as svc:
        assert wait_until(lambda: poison in handle.calls, 5) and svc.wait_idle(5)
        assert svc.ledger.recent(1)[0]["status"] == "ok"


def _trace(state: Path, header: dict | None, stacks: str) -> None:
    state.mkdir(parents=True, exist_ok=True)
    text = "" if header is None else "wavedqm in hand: " + json.dumps(header) + "\n"
    (state / HANG_TRACE_NAME).write_text(text + stacks)


def test_stacks_a_previous_run_left_count_a_stall_of_the_file_it_died_on(tmp_path):
    cfg = make_cfg(tmp_path, max_stalls=1)
    poison = publish(tmp_path / "daq", "poison.FLOW.hdf5", b"p" * 1000)
    key = fingerprint(poison)
    with Ledger(tmp_path / "state") as ledger:
        ledger.begin(key)
    stacks = 'Timeout (0:20:00)!\nThread 0x7f (most recent call first):\n  File "attrs.py"\n'
    _trace(tmp_path / "state", {"path": str(poison), "size": key.size,
                                "mtime_ns": key.mtime_ns}, stacks)  # fmt: skip
    handle, events = Blocking(), Events()
    with running(cfg, handle, on_event=events) as svc:
        assert wait_until(lambda: events.named("file_failed"), 5) and svc.wait_idle(5)
        (died,) = events.named("previous_run_died")
        assert died["path"] == str(poison) and "attrs.py" in died["stacks"]
        assert events.named("file_failed")[0]["reason"] == "stalled"
    assert handle.calls == []
    assert (tmp_path / "state" / HANG_TRACE_NAME).read_text() == ""  # a clean stop empties it


@pytest.mark.parametrize(
    ("header", "stacks"),
    [(None, "Fatal Python error: Aborted\n"), ("named", ""), (None, "")],
    ids=["died-between-files", "sigkill-in-hand", "clean"],
)
def test_a_trace_without_stacks_or_without_a_file_fails_nothing(tmp_path, header, stacks):
    cfg = make_cfg(tmp_path, max_stalls=1)
    poison = publish(tmp_path / "daq", "poison.FLOW.hdf5", b"p" * 1000)
    key = fingerprint(poison)
    with Ledger(tmp_path / "state") as ledger:
        ledger.begin(key)
    named = {"path": str(poison), "size": key.size, "mtime_ns": key.mtime_ns}
    _trace(tmp_path / "state", named if header else None, stacks)
    handle, events = Blocking(), Events()
    handle.release.set()
    with running(cfg, handle, on_event=events) as svc:
        assert wait_until(lambda: poison in handle.calls, 5) and svc.wait_idle(5)
        assert svc.ledger.recent(1)[0]["status"] == "ok"
    assert [bool(e) for e in events.named("previous_run_died")] == ([True] if stacks else [])
    assert not events.named("file_failed")


# -- a hang holding the GIL, under a real daemon ----------------------------------------------

HANGPOINT = "stress.hangpoint"


def _flow_bytes(tmp_path: Path, seed: int) -> bytes:
    from wavedqm.simulate.flow import write_flow_file

    p = tmp_path / f"made-{seed}.h5"
    write_flow_file(p, n_events=20, n_samples=256, seed=seed)
    return p.read_bytes()


def _restart(cfg_file: Path, spool: Path, out: Path, state: Path, log: Path):
    listen = f"127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", HANGPOINT, "watch", str(spool), "--config", str(cfg_file),
           "--out", str(out), "--state", str(state), "--listen", listen]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO)


def _url(proc: subprocess.Popen) -> str:
    return f"http://127.0.0.1:{int(proc.args[-1].rsplit(':', 1)[1])}"


def _failed_stalled(url: str) -> bool:
    text = http_get(f"{url}/metrics")[1].decode()
    return metric_value(text, "wavedqm_files_failed_total", reason="stalled") == 1


def test_a_hang_holding_the_gil_is_failed_on_the_third_start(tmp_path):
    spool, out, state = tmp_path / "spool", tmp_path / "out", tmp_path / "state"
    spool.mkdir()
    extra = "[watch]\nsettle_seconds = 0.3\nmax_processing_seconds = 1.0\nmax_stalls = 2\n"
    d = start_daemon(tmp_path, spool, extra_config=extra, settle_s=None, module=HANGPOINT)
    log = d.log
    try:
        t0 = time.monotonic()
        poison = publish(spool, "poison.FLOW.hdf5", _flow_bytes(tmp_path, 1))
        before = poison.read_bytes()
        # 1st start: in hand for 2 x max_processing_seconds, then faulthandler exits it
        assert d.proc.wait(timeout=60) == 1, log.read_text()[-3000:]
        assert time.monotonic() - t0 < 30
        trace = (state / HANG_TRACE_NAME).read_text()
        assert trace.startswith("wavedqm in hand: ") and str(poison) in trace.splitlines()[0]
        assert "Timeout (0:00:02)!" in trace and "hangpoint.py" in trace
        # 2nd start (systemd's Restart=on-failure): one stall counted, tried again, exits
        proc = _restart(tmp_path / "wavedqm.toml", spool, out, state, log)
        assert proc.wait(timeout=300) == 1, log.read_text()[-3000:]
        # 3rd start: two stalls, failed without a try; the daemon lives on
        proc = _restart(tmp_path / "wavedqm.toml", spool, out, state, log)
        url = _url(proc)
        try:
            wait_for(lambda: http_get(f"{url}/healthz")[0] == 200, 300, what="/healthz")
            wait_for(lambda: _failed_stalled(url), 30, what="stalled counted")
            publish(spool, "good.FLOW.hdf5", _flow_bytes(tmp_path, 3))
            wait_for(lambda: metric_value(http_get(f"{url}/metrics")[1].decode(),
                                          "wavedqm_files_processed_total") == 1,
                     120, what="good file processed")  # fmt: skip
            assert proc.poll() is None
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0
    finally:
        d.kill()
    with Ledger(state) as ledger:
        rows = {Path(r["path"]).name: r for r in ledger.recent(10)}
        assert ledger.in_progress() == []
    assert (rows["poison.FLOW.hdf5"]["status"], rows["poison.FLOW.hdf5"]["reason"]) == (
        "failed",
        "stalled",
    )
    assert rows["good.FLOW.hdf5"]["status"] == "ok"
    assert log.read_text().count("previous_run_died") >= 2
    assert poison.read_bytes() == before  # the input is never modified


def test_systemds_watchdog_abort_on_a_hung_file_counts_a_stall(tmp_path):
    """Under systemd the watchdog (WatchdogSec) sends SIGABRT to a daemon that stopped
    pinging, before wavedqm's own exit: faulthandler writes the stacks for it too."""
    spool, out, state = tmp_path / "spool", tmp_path / "out", tmp_path / "state"
    spool.mkdir()
    extra = "[watch]\nsettle_seconds = 0.3\nmax_processing_seconds = 300.0\nmax_stalls = 1\n"
    d = start_daemon(tmp_path, spool, extra_config=extra, settle_s=None, module=HANGPOINT)
    try:
        poison = publish(spool, "poison.FLOW.hdf5", _flow_bytes(tmp_path, 1))
        trace = state / HANG_TRACE_NAME
        wait_for(lambda: trace.read_text().startswith("wavedqm in hand: "), 60, what="in hand")
        time.sleep(1.0)  # inside the blocking call
        d.proc.send_signal(signal.SIGABRT)
        assert d.proc.wait(timeout=30) == -signal.SIGABRT
        text = trace.read_text()
        assert str(poison) in text.splitlines()[0]
        assert "Fatal Python error: Aborted" in text and "hangpoint.py" in text
        proc = _restart(tmp_path / "wavedqm.toml", spool, out, state, d.log)
        try:
            wait_for(lambda: http_get(f"{_url(proc)}/healthz")[0] == 200, 300, what="/healthz")
            wait_for(lambda: _failed_stalled(_url(proc)), 30, what="stalled counted")
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0
    finally:
        d.kill()
