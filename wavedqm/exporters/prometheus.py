"""The file-level Prometheus metrics of wavedqm: one registry per process.

Files processed and failed (by reason), processing time and latency, events, the heartbeat
(last file time), the queue, the service's constants. Counted once per file by the router
(:mod:`wavedqm.processors.router`), whatever processors took the file; each processor registers
its own metrics on the same registry (``LightMetrics``, ``S2Metrics``, ...).

Naming follows ``shared/spec/operations.md``: prefix ``wavedqm_``, base units as suffix,
counters end in ``_total``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.errors import FAILURE_REASONS

PROCESSING_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
PROCESSOR_STATUSES = ("ok", "nothing", "failed")
"""``status`` of ``wavedqm_processor_files_total``."""


class FileMetrics:
    """The file-level metrics a daemon or a batch run exposes."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        data_taking_expected: bool = True,
        max_file_gap_seconds: float = C.MAX_FILE_GAP_SECONDS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.files_processed = Counter(
            "wavedqm_files_processed", "Files processed successfully.", registry=r
        )
        self.files_failed = Counter(
            "wavedqm_files_failed",
            "Files that could not be processed, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in FAILURE_REASONS:  # every series exists from the start, at 0
            self.files_failed.labels(reason=reason)
        self.processing_seconds = Histogram(
            "wavedqm_file_processing_seconds",
            "Wall time to read and analyse one file (s).",
            buckets=PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.latency_seconds = Histogram(
            "wavedqm_file_latency_seconds",
            "Time from the file being complete to its results being out (s).",
            buckets=PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.events_processed = Counter(
            "wavedqm_events_processed",
            "Events analysed (triggers, frames, shots): per file, the most any of its "
            "processors analysed.",
            registry=r,
        )
        self.processor_files = Counter(
            "wavedqm_processor_files",
            "Files handed to a processor, by processor and result (ok, nothing: no data of "
            "its kind in the file, failed).",
            ["processor", "status"],
            registry=r,
        )
        self.last_file_timestamp = Gauge(
            "wavedqm_last_file_processed_timestamp_seconds",
            "Unix time at which the last file was processed successfully (s).",
            registry=r,
        )
        self.queue_files = Gauge(
            "wavedqm_queue_files", "Complete files waiting to be processed.", registry=r
        )
        self.drawings_dropped = Counter(
            "wavedqm_drawings_dropped",
            "Drawings (PNGs, PDF reports) not made: superseded or the oldest under load "
            "(reason load), or still queued at shutdown (reason stop).",
            ["reason"],
            registry=r,
        )
        for reason in ("load", "stop"):
            self.drawings_dropped.labels(reason=reason)
        self.output_errors = Counter(
            "wavedqm_output_errors",
            "Times a file's outputs or state could not be written (disk full, read-only): "
            "the file is retried later, not failed.",
            registry=r,
        )
        self.output_failing = Gauge(
            "wavedqm_output_failing",
            "1 while outputs or state cannot be written (since the last such error, until a "
            "file succeeds again).",
            registry=r,
        )
        self.in_hand_seconds = Gauge(
            "wavedqm_file_in_hand_seconds",
            "How long the file being processed has been in hand (s); 0 when idle. Past "
            "wavedqm_max_processing_seconds the daemon is stalled and withholds the watchdog.",
            registry=r,
        )
        self.max_processing_seconds = Gauge(
            "wavedqm_max_processing_seconds",
            "Longest one file may be in hand before the daemon counts as stalled (config "
            "watch.max_processing_seconds; s).",
            registry=r,
        )
        Gauge(
            "wavedqm_start_time_seconds", "Unix time the process started (s).", registry=r
        ).set_to_current_time()
        Gauge(
            "wavedqm_data_taking_expected",
            "1 while files are expected (config metrics.data_taking_expected).",
            registry=r,
        ).set(1.0 if data_taking_expected else 0.0)
        Gauge(
            "wavedqm_max_file_gap_seconds",
            "Longest expected gap between files before WavedqmNoRecentFiles fires (s).",
            registry=r,
        ).set(max_file_gap_seconds)
        Info("wavedqm_build", "wavedqm version.", registry=r).info({"version": __version__})

    def file_failed(self, reason: str) -> None:
        self.files_failed.labels(reason=reason).inc()

    def drawing_dropped(self, reason: str) -> None:
        self.drawings_dropped.labels(reason=reason).inc()

    def set_queue_size(self, n: int) -> None:
        self.queue_files.set(n)

    def file_processed(
        self,
        *,
        n_events: int,
        processing_seconds: float,
        latency_seconds: float | None,
        finished_at: float,
    ) -> None:
        """Record one successful file (every processor that took it is done)."""
        self.files_processed.inc()
        self.events_processed.inc(n_events)
        self.processing_seconds.observe(processing_seconds)
        if latency_seconds is not None:
            self.latency_seconds.observe(max(latency_seconds, 0.0))
        self.last_file_timestamp.set(finished_at)

    def processor_done(self, processor: str, status: str) -> None:
        """One processor finished one file: ``status`` ok, nothing (no data of its kind in the
        file) or failed."""
        self.processor_files.labels(processor=processor, status=status).inc()
