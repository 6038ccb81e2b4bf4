"""The systemd unit (verified by systemd-analyze) and the sd_notify protocol of `wavedqm watch`,
spoken over a real AF_UNIX datagram socket as systemd would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wavedqm.simulate.flow import publish_flow_file

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "wavedqm.service"


def _service_section() -> dict[str, list[str]]:
    """``[Service]`` keys with every value given (systemd allows repeated keys)."""
    values: dict[str, list[str]] = {}
    section = ""
    text = UNIT.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_unit_is_notify_with_watchdog_and_hardening() -> None:
    service = {k: v[-1] for k, v in _service_section().items()}
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert "wavedqm watch" in service["ExecStart"]
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert "AF_UNIX" in service["RestrictAddressFamilies"].split()
    assert service["MemoryDenyWriteExecute"] == "no"  # numba's JIT needs W+X memory
    environment = _service_section()["Environment"]
    assert "NUMBA_CACHE_DIR=/var/cache/wavedqm/numba" in environment
    assert service["CacheDirectory"] == "wavedqm"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    wavedqm = shutil.which("wavedqm")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    if wavedqm is None:
        pytest.skip("the wavedqm console script is not on PATH (pip install -e .)")
    unit = tmp_path / "wavedqm.service"
    unit.write_text(UNIT.read_text().replace("/opt/wavedqm/bin/wavedqm", wavedqm))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "wavedqm.service" not in result.stderr, result.stderr


def _receive(sock: socket.socket, until: str, timeout: float) -> list[str]:
    """Datagrams received until one contains ``until``."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until in messages[-1]:
            return messages
    raise AssertionError(f"no {until!r} within {timeout} s; got {messages}")


def test_watch_speaks_sd_notify(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = os.environ | {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    config = tmp_path / "wavedqm.toml"
    config.write_text("[watch]\nsettle_seconds = 0.2\n[metrics]\nlisten = '127.0.0.1:0'\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wavedqm.cli",
            "watch",
            str(spool),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
            "--state",
            str(tmp_path / "state"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert any("READY=1" in m for m in _receive(sock, "READY=1", 60))
        assert any("WATCHDOG=1" in m for m in _receive(sock, "WATCHDOG=1", 5))
        publish_flow_file(spool, "n_p0001.FLOW.hdf5", n_events=5, seed=1)
        status = _receive(sock, "n_p0001.FLOW.hdf5", 30)
        assert any(m.startswith("STATUS=") and "n_p0001.FLOW.hdf5" in m for m in status)
        proc.send_signal(signal.SIGTERM)
        assert any("STOPPING=1" in m for m in _receive(sock, "STOPPING=1", 30))
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
