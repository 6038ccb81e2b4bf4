"""The fault-injection run (``python -m stress.run``) at its CI size: a burst, random kills,
kills aimed at each instant of ``stress/killpoint.py``, slow and
locked writers in both watch modes, truncation at every 5 % and a fuzz of each reader, all
against a real daemon (PDF reports off: the kills check the PNG masks through the same
journal); it exits 0 only when no file was lost or doubled, none failed
``internal`` and the daemon stayed up. The full size (``--size full``: 1,000-file burst, 50
kills, 10⁵ fuzz cases per reader) is run by hand; its table is in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stress.killpoint import POINTS

ROOT = Path(__file__).resolve().parents[1]


def test_the_stress_run_at_ci_size_loses_and_doubles_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stress.run", "--size", "ci", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    table = proc.stdout
    for scenario in ("burst of 7 files", "kill -9 x2", "writers:", "writers-poll:",
                     "truncated at every 5 %", "fuzz flow", "fuzz wfm", "fuzz shots"):  # fmt: skip
        assert scenario in table, table
    for point in POINTS:  # each targeted kill reached its instant (else the run exits 1)
        assert f"kill -9 at {point} " in table, table
    assert "| NO |" not in table
