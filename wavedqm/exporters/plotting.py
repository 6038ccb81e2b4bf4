"""The one plotting thread of a process: matplotlib work (PNGs, PDF reports) off the path to
the metrics, for every processor.

Jobs run in submission order on one thread (matplotlib's pyplot state is not thread-safe, and
one thread keeps the second core for the analysis). A job submitted with a ``key`` is skipped
when a newer job with the same key was submitted before it started (a set's or a run's plots
superseded by newer ones); ``key=None`` jobs always run. A job that raises is logged and gives
``{}``: one bad figure never stops the thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from wavedqm.logs import get_logger

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = get_logger(__name__)

PlotJob = Callable[[], dict[str, Path]]
"""Draws and writes; returns what it wrote (name -> path)."""
PageBuilder = Callable[[], "Figure"]
"""Draws one page of a PDF report (called on the plotting thread)."""
Page = tuple[str, PageBuilder]
"""``(title, builder)`` of a report page."""


class PlotQueue:
    """One thread that draws (module doc). ``close()`` waits for the jobs submitted."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wavedqm-plots")
        self._latest: dict[str, int] = {}
        self._lock = Lock()

    def submit(self, fn: PlotJob, key: str | None = None) -> Future[dict[str, Path]]:
        generation = 0
        if key is not None:
            with self._lock:
                generation = self._latest.get(key, 0) + 1
                self._latest[key] = generation
        return self._pool.submit(self._run, fn, key, generation)

    def _run(self, fn: PlotJob, key: str | None, generation: int) -> dict[str, Path]:
        if key is not None:
            with self._lock:
                if self._latest.get(key) != generation:
                    return {}
        try:
            return fn()
        except Exception:  # never lose the plotting thread to one bad figure
            log.exception("plots_failed", key=key)
            return {}

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until every job submitted so far has run (jobs run in order)."""
        self._pool.submit(lambda: None).result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
