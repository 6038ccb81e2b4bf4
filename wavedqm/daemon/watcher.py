"""Folder watching: a watchdog observer that reports changes to matching files, and the
start-up scan for files that arrived while the daemon was down.

inotify (``watchdog.observers.Observer`` on Linux) by default; a ``PollingObserver`` when
``watch.poll`` is set (NFS/CIFS deliver no inotify events for remote writes) or when inotify
cannot be started (e.g. ``ENOSPC``: ``fs.inotify.max_user_watches`` reached), with a log line
saying so. Events only *touch* the settle tracker: nothing is processed on an event alone.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from wavedqm.config import WatchConfig
from wavedqm.errors import ConfigError
from wavedqm.logs import get_logger

log = get_logger(__name__)

EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileClosedEvent,
    FileMovedEvent,
    FileModifiedEvent,
    FileCreatedEvent,
    DirMovedEvent,
    DirCreatedEvent,
]
"""The events the observer is asked for (open/close-without-write of our own reads are not)."""


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True if file name ``name`` matches one of ``patterns`` (``fnmatch``, case-sensitive).

    Hidden names (leading ``.``) never match: writers use them for temporaries (``.x.tmp``,
    rsync's ``.x.FLOW.hdf5.AbC123``).
    """
    if not name or name.startswith("."):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def scan(paths: Iterable[Path | str], patterns: Sequence[str], recursive: bool) -> list[Path]:
    """Existing regular files under ``paths`` whose names match ``patterns``, oldest mtime
    first (absolute paths, no duplicates). Unreadable folders are logged and skipped."""
    found: dict[Path, int] = {}

    def consider(path: Path) -> None:
        if path in found or not matches(path.name, patterns):
            return
        try:
            st = path.stat()
        except OSError:
            return  # vanished meanwhile
        if os.path.isfile(path):
            found[path] = st.st_mtime_ns

    def on_error(e: OSError) -> None:
        log.warning("scan_folder_unreadable", path=e.filename, error=str(e))

    for root in paths:
        root = Path(os.path.abspath(root))
        if recursive:
            for folder, _dirs, files in os.walk(root, onerror=on_error):
                for name in files:
                    consider(Path(folder) / name)
        else:
            try:
                with os.scandir(root) as entries:
                    for entry in entries:
                        consider(Path(entry.path))
            except OSError as e:
                on_error(e)
    return sorted(found, key=lambda p: (found[p], str(p)))


class _Handler(FileSystemEventHandler):
    """Turns watchdog events on matching files into ``on_change(path)`` calls."""

    def __init__(
        self,
        patterns: Sequence[str],
        recursive: bool,
        on_change: Callable[[Path], None],
        on_done: Callable[[Path], None] | None = None,
    ) -> None:
        self.patterns = tuple(patterns)
        self.recursive = recursive
        self.on_change = on_change
        self.on_done = on_done
        self.trust_done = False
        """Whether rename-in / close-after-write events are the writer's "done" (inotify:
        yes; a polling observer infers them from snapshots: no)."""

    def _file(self, raw: str | bytes, done: bool = False) -> None:
        path = Path(os.fsdecode(raw))
        if matches(path.name, self.patterns):
            callback = self.on_done if done and self.trust_done and self.on_done else None
            self._call(path, callback or self.on_change)

    def _folder(self, raw: str | bytes) -> None:
        """A folder appeared (created or moved in): its files may never send events."""
        if self.recursive:
            for path in scan([os.fsdecode(raw)], self.patterns, recursive=True):
                self._call(path)

    def _call(self, path: Path, callback: Callable[[Path], None] | None = None) -> None:
        try:
            (callback or self.on_change)(path)
        except Exception:
            log.exception("watch_callback_failed", path=str(path))

    def on_closed(self, event: FileClosedEvent) -> None:
        self._file(event.src_path, done=True)

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._file(event.src_path)

    def on_created(self, event: FileSystemEvent) -> None:
        # Creation alone never makes a file complete: it only starts the settle timer.
        if event.is_directory:
            self._folder(event.src_path)
        else:
            self._file(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            self._folder(event.dest_path)
        else:
            self._file(event.dest_path, done=True)


class Watcher:
    """Watches ``paths`` and calls ``on_change(path)`` (from the observer thread) whenever a
    file matching ``patterns`` was created, modified, closed after writing or renamed in.

    ``poll``: use a polling observer every ``poll_interval_seconds`` (s) from the start.
    ``observer_factory``: builds the native observer (default ``watchdog.observers.Observer``);
    if it or its start raises ``OSError``, the watcher falls back to polling.
    """

    def __init__(
        self,
        paths: Sequence[Path | str],
        patterns: Sequence[str],
        on_change: Callable[[Path], None],
        *,
        recursive: bool = True,
        poll: bool = False,
        poll_interval_seconds: float = 1.0,
        observer_factory: Callable[[], BaseObserver] | None = None,
        on_done: Callable[[Path], None] | None = None,
    ) -> None:
        self.paths = tuple(Path(os.path.abspath(p)) for p in paths)
        self.patterns = tuple(patterns)
        self.recursive = recursive
        self.poll = poll
        self.poll_interval_seconds = float(poll_interval_seconds)
        self._observer_factory = observer_factory or Observer
        self._handler = _Handler(self.patterns, recursive, on_change, on_done)
        self._observer: BaseObserver | None = None
        self.mode = ""
        """``"inotify"`` (native) or ``"polling"`` once started."""

    @classmethod
    def from_config(
        cls,
        watch: WatchConfig,
        on_change: Callable[[Path], None],
        observer_factory: Callable[[], BaseObserver] | None = None,
        patterns: tuple[str, ...] | None = None,
        on_done: Callable[[Path], None] | None = None,
    ) -> Watcher:
        """``patterns``: the globs to pick up (default ``watch.patterns``); ``on_done``:
        called instead of ``on_change`` for a file renamed in or closed after writing
        (inotify only)."""
        return cls(
            watch.paths,
            watch.patterns if patterns is None else patterns,
            on_change,
            recursive=watch.recursive,
            poll=watch.poll,
            poll_interval_seconds=watch.poll_interval_seconds,
            observer_factory=observer_factory,
            on_done=on_done,
        )

    def check_paths(self) -> None:
        """Raise ``ConfigError`` unless every watch path is an existing folder."""
        if not self.paths:
            raise ConfigError("watch.paths: empty (expected at least one folder to watch)")
        for p in self.paths:
            if not p.is_dir():
                raise ConfigError(f"watch.paths: {p}: not an existing folder")

    def _schedule(self, observer: BaseObserver) -> None:
        for p in self.paths:
            observer.schedule(
                self._handler, str(p), recursive=self.recursive, event_filter=EVENT_TYPES
            )

    def start(self) -> None:
        """Check the paths and start the observer thread (native, else polling)."""
        self.check_paths()
        if not self.poll:
            observer: BaseObserver | None = None
            try:
                observer = self._observer_factory()
                self._schedule(observer)
                observer.start()
            except OSError as e:
                if observer is not None:
                    try:
                        observer.stop()  # releases the inotify fd and its reader thread
                    except Exception:
                        log.debug("observer_cleanup_failed", exc_info=True)
                log.warning(
                    "watch_fallback_polling",
                    error=str(e),
                    errno=e.errno,
                    poll_interval_seconds=self.poll_interval_seconds,
                    hint="inotify could not be started (fs.inotify.max_user_watches or "
                    "max_user_instances reached?): fell back to polling",
                )
            else:
                self._observer, self.mode = observer, "inotify"
                self._handler.trust_done = True
                log.info("watch_started", mode=self.mode, paths=[str(p) for p in self.paths])
                return
        observer = PollingObserver(timeout=self.poll_interval_seconds)
        self._handler.trust_done = False
        self._schedule(observer)
        observer.start()
        self._observer, self.mode = observer, "polling"
        log.info(
            "watch_started",
            mode=self.mode,
            paths=[str(p) for p in self.paths],
            poll_interval_seconds=self.poll_interval_seconds,
        )

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the observer and wait up to ``timeout`` (s) for its thread."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        if observer.is_alive():
            observer.join(timeout)

    def is_alive(self) -> bool:
        """True while the observer thread and every emitter (one per watched folder) run.

        An emitter dies e.g. when its folder is removed or inotify fails on a new subfolder;
        the service then reports unhealthy, and a restart re-creates the watches (or falls
        back to polling)."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        emitters = list(observer.emitters)
        return bool(emitters) and all(e.is_alive() for e in emitters)
