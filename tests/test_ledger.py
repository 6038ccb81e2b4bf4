"""The processed-file ledger: real SQLite files in a temporary state folder."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading

import pytest
from structlog.testing import capture_logs

from wavedqm import constants as C
from wavedqm.daemon.ledger import HEADER_BYTES, SCHEMA_VERSION, Ledger, LedgerError, fingerprint


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_fingerprint_reads_header_and_leaves_file_untouched(tmp_path):
    data = os.urandom(HEADER_BYTES + 1000)
    f = write(tmp_path / "a.FLOW.hdf5", data)
    os.utime(f, ns=(1_000_000_000, 2_000_000_123))
    before = os.stat(f)
    key = fingerprint(f)
    after = os.stat(f)
    assert key.path == f.absolute()
    assert key.size == len(data)
    assert key.mtime_ns == 2_000_000_123
    assert key.header_hash == hashlib.sha256(data[:HEADER_BYTES]).hexdigest()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert f.read_bytes() == data
    quick = fingerprint(f, read_header=False)
    assert (quick.size, quick.mtime_ns, quick.header_hash) == (len(data), 2_000_000_123, "")


def test_record_seen_recent_and_counts(tmp_path):
    state = tmp_path / "state" / "nested"
    f1 = write(tmp_path / "one.FLOW.hdf5", b"1" * 10)
    f2 = write(tmp_path / "two.FLOW.hdf5", b"2" * 20)
    with Ledger(state) as ledger:
        assert (state / C.LEDGER_FILE).is_file()
        k1, k2 = fingerprint(f1), fingerprint(f2)
        assert not ledger.seen(k1)
        ledger.record(k1, "ok", "", 0.5)
        ledger.record(k2, "failed", "not_hdf5", 0.1)
        assert ledger.seen(k1) and ledger.seen(k2)
        recent = ledger.recent(10)
        assert [r["path"] for r in recent] == [str(k2.path), str(k1.path)]
        assert recent[0]["status"] == "failed" and recent[0]["reason"] == "not_hdf5"
        assert recent[1]["seconds"] == pytest.approx(0.5)
        assert recent[1]["header_hash"] == k1.header_hash
        assert ledger.recent(1)[0]["path"] == str(k2.path)
        assert ledger.counts() == {"ok": 1, "failed": 1}
        with pytest.raises(ValueError):
            ledger.record(k1, "maybe", "", 0.0)  # type: ignore[arg-type]


def test_persists_across_reopen_and_new_version_is_unseen(tmp_path):
    f = write(tmp_path / "a.FLOW.hdf5", b"x" * 100)
    with Ledger(tmp_path / "state") as ledger:
        ledger.record(fingerprint(f), "ok", "", 1.0)
    with Ledger(tmp_path / "state") as ledger:
        assert ledger.seen(fingerprint(f))
        # rewritten with a new size -> new file
        with open(f, "ab") as fh:
            fh.write(b"more")
        assert not ledger.seen(fingerprint(f))
        # same size, new mtime -> new file
        st = os.stat(f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert not ledger.seen(fingerprint(f))
        # the same path elsewhere is a different file
        other = tmp_path / "b"
        other.mkdir()
        g = write(other / "a.FLOW.hdf5", b"x" * 100)
        assert not ledger.seen(fingerprint(g))


def test_schema_version_wal_and_meta(tmp_path):
    Ledger(tmp_path).close()
    conn = sqlite3.connect(tmp_path / C.LEDGER_FILE)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        cols = [r[1] for r in conn.execute("PRAGMA table_info(files)")]
        assert cols == [
            "path",
            "size",
            "mtime_ns",
            "header_hash",
            "status",
            "reason",
            "processed_at",
            "seconds",
        ]
    finally:
        conn.close()


def test_corrupt_ledger_is_moved_aside_not_overwritten(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    garbage = b"this is not an sqlite database at all " * 200
    (state / C.LEDGER_FILE).write_bytes(garbage)
    f = write(tmp_path / "a.FLOW.hdf5", b"abc")
    with capture_logs() as logs, Ledger(state) as ledger:
        ledger.record(fingerprint(f), "ok", "", 0.0)
        assert ledger.seen(fingerprint(f))
    aside = list(state.glob(C.LEDGER_FILE + ".corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == garbage
    errors = [e for e in logs if e["event"] == "ledger_corrupt"]
    assert errors and errors[0]["log_level"] == "error"
    assert errors[0]["moved_to"] == str(aside[0])


def test_newer_schema_is_refused(tmp_path):
    Ledger(tmp_path).close()
    conn = sqlite3.connect(tmp_path / C.LEDGER_FILE)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger(tmp_path)
    assert (tmp_path / C.LEDGER_FILE).exists()
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_concurrent_records_from_threads(tmp_path):
    files = [write(tmp_path / f"f{i}.FLOW.hdf5", bytes([i]) * (i + 1)) for i in range(40)]
    keys = [fingerprint(f) for f in files]
    errors = []
    with Ledger(tmp_path / "state") as ledger:

        def work(part):
            try:
                for k in part:
                    ledger.record(k, "ok", "", 0.01)
                    assert ledger.seen(k)
                    ledger.recent(5)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors
        assert ledger.counts()["ok"] == 40
        assert all(ledger.seen(k) for k in keys)


def test_damaged_pages_are_detected(tmp_path):
    """A real ledger whose pages were overwritten (e.g. a disk error) is moved aside too."""
    state = tmp_path / "state"
    f = write(tmp_path / "a.FLOW.hdf5", b"abc")
    key = fingerprint(f)
    with Ledger(state) as ledger:
        for i in range(300):
            ledger.record(key.__class__(key.path.with_name(f"x{i}"), i, i, "h" * 64), "ok")
    conn = sqlite3.connect(state / C.LEDGER_FILE)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    db = state / C.LEDGER_FILE
    raw = bytearray(db.read_bytes())
    assert len(raw) > 8192
    raw[4096:] = b"\xa5" * (len(raw) - 4096)  # keep the 100-byte header and the first page
    db.write_bytes(bytes(raw))
    with capture_logs() as logs, Ledger(state) as ledger:
        assert ledger.counts() == {"ok": 0, "failed": 0}
    assert [e for e in logs if e["event"] == "ledger_corrupt"]
    assert len(list(state.glob(C.LEDGER_FILE + ".corrupt-*"))) == 1
