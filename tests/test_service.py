"""The daemon end to end: real folders, real files, real watchdog observers, a real SQLite
ledger, real ``handle`` functions that read the files, real sd_notify datagrams."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from wavedqm.config import Config
from wavedqm.daemon import sdnotify
from wavedqm.daemon.ledger import Ledger
from wavedqm.daemon.service import Service
from wavedqm.errors import FileNotReady, InputFileError

REPO = Path(__file__).resolve().parents[1]
SETTLE = 0.3


# -- helpers -------------------------------------------------------------------------------


def make_cfg(tmp_path: Path, **watch) -> Config:
    daq = tmp_path / "daq"
    daq.mkdir(exist_ok=True)
    values = {
        "paths": [str(daq)],
        "settle_seconds": SETTLE,
        "poll_interval_seconds": 0.1,
    } | watch
    return Config().with_overrides(
        watch=values,
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state")},
    )


def daq(tmp_path: Path) -> Path:
    return tmp_path / "daq"


@dataclass
class Call:
    path: Path
    completed_at: float
    started_at: float
    data: bytes


class Recorder:
    """A real ``handle``: reads the whole file, records the call, optionally misbehaves.

    ``behaviour(path, attempt)`` runs after the read and may raise; ``attempt`` counts
    earlier calls for the same path."""

    def __init__(
        self, delay: float = 0.0, behaviour: Callable[[Path, int], None] | None = None
    ) -> None:
        self.delay = delay
        self.behaviour = behaviour
        self.calls: list[Call] = []
        self.finished: list[Path] = []
        self.cond = threading.Condition()
        self.active = 0
        self.max_active = 0

    def __call__(self, path: Path, completed_at: float) -> None:
        with self.cond:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            started = time.time()
            data = path.read_bytes()
            with self.cond:
                attempt = sum(1 for c in self.calls if c.path == path)
                self.calls.append(Call(path, completed_at, started, data))
                self.cond.notify_all()
            if self.delay:
                time.sleep(self.delay)
            if self.behaviour is not None:
                self.behaviour(path, attempt)
            with self.cond:
                self.finished.append(path)
                self.cond.notify_all()
        finally:
            with self.cond:
                self.active -= 1

    def wait_calls(self, n: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.calls) >= n, timeout)

    def paths(self) -> list[Path]:
        with self.cond:
            return [c.path for c in self.calls]


class Events:
    """``on_event`` hook collecting (name, fields)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, **fields) -> None:
        with self.lock:
            self.items.append((name, fields))

    def named(self, name: str) -> list[dict]:
        with self.lock:
            return [f for n, f in self.items if n == name]


@contextlib.contextmanager
def running(cfg: Config, handle, **kw) -> Iterator[Service]:
    svc = Service(cfg, handle, **kw)
    svc.start()
    try:
        yield svc
    finally:
        assert svc.stop(timeout=10)


def publish(folder: Path, name: str, data: bytes) -> Path:
    """Write under a hidden temporary name, then rename into place (a careful DAQ)."""
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    final = folder / name
    os.replace(tmp, final)
    return final


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def ledger_rows(tmp_path: Path) -> list[dict]:
    with Ledger(tmp_path / "state") as ledger:
        return ledger.recent(1000)


# -- watching and completion ---------------------------------------------------------------


def test_rename_into_place_is_handled_and_input_untouched(tmp_path):
    rec = Recorder()
    with running(make_cfg(tmp_path), rec) as svc:
        assert svc.watch_mode == "inotify"
        data = os.urandom(200_000)
        t0 = time.time()
        f = publish(daq(tmp_path), "run_0001.FLOW.hdf5", data)
        before = os.stat(f)
        assert rec.wait_calls(1, timeout=3)
        call = rec.calls[0]
        assert call.path == f and call.data == data
        assert call.started_at - t0 < 2.0
        # the rename is the writer's "done": the short settle, not the full one
        signalled = svc.tracker.signalled_settle_seconds
        assert signalled < SETTLE
        assert t0 + signalled <= call.completed_at + 0.05 <= call.started_at + 0.05
        assert svc.wait_idle(3)
        after = os.stat(f)
    assert f.read_bytes() == data
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns,
        before.st_size,
        before.st_ino,
    )
    assert sorted(p.name for p in daq(tmp_path).iterdir()) == ["run_0001.FLOW.hdf5"]
    rows = ledger_rows(tmp_path)
    assert [(r["path"], r["status"], r["size"]) for r in rows] == [(str(f), "ok", len(data))]
    assert rec.paths() == [f]


def test_slow_writer_not_handled_before_last_write_plus_settle(tmp_path):
    """Never while written; once the writer closes the file, after the short settle (the
    close is its "done")."""
    settle = 0.5
    rec = Recorder()
    with running(make_cfg(tmp_path, settle_seconds=settle), rec) as svc:
        f = daq(tmp_path) / "slow.FLOW.hdf5"
        chunk = os.urandom(4096)
        with open(f, "wb") as fh:
            for _ in range(8):  # ~1.6 s of writing, a chunk every 0.2 s
                fh.write(chunk)
                fh.flush()
                time.sleep(0.2)
                assert rec.calls == []
        last_write = time.time()
        assert rec.wait_calls(1, timeout=4)
        assert rec.calls[0].started_at >= last_write + svc.tracker.signalled_settle_seconds - 0.02
        assert rec.calls[0].data == chunk * 8
        assert svc.wait_idle(3)
        time.sleep(settle)
        assert len(rec.calls) == 1


def test_writer_that_keeps_the_file_open_gets_the_full_settle(tmp_path):
    """No "done" signal (the writer stops writing but holds the file open): the full settle
    time after the last write."""
    settle = 0.6
    rec = Recorder()
    with running(make_cfg(tmp_path, settle_seconds=settle), rec):
        f = daq(tmp_path) / "open.FLOW.hdf5"
        with open(f, "wb") as fh:
            fh.write(os.urandom(4096))
            fh.flush()
            last_write = time.time()
            assert rec.wait_calls(1, timeout=4)
            assert rec.calls[0].started_at >= last_write + settle - 0.02


def test_non_matching_names_ignored(tmp_path):
    rec = Recorder()
    with running(make_cfg(tmp_path), rec) as svc:
        d = daq(tmp_path)
        for name in ("notes.txt", "x.FLOW.hdf5.part", ".x.FLOW.hdf5", ".x.tmp", "x.flow.hdf5"):
            (d / name).write_bytes(b"not for us")
        good = publish(d, "good.FLOW.hdf5", b"data")
        assert rec.wait_calls(1)
        assert svc.wait_idle(3)
        time.sleep(SETTLE)
        assert rec.paths() == [good]


def test_startup_scan_restart_and_files_arriving_while_down(tmp_path):
    cfg = make_cfg(tmp_path)
    d = daq(tmp_path)
    (d / "sub").mkdir()
    a = publish(d, "a.FLOW.hdf5", b"a" * 100)
    b = publish(d / "sub", "b.FLOW.hdf5", b"b" * 100)
    os.utime(a, (1000, 1000))  # older: processed first
    stats = {p: os.stat(p) for p in (a, b)}
    rec1 = Recorder()
    with running(cfg, rec1) as svc:
        assert svc.wait_idle(5)
    assert rec1.paths() == [a, b]
    # while the daemon is down a new file arrives
    c = publish(d, "c.FLOW.hdf5", b"c" * 100)
    rec2 = Recorder()
    with running(cfg, rec2) as svc:
        assert svc.wait_idle(5)
        time.sleep(SETTLE + 0.2)
        assert rec2.paths() == [c]  # neither repeats a nor b, nor skips c
        assert svc.status()["counts"]["ok"] == 1
    rec3 = Recorder()
    with running(cfg, rec3) as svc:
        assert svc.wait_idle(5)
        time.sleep(SETTLE + 0.2)
    assert rec3.calls == []
    for p, st in stats.items():
        assert os.stat(p).st_mtime_ns == st.st_mtime_ns
    assert {r["path"] for r in ledger_rows(tmp_path)} == {str(a), str(b), str(c)}


def test_file_modified_after_processing_is_handled_again(tmp_path):
    rec = Recorder()
    with running(make_cfg(tmp_path), rec) as svc:
        f = publish(daq(tmp_path), "x.FLOW.hdf5", b"first")
        assert rec.wait_calls(1)
        assert svc.wait_idle(3)
        with open(f, "ab") as fh:
            fh.write(b" and more")
        assert rec.wait_calls(2)
        assert rec.calls[1].data == b"first and more"
        assert svc.wait_idle(3)
    rows = ledger_rows(tmp_path)
    assert sorted(r["size"] for r in rows) == [5, 14]
    assert all(r["status"] == "ok" for r in rows)


def test_file_changed_while_being_processed_is_rechecked(tmp_path):
    rec = Recorder(delay=0.8)
    with running(make_cfg(tmp_path), rec) as svc:
        f = publish(daq(tmp_path), "x.FLOW.hdf5", b"v1")
        assert rec.wait_calls(1)
        with open(f, "ab") as fh:  # while handle is busy with it
            fh.write(b"+v2")
        assert rec.wait_calls(2, timeout=5)
        assert rec.calls[1].data == b"v1+v2"
        assert svc.wait_idle(5)
        assert len(rec.calls) == 2


def test_polling_mode(tmp_path):
    rec = Recorder()
    with running(make_cfg(tmp_path, poll=True), rec) as svc:
        assert svc.watch_mode == "polling"
        f = daq(tmp_path) / "p.FLOW.hdf5"
        f.write_bytes(b"polled")
        assert rec.wait_calls(1, timeout=4)
        assert rec.calls[0].path == f and rec.calls[0].data == b"polled"
        g = publish(daq(tmp_path), "q.FLOW.hdf5", b"renamed")
        assert rec.wait_calls(2, timeout=4)
        assert rec.calls[1].path == g


def test_inotify_failure_falls_back_to_polling(tmp_path):
    def no_inotify():
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    rec = Recorder()
    with (
        capture_logs() as logs,
        running(make_cfg(tmp_path), rec, observer_factory=no_inotify) as svc,
    ):
        assert svc.watch_mode == "polling"
        f = publish(daq(tmp_path), "a.FLOW.hdf5", b"x")
        assert rec.wait_calls(1, timeout=4)
        assert rec.calls[0].path == f
    assert any(e["event"] == "watch_fallback_polling" for e in logs)


# -- errors --------------------------------------------------------------------------------


def test_input_file_error_recorded_failed_not_retried(tmp_path):
    def behaviour(path, attempt):
        if path.name.startswith("bad"):
            raise InputFileError(path, "not_hdf5", "no HDF5 signature", "an HDF5 file")

    rec = Recorder(behaviour=behaviour)
    events = Events()
    with running(make_cfg(tmp_path), rec, on_event=events) as svc:
        bad = publish(daq(tmp_path), "bad.FLOW.hdf5", b"garbage")
        assert rec.wait_calls(1)
        good = publish(daq(tmp_path), "good.FLOW.hdf5", b"fine")
        assert rec.wait_calls(2)
        assert svc.wait_idle(3)
        time.sleep(SETTLE + 0.2)
        assert rec.paths() == [bad, good]  # bad was not retried
        assert svc.healthy()
        st = svc.status()
        assert st["counts"]["failed"] == 1 and st["counts"]["ok"] == 1
        assert st["last_file"] == str(good) and st["last_status"] == "ok"
    failed = events.named("file_failed")
    assert len(failed) == 1
    assert failed[0]["reason"] == "not_hdf5" and "no HDF5 signature" in failed[0]["error"]
    assert [e["path"] for e in events.named("file_done")] == [str(good)]
    rows = {r["path"]: r for r in ledger_rows(tmp_path)}
    assert rows[str(bad)]["status"] == "failed" and rows[str(bad)]["reason"] == "not_hdf5"
    assert rows[str(good)]["status"] == "ok"


def test_unexpected_exception_is_internal_failure(tmp_path):
    def behaviour(path, attempt):
        if path.name.startswith("boom"):
            raise ZeroDivisionError("kernel bug")

    rec = Recorder(behaviour=behaviour)
    with capture_logs() as logs, running(make_cfg(tmp_path), rec) as svc:
        boom = publish(daq(tmp_path), "boom.FLOW.hdf5", b"x")
        assert rec.wait_calls(1)
        nxt = publish(daq(tmp_path), "next.FLOW.hdf5", b"y")
        assert wait_until(lambda: nxt in rec.finished)
        assert svc.wait_idle(3)
        assert svc.healthy()
    rows = {r["path"]: r for r in ledger_rows(tmp_path)}
    assert rows[str(boom)]["status"] == "failed" and rows[str(boom)]["reason"] == "internal"
    assert rows[str(nxt)]["status"] == "ok"
    tb = [e for e in logs if e["event"] == "handle_raised"]
    assert tb and tb[0].get("exc_info") is True


def test_file_not_ready_is_retried_then_handled(tmp_path):
    def behaviour(path, attempt):
        if attempt < 2:
            raise FileNotReady(path, "unable to lock file (errno 11)")

    rec = Recorder(behaviour=behaviour)
    events = Events()
    with running(make_cfg(tmp_path), rec, on_event=events, not_ready_retry_seconds=0.2) as svc:
        f = publish(daq(tmp_path), "locked.FLOW.hdf5", b"x")
        assert rec.wait_calls(3, timeout=5)
        assert svc.wait_idle(3)
        st = svc.status()
        assert st["counts"] == {
            "ok": 1,
            "failed": 0,
            "not_ready": 2,
            "skipped_seen": 0,
            "output_error": 0,
        }
        gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(rec.calls)]
        assert all(g >= 0.2 for g in gaps)
    assert len(events.named("file_not_ready")) == 2
    assert events.named("file_not_ready")[0]["why"].startswith("unable to lock")
    rows = ledger_rows(tmp_path)
    assert [(r["path"], r["status"]) for r in rows] == [(str(f), "ok")]


def test_too_large_files_are_not_handled(tmp_path):
    rec = Recorder()
    events = Events()
    with running(make_cfg(tmp_path, max_file_size_bytes=50), rec, on_event=events) as svc:
        big = publish(daq(tmp_path), "big.FLOW.hdf5", b"x" * 100)
        small = publish(daq(tmp_path), "small.FLOW.hdf5", b"x" * 50)
        assert rec.wait_calls(1)
        assert svc.wait_idle(3)
    assert rec.paths() == [small]
    assert events.named("file_failed")[0]["reason"] == "too_large"
    rows = {r["path"]: r for r in ledger_rows(tmp_path)}
    assert rows[str(big)]["status"] == "failed" and rows[str(big)]["reason"] == "too_large"


# -- concurrency, queue, lifecycle ---------------------------------------------------------


def test_handle_never_concurrent_and_queue_size_reported(tmp_path):
    rec = Recorder(delay=0.05)
    sizes: list[int] = []
    events = Events()
    with running(make_cfg(tmp_path), rec, on_queue_size=sizes.append, on_event=events) as svc:
        files = [publish(daq(tmp_path), f"f{i}.FLOW.hdf5", bytes([i]) * 1000) for i in range(8)]
        assert rec.wait_calls(8, timeout=6)
        assert svc.wait_idle(3)
    assert rec.max_active == 1
    assert sorted(rec.paths()) == sorted(files)
    assert max(sizes) >= 2 and sizes[-1] == 0
    names = [n for n, _ in events.items]
    for name in ("file_detected", "file_queued", "file_processing", "file_done"):
        assert names.count(name) == 8, name


def reopen_for_writing(path: Path) -> None:
    """Open for append and close without writing: an IN_CLOSE_WRITE event, same size/mtime."""
    st = os.stat(path)
    with open(path, "ab"):
        pass
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_queued_file_is_not_queued_twice(tmp_path):
    """Events on a file waiting in the queue (behind a slow one) do not queue it again."""
    rec = Recorder(delay=0.8)
    events = Events()
    with running(make_cfg(tmp_path, settle_seconds=0.1), rec, on_event=events) as svc:
        first = publish(daq(tmp_path), "a.FLOW.hdf5", b"a")
        assert rec.wait_calls(1)
        second = publish(daq(tmp_path), "b.FLOW.hdf5", b"b")
        assert wait_until(
            lambda: any(e["path"] == str(second) for e in events.named("file_queued"))
        )
        assert rec.paths() == [first]  # b waits in the queue, a still in hand
        reopen_for_writing(second)
        time.sleep(0.4)  # b settles again while queued
        assert svc.wait_idle(5)
        assert rec.paths() == [first, second]
        assert [e["path"] for e in events.named("file_queued")] == [str(first), str(second)]
        assert svc.status()["counts"]["skipped_seen"] == 0


def test_event_on_processed_file_is_skipped_by_ledger(tmp_path):
    """A close event on an already processed, unchanged file: seen() skips it before queuing."""
    rec = Recorder()
    events = Events()
    with running(make_cfg(tmp_path), rec, on_event=events) as svc:
        f = publish(daq(tmp_path), "a.FLOW.hdf5", b"a")
        assert rec.wait_calls(1)
        assert svc.wait_idle(3)
        reopen_for_writing(f)
        assert wait_until(lambda: svc.status()["counts"]["skipped_seen"] == 1, timeout=3)
        assert svc.wait_idle(3)
        assert rec.paths() == [f]
        assert len(events.named("file_queued")) == 1
        assert [e["path"] for e in events.named("skipped_seen")] == [str(f)]


def test_stop_finishes_current_file_and_returns_promptly(tmp_path):
    rec = Recorder(delay=0.8)
    cfg = make_cfg(tmp_path)
    svc = Service(cfg, rec)
    svc.start()
    f = publish(daq(tmp_path), "a.FLOW.hdf5", b"x")
    assert rec.wait_calls(1)
    t0 = time.monotonic()
    assert svc.stop(timeout=5)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    assert rec.finished == [f]  # not abandoned half-way
    assert not svc.healthy()
    assert [r["status"] for r in ledger_rows(tmp_path)] == ["ok"]
    # an idle service stops at once
    svc2 = Service(cfg, Recorder())
    svc2.start()
    t0 = time.monotonic()
    assert svc2.stop()
    assert time.monotonic() - t0 < 1.0
    assert svc2.stop()  # idempotent


def test_health_and_status(tmp_path):
    svc = Service(make_cfg(tmp_path), Recorder())
    assert not svc.healthy()
    svc.start()
    try:
        assert svc.healthy()
        st = svc.status()
        assert st["healthy"] and st["watch_mode"] == "inotify"
        assert st["queue"] == 0 and st["processing"] is None and st["last_file"] is None
        with pytest.raises(RuntimeError):
            svc.start()
    finally:
        svc.stop()
    assert not svc.healthy()


def test_missing_watch_folder_fails_start(tmp_path):
    cfg = make_cfg(tmp_path).with_overrides(watch={"paths": [str(tmp_path / "absent")]})
    from wavedqm.errors import ConfigError

    with pytest.raises(ConfigError, match="absent"):
        Service(cfg, Recorder()).start()


# -- systemd notify ------------------------------------------------------------------------


@pytest.fixture
def notify_socket(monkeypatch):
    """A real AF_UNIX datagram socket standing in for systemd; yields a receive function."""
    folder = tempfile.mkdtemp(prefix="sdn", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    def receive_until(pred: Callable[[str], bool], timeout: float = 5.0) -> list[str]:
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = sock.recv(4096).decode()
            except TimeoutError:
                break
            got.append(msg)
            if pred(msg):
                return got
        raise AssertionError(f"no matching notification; got {got}")

    receive_until.path = path
    yield receive_until
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def test_notify_unset_is_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_notify_path_socket(notify_socket):
    assert sdnotify.notify("STATUS=hello")
    assert notify_socket(lambda m: True) == ["STATUS=hello"]


def test_notify_abstract_socket(monkeypatch):
    name = f"wavedqm-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("READY=1")
        assert sock.recv(100) == b"READY=1"


def test_notify_broken_socket_returns_false(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "5000000")
    assert sdnotify.watchdog_interval() == pytest.approx(2.5)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == pytest.approx(2.5)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "abc", ""):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval() is None


def test_service_notifies_systemd(tmp_path, notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    rec = Recorder()
    svc = Service(make_cfg(tmp_path), rec)
    svc.start()
    try:
        first = notify_socket(lambda m: "READY=1" in m)
        assert first[-1].startswith("READY=1")
        notify_socket(lambda m: m == "WATCHDOG=1")
        publish(daq(tmp_path), "n.FLOW.hdf5", b"x")
        got = notify_socket(lambda m: m.startswith("STATUS=") and "n.FLOW.hdf5" in m)
        assert "ok" in got[-1]
    finally:
        svc.stop()
    notify_socket(lambda m: m == "STOPPING=1")


def test_no_watchdog_ping_when_unhealthy(tmp_path, notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    svc = Service(make_cfg(tmp_path), Recorder())
    svc.start()
    try:
        notify_socket(lambda m: m == "WATCHDOG=1")
        svc._watcher.stop()  # the observer dies: unhealthy
        assert not svc.healthy()
        time.sleep(0.15)  # let a ping already in flight arrive
        with pytest.raises(AssertionError, match="no matching"):
            notify_socket(lambda m: m == "WATCHDOG=1", timeout=0.4)
    finally:
        svc.stop()


def test_run_forever_stops_on_sigterm(tmp_path, notify_socket):
    d = daq(tmp_path)
    d.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from wavedqm.config import Config
        from wavedqm.daemon.service import Service

        cfg = Config().with_overrides(
            watch={{"paths": [{str(d)!r}], "settle_seconds": 0.2}},
            output={{"dir": {str(out)!r}, "state_dir": {str(tmp_path / "state")!r}}},
        )

        def handle(path, completed_at):
            tmp = Path({str(out)!r}) / (path.name + ".tmp")
            tmp.write_bytes(path.read_bytes())
            tmp.replace(tmp.with_suffix(".done"))

        Service(cfg, handle).run_forever()
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=notify_socket.path)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        notify_socket(lambda m: "READY=1" in m, timeout=20)
        publish(d, "s.FLOW.hdf5", b"payload")
        assert wait_until(lambda: (out / "s.FLOW.hdf5.done").exists(), timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read().decode()
        notify_socket(lambda m: m == "STOPPING=1")
        assert (out / "s.FLOW.hdf5.done").read_bytes() == b"payload"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
