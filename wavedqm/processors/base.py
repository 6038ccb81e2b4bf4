"""What every processor is: the protocol the router drives, and what it gives back.

A processor handles one kind of data (light waveforms, charge hits, S2 areas, shots): it reads
its own datasets of a file, runs the kernels and the analysis, and writes that kind's outputs
and metrics. The router (:mod:`wavedqm.processors.router`) detects a file's format once and
hands the file to every processor that accepts it; it alone counts files (processed, failed,
latency) and writes the per-file ``summary.json`` from the sections the processors return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from wavedqm.config import Config
from wavedqm.exporters.plotting import Page, PlotQueue
from wavedqm.formats.detect import FileFormat

NOT_PREPARED: Any = object()
"""``process(..., prepared=NOT_PREPARED)``: the processor reads the file itself."""


def unwrap(prepared: Any) -> Any:
    """What ``prepare`` gave; raises it when it is the error ``prepare`` raised (a worker
    hands a bad file's ``InputFileError`` back as its result)."""
    if isinstance(prepared, BaseException):
        raise prepared
    return prepared


@dataclass(frozen=True)
class DetectedFile:
    """A complete input file and the format detected from its first bytes."""

    path: Path
    format: FileFormat


@dataclass
class Outcome:
    """What one processor made of one file.

    ``nothing``: the file held no data of this processor's kind (e.g. a charge-only file for
    the light processor) — not a failure; a file that gives *every* processor nothing is.
    ``failure`` / ``error``: the reason label and message when this processor could not read
    the file (the router fails the whole file with the first such reason).
    ``document``: top-level keys this processor adds to ``OUT/<file>/summary.json`` (None:
    it writes no summary for this file). ``plots``: drawings still being made (``wait()``).
    ``detail``: the processor's own result object (tests, callers that know the kind).
    """

    processor: str
    path: Path
    events: int = 0
    """Events (triggers, frames, shots) this processor analysed in the file."""
    summary: str = ""
    """One line for a human: what the file gave."""
    outputs: dict[str, Path] = field(default_factory=dict)
    nothing: bool = False
    failure: str | None = None
    error: str = ""
    document: dict[str, Any] | None = None
    plots: list[Future[dict[str, Path]]] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    """Pages this processor adds to the file's PDF report (``OUT/<file>/report.pdf``), drawn
    by the router on the plotting thread after every processor is done."""
    seconds: float = 0.0
    """Wall time of this processor on this file (s)."""
    detail: Any = None

    def wait(self, timeout: float | None = None) -> dict[str, Path]:
        """Wait for the plots; returns what they wrote (name -> path)."""
        written: dict[str, Path] = {}
        for fut in self.plots:
            written |= fut.result(timeout)
        return written


@dataclass(frozen=True)
class ProcessorContext:
    """What the registry gives every processor it builds: the configuration, the one metrics
    registry of the process, the one plotting thread, and whether this is a batch
    (``wavedqm process``: outputs that need the whole batch may wait for ``end_batch``)."""

    cfg: Config
    registry: CollectorRegistry
    plots: PlotQueue
    batch: bool = False

    @property
    def out_root(self) -> Path:
        return Path(self.cfg.output.dir)

    @property
    def state_dir(self) -> Path:
        return Path(self.cfg.output.state_dir)


@runtime_checkable
class Processor(Protocol):
    """One kind of data. Built by the registry as ``Class(context)``.

    - ``name``: short and stable (a Prometheus label value, a config name);
    - ``report_subject``: what its pages of the per-file PDF report show (PDF metadata);
    - ``served``: URL paths (below the HTTP server's root, e.g. ``"images/flatline.png"``) of
      the latest outputs this processor keeps up to date for Grafana;
    - ``accepts(file)``: whether it wants this file (its format, maybe its folder);
    - ``warm_up()``: compile (or load from numba's cache) its kernels; the daemon calls it
      before telling systemd READY;
    - ``process(path, completed_at)``: read, analyse, write outputs and this kind's metrics.
      Raises ``FileNotReady`` when the writer still holds the file (the router retries the
      whole file later); a bad file is an ``Outcome`` with ``failure`` set, or an
      ``InputFileError`` (the router turns it into one);
    - ``prepare(path)`` (optional, ``BaseProcessor`` has none): the part of ``process`` that
      touches no state (the pass over the file's data), run on a ``wavedqm reprocess`` worker;
      ``process(path, completed_at, prepared=what prepare gave)`` then does the rest on the
      client, with the same result as reading the file itself;
    - ``begin_batch(paths)`` / ``end_batch()``: around a batch of files (``wavedqm process``);
      ``end_batch`` returns outcomes of work deferred to the end of the batch;
    - ``close()``: finish what is in flight (plots) and release files.
    """

    name: str
    served: tuple[str, ...]
    report_subject: str

    def accepts(self, file: DetectedFile) -> bool: ...

    def warm_up(self) -> None: ...

    def process(self, path: Path, completed_at: float | None, prepared: Any = ...) -> Outcome: ...

    def begin_batch(self, paths: Sequence[Path]) -> None: ...

    def end_batch(self) -> list[Outcome]: ...

    def close(self) -> None: ...


class BaseProcessor:
    """Defaults for the optional parts of :class:`Processor`: accepts every file of
    ``formats`` (format names), nothing to warm up, no batch work, nothing to close."""

    name: str = ""
    formats: tuple[str, ...] = ()
    served: tuple[str, ...] = ()
    report_subject: str = ""
    """What this processor's pages of a per-file report show (PDF metadata)."""

    def __init__(self, context: ProcessorContext) -> None:
        self.context = context
        self.cfg = context.cfg

    def accepts(self, file: DetectedFile) -> bool:
        return file.format.name in self.formats

    def warm_up(self) -> None:
        return None

    def begin_batch(self, paths: Sequence[Path]) -> None:
        return None

    def end_batch(self) -> list[Outcome]:
        return []

    def close(self) -> None:
        return None


def merge_documents(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``summary.json`` from the processors' sections, in processor order (the first
    processor's keys first; a later processor never overwrites an earlier one's key)."""
    merged: dict[str, Any] = {}
    for doc in documents:
        for key, value in doc.items():
            merged.setdefault(key, value)
    return merged
