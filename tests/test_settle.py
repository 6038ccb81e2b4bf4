"""Completion detection: a fake clock for the timers, real files for the stats."""

from __future__ import annotations

import os
import time

import pytest

from wavedqm.daemon.settle import SettleTracker


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def make(tmp_path, name="a.FLOW.hdf5", data=b"abc"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_due_only_after_settle_time(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(2.0, 0.0, clock=clock)
    f = make(tmp_path)
    assert tr.touch(f)
    assert tr.due() == []
    clock.advance(1.9)
    assert tr.due() == []
    assert tr.next_due_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert tr.due() == [f]
    assert len(tr) == 0  # handed out once
    clock.advance(10)
    assert tr.due() == []


def test_changed_stat_resets_timer(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(1.0, 0.0, clock=clock)
    f = make(tmp_path)
    tr.touch(f)
    clock.advance(0.9)
    with open(f, "ab") as fh:  # the writer appends: size and mtime change
        fh.write(b"more")
    assert tr.due() == []  # the re-stat sees the change and restarts the timer
    clock.advance(0.9)
    assert tr.due() == []
    clock.advance(0.1)
    assert tr.due() == [f]


def test_same_size_new_mtime_resets_timer(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(1.0, 0.0, clock=clock)
    f = make(tmp_path)
    tr.touch(f)
    clock.advance(0.9)
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    assert tr.due() == []
    clock.advance(1.0)
    assert tr.due() == [f]


def test_touch_restarts_timer_even_without_stat_change(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(1.0, 0.0, clock=clock)
    f = make(tmp_path)
    tr.touch(f)
    clock.advance(0.8)
    tr.touch(f)  # e.g. a close event after the last write
    clock.advance(0.8)
    assert tr.due() == []
    clock.advance(0.2)
    assert tr.due() == [f]


def test_vanished_and_missing_files_are_dropped(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(1.0, 0.0, clock=clock)
    f = make(tmp_path)
    assert not tr.touch(tmp_path / "never.FLOW.hdf5")
    assert not tr.touch(tmp_path)  # a folder is not a file
    tr.touch(f)
    assert f in tr
    f.unlink()
    clock.advance(5)
    assert tr.due() == []
    assert f not in tr and len(tr) == 0


def test_min_age_uses_wall_clock_against_mtime(tmp_path):
    clock = FakeClock()
    f = make(tmp_path)
    mtime = os.stat(f).st_mtime
    wall = FakeClock(mtime + 1.0)
    tr = SettleTracker(0.5, 30.0, clock=clock, wall_clock=wall)
    tr.touch(f)
    clock.advance(1.0)
    assert tr.due() == []  # stable, but only 1 s old
    wall.advance(28.0)
    assert tr.due() == []
    wall.advance(1.0)
    assert tr.due() == [f]


def test_due_sorted_by_mtime_and_forget(tmp_path):
    clock = FakeClock()
    tr = SettleTracker(0.0, 0.0, clock=clock)
    new, old, gone = make(tmp_path, "new"), make(tmp_path, "old"), make(tmp_path, "gone")
    os.utime(old, (1_000, 1_000))
    os.utime(new, (2_000, 2_000))
    for p in (new, old, gone):
        tr.touch(p)
    tr.forget(gone)
    assert tr.pending() == [new, old]
    assert tr.due() == [old, new]


def test_negative_times_rejected():
    with pytest.raises(ValueError):
        SettleTracker(-1.0)


def test_real_clock_growing_file(tmp_path):
    """Real time: a file appended every 0.1 s is not due until 0.3 s after the last write."""
    tr = SettleTracker(0.3, 0.0)
    f = make(tmp_path, data=b"")
    tr.touch(f)
    for _ in range(5):
        time.sleep(0.1)
        with open(f, "ab") as fh:
            fh.write(b"x" * 100)
        assert tr.due() == []
    last_write = time.monotonic()
    deadline = last_write + 2.0
    got = []
    while not got and time.monotonic() < deadline:
        got = tr.due()
        time.sleep(0.01)
    assert got == [f]
    assert time.monotonic() - last_write >= 0.3


def test_future_mtime_not_held_back_without_min_age(tmp_path):
    """A file server's clock ahead of ours gives mtimes in the future: still due."""
    clock = FakeClock()
    tr = SettleTracker(0.5, 0.0, clock=clock)
    f = make(tmp_path)
    os.utime(f, (time.time() + 3600, time.time() + 3600))
    tr.touch(f)
    clock.advance(0.5)
    assert tr.due() == [f]


def test_writer_done_signal_needs_only_the_short_settle(tmp_path):
    """A rename-in / close-after-write: due after the short settle (once a re-stat sees
    nothing changed); a change after it brings the full settle time back."""
    clock = FakeClock()
    tr = SettleTracker(2.0, 0.0, clock=clock, signalled_settle_seconds=0.1)
    f = make(tmp_path)
    assert tr.touch(f, signalled=True)
    assert tr.due() == []
    assert tr.next_due_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert tr.due() == [f]

    g = make(tmp_path, "b.FLOW.hdf5")
    tr.touch(g, signalled=True)
    clock.advance(0.05)
    with open(g, "ab") as fh:  # the writer was not done after all
        fh.write(b"more")
    assert tr.due() == []
    clock.advance(1.9)
    assert tr.due() == []
    clock.advance(0.1)
    assert tr.due() == [g]

    h = make(tmp_path, "c.FLOW.hdf5")
    tr.touch(h, signalled=True)
    tr.touch(h)  # a later plain change event: the full settle time
    clock.advance(0.5)
    assert tr.due() == []
    clock.advance(1.5)
    assert tr.due() == [h]
