"""Regression tests of the faults found by the fault-injection harness (issue 11)."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import generate_latest

from wavedqm.config import Config
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import write_flow_file

from netutil import metric_value, wait_for


def _config(tmp_path: Path) -> Config:
    return Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state"),
                "reports": False},
        charge={"plots": False},
    )  # fmt: skip


def test_a_file_with_no_light_events_is_no_verdict_not_all_dead(tmp_path: Path) -> None:
    """Finding 7: 0 light events made all 384 active channels newly dead (two such files in a
    row paged WavedqmChannelDead for every channel)."""
    empty = tmp_path / "empty.FLOW.hdf5"
    write_flow_file(empty, n_events=0, seed=1)
    with_charge = tmp_path / "charge_only.FLOW.hdf5"
    write_flow_file(with_charge, n_events=0, seed=2, with_charge=True)
    with Router(_config(tmp_path)) as router:
        for _ in range(2):
            result = router.route(empty, completed_at=time.time())
            assert result.failure == "no_data", result.line()
            assert "0 light events" in result.outcome("light").summary
        ok = router.route(with_charge, completed_at=time.time())
        assert ok.ok and ok.outcome("light").nothing
        text = generate_latest(router.registry).decode()
        assert not metric_value(text, "wavedqm_dead_channels")
        assert metric_value(text, "wavedqm_channel_dead_consecutive_files",
                            adc="0", channel="4") in (None, 0.0)  # fmt: skip
    assert not (tmp_path / "out" / "empty.FLOW.hdf5").exists()


def test_start_sweeps_the_temp_files_a_kill_left_behind(tmp_path: Path) -> None:
    """Finding 2: killed atomic writes left ``.*.tmp`` files in the output folders (12 after
    15 kills). Only our own temporary names, only in our folders; the watched folder's
    files are never touched."""
    from wavedqm.daemon.app import DaemonApp

    spool = tmp_path / "spool"
    spool.mkdir()
    cfg = _config(tmp_path).with_overrides(
        watch={"paths": (str(spool),)}, metrics={"listen": "127.0.0.1:0"}
    )
    ours = [
        tmp_path / "out" / "a.FLOW.hdf5" / ".summary.json.k2ha5kzf.tmp",
        tmp_path / "out" / "images" / ".flatline.png.ab_12cd3.tmp",
        tmp_path / "state" / ".history.h5.0123abcd.tmp",
    ]
    others = [
        tmp_path / "out" / "a.FLOW.hdf5" / "summary.json",
        tmp_path / "out" / ".notes.tmp",
        spool / ".run.FLOW.hdf5.abcdefgh.tmp",  # a DAQ's, in the watched folder
    ]
    for path in ours + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    app = DaemonApp(cfg)
    app.start()
    app.stop()
    assert [p for p in ours if p.exists()] == []
    assert all(p.exists() for p in others)


def test_the_plot_queue_stays_bounded_under_a_burst_and_abandons_on_stop() -> None:
    """Finding 1: 300 files renamed in at once took RSS from 277 MB to 1.3 GB (every pending
    report kept its file's data). Finding 4: SIGTERM drew the whole backlog first."""
    import threading

    import numpy as np

    from wavedqm.exporters.plotting import PlotQueue

    drops: list[str] = []
    queue = PlotQueue(max_pending=4, on_drop=drops.append)
    gate = threading.Event()
    drawn: list[int] = []
    queue.submit(lambda: gate.wait(10) and {})  # the plotting thread is busy
    time.sleep(0.1)

    def job(i: int, payload: np.ndarray):
        return lambda: drawn.append(i) or {"n": payload.size}

    futures = [queue.submit(job(i, np.ones(100_000)), key=None) for i in range(20)]
    live = sum(1 for j in queue._queued if j.fn is not None)
    assert live == 4 and len(drops) == 16 and set(drops) == {"load"}
    gate.set()
    queue.wait_idle(10)
    assert drawn == [16, 17, 18, 19]  # the newest four; the dropped ones give {}
    assert [f.result() for f in futures[:16]] == [{}] * 16
    # superseded keyed jobs go before unkeyed ones
    gate.clear()
    queue.submit(lambda: gate.wait(10) and {})
    time.sleep(0.1)
    drawn.clear()
    for i in range(3):
        queue.submit(job(100 + i, np.ones(1)), key="series")
    queue.submit(job(1, np.ones(1)))
    queue.submit(job(2, np.ones(1)))  # 5 pending > 4: one superseded "series" job dropped
    gate.set()
    queue.wait_idle(10)
    assert drawn == [102, 1, 2]  # superseded 100, 101 never drawn (101 dropped, 100 skipped)
    # stop: what is queued is dropped, only the running job is waited for
    slow = threading.Event()
    queue.submit(lambda: slow.wait(0.5) and {})
    time.sleep(0.1)
    for _ in range(3):
        queue.submit(lambda: time.sleep(5) or {})
    started = time.perf_counter()
    queue.close(abandon=True)
    assert time.perf_counter() - started < 2
    assert drops.count("stop") == 3


def test_sigterm_after_a_burst_stops_quickly_and_loses_nothing(tmp_path: Path) -> None:
    """Finding 4: after a burst SIGTERM took 60-120 s (the report backlog was drawn first),
    beyond systemd's TimeoutStopSec=90. Now: the current file is finished, queued drawings
    dropped; a restart processes exactly the files not done."""
    import os

    from wavedqm.simulate.flow import simulate_run

    from daemonutil import start_daemon

    staging, spool = tmp_path / "staging", tmp_path / "spool"
    spool.mkdir()
    files = [
        p
        for p, _ in simulate_run(
            staging, files=24, events=20, n_samples=300, seed=3, interval_s=0.0
        )
    ]
    daemon = start_daemon(tmp_path, spool)
    try:
        for path in files:  # the burst: every file renamed in at once
            os.replace(path, spool / path.name)
        wait_for(lambda: (daemon.value("wavedqm_files_processed_total") or 0) >= 15, 120,
                 what="15 files processed: the drawings lag far behind")  # fmt: skip
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 20
    finally:
        daemon.kill()
    out = tmp_path / "out"
    first = {p.name for p in out.glob("*.FLOW.hdf5") if (p / "summary.json").exists()}
    again = start_daemon(tmp_path, spool)
    try:
        wait_for(lambda: (again.value("wavedqm_files_processed_total") or 0)
                 >= len(files) - len(first), 300, what="the rest processed")  # fmt: skip
        time.sleep(2)
        assert again.value("wavedqm_files_processed_total") == len(files) - len(first)
    finally:
        assert again.stop() == 0


def test_a_corrupted_event_time_is_not_taken_as_a_time() -> None:
    """Finding 9: a ``utime_ms`` of 2^64 - 1 gave a data start in the year 5×10^8."""
    import numpy as np

    from wavedqm.formats.flow import _event_times_s

    utime = np.array([[1_700_000_000_000, 0], [2**64 - 1, 2**64 - 1], [0, 0]], dtype=np.uint64)
    times = _event_times_s(utime)
    assert times[0] == 1_700_000_000.0
    assert np.isnan(times[1:]).all()


def _history_files(state: Path) -> list[str]:
    import h5py

    with h5py.File(state / "history.h5", "r") as h5:
        return list(h5["file"].asstr()[: h5.attrs["n_files"]])


def _streak(state: Path, adc: int, channel: int) -> int:
    import json

    return int(json.loads((state / "dead_streaks.json").read_text())["dead_streaks"][adc][channel])


def test_a_file_processed_again_replaces_its_contribution(tmp_path: Path) -> None:
    """Findings 5 and 8: a file processed again at once (restart after a kill between its
    history row and its ledger row; a file rewritten while it was analysed) weighed twice in
    the previous-files rollup and counted twice in the dead streaks (two "files in a row" of
    one file: WavedqmChannelDead paged)."""
    from wavedqm.simulate.flow import ChannelFaults

    dead = ChannelFaults(dead=((1, 5),))
    a, b = tmp_path / "a.FLOW.hdf5", tmp_path / "b.FLOW.hdf5"
    write_flow_file(a, n_events=12, n_samples=256, seed=1, faults=dead)
    cfg = _config(tmp_path)
    state = tmp_path / "state"
    with Router(cfg) as router:
        assert router.route(a, completed_at=time.time()).ok
        assert _streak(state, 1, 5) == 1
        write_flow_file(a, n_events=20, n_samples=256, seed=2, faults=dead)  # rewritten
        assert router.route(a, completed_at=time.time()).ok
        assert _history_files(state) == ["a.FLOW.hdf5"]
        assert _streak(state, 1, 5) == 1, "one file is one file in a row"
    with Router(cfg) as router:  # a restart that processes the same file again
        assert router.route(a, completed_at=time.time()).ok
        assert _streak(state, 1, 5) == 1
        write_flow_file(b, n_events=12, n_samples=256, seed=3, faults=dead)
        result = router.route(b, completed_at=time.time())
        assert result.ok
        assert _streak(state, 1, 5) == 2
        assert _history_files(state) == ["a.FLOW.hdf5", "b.FLOW.hdf5"]
        assert result.document["previous_files"] == 1
        text = generate_latest(router.registry).decode()
        assert metric_value(text, "wavedqm_channel_dead_consecutive_files",
                            adc="1", channel="5") == 2.0  # fmt: skip


def test_a_file_growing_in_place_between_pauses_counts_once(tmp_path: Path) -> None:
    """Finding 8 end to end: a writer without the HDF5 lock pausing longer than the settle
    time gets its file analysed at each pause; each analysis replaces the last."""
    from wavedqm.simulate.flow import ChannelFaults

    from daemonutil import start_daemon

    spool = tmp_path / "spool"
    spool.mkdir()
    d = start_daemon(tmp_path, spool, "[output]\nreports = false\n")
    target = spool / "grow.FLOW.hdf5"
    try:
        for i, n in enumerate((8, 16, 24), start=1):
            write_flow_file(target, n_events=n, n_samples=256, seed=i,
                            faults=ChannelFaults(dead=((0, 5),)))  # fmt: skip
            wait_for(lambda i=i: d.value("wavedqm_files_processed_total") == i, 60,
                     what=f"version {i}")  # fmt: skip
        assert d.value("wavedqm_channel_dead_consecutive_files", adc="0", channel="5") == 1
    finally:
        assert d.stop() == 0
    state = tmp_path / "state"
    assert _history_files(state) == ["grow.FLOW.hdf5"]
    assert _streak(state, 0, 5) == 1


def test_drawings_a_kill_left_are_made_at_the_next_start(tmp_path: Path) -> None:
    """Finding 2: a file whose metrics were out but whose PDF/PNGs were still queued when the
    daemon was killed never got them (the ledger says done)."""
    import os

    from daemonutil import start_daemon

    spool = tmp_path / "spool"
    spool.mkdir()
    names = [f"f{i}.FLOW.hdf5" for i in range(4)]
    d = start_daemon(tmp_path, spool, "[charge]\nplots = false\n")
    try:
        for i, name in enumerate(names):
            src = tmp_path / f".{name}"
            write_flow_file(src, n_events=10, n_samples=256, seed=i)
            os.replace(src, spool / name)
        wait_for(lambda: d.value("wavedqm_files_processed_total") == len(names), 60,
                 what="processed")  # fmt: skip
    finally:
        d.kill()  # kill -9 with reports still queued (a report takes seconds to draw)
    out, journal = tmp_path / "out", tmp_path / "state" / "pending_drawings"
    missing = [n for n in names if not (out / n / "report.pdf").exists()]
    assert missing, "the test needs drawings still pending at the kill"
    assert list(journal.glob("*.pkl"))
    d = start_daemon(tmp_path, spool, "[charge]\nplots = false\n")
    try:
        wait_for(lambda: all((out / n / "report.pdf").exists() for n in names), 120,
                 what="reports drawn after the restart")  # fmt: skip
        wait_for(lambda: not list(journal.glob("*.pkl")), 60, what="journal emptied")
        assert d.value("wavedqm_files_processed_total") in (None, 0.0)  # nothing redone
    finally:
        assert d.stop() == 0
    for n in names:
        assert (out / n / "flatline.png").is_file() and (out / n / "baseline.png").is_file()
