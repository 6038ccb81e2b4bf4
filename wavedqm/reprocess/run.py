"""The client of ``wavedqm reprocess``: the cluster, the units of work on its workers, and
everything that writes shared state, here alone and in order.

Per ``.FLOW.hdf5`` file and shot, a worker runs the processors' ``prepare`` (the pass over the
data: light features and spectra, the file's voxel accumulator, the shot's channel metrics);
the client then routes the file through the same router as ``wavedqm process``, given what the
worker prepared: light baselines compared with the previous files of the history store,
history row, dead streaks, run voxel accumulator (the file's partial merged in), shot timing,
``summary.json``, ledger row, metrics. FLOW files go in data-time order (their first event),
shots in file order; at most a few tasks run ahead of the file being routed, so memory stays
bounded. Drawings (masks, PDF reports, voxel and shot PNGs) go back to the workers as tasks.
An S2 run is one task: a worker processes the whole run as ``wavedqm process`` does.

Faults: a task whose worker dies is run again elsewhere by Dask; a task that was running on
two workers that died (``distributed.scheduler.allowed-failures`` = 1) fails its file with
reason ``worker_lost``. Ctrl-C: no new file is routed, drawings of routed files finish, the
ledger holds exactly the files done; a rerun does the rest. A second Ctrl-C abandons the
drawings.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavedqm.config import Config
from wavedqm.daemon.ledger import Ledger, fingerprint
from wavedqm.errors import FileNotReady
from wavedqm.logs import get_logger
from wavedqm.processors.registry import Registration
from wavedqm.processors.router import FileResult, Router
from wavedqm.reprocess.drawings import DaskDrawings
from wavedqm.reprocess.plan import Plan, plan
from wavedqm.reprocess.progress import Progress
from wavedqm.reprocess.tasks import (
    IgnoreInterrupt,
    S2FileResult,
    WorkerLogging,
    data_start,
    prepare_file,
    process_s2_run,
)

log = get_logger(__name__)

REASON_WORKER_LOST = "worker_lost"
ALLOWED_FAILURES = 1
"""Worker deaths a task may be part of and still be retried (Dask's
``distributed.scheduler.allowed-failures``): the second death fails the file."""
AHEAD_PER_WORKER = 2
"""Prepare tasks in flight per worker ahead of the file being routed."""


@dataclass
class ReprocessOptions:
    scheduler: str | None = None
    """``tcp://host:8786`` of a running cluster; None: a local cluster."""
    workers: int | None = None
    """Workers of the local cluster (one process each, one thread); None: one per core."""
    since: float | None = None
    until: float | None = None
    force: bool = False
    progress: bool | None = None
    """A progress bar; None: when stderr is a terminal."""
    log_level: str = "warning"
    """The workers' log level (as the client's)."""
    announce: Callable[[str], None] | None = None
    """Told, once the cluster is up, where its dashboard is."""
    registrations: Sequence[Registration] | None = None
    """The processors (None: the configuration's; others: extensions and tests)."""


@dataclass
class ReprocessReport:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    outside: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    workers: int = 0
    dashboard: str | None = None
    client_seconds: float = 0.0
    """Time the client spent routing files (the serial part: state, summaries, ledger; s)."""
    lines: list[str] = field(default_factory=list)
    """One line per file done (as ``wavedqm process`` prints)."""
    failures: list[tuple[Path, str, str]] = field(default_factory=list)
    """``(path, reason, message)``."""


@contextmanager
def dask_client(options: ReprocessOptions) -> Iterator[Any]:
    """A Dask client: of the cluster at ``options.scheduler``, or of a new local one."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        if options.scheduler:
            with Client(options.scheduler) as client:
                yield client
            return
        import os

        n = options.workers or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True,
                silence_logs=logging.ERROR, dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            yield client


class _Stop:
    """Ctrl-C / SIGTERM: the first asks the loop to stop, the second raises."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("reprocess_stopping", signal=signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


class Reprocess:
    """One reprocess run (module doc): ``run()`` returns the report."""

    def __init__(self, cfg: Config, inputs: Sequence[Path], options: ReprocessOptions) -> None:
        self.cfg = cfg
        self.inputs = [Path(p) for p in inputs]
        self.options = options
        self.report = ReprocessReport()

    def run(self) -> ReprocessReport:
        from wavedqm.daemon.preflight import check_output_folders

        started = time.perf_counter()
        check_output_folders(self.cfg)
        ledger = Ledger(self.cfg.output.state_dir)
        try:
            work = plan(
                self.cfg, self.inputs, None if self.options.force else ledger,
                since=self.options.since, until=self.options.until,
                registrations=self.options.registrations,
            )  # fmt: skip
            self.report.skipped, self.report.outside = len(work.skipped), len(work.outside)
            if not work.n_files and not work.missing:
                self.report.seconds = time.perf_counter() - started
                return self.report  # nothing new: no cluster to start
            with dask_client(self.options) as client, _Stop() as stop:
                client.register_plugin(WorkerLogging(self.options.log_level))
                if not self.options.scheduler:
                    client.register_plugin(IgnoreInterrupt())
                self.report.workers = _workers(client)
                self.report.dashboard = getattr(client, "dashboard_link", None)
                if self.report.dashboard and self.options.announce:
                    self.options.announce(
                        f"Dask dashboard: {self.report.dashboard} ({self.report.workers} worker(s))"
                    )
                self._run(client, work, ledger, stop)
        finally:
            ledger.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    # -- the loop ----------------------------------------------------------------------------

    def _run(self, client: Any, work: Plan, ledger: Ledger, stop: _Stop) -> None:
        n_workers = self.report.workers
        drawings = DaskDrawings(client, max_pending=AHEAD_PER_WORKER * n_workers + 2)
        regs = self.options.registrations
        router = Router(self.cfg, batch=True, plots=drawings, registrations=regs)
        progress = Progress(work.n_files + len(work.missing), self.options.progress)
        self._router, self._ledger, self._progress = router, ledger, progress
        abandon = False
        try:
            for path in work.missing:
                self._failed(path, "missing", f"{path}: no such file or folder", record=False)
            s2_tasks = [
                client.submit(process_s2_run, self.cfg, files, pure=False)
                for files in work.s2_runs.values()
            ]
            ordered = self._data_order(client, work.flow) + sorted(work.files)
            router.begin_batch(ordered + work.direct)
            for path in work.direct:
                if stop.requested:
                    break
                self._finish(path, self._route(path, None))
            self._stream(client, ordered, stop, AHEAD_PER_WORKER * n_workers)
            for fut in s2_tasks:
                self._s2_done(fut, stop)
            if not stop.requested:
                for outcome in router.end_batch():
                    if outcome.failure:
                        self._failed(outcome.path, outcome.failure, outcome.error, record=False)
            self.report.interrupted = stop.requested
        except KeyboardInterrupt:
            abandon = self.report.interrupted = True
            raise
        finally:
            router.close(abandon=abandon)  # waits for the drawings on the workers
            progress.close()
        self._push(router)

    def _data_order(self, client: Any, files: list[Path]) -> list[Path]:
        """FLOW files by the time of their first event (files without one last, by name)."""
        if not files:
            return []
        starts = client.gather(client.map(data_start, files, pure=False))
        return [
            p for _, _, p in sorted(
                ((t is None, t or 0.0, p) for t, p in zip(starts, files, strict=True)),
            )
        ]  # fmt: skip

    def _stream(self, client: Any, ordered: list[Path], stop: _Stop, ahead: int) -> None:
        todo = deque(ordered)
        inflight: deque[tuple[Path, Any]] = deque()
        while (todo or inflight) and not stop.requested:
            while todo and len(inflight) < max(1, ahead):
                path = todo.popleft()
                future = client.submit(
                    prepare_file, self.cfg, path, self.options.registrations, pure=False
                )
                inflight.append((path, future))
            path, future = inflight.popleft()
            _wait_or_stop(future, stop)
            if stop.requested:
                future.cancel()
                break
            try:
                prepared = future.result()
            except Exception as err:  # KilledWorker: it took two workers down with it
                self._failed(path, REASON_WORKER_LOST, _lost(path, err))
                continue
            finally:
                future.release()
            self._finish(path, self._route(path, prepared))
        for _, future in inflight:
            future.cancel()

    def _route(self, path: Path, prepared: dict[str, Any] | None) -> FileResult | None:
        try:
            return self._router.route(path, prepared=prepared)
        except FileNotReady as err:
            self._failed(path, "not_ready", str(err))
            return None

    def _finish(self, path: Path, result: FileResult | None) -> None:
        if result is None:
            return
        self.report.client_seconds += result.seconds
        if result.ok:
            self._done(path, result.line(), result.seconds)
        else:  # the router counted it
            self._failed(path, result.failure or "internal", result.error, counted=True)

    def _s2_done(self, future: Any, stop: _Stop) -> None:
        _wait_or_stop(future, stop)
        if not future.done():
            future.cancel()
            return
        try:
            results: list[S2FileResult] = future.result()
        except Exception as err:
            log.error("s2_run_lost", error=f"{type(err).__name__}: {err}")
            return
        metrics = self._router.metrics
        for r in results:
            if r.set_done:
                if r.ok:
                    self.report.lines.append(r.line)
                else:
                    self._failed(r.path, r.failure or "internal", r.error, record=False)
                continue
            if r.ok:
                metrics.file_processed(
                    n_events=r.events, processing_seconds=r.seconds, latency_seconds=None,
                    finished_at=time.time(),
                )  # fmt: skip
                self._done(r.path, r.line, r.seconds)
            else:
                self._failed(r.path, r.failure or "internal", r.error)

    # -- bookkeeping -----------------------------------------------------------------------

    def _record(self, path: Path, status: str, reason: str = "", seconds: float = 0.0) -> None:
        try:
            self._ledger.record(fingerprint(path), status, reason, seconds)  # type: ignore[arg-type]
        except OSError as err:  # gone since: nothing to remember it by
            log.warning("ledger_skip", file=str(path), error=str(err))

    def _done(self, path: Path, line: str, seconds: float) -> None:
        self._record(path, "ok", seconds=seconds)
        self.report.done += 1
        self.report.lines.append(line)
        self._progress.update(ok=True, path=path)

    def _failed(
        self, path: Path, reason: str, message: str, *, record: bool = True,
        counted: bool = False,
    ) -> None:  # fmt: skip
        if not counted:
            self._router.count_failure(path, reason, message)
        if record and path.is_file():
            self._record(path, "failed", reason)
        self.report.failed += 1
        self.report.failures.append((path, reason, message))
        log.error("file_failed", file=str(path), reason=reason, error=message)
        self._progress.update(ok=False, path=path)

    def _push(self, router: Router) -> None:
        if self.cfg.metrics.pushgateway:
            from prometheus_client import push_to_gateway

            push_to_gateway(
                self.cfg.metrics.pushgateway, job=self.cfg.metrics.job, registry=router.registry
            )


def _wait_or_stop(future: Any, stop: _Stop) -> None:
    """Wait for ``future`` in half-second steps, so that a stop request is seen."""
    from distributed import wait

    while not future.done() and not stop.requested:
        with contextlib.suppress(TimeoutError):
            wait(future, timeout=0.5)


def _lost(path: Path, err: Exception) -> str:
    return (
        f"{path}: its task was lost with {ALLOWED_FAILURES + 1} workers "
        f"({type(err).__name__}: {err}); the file may crash the reader (try "
        "`wavedqm process` on it alone)"
    )


def reprocess(
    cfg: Config, inputs: Sequence[Path], options: ReprocessOptions | None = None
) -> ReprocessReport:
    """Reprocess ``inputs`` (module doc)."""
    return Reprocess(cfg, inputs, options or ReprocessOptions()).run()


__all__ = ["ReprocessOptions", "ReprocessReport", "reprocess"]
