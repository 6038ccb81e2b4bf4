"""Issue 11 finding 9: fuzzed files raise only our errors, with a reason; no hang, no crash.

Replays the cases of ``stress/fuzz.py`` (seed 1) that raised h5py/numpy exceptions of their
own on the readers before they were widened (a filter pipeline's ``RuntimeError``, a
``TypeError`` from a corrupted datatype, ``ValueError`` "Insufficient precision", an
``OSError`` "ran off end of input buffer"), then a short fresh fuzz of each reader; the stress
run (``python -m stress.run``) does 10⁵ cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stress.fuzz import fuzz

FOUND_BY_SEED_1 = [3898, 4424, 4898, 6747]


def test_the_cases_that_raised_foreign_exceptions_now_raise_ours() -> None:
    report = fuzz("flow", FOUND_BY_SEED_1, seed=1)
    assert report.cases == len(FOUND_BY_SEED_1)
    assert report.bad == 0, report.examples
    assert all(k.startswith("ours:") for k in report.outcomes), report.outcomes


@pytest.mark.parametrize("fmt", ["flow", "wfm", "shots"])
def test_a_short_fuzz_finds_only_our_errors(fmt: str) -> None:
    report = fuzz(fmt, 250, seed=7)
    assert report.cases == 250
    assert report.bad == 0, report.examples
    assert report.outcomes["ok"] < 250  # the mutations do break files
