"""The two light masks: which cell code each channel gets (analysis/masks.py) and how each
code is drawn (exporters/masks.py): every kind of new problem with its own marker and legend
label, the count of new problems in the title line, a PNG sized for a Grafana panel."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
from matplotlib.collections import PathCollection
from PIL import Image

from wavedqm import constants as C
from wavedqm.analysis.masks import baseline_cells, flatline_cells
from wavedqm.exporters.masks import (
    BASELINE_STYLE,
    FLATLINE_STYLE,
    MASK_SIZE_IN,
    figure_png,
    render_mask,
)


def _result(**fields: object) -> SimpleNamespace:
    """The fields of a LightResult the masks read (a plain record, no behaviour)."""
    active = np.zeros((8, 64), bool)
    active[:, 4:16] = active[:, 20:32] = active[:, 36:48] = active[:, 52:64] = True
    known = np.where(active, C.STATUS_GOOD, C.STATUS_INACTIVE).astype(np.int8)
    known[0, 5] = C.STATUS_KNOWN_DEAD
    known[0, 6] = C.STATUS_KNOWN_BASELINE
    known[0, 7] = C.STATUS_KNOWN_BOTH
    base = dict(active=active, monitored=active, known_status=known, dead_new=[],
                baseline_flagged=[])  # fmt: skip
    return SimpleNamespace(**{**base, **fields})


def test_baseline_cells_say_which_test_flagged_the_channel() -> None:
    flagged = [(1, 9, C.BASELINE_OUT_OF_RANGE), (3, 22, C.BASELINE_SPREAD),
               (6, 40, C.BASELINE_SHIFT), (5, 55, C.BASELINE_SPREAD_AND_SHIFT)]  # fmt: skip
    cells = baseline_cells(_result(baseline_flagged=flagged))
    assert cells[1, 9] == C.CELL_BASELINE_OUT_OF_RANGE
    assert cells[3, 22] == C.CELL_BASELINE_SPREAD
    assert cells[6, 40] == C.CELL_BASELINE_SHIFT
    assert cells[5, 55] == C.CELL_BASELINE_SPREAD_AND_SHIFT
    # known baseline problems (status 2 and 3) are "known", a known-dead one is healthy here
    assert cells[0, 6] == cells[0, 7] == C.CELL_KNOWN and cells[0, 5] == C.CELL_OK
    assert (cells[:, :4] == C.CELL_INACTIVE).all()
    assert np.count_nonzero(cells >= C.CELL_NEW) == 4


def test_flatline_cells_mark_new_dead_and_known_dead() -> None:
    cells = flatline_cells(_result(dead_new=[(2, 12)]))
    assert cells[2, 12] == C.CELL_NEW
    assert cells[0, 5] == cells[0, 7] == C.CELL_KNOWN and cells[0, 6] == C.CELL_OK
    assert np.count_nonzero(cells >= C.CELL_NEW) == 1


def _points_by_marker_size(fig) -> list[int]:
    ax = fig.axes[0]
    return [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def test_each_kind_of_new_baseline_problem_has_its_own_marker_and_label() -> None:
    flagged = [(1, 9, C.BASELINE_OUT_OF_RANGE), (3, 22, C.BASELINE_SPREAD),
               (3, 23, C.BASELINE_SPREAD), (6, 40, C.BASELINE_SHIFT)]  # fmt: skip
    cells = baseline_cells(_result(baseline_flagged=flagged))
    fig = render_mask(cells, BASELINE_STYLE, time_start_s=1.79e9, time_end_s=1.79e9 + 600,
                      source="run_0003.FLOW.hdf5")  # fmt: skip
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Baseline OK", "out of range", "moved > 3σ vs previous files",
                      "spread over events too wide", "moved and spread",
                      "known problem (status CSV): ignored"]  # fmt: skip
    n_ok = int(np.count_nonzero(cells == C.CELL_OK))
    # ok, known, then one collection per kind in the legend's order
    assert _points_by_marker_size(fig) == [n_ok, 2, 1, 1, 2, 0]
    markers = {k.marker for k in BASELINE_STYLE.new_kinds}
    assert len(markers) == len(BASELINE_STYLE.new_kinds)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "4 new problems: contact LRS expert" in texts
    assert "2026-09-21 14:13:20 → 14:23:20 UTC" in texts
    assert "blank: not connected" in texts


def test_mask_png_is_panel_sized_and_says_no_new_problem() -> None:
    cells = flatline_cells(_result())
    fig = render_mask(cells, FLATLINE_STYLE, source="f.FLOW.hdf5")
    assert "no new problem" in " ".join(t.get_text() for t in fig.texts)
    png = Image.open(io.BytesIO(figure_png(fig)))
    assert png.size == (round(MASK_SIZE_IN[0] * 100), round(MASK_SIZE_IN[1] * 100))
    # every text is at least 13 pt: legible when a 640 px panel halves the 1280 px image
    sizes = [t.get_fontsize() for t in fig.texts]
    sizes += [t.get_fontsize() for t in fig.axes[0].get_legend().get_texts()]
    sizes += [t.get_fontsize() for t in fig.axes[0].get_xticklabels()]
    assert min(sizes) >= 13
