"""The router: detect a file's format once, hand the file to every processor that accepts
it, count the file once.

Used by the daemon (``wavedqm watch`` / ``demo``: one call of :meth:`Router.route` per complete
file) and by ``wavedqm process`` (a batch: :meth:`Router.begin_batch`, ``route`` per file,
:meth:`Router.end_batch`). Per file:

1. the format, from the first bytes (:func:`wavedqm.formats.detect.detect`);
2. every enabled processor whose formats include it and whose ``accepts`` says yes, in
   registry order (a ``.FLOW.hdf5`` file: light, then charge), each reading its own datasets.
   A processor's ``InputFileError`` / ``ConfigError`` / unexpected exception is its failure
   (the others still run); ``FileNotReady`` before any processor finished defers the whole
   file (the daemon retries it), and so does an ``OutputError`` (a full or read-only disk);
3. ``OUT/<file>/summary.json`` from the processors' sections, atomically; the per-file PDF
   report from their pages, on the plotting thread;
4. the file-level metrics, once: processed (events, processing time, latency, heartbeat) or
   failed with the first failure's reason; and per processor ok / nothing / failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from wavedqm.atomic import atomic_write_json
from wavedqm.config import Config
from wavedqm.constants import LATEST_REPORT_FILE, REPORT_FILE, REPORTS_DIR, SUMMARY_FILE
from wavedqm.errors import ConfigError, FileNotReady, InputFileError, OutputError
from wavedqm.exporters.drawing_journal import DrawingJournal
from wavedqm.exporters.paths import file_output_dir
from wavedqm.exporters.plotting import Page, PlotQueue
from wavedqm.exporters.prometheus import FileMetrics
from wavedqm.formats.detect import FileFormat, detect
from wavedqm.logs import get_logger
from wavedqm.processors import registry as reg
from wavedqm.processors.base import (
    NOT_PREPARED,
    DetectedFile,
    Outcome,
    Processor,
    ProcessorContext,
    merge_documents,
)

log = get_logger(__name__)

REASON_INTERNAL = "internal"
REASON_NO_DATA = "no_data"


@dataclass
class FileResult:
    """What one file gave: each processor's outcome, and the file's own verdict."""

    path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    failure: str | None = None
    """Reason label when the file failed (the first failing processor's, or the router's)."""
    error: str = ""
    seconds: float = 0.0
    document: dict[str, Any] | None = None
    """The ``summary.json`` written (None: no processor gave a section)."""
    outputs: dict[str, Path] = field(default_factory=dict)
    report: Future[dict[str, Path]] | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def events(self) -> int:
        return max((o.events for o in self.outcomes), default=0)

    def outcome(self, processor: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.processor == processor), None)

    def detail(self, processor: str) -> Any:
        outcome = self.outcome(processor)
        return None if outcome is None else outcome.detail

    def wait(self, timeout: float | None = None) -> dict[str, Path]:
        """Wait for every drawing of this file (plots, then the report)."""
        written: dict[str, Path] = {}
        for outcome in self.outcomes:
            written |= outcome.wait(timeout)
        if self.report is not None:
            written |= self.report.result(timeout)
        return written

    def line(self) -> str:
        """One line for a human: what each processor made of the file, or why it failed."""
        parts = [f"{o.processor}: {o.summary}" for o in self.outcomes if o.summary]
        if "summary" in self.outputs:
            parts.append(f"summary {self.outputs['summary']}")
        return f"{self.path}: " + ("; ".join(parts) if parts else "done")


def watch_patterns(cfg: Config) -> tuple[str, ...]:
    """The file-name globs the daemon picks up: ``watch.patterns`` if set, else those of the
    enabled processors' formats."""
    if cfg.watch.patterns:
        return cfg.watch.patterns
    formats = dict.fromkeys(f for r in reg.enabled(cfg.processors.disabled) for f in r.formats)
    return tuple(dict.fromkeys(p for f in formats for p in f.patterns))


class Router:
    """The enabled processors of ``cfg`` (built when first needed), the file-level metrics on
    ``registry`` (a fresh one by default) and the one plotting thread. ``batch``: this is
    ``wavedqm process``."""

    def __init__(
        self,
        cfg: Config,
        *,
        registry: CollectorRegistry | None = None,
        batch: bool = False,
        registrations: Sequence[reg.Registration] | None = None,
        plots: PlotQueue | None = None,
    ) -> None:
        self.cfg = cfg
        self.metrics = FileMetrics(
            registry,
            data_taking_expected=cfg.metrics.data_taking_expected,
            max_file_gap_seconds=cfg.metrics.max_file_gap_seconds,
        )
        self.plots = plots or PlotQueue(
            max_pending=None if batch else cfg.output.max_pending_drawings,
            on_drop=self.metrics.drawing_dropped,
            processes=cfg.output.drawing_processes,
            journal=None if batch else DrawingJournal(Path(cfg.output.state_dir)),
        )
        """Where the drawings go: the plotting thread, or (``wavedqm reprocess``) anything
        with the same ``submit`` / ``close``, e.g. the Dask workers."""
        self.context = ProcessorContext(cfg, self.metrics.registry, self.plots, batch)
        self.registrations = list(
            registrations if registrations is not None else reg.enabled(cfg.processors.disabled)
        )
        self.formats: tuple[FileFormat, ...] = tuple(
            dict.fromkeys(f for r in self.registrations for f in r.formats)
        )
        self._built: dict[str, Processor] = {}

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    # -- processors ------------------------------------------------------------------------

    def _processor(self, registration: reg.Registration) -> Processor:
        processor = self._built.get(registration.name)
        if processor is None:
            processor = reg.build(registration, self.context)
            self._built[registration.name] = processor
        return processor

    def processors(self) -> list[Processor]:
        """Every enabled processor, built (the daemon builds them all at start-up)."""
        return [self._processor(r) for r in self.registrations]

    def warm_up(self) -> None:
        for processor in self.processors():
            processor.warm_up()

    def served(self) -> list[str]:
        """URL paths of the latest outputs kept up to date for Grafana."""
        paths = [p for processor in self.processors() for p in processor.served]
        if self.cfg.output.reports:
            paths.append(f"{REPORTS_DIR}/{LATEST_REPORT_FILE}")
        return paths

    def close(self, abandon: bool = False) -> None:
        """Wait for the drawings (``abandon``: only the one being drawn; the daemon stopping),
        then close every processor that was built."""
        self.plots.close(abandon=abandon)
        for processor in self._built.values():
            processor.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batches ---------------------------------------------------------------------------

    def begin_batch(self, paths: Sequence[Path]) -> None:
        """Tell the processors that may take some of ``paths`` (by name: a format's pattern
        or suffix) that a batch starts; the others are not even built (a batch of light files
        never imports the S2 code). A batch of one file draws on the plotting thread (a helper
        process would take longer to start than the drawing)."""
        if len(paths) < 2 and isinstance(self.plots, PlotQueue):
            self.plots.processes = 0
        files = [Path(p) for p in paths]
        for registration in self.registrations:
            formats = registration.formats
            if any(f.matches_name(p) or f.has_suffix(p) for f in formats for p in files):
                self._processor(registration).begin_batch(paths)

    def end_batch(self) -> list[Outcome]:
        """The outcomes of work the processors deferred to the end of the batch; a failed
        one is counted under its reason (e.g. a bad run config)."""
        outcomes = []
        for processor in self._built.values():
            for outcome in processor.end_batch():
                if outcome.failure:
                    self.count_failure(outcome.path, outcome.failure, outcome.error)
                outcomes.append(outcome)
        return outcomes

    # -- one file --------------------------------------------------------------------------

    def count_failure(self, path: Path, reason: str, message: str) -> None:
        """Count a failed file (the caller logs it: the daemon's service with its ledger
        row, ``wavedqm process`` on stderr). Also for failures found before or outside
        :meth:`route` (too large, unreadable), so that every failure is counted here."""
        self.metrics.file_failed(reason)
        log.debug("file_failure_counted", file=str(path), reason=reason, error=message)

    def _takers(self, file: DetectedFile) -> list[Processor]:
        takers = []
        for registration in self.registrations:
            if file.format in registration.formats:
                processor = self._processor(registration)
                if processor.accepts(file):
                    takers.append(processor)
        return takers

    def route(
        self,
        path: Path,
        completed_at: float | None = None,
        prepared: Mapping[str, Any] | None = None,
    ) -> FileResult:
        """Process one complete file (module doc). Never raises for a bad file (the result
        says why it failed); raises ``FileNotReady`` when its writer still holds it and
        ``OutputError`` when an output or state file cannot be written (the file is to be
        processed again later: every processor's state replaces a file's contribution).
        ``prepared``: per processor name, what its ``prepare`` gave for this file (``wavedqm
        reprocess``: made on a worker); the others read the file themselves."""
        path = Path(path)
        started = time.perf_counter()
        result = FileResult(path)
        try:
            file = DetectedFile(path, detect(path, self.formats))
        except InputFileError as err:
            return self._failed(result, err.reason, str(err), started)
        except FileNotFoundError:
            return self._failed(result, "missing", f"{path}: no such file", started)
        except OSError as err:
            return self._failed(result, "read_error", f"{path}: cannot read ({err})", started)
        try:
            takers = self._takers(file)
        except ConfigError as err:
            return self._failed(result, "config", f"{path}: {err}", started)
        if not takers:
            return self._failed(
                result,
                "unsupported",
                f"{path}: no enabled processor takes {file.format.name} files "
                f"(processors.disabled = {list(self.cfg.processors.disabled)})",
                started,
            )
        for processor in takers:
            ready = (prepared or {}).get(processor.name, NOT_PREPARED)
            outcome = self._run(processor, path, completed_at, ready, done=result.outcomes)
            result.outcomes.append(outcome)
        self._write_summary(result)
        self._submit_report(result)
        return self._finish(result, started, completed_at)

    def _run(
        self,
        processor: Processor,
        path: Path,
        completed_at: float | None,
        prepared: Any,
        done: list[Outcome],
    ) -> Outcome:
        t0 = time.perf_counter()
        try:
            if prepared is NOT_PREPARED:
                outcome = processor.process(path, completed_at)
            else:
                outcome = processor.process(path, completed_at, prepared=prepared)
        except OutputError:
            raise  # our disk, not the file: the whole file is retried later (idempotent)
        except FileNotReady as err:
            if not any(o.failure is None for o in done):
                raise  # nothing done yet: the whole file is retried later
            outcome = Outcome(processor.name, path, failure="not_ready", error=str(err))
        except InputFileError as err:
            outcome = Outcome(processor.name, path, failure=err.reason, error=str(err))
        except ConfigError as err:
            outcome = Outcome(processor.name, path, failure="config", error=f"{path}: {err}")
        except Exception as err:  # a bug: say so, count it, go on with the other processors
            log.exception("processor_raised", processor=processor.name, file=str(path))
            outcome = Outcome(
                processor.name, path, failure=REASON_INTERNAL,
                error=f"{path}: internal error in the {processor.name} processor: {err!r}",
            )  # fmt: skip
        if not outcome.seconds:
            outcome.seconds = time.perf_counter() - t0
        status = "failed" if outcome.failure else "nothing" if outcome.nothing else "ok"
        self.metrics.processor_done(processor.name, status)
        return outcome

    def _write_summary(self, result: FileResult) -> None:
        documents = [o.document for o in result.outcomes if o.document is not None]
        if not documents:
            return
        document = merge_documents(documents)
        failures = {o.processor: o.failure for o in result.outcomes if o.failure}
        if failures:
            document["failures"] = failures
        out = file_output_dir(Path(self.cfg.output.dir), result.path) / SUMMARY_FILE
        result.outputs["summary"] = atomic_write_json(out, document)
        result.document = document

    def _submit_report(self, result: FileResult) -> None:
        pages: list[Page] = [p for o in result.outcomes for p in o.pages]
        if not pages or not self.cfg.output.reports:
            return
        subject = "; ".join(
            self._built[o.processor].report_subject for o in result.outcomes if o.pages
        )
        out_root = Path(self.cfg.output.dir)
        job = partial(write_file_report, out_root, result.path, pages, subject)
        result.report = self.plots.submit(job)

    def _finish(self, result: FileResult, started: float, completed_at: float | None) -> FileResult:
        result.seconds = time.perf_counter() - started
        failed = next((o for o in result.outcomes if o.failure), None)
        if failed is None and all(o.nothing for o in result.outcomes):
            kinds = ", ".join(o.processor for o in result.outcomes)
            failed = Outcome(
                "router", result.path, failure=REASON_NO_DATA,
                error=f"{result.path}: no data for any processor ({kinds}: none in the file)",
            )  # fmt: skip
        if failed is not None:
            result.failure, result.error = failed.failure, failed.error
            self.count_failure(result.path, result.failure or REASON_INTERNAL, result.error)
            return result
        finished_at = time.time()
        self.metrics.file_processed(
            n_events=result.events,
            processing_seconds=result.seconds,
            latency_seconds=None if completed_at is None else finished_at - completed_at,
            finished_at=finished_at,
        )
        log.info(
            "file_processed",
            file=str(result.path),
            processors=[o.processor for o in result.outcomes],
            events=result.events,
            seconds=round(result.seconds, 3),
            results={o.processor: o.summary for o in result.outcomes},
        )
        return result

    def _failed(self, result: FileResult, reason: str, message: str, started: float) -> FileResult:
        result.failure, result.error = reason, message
        result.seconds = time.perf_counter() - started
        self.count_failure(result.path, reason, message)
        return result


def write_file_report(
    out_root: Path, path: Path, pages: list[Page], subject: str
) -> dict[str, Path]:
    """``OUT/<file>/report.pdf`` from the processors' pages, and the latest copy (a drawing
    job: a module function, so that it can run in another process)."""
    from wavedqm.exporters.report import write_report

    report = write_report(
        file_output_dir(out_root, path) / REPORT_FILE,
        pages,
        path,
        subject,
        latest=out_root / REPORTS_DIR / LATEST_REPORT_FILE,
    )
    return {"report": report.path}
