"""The running daemon: router (with its processors and metrics) + watcher service + HTTP
server, started and stopped together. Used by ``wavedqm watch`` and ``wavedqm demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wavedqm.atomic import sweep_temp_files
from wavedqm.config import Config, parse_listen
from wavedqm.daemon.http import HttpServer
from wavedqm.daemon.preflight import check_output_folders, listen_error
from wavedqm.daemon.service import Service
from wavedqm.errors import CountedFileError
from wavedqm.exporters.prometheus import FileMetrics
from wavedqm.logs import get_logger
from wavedqm.processors.router import FileResult, Router

log = get_logger(__name__)

OnFileDone = Callable[[Path, FileResult | None], None]
"""Called after each file the service handed over: its result (None when it was deferred
because its writer still held it, or the router itself failed)."""


class DaemonApp:
    """Every part of the daemon; ``start()`` serves /metrics at once (``/healthz`` answers
    503 until watching starts), warms the kernels, then watches."""

    def __init__(
        self, cfg: Config, on_file_done: OnFileDone | None = None, *, exit_on_hang: bool = True
    ) -> None:
        """``exit_on_hang``: exit the process (status 1, stacks in ``STATE/hang.trace``) when
        one file has been in hand for twice ``watch.max_processing_seconds`` even if no Python
        thread can run (:mod:`wavedqm.daemon.guard`)."""
        self.cfg = cfg
        check_output_folders(cfg)
        self.router = Router(self.cfg)
        self.router.processors()  # every enabled processor is built (and checked) up front
        self._on_file_done = on_file_done
        self.service = Service(
            self.cfg,
            self._handle,
            on_queue_size=self.router.metrics.set_queue_size,
            on_event=self._event,
            exit_on_hang=exit_on_hang,
        )
        self.router.metrics.output_failing.set_function(
            lambda: 1.0 if self.service.status()["output_error"] else 0.0
        )
        self.router.metrics.in_hand_seconds.set_function(self.service.in_hand_seconds)
        self.router.metrics.max_processing_seconds.set(cfg.watch.max_processing_seconds)
        host, port = parse_listen(cfg.metrics.listen)
        try:
            self.http = HttpServer(
                host,
                port,
                registry=self.router.registry,
                health=self.service.health_report,
                static_dir=Path(cfg.output.dir),
            )
        except OSError as err:
            self.router.close()
            raise listen_error(host, port, err) from None

    @property
    def metrics(self) -> FileMetrics:
        """The file-level metrics on the process' registry."""
        return self.router.metrics

    def _handle(self, path: Path, completed_at: float) -> None:
        result: FileResult | None = None
        try:
            result = self.router.route(path, completed_at)
            if not result.ok:
                raise CountedFileError(path, result.failure or "internal", result.error)
        finally:
            if self._on_file_done is not None:
                self._on_file_done(path, result)

    def _event(self, name: str, **fields: object) -> None:
        """Failures the service finds itself (too large, unreadable, a crash) are counted by
        the router too; the router's own are counted once, already."""
        if name == "file_failed" and not fields.get("counted"):
            self.router.metrics.file_failed(str(fields.get("reason", "internal")))
        elif name == "output_error":
            self.router.metrics.output_errors.inc()

    @property
    def url(self) -> str:
        return f"http://{self.http.host}:{self.http.port}"

    def served_urls(self) -> list[str]:
        """URLs of the latest images and reports, for Grafana and the shift crew."""
        return [f"{self.url}/{path}" for path in self.router.served()]

    def sweep(self) -> list[Path]:
        """Remove the temporary files a killed run of ours left in the output and state
        folders (before anything is written: no writer of ours is running)."""
        watched = tuple(Path(p) for p in self.cfg.watch.paths)
        removed = []
        for folder in dict.fromkeys((self.cfg.output.dir, self.cfg.output.state_dir)):
            removed += sweep_temp_files(folder, keep_out=watched)
        if removed:
            log.warning("stale_temp_files_removed", count=len(removed),
                        files=[str(p) for p in removed[:20]])  # fmt: skip
        return removed

    def start(self) -> None:
        self.sweep()
        self.http.start()
        try:
            self.router.plots.resume()  # drawings a kill or a stop left: made first
            self.router.warm_up()
            self.service.start()
        except BaseException:
            self.http.stop()
            raise
        log.info("watching", paths=list(self.cfg.watch.paths), metrics=f"{self.url}/metrics")

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current file, drop the drawings still queued (within systemd's stop
        timeout whatever the backlog), stop serving."""
        self.service.stop(timeout=timeout)
        self.http.stop()
        self.router.close(abandon=True)

    def run_forever(self) -> None:
        """Until SIGTERM/SIGINT; then the current file is finished and everything stopped."""
        try:
            self.service.run_forever()
        finally:
            self.http.stop()
            self.router.close(abandon=True)
