"""A real ``wavedqm watch`` child process for the stress scenarios, and what they read back
from its state and outputs (ledger, history, summaries, journal)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except OSError as err:
        return int(getattr(err, "code", 0) or 0)


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mb(self) -> float:
        """VmHWM of the daemon process (MB): its peak resident memory so far."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(30)

    def stop(self, timeout: float = 90) -> float:
        """SIGTERM; the seconds it took to exit (inf: it had to be killed)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return float("inf")
        return time.monotonic() - t0


ROOT = Path(__file__).resolve().parents[1]


def start(
    root: Path,
    spool: Path,
    config: str = "",
    *,
    poll: bool = False,
    kill_at: tuple[str, int] | None = None,
) -> Daemon:
    """``wavedqm watch spool`` with outputs in ``root/out`` and state in ``root/state``;
    returns once ``/healthz`` answers 200. ``kill_at`` (point, n): the daemon kills itself
    at the n-th time it reaches that point (``stress/killpoint.py``)."""
    cfg = root / "wavedqm.toml"
    watch = "[watch]\nsettle_seconds = 0.5\n" + ("poll = true\npoll_interval_seconds = 0.2\n"
                                                 if poll else "")  # fmt: skip
    cfg.write_text(watch + config)
    port = free_port()
    log = root / f"daemon-{time.monotonic_ns()}.log"
    launcher = ["-m", "wavedqm.cli"]
    if kill_at is not None:
        launcher = ["-m", "stress.killpoint", kill_at[0], str(kill_at[1])]
    cmd = [sys.executable, *launcher, "watch", str(spool), "--log-level", "warning",
           "--config", str(cfg),
           "--out", str(root / "out"), "--state", str(root / "state"),
           "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    d = Daemon(proc, port, log)
    deadline = time.monotonic() + 400
    while http_status(f"{d.url}/healthz") != 200:
        if not d.alive() or time.monotonic() > deadline:
            d.kill()
            raise RuntimeError(f"daemon did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return d


def ledger_rows(state: Path) -> dict[str, tuple[str, str]]:
    """File name -> (status, reason) of every row (the newest per name)."""
    path = state / "ledger.sqlite3"
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT path, status, reason FROM files ORDER BY processed_at"
        ).fetchall()
    finally:
        conn.close()
    return {Path(p).name: (s, r) for p, s, r in rows}


def history_files(state: Path) -> list[str]:
    path = state / "history.h5"
    if not path.exists():
        return []
    with h5py.File(path, "r", locking=False) as h5:
        n = int(h5.attrs.get("n_files", 0))
        return list(h5["file"].asstr()[:n]) if n else []


def voxel_run_mismatches(state: Path) -> list[str]:
    """Voxel runs whose accumulator does not hold exactly the sum of their files'
    contributions (hits read, per file once)."""
    import numpy as np

    bad = []
    for run in sorted((state / "voxels").glob("*/run.npz")):
        with np.load(run) as r:
            total, files = int(r["tallies"][0]), list(r["files"])
        parts = sorted((run.parent / "files").glob("*.npz"))
        summed = 0
        for part in parts:
            with np.load(part) as c:
                summed += int(c["tallies"][0])
        if total != summed or len(files) != len(parts) or len(set(files)) != len(files):
            bad.append(f"{run.parent.name}: run {total} hits of {len(files)} files, "
                       f"contributions {summed} of {len(parts)}")  # fmt: skip
    return bad


def pending_drawings(state: Path) -> int:
    return len(list((state / "pending_drawings").glob("*.pkl")))


def invalid_summaries(out: Path) -> list[str]:
    bad = []
    for p in out.glob("*/summary.json"):
        try:
            json.loads(p.read_text())
        except (OSError, ValueError):
            bad.append(str(p))
    return bad


def temp_files(*roots: Path) -> list[str]:
    return [str(p) for r in roots for p in r.rglob(".*.tmp")]


def wait_drained(state: Path, expected: int, timeout: float, d: Daemon | None = None) -> float:
    """Seconds until the ledger holds ``expected`` files and no drawing is pending."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(ledger_rows(state)) >= expected and pending_drawings(state) == 0:
            return time.monotonic() - t0
        if d is not None and not d.alive():
            break
        time.sleep(0.25)
    return float("inf")


def failed_by_reason(rows: dict[str, tuple[str, str]]) -> Counter[str]:
    return Counter(r for s, r in rows.values() if s == "failed")


def log_events(root: Path, event: str, **match: str) -> int:
    """How many ``event`` lines (with these fields) the daemons of ``root`` logged."""
    n = 0
    for log in root.glob("daemon-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if f'"event": "{event}"' not in line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if all(doc.get(k) == v for k, v in match.items()):
                n += 1
    return n
