"""Drawings in a helper process (``[output] drawing_processes``): the analysis keeps its GIL;
a job that does not pickle is drawn on the plotting thread; a failing or crashing drawing never
takes the daemon down."""

from __future__ import annotations

import os

from structlog.testing import capture_logs

from wavedqm.exporters.plotting import PlotQueue

from toyproc import crashing_drawing, failing_drawing, pid_drawing


def test_drawings_run_in_a_helper_and_unpicklable_ones_on_the_thread() -> None:
    queue = PlotQueue(processes=1)
    try:
        helper = int(queue.submit(pid_drawing).result(60)["pid"].name)
        assert helper != os.getpid()
        assert int(queue.submit(pid_drawing).result(60)["pid"].name) == helper  # one helper
        here = queue.submit(lambda: pid_drawing()).result(60)  # a lambda does not pickle
        assert int(here["pid"].name) == os.getpid()
    finally:
        queue.close()


def test_a_failing_or_crashing_drawing_gives_nothing_and_the_next_one_works() -> None:
    queue = PlotQueue(processes=1)
    try:
        with capture_logs() as logs:
            assert queue.submit(failing_drawing).result(60) == {}
            assert queue.submit(crashing_drawing).result(60) == {}
            after = queue.submit(pid_drawing).result(60)
        assert int(after["pid"].name) != os.getpid()  # a new helper, not this process
        events = {e["event"]: e for e in logs}
        assert "this figure cannot be drawn" in events["plots_failed"]["error"]
        assert "drawing_helper_died" in events
    finally:
        queue.close()


def test_without_helpers_the_thread_draws() -> None:
    queue = PlotQueue(processes=0)
    try:
        assert int(queue.submit(pid_drawing).result(60)["pid"].name) == os.getpid()
    finally:
        queue.close()
