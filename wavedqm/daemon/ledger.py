"""The ledger: an SQLite record of every file the daemon processed, so that a restart neither
repeats nor skips a file.

A file is identified by (path, size, mtime_ns): a file rewritten in place with a new size or
mtime is a new file and is processed again. The SHA-256 of its first 64 KiB (``header_hash``)
is stored with each result, for inspection.

One connection (``check_same_thread=False``) guarded by a lock serves the watcher, settle and
worker threads. WAL journal, ``synchronous=FULL``: a recorded result survives a crash. A ledger
file that SQLite cannot read is renamed aside (``<name>.corrupt-<timestamp>``), never silently
overwritten, and a new one is started.

The ``in_progress`` table holds a row per file whose processing started and has not ended
(:meth:`Ledger.begin`, cleared by :meth:`Ledger.record` or :meth:`Ledger.end`), with the
number of starts and of stalls (in hand past the time limit, :meth:`Ledger.mark_stalled`): a
file on which the daemon hung, crashed or was killed shows there after a restart, so a file
that does it again and again can be failed instead of taking the daemon down forever
(``Service``; reason ``stalled``). The table was added to layout version 1
without a version bump: older wavedqm versions ignore it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.logs import get_logger

log = get_logger(__name__)

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the ledger layout written by this code."""
HEADER_BYTES = 64 * 1024
"""How much of the start of a file ``header_hash`` covers (bytes)."""

Status = Literal["ok", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    header_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    processed_at REAL NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
CREATE INDEX IF NOT EXISTS files_processed_at ON files (processed_at);
CREATE TABLE IF NOT EXISTS in_progress (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    stalls INTEGER NOT NULL DEFAULT 0,
    stalled_attempt INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


_DELETE_IN_PROGRESS = "DELETE FROM in_progress WHERE path = ? AND size = ? AND mtime_ns = ?"


def _ident(key: FileKey) -> tuple[str, int, int]:
    """The ledger's primary key of ``key``: (path, size, mtime_ns)."""
    return str(key.path), key.size, key.mtime_ns


class LedgerError(RuntimeError):
    """The ledger cannot be used (e.g. written by a newer wavedqm)."""


@dataclass(frozen=True)
class FileKey:
    """Identity of one version of a file: absolute path, size (bytes), mtime (ns), header hash."""

    path: Path
    size: int
    mtime_ns: int
    header_hash: str


def fingerprint(path: Path | str, *, read_header: bool = True) -> FileKey:
    """Stat ``path`` and hash its first 64 KiB, reading it read-only (never modifies it).

    Size and mtime come from ``fstat`` of the opened file, so they belong to the same file as
    the hash. ``read_header=False`` only stats (``header_hash`` is then ``""``): enough for
    :meth:`Ledger.seen`, and cheap for a start-up scan of thousands of files on a slow mount.
    Raises ``OSError`` (e.g. ``FileNotFoundError``) if it cannot be read.
    """
    absolute = Path(os.path.abspath(path))
    if not read_header:
        st = os.stat(absolute)
        return FileKey(absolute, st.st_size, st.st_mtime_ns, "")
    with open(absolute, "rb") as fh:
        st = os.fstat(fh.fileno())
        header = fh.read(HEADER_BYTES)
    return FileKey(absolute, st.st_size, st.st_mtime_ns, hashlib.sha256(header).hexdigest())


class Ledger:
    """Processed-file ledger in ``state_dir / constants.LEDGER_FILE`` (created if missing)."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / C.LEDGER_FILE
        self._lock = threading.Lock()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as e:
            if not self._looks_corrupt(e):
                raise
            aside = self._move_aside()
            log.error(
                "ledger_corrupt",
                path=str(self.path),
                moved_to=str(aside),
                error=str(e),
                hint="starting a new ledger; files already processed may be processed again",
            )
            self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def _looks_corrupt(e: sqlite3.Error) -> bool:
        text = str(e).lower()
        return any(w in text for w in ("malformed", "not a database", "corrupt", "encrypted"))

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path}: ledger schema version {version} is newer than this "
                    f"wavedqm understands (expected <= {SCHEMA_VERSION}); upgrade wavedqm "
                    "or point output.state_dir elsewhere"
                )
            conn.executescript(_SCHEMA)
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("created_by", f"wavedqm {__version__}"),
                        ("created_at", f"{time.time():.3f}"),
                    ],
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> Path:
        """Rename the unreadable ledger (and its -wal/-shm files) to ``*.corrupt-<time>``."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    # -- queries ---------------------------------------------------------------------------

    @staticmethod
    def fingerprint(path: Path | str, *, read_header: bool = True) -> FileKey:
        """See the module-level :func:`fingerprint`."""
        return fingerprint(path, read_header=read_header)

    def seen(self, key: FileKey) -> bool:
        """True if this version of the file (same path, size and mtime) was already recorded,
        as ok or as failed. ``header_hash`` is not compared (it is kept for inspection)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                (str(key.path), key.size, key.mtime_ns),
            ).fetchone()
        return row is not None

    def record(self, key: FileKey, status: Status, reason: str = "", seconds: float = 0.0) -> None:
        """Store the result of processing ``key`` (replacing an earlier row for the same key)
        and clear its in-progress mark, in one transaction.

        ``seconds`` is the processing time (s).
        """
        if status not in ("ok", "failed"):
            raise ValueError(f"status {status!r} (expected 'ok' or 'failed')")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO files (path, size, mtime_ns, header_hash, status,"
                    " reason, processed_at, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(key.path),
                        key.size,
                        key.mtime_ns,
                        key.header_hash,
                        status,
                        reason,
                        time.time(),
                        float(seconds),
                    ),
                )
                self._conn.execute(_DELETE_IN_PROGRESS, _ident(key))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def begin(self, key: FileKey) -> None:
        """Mark ``key`` as being processed, one more start (committed before returning)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO in_progress (path, size, mtime_ns, attempts, started_at)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (path, size, mtime_ns)"
                " DO UPDATE SET attempts = attempts + 1, started_at = excluded.started_at",
                (*_ident(key), time.time()),
            )

    def mark_stalled(self, key: FileKey) -> None:
        """One more stall of ``key`` (in hand past the time limit, or the daemon died on it),
        if it is in progress; at most one per start, however often it is called."""
        with self._lock:
            self._conn.execute(
                "UPDATE in_progress SET stalls = stalls + 1, stalled_attempt = attempts"
                " WHERE path = ? AND size = ? AND mtime_ns = ? AND stalled_attempt < attempts",
                _ident(key),
            )

    def pending(self, key: FileKey) -> tuple[int, int]:
        """(starts, stalls) of ``key`` whose processing never ended; (0, 0) if none."""
        with self._lock:
            row = self._conn.execute(
                "SELECT attempts, stalls FROM in_progress"
                " WHERE path = ? AND size = ? AND mtime_ns = ?",
                _ident(key),
            ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def end(self, key: FileKey) -> None:
        """Clear the in-progress mark of ``key`` without a result (it will be tried again:
        not ready yet, or our outputs could not be written)."""
        with self._lock:
            self._conn.execute(_DELETE_IN_PROGRESS, _ident(key))

    def in_progress(self) -> list[dict[str, Any]]:
        """Files whose processing started and did not end, as plain dicts (path, size,
        mtime_ns, attempts, stalls, started_at)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, size, mtime_ns, attempts, stalls, started_at FROM in_progress"
                " ORDER BY started_at"
            ).fetchall()
        return [dict(r) for r in rows]

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The ``n`` most recently processed files, newest first, as plain dicts."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, size, mtime_ns, header_hash, status, reason, processed_at, seconds"
                " FROM files ORDER BY processed_at DESC, rowid DESC LIMIT ?",
                (int(n),),
            ).fetchall()
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of recorded files per status, e.g. ``{"ok": 10, "failed": 1}``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT status, COUNT(*) AS n FROM files GROUP BY status"
            ).fetchall()
        return {"ok": 0, "failed": 0} | {r["status"]: r["n"] for r in rows}

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
