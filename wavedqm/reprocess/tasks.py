"""What a Dask worker runs for ``wavedqm reprocess``: module functions (Dask pickles them by
reference), each touching no shared state.

- :func:`data_start`: the data time a ``.FLOW.hdf5`` file starts at (its events table only),
  so that the client can take the files in data-time order;
- :func:`prepare_file`: every processor's ``prepare`` of one file (the pass over its data);
  the state-dependent rest is done by the client;
- :func:`process_s2_run`: a whole S2 run (its sets' windows need all their files, and the run
  combination all its sets) through an S2-only batch router, as ``wavedqm process`` does; the
  run's state belongs to this task alone;
- :func:`draw`: one drawing job (masks, report, voxel PNGs, shot series).

Processors are built once per worker process and configuration, with a private state folder
(their constructors open stores; ``prepare`` never touches them).
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from wavedqm.config import Config
from wavedqm.errors import ConfigError, FileNotReady, InputFileError
from wavedqm.logs import get_logger

log = get_logger(__name__)

_lock = threading.Lock()
_routers: dict[str, Any] = {}


class WorkerLogging(WorkerPlugin):
    """The workers log as the client does (structlog, the same level)."""

    name = "wavedqm-logging"

    def __init__(self, level: str) -> None:
        self.level = level

    def setup(self, worker: Any) -> None:
        from wavedqm.logs import configure_logging

        configure_logging(self.level)


class IgnoreInterrupt(WorkerPlugin):
    """The local cluster's workers ignore SIGINT: Ctrl-C on a terminal reaches the whole
    process group, and the client (which stops cleanly) must find its workers still there to
    finish the drawings of the files it has done."""

    name = "wavedqm-ignore-sigint"

    def setup(self, worker: Any) -> None:
        import contextlib
        import signal

        with contextlib.suppress(ValueError):  # not the main thread: nothing to do
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _config_key(cfg: Config) -> str:
    return hashlib.sha256(pickle.dumps(cfg)).hexdigest()


def _worker_router(cfg: Config, registrations: Sequence[Any] | None) -> Any:
    """This process's router for ``cfg`` (processors built on first use), its state folder a
    private temporary one."""
    from wavedqm.processors.router import Router

    key = _config_key(cfg) + repr(registrations)
    with _lock:
        router = _routers.get(key)
        if router is None:
            private = tempfile.mkdtemp(prefix="wavedqm-worker-state-")
            router = Router(
                cfg.with_overrides(output={"state_dir": private}),
                batch=True,
                registrations=registrations,
            )
            _routers[key] = router
        return router


def data_start(path: Path) -> float | None:
    """Unix time (s) of the first event of a ``.FLOW.hdf5`` file; None when it has none or
    cannot be read (the file then fails, with its reason, when it is processed)."""
    from wavedqm.formats.flow import inspect_flow

    try:
        return inspect_flow(path).time_start_s
    except Exception:  # any reason: the processors say which, later
        return None


def _portable(err: Exception) -> Exception:
    """An error that survives pickling: wavedqm's own as they are, others as RuntimeError
    with their text (the router counts them as ``internal``)."""
    if isinstance(err, InputFileError | ConfigError | FileNotReady):
        return err
    return RuntimeError(f"{type(err).__name__}: {err}")


def prepare_file(
    cfg: Config, path: Path, registrations: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Per processor name, what its ``prepare`` made of ``path`` (or the error it raised);
    processors without ``prepare`` are left to the client. ``registrations``: the processors
    (None: the configuration's)."""
    from wavedqm.formats.detect import detect
    from wavedqm.processors.base import DetectedFile

    router = _worker_router(cfg, registrations)
    path = Path(path)
    try:
        file = DetectedFile(path, detect(path, router.formats))
    except Exception:  # the client's router fails the file with its reason
        return {}
    prepared: dict[str, Any] = {}
    for registration in router.registrations:
        if file.format not in registration.formats:
            continue
        processor = router._processor(registration)
        prepare = getattr(processor, "prepare", None)
        if prepare is None or not processor.accepts(file):
            continue
        try:
            prepared[processor.name] = prepare(path)
        except Exception as err:
            prepared[processor.name] = _portable(err)
    return prepared


@dataclass
class S2FileResult:
    """One file (or, ``set_done``, one set published at the end) of an S2 run task."""

    path: Path
    ok: bool
    failure: str | None
    error: str
    line: str
    events: int
    seconds: float
    set_done: bool = False


def process_s2_run(cfg: Config, files: Sequence[Path]) -> list[S2FileResult]:
    """A whole S2 run as ``wavedqm process`` of its files would do it: an S2-only batch
    router over the real output and state folders, its drawings waited for."""
    from wavedqm.processors import registry as reg
    from wavedqm.processors.router import Router

    s2 = [r for r in reg.enabled(cfg.processors.disabled) if r.name == "s2"]
    results: list[S2FileResult] = []
    # a Dask worker is a daemonic process: no helper processes of its own, it draws itself
    local = cfg.with_overrides(output={"drawing_processes": 0})
    router = Router(local, batch=True, registrations=s2)
    try:
        router.begin_batch(list(files))
        for path in files:
            t0 = time.perf_counter()
            try:
                res = router.route(Path(path))
            except FileNotReady as err:
                results.append(S2FileResult(Path(path), False, "not_ready", str(err), "", 0, 0.0))
                continue
            results.append(
                S2FileResult(
                    res.path, res.ok, res.failure, res.error, res.line(), res.events,
                    time.perf_counter() - t0,
                )
            )  # fmt: skip
        for outcome in router.end_batch():
            results.append(
                S2FileResult(
                    outcome.path, outcome.failure is None, outcome.failure, outcome.error,
                    f"{outcome.path}: {outcome.summary}", outcome.events, outcome.seconds,
                    set_done=True,
                )
            )  # fmt: skip
    finally:
        router.close()
    return results


def draw(job: Callable[[], dict[str, Path]]) -> dict[str, Path]:
    """Run one drawing job; a failing figure is logged and gives nothing (as on the
    daemon's plotting thread), never a failed task."""
    try:
        return job()
    except Exception:
        log.exception("drawing_failed")
        return {}
