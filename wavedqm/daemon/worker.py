"""The worker thread's half of :class:`~wavedqm.daemon.service.Service`: take a complete file
off the queue, check the ledger and the size limit, mark it in progress
(:class:`~wavedqm.daemon.guard.FileGuard`), call ``handle`` and record the result (the
service module's doc says what each outcome of ``handle`` leads to).

:class:`WorkerThread` is a base class of ``Service`` and uses its state (the queue, the lock
and what it guards, the result book, the guard, the ledger); it exists to keep each module
to one job, not to be used alone.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavedqm.config import Config
from wavedqm.daemon import sdnotify
from wavedqm.daemon.guard import FileGuard
from wavedqm.daemon.ledger import FileKey, Ledger, Status, fingerprint
from wavedqm.daemon.results import ResultBook
from wavedqm.daemon.settle import SettleTracker
from wavedqm.errors import CountedFileError, FileNotReady, InputFileError, OutputError
from wavedqm.logs import get_logger

log = get_logger(__name__)

Handle = Callable[[Path, float], None]
"""``handle(path, completed_at)``: process one complete file; ``completed_at`` is the unix
time (s) at which it was judged complete."""

REASON_TOO_LARGE = "too_large"
REASON_INTERNAL = "internal"
REASON_READ_ERROR = "read_error"
REASON_STALLED = "stalled"


@dataclass(frozen=True)
class Item:
    """A queued file."""

    path: Path
    completed_at: float
    """Unix time (s) the file was judged complete."""


class WorkerThread:
    """The worker loop and the recording of each file's result (module doc)."""

    cfg: Config
    tracker: SettleTracker
    not_ready_retry_seconds: float
    _handle: Handle
    _queue: queue.Queue[Item]
    _lock: threading.Lock
    _queued: set[Path]
    _current: Path | None
    _worker_busy: bool
    _dirty: set[Path]
    _retry: dict[Path, float]
    _stop: threading.Event
    _book: ResultBook
    _guard: FileGuard | None
    _tick: float

    @property
    def ledger(self) -> Ledger:  # provided by Service, like the three below
        raise NotImplementedError

    def _event(self, name: str, level: str = "info", **fields: Any) -> None:
        raise NotImplementedError

    def _queue_size_changed(self) -> None:
        raise NotImplementedError

    def _status_line(self) -> str:
        raise NotImplementedError

    def _skipped(self, path: Path, key: FileKey) -> None:
        """A file the ledger has already seen (same path, size, mtime, header)."""
        self._book.count("skipped_seen")
        self._event("skipped_seen", path=str(path), size_bytes=key.size)

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard(item.path)
                self._current = item.path
                self._worker_busy = True
            self._queue_size_changed()
            try:
                self._process(item)
            except Exception:
                log.exception("worker_error", path=str(item.path))
            finally:
                with self._lock:
                    self._current = None
                    dirty = item.path in self._dirty
                    self._dirty.discard(item.path)
                if dirty:
                    self.tracker.touch(item.path)
                with self._lock:
                    self._worker_busy = False
                self._queue.task_done()

    def _process(self, item: Item) -> None:
        """Worker thread: ledger check, size limit, ``handle``, record the result."""
        path = item.path
        try:
            key = fingerprint(path)
        except FileNotFoundError:
            log.info("file_vanished", path=str(path))
            return
        except OSError as e:
            self._unreadable(path, e)
            return
        if self._book.seen(key):
            self._skipped(path, key)
            return
        limit = self.cfg.watch.max_file_size_bytes
        if key.size > limit:
            self._finish(
                key,
                "failed",
                REASON_TOO_LARGE,
                0.0,
                error=f"{path}: {key.size} bytes (expected at most {limit}: "
                "watch.max_file_size_bytes)",
            )
            return
        if not self._begin(key):
            return
        self._event(
            "file_processing",
            path=str(path),
            size_bytes=key.size,
            wait_seconds=round(time.time() - item.completed_at, 3),
        )
        t0 = time.perf_counter()
        guard = self._guard
        assert guard is not None
        guard.enter(key)
        again = False
        try:
            self._handle(path, item.completed_at)
        except OutputError as e:
            again = True
            self._output_failed(path, e)
        except FileNotReady as e:
            again = True
            with self._lock:
                self._retry[path] = time.monotonic() + self.not_ready_retry_seconds
            self._book.count("not_ready")
            self._event(
                "file_not_ready",
                path=str(path),
                why=e.why,
                retry_in_seconds=self.not_ready_retry_seconds,
            )
        except InputFileError as e:
            self._finish(
                key, "failed", e.reason, time.perf_counter() - t0, error=str(e),
                counted=isinstance(e, CountedFileError),
            )  # fmt: skip
        except Exception as e:
            seconds = time.perf_counter() - t0
            log.exception("handle_raised", path=str(path))
            self._finish(key, "failed", REASON_INTERNAL, seconds, error=repr(e))
        else:
            self._finish(key, "ok", "", time.perf_counter() - t0)
        finally:
            guard.leave(key, again=again)

    def _begin(self, key: FileKey) -> bool:
        """Mark the file in progress before ``handle`` (:meth:`FileGuard.admit`). False if
        it must not be tried again (then recorded failed as ``stalled``), must wait behind
        the queued files (tried again after ``not_ready_retry_seconds``), or the ledger cannot
        be written (then retried later like any output error)."""
        assert self._guard is not None
        try:
            admission = self._guard.admit(key, others_waiting=not self._queue.empty())
        except sqlite3.Error as e:
            self._output_failed(key.path, OutputError(self.ledger.path, str(e)))
            return False
        if admission.verdict == "go":
            return True
        if admission.verdict == "defer":
            with self._lock:
                self._retry[key.path] = time.monotonic() + self.not_ready_retry_seconds
            wait = self.not_ready_retry_seconds
            self._event("file_deferred", level="warning", path=str(key.path),
                        why=admission.why, retry_in_seconds=wait)  # fmt: skip
            return False
        self._finish(key, "failed", REASON_STALLED, 0.0, error=admission.why)
        return False

    def _output_failed(self, path: Path, e: OutputError) -> None:
        """Our outputs or state could not be written: not the file's fault; retry later."""
        attempt, delay = self._book.output_failed(path, str(e))
        with self._lock:
            self._retry[path] = time.monotonic() + delay
        self._event(
            "output_error",
            level="error",
            path=str(path),
            error=str(e),
            attempt=attempt,
            retry_in_seconds=delay,
        )
        sdnotify.notify("STATUS=" + self._status_line())

    def _unreadable(self, path: Path, e: OSError) -> None:
        """The file exists but cannot be opened: record it failed once (by its stat)."""
        try:
            key = fingerprint(path, read_header=False)
        except OSError:
            log.warning("file_failed", path=str(path), reason=REASON_READ_ERROR, error=str(e))
            return
        if not self.ledger.seen(key):
            self._finish(key, "failed", REASON_READ_ERROR, 0.0, error=str(e))

    def _finish(
        self,
        key: FileKey,
        status: Status,
        reason: str,
        seconds: float,
        error: str = "",
        counted: bool = False,
    ) -> None:
        """Record the file in the ledger and emit ``file_done`` / ``file_failed``
        (``counted``: the handler already counted the failure in the metrics)."""
        problem = self._book.record(key, status, reason, seconds)
        if problem:
            self._event("output_error", level="error", path=str(key.path), error=problem,
                        attempt=1, retry_in_seconds=self._tick)  # fmt: skip
        if status == "ok":
            self._event("file_done", path=str(key.path), seconds=round(seconds, 3))
        else:
            self._event(
                "file_failed",
                level="warning",
                path=str(key.path),
                reason=reason,
                error=error,
                seconds=round(seconds, 3),
                counted=counted,
            )
        sdnotify.notify("STATUS=" + self._status_line())
