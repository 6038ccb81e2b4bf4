"""The drawings of ``wavedqm reprocess`` on the Dask workers: the router's plotting queue
(``submit(job, key)`` / ``close()``) with each job a task, so that figures and PDF reports
(seconds of CPU per file) scale with the cluster instead of one client thread."""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

from wavedqm.logs import get_logger
from wavedqm.reprocess.tasks import draw

log = get_logger(__name__)


class DaskDrawings:
    """Drawing jobs as Dask tasks. At most ``max_pending`` unfinished at a time (a job
    carries its figures' data: the client waits for the oldest rather than hold them all)."""

    def __init__(self, client: Any, max_pending: int) -> None:
        self.client = client
        self.max_pending = max(1, max_pending)
        self._futures: deque[Any] = deque()

    def submit(self, fn: Any, key: str | None = None) -> Any:
        """Send ``fn`` to a worker (``key``, the daemon's "only the latest drawing of this"
        hint, does not apply: in a reprocess every drawing is made)."""
        while len(self._futures) >= self.max_pending:
            self._wait(self._futures.popleft())
        future = self.client.submit(draw, fn, pure=False, retries=1)
        self._futures.append(future)
        return future

    @staticmethod
    def _wait(future: Any) -> None:
        try:
            future.result()
        except Exception as err:  # a lost worker twice: the figure is missing, say so
            log.error("drawing_lost", error=f"{type(err).__name__}: {err}")

    def close(self, abandon: bool = False) -> None:
        """Wait for every drawing submitted (``abandon``: cancel those not finished)."""
        while self._futures:
            future = self._futures.popleft()
            if abandon:
                with contextlib.suppress(Exception):
                    future.cancel()
            else:
                self._wait(future)

    def wait_idle(self, timeout: float | None = None) -> None:
        for future in list(self._futures):
            with contextlib.suppress(Exception):
                future.result(timeout)
