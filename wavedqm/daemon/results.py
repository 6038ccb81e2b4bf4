"""What the daemon's worker has recorded: counts, the last result, and the state of our own
writes (outputs, state, the ledger) that :class:`~wavedqm.daemon.service.Service` reports.

- A result goes to the ledger; when the ledger cannot store it (its disk is full) it is kept
  here, counts as seen, and is written by :meth:`ResultBook.flush` once the ledger can.
- A file whose outputs or state could not be written waits for a retry: ``retry_seconds``
  doubled at each failure up to ``OUTPUT_RETRY_MAX_SECONDS`` (s). The last such error is kept
  until a file succeeds again: ``/healthz`` says it (:meth:`ResultBook.health`).

Thread-safe: one lock of its own, held only for dictionary updates.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavedqm import constants as C
from wavedqm.daemon.ledger import FileKey, Ledger, Status

COUNTED = ("ok", "failed", "not_ready", "skipped_seen", "output_error")
"""What :attr:`ResultBook.counts` counts (``Service.status()["counts"]``)."""


@dataclass(frozen=True)
class Unrecorded:
    """A result the ledger could not store yet."""

    key: FileKey
    status: Status
    reason: str
    seconds: float
    """Processing time (s)."""


def _ident(key: FileKey) -> tuple[str, int, int]:
    return (str(key.path), key.size, key.mtime_ns)


class ResultBook:
    """Counts, the last result, output errors and unrecorded results (module doc)."""

    def __init__(self, retry_seconds: float, ledger: Ledger | None = None) -> None:
        self._ledger = ledger
        self.retry_seconds = float(retry_seconds)
        """First wait before an output-failed file is tried again (s)."""
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTED, 0)
        self._last: dict[str, Any] = {}
        self._output_attempts: dict[Path, int] = {}
        """Files whose outputs could not be written -> failed attempts so far."""
        self._output_error: dict[str, Any] | None = None
        """The last output/state write error, until a file succeeds again."""
        self._unrecorded: dict[tuple[str, int, int], Unrecorded] = {}

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("ResultBook has no ledger yet (Service not started)")
        return self._ledger

    @ledger.setter
    def ledger(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # -- reading ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def last(self) -> dict[str, Any]:
        """``path``, ``status``, ``reason``, ``finished_at`` (unix s), ``seconds`` of the last
        recorded file ({} before the first)."""
        with self._lock:
            return dict(self._last)

    def output_error(self) -> dict[str, Any] | None:
        """``path``, ``error``, ``since`` (unix s) of the failing write, or None."""
        with self._lock:
            return dict(self._output_error) if self._output_error else None

    def seen(self, key: FileKey) -> bool:
        """In the ledger, or recorded here while the ledger could not take it."""
        with self._lock:
            if _ident(key) in self._unrecorded:
                return True
        return self.ledger.seen(key)

    def health(self) -> tuple[bool, str]:
        """(ok, one line) as far as our writes go."""
        with self._lock:
            err = dict(self._output_error) if self._output_error else None
            waiting = len(self._output_attempts)
        if err is None:
            return True, "ok"
        since = time.strftime("%H:%M:%S", time.localtime(err["since"]))
        return False, (
            f"output failing since {since} ({waiting} file(s) waiting for a retry): {err['error']}"
        )

    # -- recording -------------------------------------------------------------------------

    def count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def output_failed(self, path: Path, error: str) -> tuple[int, float]:
        """``path``'s outputs could not be written: (attempt number, seconds to wait)."""
        with self._lock:
            attempt = self._output_attempts.get(path, 0) + 1
            self._output_attempts[path] = attempt
            delay = min(C.OUTPUT_RETRY_MAX_SECONDS, self.retry_seconds * 2 ** (attempt - 1))
            self._counts["output_error"] += 1
            since = self._output_error["since"] if self._output_error else time.time()
            self._output_error = {"path": str(path), "error": error, "since": since}
        return attempt, delay

    def record(self, key: FileKey, status: Status, reason: str, seconds: float) -> str:
        """Store a file's result; returns "" or, when the ledger could not take it (kept
        here until :meth:`flush`), the error."""
        problem = ""
        try:
            self.ledger.record(key, status, reason, seconds)
        except sqlite3.Error as e:
            problem = f"cannot record it in the ledger {self.ledger.path}: {e}"
            with self._lock:
                self._unrecorded[_ident(key)] = Unrecorded(key, status, reason, seconds)
                self._output_error = {
                    "path": str(self.ledger.path), "error": f"ledger: {e}", "since": time.time(),
                }  # fmt: skip
        with self._lock:
            self._output_attempts.pop(key.path, None)
            if status == "ok" and not self._unrecorded:
                self._output_error = None
            self._counts[status] += 1
            self._last = {
                "path": str(key.path), "status": status, "reason": reason,
                "finished_at": time.time(), "seconds": seconds,
            }  # fmt: skip
        return problem

    def has_unrecorded(self) -> bool:
        with self._lock:
            return bool(self._unrecorded)

    def flush(self) -> list[Unrecorded]:
        """Store what the ledger could not take before, oldest first, until it refuses
        again; returns what was stored."""
        with self._lock:
            pending = list(self._unrecorded.items())
        stored = []
        for ident, item in pending:
            try:
                self.ledger.record(item.key, item.status, item.reason, item.seconds)
            except sqlite3.Error:
                break  # still full: next time
            with self._lock:
                self._unrecorded.pop(ident, None)
            stored.append(item)
        return stored
