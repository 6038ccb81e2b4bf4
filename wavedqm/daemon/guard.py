"""The poison-file guard: a time limit per file, and the memory of files that hung or crashed
the daemon, so that one bad file cannot take the service down again and again.

- Before ``handle`` the ledger marks the file in progress (:meth:`FileGuard.admit`); the mark
  is cleared with its result. A file that stalled ``watch.max_stalls`` times is not tried
  again: the service records it failed with reason ``stalled``. A file on which the daemon
  died ``watch.max_attempts`` times without a trace (``kill -9``, the OOM killer) waits
  behind the other waiting files, and is never failed for it.
- A file in hand longer than ``watch.max_processing_seconds`` is *stalled*
  (:meth:`FileGuard.stalled`): the service reports unhealthy (``/healthz`` 503, the systemd
  watchdog withheld, so systemd restarts it) and :meth:`FileGuard.check` counts one stall in
  the ledger.
- That needs a Python thread to run. A C library can spin while holding the GIL (HDF5 on a
  damaged global heap: HDFGroup/hdf5#1707), and then no Python thread runs at all. With
  ``exit_on_hang`` the guard arms :mod:`faulthandler`, whose C thread needs no GIL: at
  ``HANG_EXIT_FACTOR`` × the limit it writes every thread's stack to ``STATE/hang.trace``
  and exits with status 1 (systemd's ``Restart=on-failure`` starts it again). The same file
  receives the stacks of a fatal signal (SIGSEGV in a C library; SIGABRT, which systemd's
  watchdog sends to a daemon that stopped pinging).
- ``hang.trace`` starts with a line naming the file in hand and is emptied when it is done.
  At the next start (:meth:`FileGuard.open`) a header followed by stacks means the previous
  run died on that file: one stall is counted and the stacks are logged (event
  ``previous_run_died``). A stall is counted at most once per start of a file, however
  many of these paths saw it.

``hang.trace`` is scratch, not an output: written in place (no fsync, no rename); a power
cut that loses it loses only the stall count, and the start count still holds.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wavedqm.config import WatchConfig
from wavedqm.daemon.ledger import FileKey, Ledger
from wavedqm.logs import get_logger

log = get_logger(__name__)

HANG_TRACE_NAME = "hang.trace"
"""File in the state folder that receives the stacks of a hang or a fatal signal."""
HANG_EXIT_FACTOR = 2.0
"""The daemon exits by itself when one file has been in hand this many times
``watch.max_processing_seconds`` (under systemd its watchdog acts first)."""
_HEADER_PREFIX = "wavedqm in hand: "
_TRACE_LOG_CHARS = 6000
"""Most characters of a previous run's stacks put in the log."""


@dataclass(frozen=True)
class Stall:
    """A file in hand longer than the limit."""

    path: Path
    seconds: float
    """How long it has been in hand (s)."""


@dataclass(frozen=True)
class Admission:
    """:meth:`FileGuard.admit`'s answer: ``go`` (hand it over), ``defer`` (the waiting files
    first) or ``fail`` (recorded failed as ``stalled``), and why (empty for ``go``)."""

    verdict: Literal["go", "defer", "fail"]
    why: str


@dataclass(frozen=True)
class PreviousDeath:
    """What ``hang.trace`` says about how the previous run ended."""

    key: FileKey | None
    """The file in hand when it died (None: it died between files)."""
    trace: str
    """The stacks faulthandler wrote (may be cut at ``_TRACE_LOG_CHARS``)."""


class FileGuard:
    """Time limit and in-progress marks of the file in hand (one worker at a time)."""

    def __init__(
        self, watch: WatchConfig, ledger: Ledger, state_dir: Path, *, exit_on_hang: bool
    ) -> None:
        self.watch = watch
        self.ledger = ledger
        self.trace_path = Path(state_dir) / HANG_TRACE_NAME
        self.exit_on_hang = exit_on_hang
        self._lock = threading.Lock()
        self._key: FileKey | None = None
        self._since: float | None = None
        """Monotonic time (s) the file in hand was handed over (None: idle)."""
        self._stall_counted: FileKey | None = None
        self._fd: int | None = None
        self._faulthandler_was_enabled = False

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> PreviousDeath | None:
        """Read what the previous run left in ``hang.trace`` (counting a stall of the file it
        died on), then arm it for this run. Returns how the previous run died, if it did."""
        death = self._read_previous()
        if death is not None and death.key is not None:
            self.ledger.mark_stalled(death.key)
        self._fd = os.open(self.trace_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
        if self.exit_on_hang:
            self._faulthandler_was_enabled = faulthandler.is_enabled()
            faulthandler.enable(file=self._fd, all_threads=True)
        return death

    def close(self) -> None:
        """Disarm and close ``hang.trace`` (emptied: this run did not die)."""
        if self._fd is None:
            return
        if self.exit_on_hang:
            faulthandler.cancel_dump_traceback_later()
            faulthandler.disable()
            if self._faulthandler_was_enabled:
                # (not when stderr has no file descriptor, as under pytest's capture)
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    faulthandler.enable()
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def _read_previous(self) -> PreviousDeath | None:
        try:
            text = self.trace_path.read_text(errors="replace")
        except FileNotFoundError:
            return None
        header, _, trace = text.partition("\n")
        key: FileKey | None = None
        if not header.startswith(_HEADER_PREFIX):
            trace = text
        else:
            try:
                named = json.loads(header[len(_HEADER_PREFIX) :])
                key = FileKey(Path(named["path"]), int(named["size"]), int(named["mtime_ns"]), "")
            except (ValueError, KeyError, TypeError):
                key = None
        if not trace.strip():
            return None  # nothing in hand, or killed without a fault (SIGKILL, power cut)
        return PreviousDeath(key, trace[-_TRACE_LOG_CHARS:])

    # -- one file --------------------------------------------------------------------------

    def admit(self, key: FileKey, *, others_waiting: bool) -> Admission:
        """Whether to hand ``key`` over now (:class:`Admission`); on ``go`` the ledger holds
        one more start of it. Raises ``sqlite3.Error`` if the ledger cannot be used.

        Only evidence fails a file: ``watch.max_stalls`` stalls (in hand past the limit, or
        the daemon died on it leaving stacks). Starts that ended with no trace at all
        (``kill -9``, the OOM killer, a power cut) are not the file's fault as far as anyone
        can tell: after ``watch.max_attempts`` of them the file only waits behind the files
        that are waiting (``defer``), so that it cannot block them, and is tried again when
        none is; it is never failed for them (a crash loses nothing)."""
        w = self.watch
        starts, stalls = self.ledger.pending(key)
        if stalls >= w.max_stalls:
            return Admission("fail", (
                f"{key.path}: it was still in hand after watch.max_processing_seconds = "
                f"{w.max_processing_seconds:g} s, or the daemon died on it leaving its stacks, "
                f"on {stalls} of its {starts} starts; not tried again (expected a result within "
                f"{w.max_processing_seconds:g} s): run `wavedqm process` on it by hand to "
                "investigate"))  # fmt: skip
        if starts >= w.max_attempts and others_waiting:
            return Admission("defer", (
                f"{key.path}: its processing started {starts} times and the daemon died "
                "each time without a trace (kill -9, out of memory?); the files waiting go "
                "first"))  # fmt: skip
        self.ledger.begin(key)
        return Admission("go", "")

    def enter(self, key: FileKey) -> None:
        """The file is being handed over: start its clock, name it in ``hang.trace``, arm
        the hard deadline."""
        with self._lock:
            self._key, self._since = key, time.monotonic()
        if self._fd is None:
            return
        header = (
            _HEADER_PREFIX
            + json.dumps({"path": str(key.path), "size": key.size, "mtime_ns": key.mtime_ns})
            + "\n"
        )
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, header.encode())
        if self.exit_on_hang:
            faulthandler.dump_traceback_later(
                HANG_EXIT_FACTOR * self.watch.max_processing_seconds, exit=True, file=self._fd
            )

    def leave(self, key: FileKey, *, again: bool) -> None:
        """The file is out of hand. ``again``: it will be tried again without a result (not
        ready, our outputs failed): its in-progress mark is cleared. Ledger errors are
        logged (the mark then stays: one start more)."""
        if self._fd is not None:
            if self.exit_on_hang:
                faulthandler.cancel_dump_traceback_later()
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
        with self._lock:
            self._key = self._since = None
        if again:
            try:
                self.ledger.end(key)
            except Exception as e:  # sqlite3.Error, or the ledger closed under us
                log.warning("ledger_write_failed", path=str(key.path), error=str(e))

    # -- watching the clock ----------------------------------------------------------------

    def in_hand_seconds(self) -> float:
        """How long the file in hand has been in hand (s); 0 when idle."""
        with self._lock:
            since = self._since
        return 0.0 if since is None else time.monotonic() - since

    def stalled(self) -> Stall | None:
        """The file in hand, if it has been in hand longer than the limit."""
        with self._lock:
            key, since = self._key, self._since
        if key is None or since is None:
            return None
        seconds = time.monotonic() - since
        return Stall(key.path, seconds) if seconds > self.watch.max_processing_seconds else None

    def check(self) -> Stall | None:
        """Count a stall in the ledger the first time a file is found stalled; return it
        then (None otherwise, and on every later check of the same file)."""
        stall = self.stalled()
        with self._lock:
            key = self._key
        if stall is None or key is None or key == self._stall_counted:
            return None
        self._stall_counted = key
        try:
            self.ledger.mark_stalled(key)
        except Exception as e:  # sqlite3.Error: the in-memory state still reports it
            log.warning("ledger_write_failed", path=str(stall.path), error=str(e))
        return stall

    def describe(self, stall: Stall) -> dict[str, Any]:
        """Fields of the ``file_stalled`` event."""
        return {
            "path": str(stall.path),
            "seconds": round(stall.seconds, 1),
            "max_processing_seconds": self.watch.max_processing_seconds,
            "hint": "the daemon reports unhealthy so that systemd's watchdog restarts it; "
            f"after {self.watch.max_stalls} stalls the file is failed as 'stalled'",
        }
