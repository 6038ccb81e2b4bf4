"""The running daemon: pipeline + metrics + watcher service + HTTP server, started and stopped
together. Used by ``wavedqm watch`` and ``wavedqm demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wavedqm.config import Config, parse_listen
from wavedqm.daemon.http import HttpServer
from wavedqm.daemon.service import Service
from wavedqm.exporters.prometheus import DqmMetrics
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.kernels.s2 import warm_up as s2_warm_up
from wavedqm.logs import get_logger
from wavedqm.pipeline import Pipeline
from wavedqm.s2_pipeline import WFM_SUFFIX, process_wfm, s2_pipeline_from_config

log = get_logger(__name__)


class DaemonApp:
    """Every part of the daemon; ``start()`` serves /metrics first, then watches."""

    def __init__(self, cfg: Config, on_file_done: Callable[[Path], None] | None = None) -> None:
        self.cfg = cfg
        self.metrics = DqmMetrics(
            data_taking_expected=cfg.metrics.data_taking_expected,
            max_file_gap_seconds=cfg.metrics.max_file_gap_seconds,
        )
        self.pipeline = Pipeline(cfg, self.metrics)
        self.s2 = s2_pipeline_from_config(cfg, S2Metrics(self.metrics.registry))
        self._on_file_done = on_file_done
        self.service = Service(
            cfg, self._handle, on_queue_size=self.metrics.set_queue_size, on_event=self._event
        )
        host, port = parse_listen(cfg.metrics.listen)
        self.http = HttpServer(
            host,
            port,
            registry=self.metrics.registry,
            health=self.service.healthy,
            static_dir=Path(cfg.output.dir),
        )

    def _handle(self, path: Path, completed_at: float) -> None:
        try:
            if path.suffix.lower() == WFM_SUFFIX:
                process_wfm(self.s2, self.metrics, path, completed_at)
            else:
                self.pipeline.process(path, completed_at)
        finally:
            if self._on_file_done is not None:
                self._on_file_done(path)

    def _event(self, name: str, **fields: object) -> None:
        """Every failure the service records (incl. ``too_large``) is counted once, here."""
        if name == "file_failed":
            self.metrics.file_failed(str(fields.get("reason", "internal")))

    @property
    def url(self) -> str:
        return f"http://{self.http.host}:{self.http.port}"

    def start(self) -> None:
        s2_warm_up()
        self.http.start()
        self.service.start()
        log.info("watching", paths=list(self.cfg.watch.paths), metrics=f"{self.url}/metrics")

    def stop(self, timeout: float = 30.0) -> None:
        self.service.stop(timeout=timeout)
        self.http.stop()
        self._close_pipelines()

    def _close_pipelines(self) -> None:
        self.pipeline.close()
        self.s2.close()

    def run_forever(self) -> None:
        """Until SIGTERM/SIGINT; then the current file is finished and everything stopped."""
        try:
            self.service.run_forever()
        finally:
            self.http.stop()
            self._close_pipelines()
