"""Completion detection: a file is complete once its size and mtime have stayed unchanged for
``settle_seconds`` after the last event about it, and its mtime is at least ``min_age_seconds``
old. When the last event was the writer's own signal that it is done (the file renamed in, or
closed after writing), ``signalled_settle_seconds`` is enough (a re-stat confirming nothing
changed); any later change event brings back the full settle time.

The tracker is pure logic plus ``os.stat``; the clocks are injectable so tests can drive it
with a fake clock. It is thread-safe: the watcher thread calls :meth:`SettleTracker.touch`, the
service's settle thread calls :meth:`SettleTracker.due`.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Signature = tuple[int, int, int]
"""(size in bytes, mtime in ns, inode): any change means "still being written"."""


def _signature(path: Path) -> tuple[Signature, float] | None:
    """(signature, mtime as unix time in s) of a regular file, or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:  # vanished, or unreadable folder
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino), st.st_mtime


@dataclass
class _Entry:
    signature: Signature
    mtime: float
    """Unix time (s) of the last modification."""
    stable_since: float
    """``clock()`` time (s) since which the signature has not changed."""
    settle: float
    """How long it must stay unchanged (s): short after a completion signal."""


class SettleTracker:
    """Files waiting to become complete.

    ``settle_seconds``: how long size and mtime must stay unchanged (s).
    ``min_age_seconds``: minimum age of the mtime, measured with ``wall_clock`` (s).
    ``clock``: monotonic clock for the settle timers (s); ``wall_clock``: unix time (s).
    """

    def __init__(
        self,
        settle_seconds: float,
        min_age_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        signalled_settle_seconds: float | None = None,
    ) -> None:
        if signalled_settle_seconds is None:
            signalled_settle_seconds = settle_seconds
        if settle_seconds < 0 or min_age_seconds < 0 or signalled_settle_seconds < 0:
            raise ValueError(
                f"settle_seconds={settle_seconds}, min_age_seconds={min_age_seconds} "
                "(expected >= 0)"
            )
        self.settle_seconds = float(settle_seconds)
        self.signalled_settle_seconds = min(float(signalled_settle_seconds), self.settle_seconds)
        self.min_age_seconds = float(min_age_seconds)
        self.clock = clock
        self.wall_clock = wall_clock
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path | str, now: float | None = None, *, signalled: bool = False) -> bool:
        """An event says ``path`` changed, was closed or was renamed in: (re)start its timer.
        ``signalled``: the event was the writer's "done" (rename-in, close after writing):
        the short settle time applies until another event comes.

        Returns False (and forgets the path) if it is not an existing regular file.
        """
        path = Path(path)
        now = self.clock() if now is None else now
        sig = _signature(path)
        with self._lock:
            if sig is None:
                self._entries.pop(path, None)
                return False
            settle = self.signalled_settle_seconds if signalled else self.settle_seconds
            self._entries[path] = _Entry(sig[0], sig[1], now, settle)
        return True

    def forget(self, path: Path | str) -> None:
        """Stop tracking ``path`` (no-op if it is not tracked)."""
        with self._lock:
            self._entries.pop(Path(path), None)

    def due(self, now: float | None = None) -> list[Path]:
        """Re-stat every tracked file; return (and stop tracking) those now complete, oldest
        mtime first.

        A changed stat restarts that file's timer; a vanished file is dropped.
        """
        now = self.clock() if now is None else now
        with self._lock:
            paths = list(self._entries)
        stats = {p: _signature(p) for p in paths}  # stat outside the lock (NFS can be slow)
        wall = self.wall_clock()
        ready: list[tuple[float, Path]] = []
        with self._lock:
            for path, sig in stats.items():
                entry = self._entries.get(path)
                if entry is None:
                    continue  # forgotten meanwhile
                if sig is None:
                    del self._entries[path]
                    continue
                if sig[0] != entry.signature:  # still written: the full settle time again
                    self._entries[path] = _Entry(sig[0], sig[1], now, self.settle_seconds)
                    continue
                # min age 0 skips the age test: an mtime slightly in the future (a file
                # server's clock ahead of ours) must not hold a file back.
                old_enough = self.min_age_seconds <= 0 or wall - entry.mtime >= self.min_age_seconds
                if now - entry.stable_since >= entry.settle and old_enough:
                    del self._entries[path]
                    ready.append((entry.mtime, path))
        ready.sort()
        return [p for _, p in ready]

    def next_due_in(self, now: float | None = None) -> float | None:
        """Seconds until the earliest tracked file could become due, ignoring min age
        (None when nothing is tracked)."""
        now = self.clock() if now is None else now
        with self._lock:
            if not self._entries:
                return None
            earliest = min(e.stable_since + e.settle for e in self._entries.values())
        return max(0.0, earliest - now)

    def pending(self) -> list[Path]:
        """Tracked files, in the order they were first touched."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return isinstance(path, str | Path) and Path(path) in self._entries
