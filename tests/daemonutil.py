"""Run `wavedqm watch` as a real child process for end-to-end tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from netutil import free_port, http_get, metric_value, wait_for

SETTLE_S = 0.3
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int
    spool: Path
    out: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200
        return body.decode()

    def value(self, name: str, **labels: str) -> float | None:
        return metric_value(self.metrics(), name, **labels)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_daemon(
    tmp_path: Path,
    spool: Path,
    extra_config: str = "",
    settle_s: float | None = SETTLE_S,
    out: Path | None = None,
    state: Path | None = None,
    module: str = "wavedqm.cli",
) -> Daemon:
    """Start `wavedqm watch SPOOL` with a short settle time (``settle_s`` None: the default
    config's); wait until /healthz says 200. Outputs and state in ``tmp_path`` unless
    ``out`` / ``state`` say where. ``module``: what ``python -m`` runs (a ``stress.*``
    wrapper of the CLI runs from the repository's root)."""
    out, state = out or tmp_path / "out", state or tmp_path / "state"
    config = tmp_path / "wavedqm.toml"
    settle = "" if settle_s is None else f"[watch]\nsettle_seconds = {settle_s}\n"
    config.write_text(f"{settle}{extra_config}")
    port = free_port()
    log = tmp_path / f"daemon-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", module, "watch", str(spool), "--config", str(config)]
    cmd += ["--out", str(out), "--state", str(state), "--listen", f"127.0.0.1:{port}"]
    cwd = REPO if module.startswith("stress.") else None
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=cwd)
    daemon = Daemon(proc, port, spool, out, log)
    try:
        # a cold numba cache (the first daemon of a CI run) compiles every kernel first
        wait_for(lambda: http_get(f"{daemon.url}/healthz")[0] == 200, 400, what="/healthz")
    except AssertionError:
        daemon.kill()
        raise AssertionError(f"daemon did not start:\n{log.read_text()[-3000:]}") from None
    return daemon
