"""The per-channel pages: the strip of this file's change from the previous files in σ, the
one thing the previous files' band (a few counts thick against a 4000-count range) cannot
show; and its σ, the baseline shift test's own."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.colors import to_hex

from wavedqm.analysis.stats import Spread, shift_in_sigmas
from wavedqm.exporters.channel_pages import DEVIATION_RANGE, channel_series_figure
from wavedqm.exporters.plots import PROBLEM_COLOUR


def _spread(median, low=None, high=None) -> Spread:
    m = np.asarray(median, float)
    return Spread(m, np.full(m.shape, 2.0) if low is None else np.asarray(low, float),
                  np.full(m.shape, 2.0) if high is None else np.asarray(high, float))  # fmt: skip


def test_shift_in_sigmas_uses_the_errors_facing_each_other():
    current = _spread([[10.0, 1.0, np.nan, 5.0, 6.0]], low=[[3, 9, 1, 0, 0]],
                      high=[[9, 12, 1, 0, 0]])  # fmt: skip
    previous = _spread([[6.0, 6.0, 1.0, 5.0, 5.0]], low=[[9, 5, 1, 0, 0]],
                       high=[[4, 9, 1, 0, 0]])  # fmt: skip
    got = shift_in_sigmas(current, previous)[0]
    # up: hypot(current low 3, previous high 4) = 5
    # down: hypot(current high 12, previous low 5) = 13
    assert np.allclose(got[:2], [4 / 5, -5 / 13])
    assert np.isnan(got[2])  # no median
    assert np.isnan(got[3])  # no change and no error: nothing to say
    assert got[4] == np.inf  # a change with no error at all


def _strip_points(fig):
    """(x, y, colour) of every point in the strips (the axes with a ±8σ y range)."""
    strips = [ax for ax in fig.axes if ax.get_visible() and ax.get_ylim() == (-8.0, 8.0)]
    out = []
    for ax in strips:
        for coll in ax.collections:
            offsets = np.asarray(coll.get_offsets())
            colours = coll.get_facecolors()
            for k, (x, y) in enumerate(offsets):
                out.append((ax, float(x), float(y), to_hex(colours[k % len(colours)])))
    return strips, out


def test_the_strip_shows_the_moved_channel_in_red_and_the_far_one_at_its_edge():
    n_adcs, n_ch = 4, 64
    prev = _spread(np.full((n_adcs, n_ch), -28000.0))
    now = np.full((n_adcs, n_ch), -28000.0)
    now[1, 10] += 4 * 2.0 * np.sqrt(2)  # 4σ up: flagged, inside the strip
    now[2, 20] -= 20 * 2.0 * np.sqrt(2)  # 20σ down: beyond the strip's range
    now[3, 30] += 1 * 2.0 * np.sqrt(2)  # 1σ: passes
    current = _spread(now)
    dev = shift_in_sigmas(current, prev)
    fig = channel_series_figure("Baseline", "baseline (ADC16 counts)", current, prev, 4,
                                adcs=range(4), deviation=dev, deviation_limit=3.0)  # fmt: skip
    strips, points = _strip_points(fig)
    assert len(strips) == 4
    red = [(round(x), round(y, 3)) for _, x, y, c in points if c == PROBLEM_COLOUR]
    assert red == [(10, 4.0), (20, round(-DEVIATION_RANGE * 0.9, 3))]
    blue = [(x, y) for _, x, y, c in points if c != PROBLEM_COLOUR]
    assert len(blue) == 4 * 64 - 2 and (30.0, 1.0) in [(x, round(y, 6)) for x, y in blue]
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "±3σ passes the shift test" in legend


def test_no_previous_files_no_strip():
    current = _spread(np.full((4, 64), -28000.0))
    fig = channel_series_figure("Baseline", "baseline", current, None, 0, adcs=range(4),
                                deviation=None, deviation_limit=3.0)  # fmt: skip
    assert _strip_points(fig)[0] == []
    assert sum(ax.get_visible() for ax in fig.axes) == 4
