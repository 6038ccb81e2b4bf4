"""The daemon: watch folders, decide when each file is complete, process it exactly once.

Threads (all daemon threads):

- the watchdog observer: events on matching files -> :meth:`SettleTracker.touch` (never blocks
  on processing);
- the settle thread: every tick moves files that are complete (or due for a retry) into a
  bounded queue, without duplicates, skipping files the ledger has already seen;
- one worker: takes a file, checks the ledger again, calls ``handle(path, completed_at)`` and
  records the result. ``handle`` is never called concurrently;
- a heartbeat (only under a systemd watchdog): ``WATCHDOG=1`` while :meth:`Service.healthy`.

``handle`` returns normally on success; raises ``InputFileError`` for a bad file (recorded
failed with ``e.reason``, not retried; a ``CountedFileError`` was already counted by the
handler, which the ``file_failed`` event says with ``counted=True``); raises
``FileNotReady`` to be retried after
``not_ready_retry_seconds``; raises ``OutputError`` when our outputs or state could not be
written (disk full, read-only): not recorded, retried after ``output.retry_seconds``, doubled
at each failure up to ``OUTPUT_RETRY_MAX_SECONDS`` (``output_error`` events, ``/healthz``
503 until a file succeeds again); anything else is logged with its traceback and recorded
failed with reason ``"internal"``. A result the ledger cannot store (its disk is full) is
kept in memory, counts as seen, and is written at the next settle tick that succeeds. The
service keeps running in every case.

A file in hand longer than ``watch.max_processing_seconds`` makes the service *stalled*
(``file_stalled`` event, :meth:`Service.healthy` false: ``/healthz`` 503 and the systemd
watchdog withheld, so systemd restarts the daemon; a thread stuck in C code cannot be stopped
otherwise); with ``exit_on_hang`` the process exits by itself if no Python thread can run.
A file that stalled or killed the daemon too often is recorded failed with reason
``stalled`` instead of being tried again (:mod:`wavedqm.daemon.guard`).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.observers.api import BaseObserver

from wavedqm import constants as C
from wavedqm.config import Config
from wavedqm.daemon import sdnotify
from wavedqm.daemon.guard import FileGuard
from wavedqm.daemon.ledger import Ledger, fingerprint
from wavedqm.daemon.results import ResultBook
from wavedqm.daemon.settle import SettleTracker
from wavedqm.daemon.watcher import Watcher, scan
from wavedqm.daemon.worker import Handle, Item, WorkerThread
from wavedqm.logs import get_logger
from wavedqm.processors.router import watch_patterns

log = get_logger(__name__)


class Service(WorkerThread):
    """The watching/processing daemon for one :class:`~wavedqm.config.Config`.

    ``on_queue_size(n)`` is called whenever the number of queued files changes;
    ``on_event(name, **fields)`` for every structlog event of a file (``file_detected``,
    ``file_complete``, ``file_queued``, ``file_processing``, ``file_done``, ``file_failed``,
    ``file_not_ready``, ``skipped_seen``). Both are called from service threads and must be
    quick; their exceptions are logged and ignored.
    """

    def __init__(
        self,
        cfg: Config,
        handle: Handle,
        *,
        on_queue_size: Callable[[int], None] | None = None,
        on_event: Callable[..., None] | None = None,
        not_ready_retry_seconds: float = C.NOT_READY_RETRY_SECONDS,
        observer_factory: Callable[[], BaseObserver] | None = None,
        exit_on_hang: bool = False,
    ) -> None:
        self.cfg = cfg
        self._handle = handle
        self._on_queue_size = on_queue_size
        self._on_event = on_event
        self.not_ready_retry_seconds = float(not_ready_retry_seconds)
        w = cfg.watch
        self.tracker = SettleTracker(
            w.settle_seconds,
            w.min_file_age_seconds,
            signalled_settle_seconds=w.signalled_settle_seconds,
        )
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=max(1, w.queue_max_files))
        self._watcher = Watcher.from_config(
            w, self._on_change, observer_factory, patterns=watch_patterns(cfg),
            on_done=self._on_done,
        )  # fmt: skip
        self._tick = max(0.02, min(0.25, w.settle_seconds / 5, w.signalled_settle_seconds / 2))
        """Settle-thread period (s)."""

        self._lock = threading.Lock()
        self._queued: set[Path] = set()
        self._current: Path | None = None
        self._exit_on_hang = exit_on_hang
        self._guard: FileGuard | None = None
        self._worker_busy = False
        """True from taking a file off the queue until its follow-up is done."""
        self._dirty: set[Path] = set()
        """Files that settled again while being processed: re-checked once done."""
        self._retry: dict[Path, float] = {}
        """Not-ready files -> monotonic time (s) of the next attempt."""
        self._settle_pass = threading.Lock()
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._ledger: Ledger | None = None
        self._started = False
        self._stopped = False
        self._started_at = 0.0
        self._book = ResultBook(cfg.output.retry_seconds)
        """Counts, the last result, output errors, results the ledger could not take yet."""
        self._queue_full_logged = False

    # -- properties ------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("Service not started")
        return self._ledger

    @property
    def watch_mode(self) -> str:
        """``"inotify"`` or ``"polling"`` once started."""
        return self._watcher.mode

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the ledger, start watching, queue files that arrived while down, start the
        worker; then tell systemd ``READY=1``. Raises ``ConfigError`` for a missing folder."""
        if self._started:
            raise RuntimeError("Service already started")
        state = Path(self.cfg.output.state_dir)
        self._ledger = Ledger(state)
        self._book.ledger = self._ledger
        try:
            self._guard = FileGuard(self.cfg.watch, self._ledger, state,
                                    exit_on_hang=self._exit_on_hang)  # fmt: skip
            death = self._guard.open()
            if death is not None:
                self._event(
                    "previous_run_died", level="error",
                    path=str(death.key.path) if death.key else None, stacks=death.trace,
                    hint="the previous run hung or crashed (stacks above, from "
                    f"{self._guard.trace_path}); the file in hand counts one stall",
                )  # fmt: skip
            # Watch first, then scan: a file arriving in between is seen by one or the other.
            self._watcher.start()
            try:
                self._startup_scan()
            except BaseException:
                self._watcher.stop()
                raise
        except BaseException:
            if self._guard is not None:
                self._guard.close()
            self._ledger.close()
            raise
        self._started = True
        self._started_at = time.time()
        self._spawn("wavedqm-settle", self._settle_loop)
        self._spawn("wavedqm-worker", self._worker_loop)
        interval = sdnotify.watchdog_interval()
        if interval is not None:
            self._spawn("wavedqm-heartbeat", lambda: self._heartbeat_loop(interval))
        log.info(
            "service_started",
            paths=[str(p) for p in self._watcher.paths],
            patterns=list(self._watcher.patterns),
            mode=self.watch_mode,
            settle_seconds=self.tracker.settle_seconds,
            watchdog_interval_seconds=interval,
        )
        sdnotify.notify("READY=1\nSTATUS=" + self._status_line())

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop watching, let the worker finish the file in hand (files still queued are left
        for the next start-up scan), join the threads. True if everything stopped within
        ``timeout`` (s); if the worker is still busy it is left to finish in the background."""
        if not self._started or self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout
        sdnotify.notify("STOPPING=1")
        with self._lock:
            current = self._current
        log.info("service_stopping", processing=str(current) if current else None)
        self._watcher.stop(timeout)
        self._stop.set()
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = [name for name, t in self._threads.items() if t.is_alive()]
        if busy:
            with self._lock:
                current = self._current
            log.warning(
                "service_stop_timeout",
                threads=busy,
                processing=str(current) if current else None,
                timeout_seconds=timeout,
            )
            return False
        if self._guard is not None:
            self._guard.close()
        self.ledger.close()
        log.info("service_stopped", **self._book.counts())
        return True

    def run_forever(self) -> None:
        """Start (if needed), block until SIGTERM or SIGINT, then stop cleanly.

        Must be called from the main thread (signal handlers)."""
        requested = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            requested.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not self._started:
                self.start()
            while not requested.wait(0.5):
                pass
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.stop()

    def healthy(self) -> bool:
        """True while running with the observer, settle and worker threads alive, and no
        file in hand longer than ``watch.max_processing_seconds``."""
        if not self._started or self._stopped:
            return False
        threads = [self._threads.get(n) for n in ("wavedqm-settle", "wavedqm-worker")]
        alive = self._watcher.is_alive() and all(t is not None and t.is_alive() for t in threads)
        return alive and self.stalled() is None

    def in_hand_seconds(self) -> float:
        """How long ``handle`` has been working on the file in hand (s); 0 when idle."""
        return 0.0 if self._guard is None else self._guard.in_hand_seconds()

    def stalled(self) -> tuple[Path, float] | None:
        """(file, seconds in hand) while a file has been in hand longer than
        ``watch.max_processing_seconds``; else None."""
        stall = None if self._guard is None else self._guard.stalled()
        return None if stall is None else (stall.path, stall.seconds)

    def health_report(self) -> tuple[bool, str]:
        """For ``/healthz``: (ok, one line). Not ok while unhealthy or stalled, and while our
        outputs or state cannot be written (files wait for a retry; the watchdog is not
        withheld for it: a restart does not free a disk)."""
        stalled = self.stalled()
        if stalled is not None:
            return False, (
                f"stalled: {stalled[0]} in hand for {stalled[1]:.0f} s (more than "
                f"watch.max_processing_seconds = {self.cfg.watch.max_processing_seconds:g})"
            )
        if not self.healthy():
            return False, "unhealthy"
        return self._book.health()

    def status(self) -> dict[str, Any]:
        """A snapshot for systemd ``STATUS=`` and ``/healthz``: last file, queue, counts."""
        with self._lock:
            current = self._current
            retrying = len(self._retry)
        last = self._book.last()
        return {
            "healthy": self.healthy(),
            "watch_mode": self.watch_mode,
            "started_at": self._started_at,
            "queue": self._queue.qsize(),
            "settling": len(self.tracker),
            "retrying": retrying,
            "processing": str(current) if current else None,
            "last_file": last.get("path"),
            "last_status": last.get("status"),
            "last_reason": last.get("reason"),
            "last_finished_at": last.get("finished_at"),
            "output_error": self._book.output_error(),
            "counts": self._book.counts(),
        }

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` (s) until nothing is settling, queued, retrying or being
        processed. True if idle. (Events not yet delivered by the observer are not seen.)"""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self._settle_pass.acquire(timeout=max(0.0, remaining)):
                try:
                    with self._lock:
                        idle = (
                            not self._queued
                            and self._current is None
                            and not self._worker_busy
                            and not self._retry
                            and self._queue.empty()
                        )
                    idle = idle and len(self.tracker) == 0
                finally:
                    self._settle_pass.release()
                if idle:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads[name] = thread
        thread.start()

    def _event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Log a structlog event and pass it to ``on_event``."""
        getattr(log, level)(name, **fields)
        if self._on_event is not None:
            try:
                self._on_event(name, **fields)
            except Exception:
                log.exception("on_event_callback_failed", event_name=name)

    def _queue_size_changed(self) -> None:
        if self._on_queue_size is not None:
            try:
                self._on_queue_size(self._queue.qsize())
            except Exception:
                log.exception("on_queue_size_callback_failed")

    def _on_change(self, path: Path, done: bool = False) -> None:
        """Observer thread: a matching file changed (``done``: was closed after writing or
        renamed in: the short settle time)."""
        new = path not in self.tracker
        if self.tracker.touch(path, signalled=done) and new:
            self._event("file_detected", path=str(path), source="event")

    def _on_done(self, path: Path) -> None:
        self._on_change(path, done=True)

    def _startup_scan(self) -> None:
        """Files that arrived while the daemon was down: unseen ones start settling."""
        found = scan(self._watcher.paths, self._watcher.patterns, self._watcher.recursive)
        n_new = 0
        for path in found:
            try:
                key = fingerprint(path, read_header=False)
            except OSError:
                continue  # vanished
            if self.ledger.seen(key):
                continue
            if self.tracker.touch(path):
                n_new += 1
                self._event("file_detected", path=str(path), source="scan")
        log.info("startup_scan", found=len(found), unseen=n_new)

    def _settle_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._settle_pass:
                    self._settle_once()
            except Exception:
                log.exception("settle_loop_error")
            self._stop.wait(self._tick)

    def _settle_once(self) -> None:
        self._check_stall()
        if self._book.has_unrecorded():
            for item in self._book.flush():
                log.info("ledger_write_recovered", path=str(item.key.path), status=item.status)
        for path in self.tracker.due():
            self._offer(path, retry=False)
        now = time.monotonic()
        with self._lock:
            retries = [p for p, t in self._retry.items() if t <= now]
            for p in retries:
                del self._retry[p]
        for path in retries:
            self._offer(path, retry=True)

    def _check_stall(self) -> None:
        """Settle thread: say once per file that it has been in hand too long."""
        stall = None if self._guard is None else self._guard.check()
        if stall is not None and self._guard is not None:
            self._event("file_stalled", level="error", **self._guard.describe(stall))
            sdnotify.notify("STATUS=stalled on " + stall.path.name)

    def _offer(self, path: Path, *, retry: bool) -> None:
        """Settle thread: queue a complete file unless queued, in hand or already seen."""
        completed_at = time.time()
        if not retry:
            self._event("file_complete", path=str(path))
        with self._lock:
            if path == self._current:
                self._dirty.add(path)  # changed while being processed: re-check afterwards
                return
            if path in self._queued:
                return
            self._retry.pop(path, None)
        try:
            key = fingerprint(path, read_header=False)
        except FileNotFoundError:
            log.info("file_vanished", path=str(path))
            return
        except OSError:
            key = None  # the worker reports it
        if key is not None and self._book.seen(key):
            self._skipped(path, key)
            return
        with self._lock:
            self._queued.add(path)
        item = Item(path, completed_at)
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                break
            except queue.Full:
                if not self._queue_full_logged:
                    self._queue_full_logged = True
                    log.warning("queue_full", max_files=self._queue.maxsize, path=str(path))
        else:
            with self._lock:
                self._queued.discard(path)
            return
        self._queue_full_logged = False
        self._event("file_queued", path=str(path), retry=retry, queue=self._queue.qsize())
        self._queue_size_changed()

    def _status_line(self) -> str:
        """One line for systemd ``STATUS=``."""
        last, counts = self._book.last(), self._book.counts()
        parts = []
        if last:
            result = last["status"] + (f" ({last['reason']})" if last["reason"] else "")
            parts.append(f"last {Path(last['path']).name}: {result}")
        else:
            parts.append(f"watching {len(self._watcher.paths)} folder(s) ({self.watch_mode})")
        parts.append(f"queue {self._queue.qsize()}")
        parts.append(f"ok {counts['ok']}, failed {counts['failed']}")
        return "; ".join(parts)

    def _heartbeat_loop(self, interval: float) -> None:
        warned = False
        while not self._stop.wait(interval):
            if self.healthy():
                sdnotify.notify("WATCHDOG=1")
                warned = False
            elif not warned:
                warned = True
                log.error("unhealthy_watchdog_withheld", status=self.status())
