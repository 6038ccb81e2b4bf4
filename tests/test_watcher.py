"""Folder watching with real watchdog observers (inotify and polling) on real folders."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from wavedqm.daemon.watcher import Watcher, matches, scan
from wavedqm.errors import ConfigError

PATTERNS = ("*.FLOW.hdf5",)


class Seen:
    """Records on_change calls (from the observer thread)."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.cond = threading.Condition()

    def __call__(self, path: Path) -> None:
        with self.cond:
            self.paths.append(path)
            self.cond.notify_all()

    def wait_for(self, path: Path, timeout: float = 3.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: path in self.paths, timeout)


@pytest.fixture
def watched(tmp_path):
    d = tmp_path / "daq"
    d.mkdir()
    return d


def test_matches():
    assert matches("run_0001.FLOW.hdf5", PATTERNS)
    assert not matches(".run_0001.tmp", PATTERNS)
    assert not matches("run_0001.FLOW.hdf5.part", PATTERNS)
    assert not matches(".run_0001.FLOW.hdf5", PATTERNS)  # hidden: a temporary
    assert not matches("run_0001.flow.hdf5", PATTERNS)  # case-sensitive
    assert matches("a.h5", ("*.FLOW.hdf5", "*.h5"))
    assert not matches("", PATTERNS)


def test_scan_sorted_by_mtime_recursive_and_not(watched):
    sub = watched / "run2" / "deep"
    sub.mkdir(parents=True)
    a = watched / "a.FLOW.hdf5"
    b = sub / "b.FLOW.hdf5"
    c = watched / "c.FLOW.hdf5"
    for i, p in enumerate((c, b, a)):
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
    (watched / "x.FLOW.hdf5.part").write_bytes(b"x")
    (watched / ".y.tmp").write_bytes(b"x")
    (watched / "notes.txt").write_bytes(b"x")
    (watched / "dir.FLOW.hdf5").mkdir()  # a folder with a matching name is not a file
    assert scan([watched], PATTERNS, recursive=True) == [c, b, a]
    assert scan([watched], PATTERNS, recursive=False) == [c, a]
    # overlapping roots give no duplicates; a missing root is skipped
    assert scan([watched, sub, watched / "nope"], PATTERNS, recursive=True) == [c, b, a]


def start(watcher: Watcher) -> Watcher:
    watcher.start()
    time.sleep(0.05)
    return watcher


def test_inotify_rename_into_place(watched):
    seen = Seen()
    w = start(Watcher([watched], PATTERNS, seen))
    try:
        assert w.mode == "inotify" and w.is_alive()
        tmp = watched / ".run.tmp"
        tmp.write_bytes(b"data")
        final = watched / "run.FLOW.hdf5"
        os.replace(tmp, final)
        assert seen.wait_for(final)
        assert tmp not in seen.paths
        assert all(matches(p.name, PATTERNS) for p in seen.paths)
    finally:
        w.stop()
    assert not w.is_alive()


def test_inotify_write_in_place_and_subfolders(watched):
    seen = Seen()
    w = start(Watcher([watched], PATTERNS, seen, recursive=True))
    try:
        f = watched / "grow.FLOW.hdf5"
        with open(f, "wb") as fh:
            fh.write(b"a")
            fh.flush()
        assert seen.wait_for(f)
        (watched / "ignored.txt").write_bytes(b"x")
        (watched / "x.FLOW.hdf5.part").write_bytes(b"x")
        sub = watched / "run7"
        sub.mkdir()
        g = sub / "sub.FLOW.hdf5"
        g.write_bytes(b"x")
        assert seen.wait_for(g)
        # a folder moved in with a file already inside
        outside = watched.parent / "staging"
        outside.mkdir()
        (outside / "moved.FLOW.hdf5").write_bytes(b"x")
        os.rename(outside, watched / "staging")
        assert seen.wait_for(watched / "staging" / "moved.FLOW.hdf5")
        names = {p.name for p in seen.paths}
        assert "ignored.txt" not in names and "x.FLOW.hdf5.part" not in names
    finally:
        w.stop()


def test_not_recursive_ignores_subfolders(watched):
    seen = Seen()
    sub = watched / "sub"
    sub.mkdir()
    w = start(Watcher([watched], PATTERNS, seen, recursive=False))
    try:
        (sub / "deep.FLOW.hdf5").write_bytes(b"x")
        top = watched / "top.FLOW.hdf5"
        top.write_bytes(b"x")
        assert seen.wait_for(top)
        time.sleep(0.2)
        assert sub / "deep.FLOW.hdf5" not in seen.paths
    finally:
        w.stop()


def test_polling_mode(watched):
    seen = Seen()
    w = start(Watcher([watched], PATTERNS, seen, poll=True, poll_interval_seconds=0.1))
    try:
        assert w.mode == "polling"
        f = watched / "polled.FLOW.hdf5"
        f.write_bytes(b"x")
        assert seen.wait_for(f)
        tmp = watched / ".r.tmp"
        tmp.write_bytes(b"y")
        g = watched / "renamed.FLOW.hdf5"
        os.replace(tmp, g)
        assert seen.wait_for(g)
    finally:
        w.stop()
    assert not w.is_alive()


def test_falls_back_to_polling_when_inotify_fails(watched):
    """The native observer cannot start (as with ENOSPC, inotify watch limit reached)."""

    def no_inotify():
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    seen = Seen()
    with capture_logs() as logs:
        w = start(
            Watcher(
                [watched], PATTERNS, seen, poll_interval_seconds=0.1, observer_factory=no_inotify
            )
        )
    try:
        assert w.mode == "polling"
        fallback = [e for e in logs if e["event"] == "watch_fallback_polling"]
        assert fallback and fallback[0]["errno"] == errno.ENOSPC
        assert "polling" in fallback[0]["hint"]
        f = watched / "a.FLOW.hdf5"
        f.write_bytes(b"x")
        assert seen.wait_for(f)
    finally:
        w.stop()


def test_callback_exception_does_not_kill_observer(watched):
    calls = []

    def flaky(path):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("boom")

    w = start(Watcher([watched], PATTERNS, flaky))
    try:
        (watched / "a.FLOW.hdf5").write_bytes(b"x")
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        b = watched / "b.FLOW.hdf5"
        b.write_bytes(b"x")
        while b not in calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b in calls
        assert w.is_alive()
    finally:
        w.stop()


def test_missing_folder_is_a_config_error(tmp_path):
    w = Watcher([tmp_path / "absent"], PATTERNS, lambda p: None)
    with pytest.raises(ConfigError, match="absent"):
        w.start()
    with pytest.raises(ConfigError, match="empty"):
        Watcher([], PATTERNS, lambda p: None).start()


def test_removed_folder_makes_watcher_dead(tmp_path):
    d = tmp_path / "gone"
    d.mkdir()
    w = start(Watcher([d], PATTERNS, lambda p: None))
    try:
        assert w.is_alive()
        d.rmdir()
        deadline = time.monotonic() + 3
        while w.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not w.is_alive()
    finally:
        w.stop()
