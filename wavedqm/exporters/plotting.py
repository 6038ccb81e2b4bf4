"""The one plotting thread of a process: matplotlib work (PNGs, PDF reports) off the path to
the metrics, for every processor.

Jobs run in submission order on one thread (matplotlib's pyplot state is not thread-safe, and
one thread keeps the second core for the analysis). A job submitted with a ``key`` is skipped
when a newer job with the same key was submitted before it started (a set's or a run's plots
superseded by newer ones); ``key=None`` jobs always run. A job that raises is logged and gives
``{}``: one bad figure never stops the thread.

Memory stays bounded under a burst of files (each pending job holds its file's results):
with ``max_pending``, submitting beyond it drops pending jobs — superseded keyed ones first,
then the oldest — which then give ``{}`` without drawing and release what they held; each drop
is logged and passed to ``on_drop("load")``. ``close(abandon=True)`` (the daemon stopping)
drops everything still queued (``on_drop("stop")``) and waits only for the job running.
With a ``journal`` (the daemon's), every queued job is on disk until it ran or was dropped
under load: what a kill or a stop left is drawn at the next start (:meth:`PlotQueue.resume`).

With ``processes`` (the router's default: 1, ``[output] drawing_processes``), the plotting
thread hands each job to a helper process and waits for it: the figures and PDF pages (seconds
of CPU per file) no longer hold the GIL of the process that analyses the next file. A job that
cannot be sent there (it does not pickle) is drawn on the thread as before; a job that kills
its helper (a crash in a drawing library) is logged and gives ``{}``, and the next job starts a
new helper: the daemon itself never dies of a drawing.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from wavedqm.exporters.drawing_journal import draw_entry
from wavedqm.logs import configure_logging, current_level, get_logger

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from wavedqm.exporters.drawing_journal import DrawingJournal

log = get_logger(__name__)

PlotJob = Callable[[], dict[str, Path]]
"""Draws and writes; returns what it wrote (name -> path)."""
PageBuilder = Callable[[], "Figure"]
"""Draws one page of a PDF report (called on the plotting thread)."""
Page = tuple[str, PageBuilder]
"""``(title, builder)`` of a report page."""


@dataclass(eq=False)
class _Job:
    fn: PlotJob | None
    key: str | None
    generation: int
    running: bool = False
    entry: Path | None = None
    """Its journal entry (kept while it is to be drawn)."""


class PlotQueue:
    """One thread that draws (module doc). ``close()`` waits for the jobs submitted."""

    def __init__(
        self,
        max_pending: int | None = None,
        on_drop: Callable[[str], None] | None = None,
        processes: int = 0,
        journal: DrawingJournal | None = None,
    ) -> None:
        self.journal = journal
        """Where queued jobs are written until drawn (the daemon: a kill loses none)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wavedqm-plots")
        self.processes = max(0, int(processes))
        self._helpers: ProcessPoolExecutor | None = None
        """Started with the first job (a queue that never draws costs nothing)."""
        self._latest: dict[str, int] = {}
        self._lock = Lock()
        self.max_pending = max_pending
        self._on_drop = on_drop
        self._queued: deque[_Job] = deque()
        self.dropped = 0

    def submit(
        self, fn: PlotJob, key: str | None = None, *, entry: Path | None = None
    ) -> Future[dict[str, Path]]:
        """Queue ``fn`` (journaled first when there is a journal; ``entry``: it already is)."""
        if self.journal is not None and entry is None:
            try:
                entry = self.journal.record(fn, key)
            except OSError as err:  # a full state disk: drawn if we live, not journaled
                log.warning("drawing_not_journaled", key=key, error=str(err))
        if entry is not None:  # its data waits on disk, not in memory
            fn = partial(draw_entry, str(entry))
        with self._lock:
            generation = 0
            if key is not None:
                generation = self._latest.get(key, 0) + 1
                self._latest[key] = generation
            job = _Job(fn, key, generation, entry=entry)
            self._queued.append(job)
            dropped = self._shed()
        for _ in range(dropped):
            self._dropped("load")
        return self._pool.submit(self._run, job)

    def _shed(self) -> int:
        """Drop pending jobs beyond ``max_pending`` (lock held): superseded first, then the
        oldest. Returns how many."""
        while self._queued and (self._queued[0].fn is None or self._queued[0].running):
            self._queued.popleft()  # done or running: no longer pending
        if self.max_pending is None or len(self._queued) <= self.max_pending:
            return 0
        n = 0
        for job in list(self._queued):
            if len(self._queued) - n <= self.max_pending:
                break
            if job.key is not None and self._latest.get(job.key) != job.generation:
                job.fn = None
                self._forget(job)
                n += 1
        for job in list(self._queued):
            if len(self._queued) - n <= self.max_pending:
                break
            if job.fn is not None and not job.running:
                job.fn = None
                self._forget(job)
                n += 1
        self._queued = deque(j for j in self._queued if j.fn is not None)
        return n

    def _forget(self, job: _Job) -> None:
        if self.journal is not None:
            self.journal.done(job.entry)
            job.entry = None

    def resume(self) -> int:
        """Queue again what the journal holds from a previous run (killed, or stopped with
        drawings queued); returns how many."""
        if self.journal is None:
            return 0
        pending = self.journal.pending()
        for p in pending:
            self.submit(partial(draw_entry, str(p.entry)), p.key, entry=p.entry)
        if pending:
            log.info("drawings_resumed", count=len(pending))
        return len(pending)

    def _dropped(self, reason: str) -> None:
        self.dropped += 1
        log.warning("drawing_dropped", reason=reason)
        if self._on_drop is not None:
            self._on_drop(reason)

    def _run(self, job: _Job) -> dict[str, Path]:
        with self._lock:
            fn = job.fn
            job.running = True
            superseded = job.key is not None and self._latest.get(job.key) != job.generation
        if fn is None or superseded:
            self._forget(job)
            return {}
        try:
            if self.processes:
                drawn = self._in_helper(fn, job.key)
                if drawn is not None:
                    return drawn
            return fn()
        except Exception:  # never lose the plotting thread to one bad figure
            log.exception("plots_failed", key=job.key)
            return {}
        finally:
            job.fn = None
            self._forget(job)

    def _in_helper(self, fn: PlotJob, key: str | None) -> dict[str, Path] | None:
        """Draw ``fn`` in the helper process; None when it cannot go there."""
        try:
            if self._helpers is None:
                import multiprocessing

                self._helpers = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_helper_init,
                    initargs=(current_level(), os.getpid()),
                )
            status, value = self._helpers.submit(_draw_job, fn).result()
        except BrokenProcessPool as err:  # the drawing killed its helper: never retried here
            log.error("drawing_helper_died", key=key, error=str(err))
            if self._helpers is not None:
                self._helpers.shutdown(wait=False)
                self._helpers = None
            return {}
        except Exception as err:  # the job does not pickle: draw it on the thread
            log.debug("drawing_in_thread", key=key, why=f"{type(err).__name__}: {err}")
            return None
        if status == "error":
            log.error("plots_failed", key=key, error=value)
            return {}
        return value

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until every job submitted so far has run (jobs run in order)."""
        self._pool.submit(lambda: None).result(timeout)

    def close(self, abandon: bool = False) -> None:
        """Wait for the jobs submitted; with ``abandon``, drop those not started yet."""
        if abandon:
            with self._lock:
                pending = [j for j in self._queued if j.fn is not None and not j.running]
                for job in pending:
                    job.fn = None
                self._queued.clear()
            for _ in pending:
                self._dropped("stop")
        self._pool.shutdown(wait=True)
        if self._helpers is not None:
            self._helpers.shutdown(wait=True)
            self._helpers = None


def _draw_job(fn: PlotJob) -> tuple[str, object]:
    """In the helper process: ``("ok", written)`` or ``("error", traceback)`` (a drawing that
    fails is reported, never retried on the thread)."""
    try:
        return "ok", fn()
    except Exception:
        return "error", traceback.format_exc()


HELPER_PARENT_CHECK_SECONDS = 1.0
"""How often a drawing helper checks that the daemon that started it is still alive (s)."""


def _helper_init(level: str, parent_pid: int) -> None:
    """A drawing helper's start: the daemon's log level, and a thread that ends the helper
    once its daemon is gone. A daemon killed with SIGKILL (kill -9, the OOM killer, the hang
    exit) cannot stop its pool, and the helper would wait for a job forever, holding its
    memory (about 200 MB: the stress run's kills left 144 of them, 21 GB)."""
    configure_logging(level)

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(HELPER_PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch_parent, name="wavedqm-helper-parent", daemon=True).start()
