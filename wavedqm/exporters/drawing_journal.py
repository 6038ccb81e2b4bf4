"""The journal of drawings still to make: a file whose metrics are out but whose PNGs or PDF
report were still queued when the daemon was killed (or stopped) gets them at the next start.

Each drawing job the daemon queues (a picklable module function with its data: the same form
in which it goes to the drawing helper process) is written to
``STATE/pending_drawings/<sequence>.pkl`` (atomically) before it is queued, and removed once
it ran (drawn, or failed: a failing drawing is not retried), or was dropped under load
(superseded or the oldest: counted in ``wavedqm_drawings_dropped_total``). What is left at the
next start — killed, or abandoned by SIGTERM — is queued again, oldest first, and removed
when drawn. An entry that no longer unpickles (written by another wavedqm version) is logged
and removed. Only our own state folder is read back: it holds pickles only we write.

Size: at most ``output.max_pending_drawings`` + 1 entries (the queue bound), a few MB each.
Memory: a journaled job in the queue holds only its entry's name (:func:`draw_entry`): the
daemon's memory does not grow with the drawings waiting.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavedqm.atomic import atomic_write_bytes
from wavedqm.logs import get_logger

log = get_logger(__name__)

JOURNAL_DIR = "pending_drawings"
"""Folder of the journal inside the state folder."""
SUFFIX = ".pkl"


@dataclass(frozen=True)
class PendingDrawing:
    """One journaled job: where it is stored and its supersede key."""

    entry: Path
    key: str | None


def load_entry(entry: Path) -> tuple[str | None, Any]:
    """``(key, job)`` stored at ``entry``."""
    key, fn = pickle.loads(Path(entry).read_bytes())
    return key, fn


def draw_entry(entry: str) -> Any:
    """Run the job stored at ``entry`` (a drawing job itself: a queued job holds only this,
    and its data stays on disk until it is drawn, in the helper process that reads it)."""
    return load_entry(Path(entry))[1]()


class DrawingJournal:
    """Journal in ``state_dir / JOURNAL_DIR`` (module doc)."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = Path(state_dir) / JOURNAL_DIR
        self._seq = itertools.count(int(time.time() * 1e6))

    def record(self, fn: Any, key: str | None) -> Path | None:
        """Store ``fn`` before it is queued; None when it cannot be pickled (it is then only
        drawn if the daemon lives to draw it)."""
        try:
            data = pickle.dumps((key, fn), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            log.debug("drawing_not_journaled", key=key, why=f"{type(err).__name__}: {err}")
            return None
        entry = self.folder / f"{next(self._seq):020d}{SUFFIX}"
        return atomic_write_bytes(entry, data)

    def done(self, entry: Path | None) -> None:
        """The job ran, failed or was dropped under load: forget it."""
        if entry is not None:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()

    def pending(self) -> list[PendingDrawing]:
        """What a previous run left, oldest first (unreadable entries logged and removed)."""
        if not self.folder.is_dir():
            return []
        out = []
        for entry in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                key, _fn = load_entry(entry)  # checked one at a time, then let go
            except Exception as err:  # a stale or cut entry: drop it
                log.warning("pending_drawing_unreadable", entry=str(entry), error=str(err))
                self.done(entry)
                continue
            out.append(PendingDrawing(entry, key))
        return out
