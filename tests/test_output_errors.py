"""Issue 11 finding 6: a full or read-only output/state disk is not the files' fault. The
files wait and are retried (with back-off) until the disk takes them; none is recorded as
failed; ``/healthz`` says why and ``wavedqm_output_errors_total`` counts it; a daemon asked to
start on a read-only output folder refuses with one line.

The disk is a real tmpfs mounted for the test (root, and a kernel that lets us mount); the
tests skip with the reason otherwise."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest

from wavedqm.simulate.flow import write_flow_file

from daemonutil import start_daemon
from netutil import http_get, wait_for

CONFIG = "[output]\nreports = false\nretry_seconds = 0.3\n[charge]\nplots = false\n"


def _mount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                   check=True, capture_output=True)  # fmt: skip


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own."""
    point = tmp_path / "disk"
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a full / read-only disk)")
    try:
        _mount(point, "size=16m")
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"cannot mount a tmpfs here ({getattr(err, 'stderr', err)!r})")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        block = b"\0" * 2**16
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def _publish(spool: Path, names: list[str], tmp_path: Path) -> None:
    for i, name in enumerate(names):
        src = tmp_path / f".{name}"
        write_flow_file(src, n_events=10, n_samples=256, seed=i)
        os.replace(src, spool / name)  # rename in: one complete file


def _ledger(state: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(state / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT path, status, reason FROM files").fetchall()
    return {Path(p).name: (s, r) for p, s, r in rows}


def test_a_full_disk_delays_files_and_loses_none(tmp_path: Path, disk: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    out, state = disk / "out", disk / "state"
    d = start_daemon(tmp_path, spool, CONFIG, out=out, state=state)
    try:
        _publish(spool, ["a.FLOW.hdf5"], tmp_path)
        wait_for(lambda: d.value("wavedqm_files_processed_total") == 1, 60, what="first")
        filler = _fill(disk)
        names = ["b.FLOW.hdf5", "c.FLOW.hdf5", "d.FLOW.hdf5"]
        _publish(spool, names, tmp_path)
        wait_for(lambda: (d.value("wavedqm_output_errors_total") or 0) >= 3, 60,
                 what="output errors")  # fmt: skip
        status, body = http_get(f"{d.url}/healthz")
        assert status == 503 and b"output failing" in body, body
        assert d.value("wavedqm_output_failing") == 1
        assert d.value("wavedqm_files_processed_total") == 1
        assert d.value("wavedqm_files_failed_total", reason="internal") == 0
        filler.unlink()  # space comes back
        wait_for(lambda: d.value("wavedqm_files_processed_total") == 4, 60, what="retried")
        wait_for(lambda: http_get(f"{d.url}/healthz")[0] == 200, 10, what="healthy again")
        assert d.value("wavedqm_output_failing") == 0
        assert sum(d.value("wavedqm_files_failed_total", reason=r) or 0
                   for r in ("internal", "read_error")) == 0  # fmt: skip
    finally:
        assert d.stop() == 0
    ledger = _ledger(state)
    assert ledger == {n: ("ok", "") for n in ["a.FLOW.hdf5", *names]}
    with h5py.File(state / "history.h5", "r") as h5:
        files = sorted(h5["file"].asstr()[: h5.attrs["n_files"]])
    assert files == ["a.FLOW.hdf5", *names]  # each once: a retry replaces, never doubles
    assert not list(state.glob("history.h5.*")), "the full disk set the history aside"
    leftovers = [p for p in disk.rglob("*.tmp")]
    assert not leftovers
    for name in names:
        assert (out / name / "summary.json").is_file()


def test_a_read_only_disk_delays_files_until_it_is_writable(tmp_path: Path, disk: Path) -> None:
    """The output folder's disk turns read-only (the state stays writable: the kernel will
    not remount a disk on which the ledger is open for writing)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    out, state = disk / "out", tmp_path / "state"
    d = start_daemon(tmp_path, spool, CONFIG, out=out, state=state)
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        _publish(spool, ["a.FLOW.hdf5", "b.FLOW.hdf5"], tmp_path)
        wait_for(lambda: (d.value("wavedqm_output_errors_total") or 0) >= 2, 60,
                 what="output errors")  # fmt: skip
        assert http_get(f"{d.url}/healthz")[0] == 503
        assert d.value("wavedqm_files_processed_total") == 0
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        wait_for(lambda: d.value("wavedqm_files_processed_total") == 2, 60, what="retried")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False)
        assert d.stop() == 0
    assert _ledger(state) == {"a.FLOW.hdf5": ("ok", ""), "b.FLOW.hdf5": ("ok", "")}


def test_the_daemon_refuses_to_start_on_a_read_only_output_folder(
    tmp_path: Path, disk: Path
) -> None:
    (disk / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "wavedqm.cli", "watch", str(spool), "--out", str(disk / "out"),
         "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "is not writable (Read-only file system)" in proc.stderr
    assert "--out" in proc.stderr and "Traceback" not in proc.stderr
