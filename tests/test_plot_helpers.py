"""Drawings in a helper process (``[output] drawing_processes``): the analysis keeps its GIL;
a job that does not pickle is drawn on the plotting thread; a failing or crashing drawing never
takes the daemon down."""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from wavedqm.exporters.plotting import PlotQueue

from toyproc import crashing_drawing, failing_drawing, pid_drawing


def test_drawings_run_in_a_helper_and_unpicklable_ones_on_the_thread() -> None:
    queue = PlotQueue(processes=1)
    try:
        helper = int(queue.submit(pid_drawing).result(60)["pid"].name)
        assert helper != os.getpid()
        assert int(queue.submit(pid_drawing).result(60)["pid"].name) == helper  # one helper
        here = queue.submit(lambda: pid_drawing()).result(60)  # a lambda does not pickle
        assert int(here["pid"].name) == os.getpid()
    finally:
        queue.close()


def test_a_failing_or_crashing_drawing_gives_nothing_and_the_next_one_works() -> None:
    queue = PlotQueue(processes=1)
    try:
        with capture_logs() as logs:
            assert queue.submit(failing_drawing).result(60) == {}
            assert queue.submit(crashing_drawing).result(60) == {}
            after = queue.submit(pid_drawing).result(60)
        assert int(after["pid"].name) != os.getpid()  # a new helper, not this process
        events = {e["event"]: e for e in logs}
        assert "this figure cannot be drawn" in events["plots_failed"]["error"]
        assert "drawing_helper_died" in events
    finally:
        queue.close()


def test_without_helpers_the_thread_draws() -> None:
    queue = PlotQueue(processes=0)
    try:
        assert int(queue.submit(pid_drawing).result(60)["pid"].name) == os.getpid()
    finally:
        queue.close()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def _is_helper(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmd and b"resource_tracker" not in cmd


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_drawing_helper_ends_when_its_daemon_is_killed(tmp_path) -> None:
    """kill -9 of a real daemon (as the OOM killer or systemd would): its drawing helper must
    not outlive it holding ~200 MB (the stress run's 50 kills had left 144 of them, 21 GB)."""
    import shutil
    import time

    from wavedqm.simulate.flow import write_flow_file

    from daemonutil import start_daemon
    from netutil import wait_for

    spool = tmp_path / "spool"
    spool.mkdir()
    d = start_daemon(tmp_path, spool)
    try:
        staged = tmp_path / "a.FLOW.hdf5"
        write_flow_file(staged, n_events=10, n_samples=256, seed=1)
        shutil.move(staged, spool / staged.name)
        helpers = wait_for(lambda: [p for p in _children(d.proc.pid) if _is_helper(p)], 120,
                           what="a drawing helper")  # fmt: skip
    finally:
        d.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in helpers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in helpers), f"helpers {helpers} outlived their daemon"
