"""Every start-up failure is one line on stderr naming what is wrong and the option that
changes it, and exit code 2 — never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wavedqm.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wavedqm: ")
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


def test_busy_port_watch(tmp_path: Path, spool: Path, busy_port: int) -> None:
    line = one_error_line(
        run("watch", str(spool), "--listen", f"127.0.0.1:{busy_port}", "--out", "o",
            "--state", "s", cwd=tmp_path)
    )  # fmt: skip
    assert f"127.0.0.1:{busy_port}" in line and "already in use" in line
    assert "--listen" in line


def test_busy_port_demo(tmp_path: Path, busy_port: int) -> None:
    line = one_error_line(
        run("demo", "--out", "d", "--listen", f"127.0.0.1:{busy_port}", cwd=tmp_path)
    )
    assert f"127.0.0.1:{busy_port}" in line and "--listen" in line


@pytest.mark.parametrize(("option", "words"), [("--out", "output folder"), ("--state", "state")])
def test_unwritable_folder(tmp_path: Path, spool: Path, option: str, words: str) -> None:
    (tmp_path / "a-file").write_text("a file where a folder should be\n")
    folders = {"--out": str(tmp_path / "out"), "--state": str(tmp_path / "state")}
    folders[option] = str(tmp_path / "a-file" / "sub")
    args = ["--out", folders["--out"], "--state", folders["--state"]]
    for command in (["watch", str(spool), "--listen", "127.0.0.1:0"], ["process", str(spool)]):
        line = one_error_line(run(*command, *args, cwd=tmp_path))
        assert words in line and folders[option] in line and "not writable" in line
        assert option in line


def test_unreadable_config(tmp_path: Path, spool: Path) -> None:
    folder_not_file = tmp_path / "conf.toml"
    folder_not_file.mkdir()
    line = one_error_line(run("watch", str(spool), "--config", str(folder_not_file), cwd=tmp_path))
    assert str(folder_not_file) in line and "cannot read the config file" in line


def test_missing_watch_folder(tmp_path: Path) -> None:
    line = one_error_line(run("watch", str(tmp_path / "nowhere"), cwd=tmp_path))
    assert str(tmp_path / "nowhere") in line and "not a folder" in line
