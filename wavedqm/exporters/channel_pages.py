"""The per-channel pages of the per-file PDF report (baseline, noise; ADC16 counts), drawn with
the kit of :mod:`wavedqm.exporters.plots`; nothing here computes physics.

One panel per ADC: this file as points with asymmetric errors (one ``errorbar`` call per
ADC), the previous files as a step band (one ``fill_between`` per ADC). Against the allowed
baseline range (4000 counts) the previous files' band is a few counts thick, so each panel
has a strip under it with what the band cannot show: this file's change from the previous
files in σ (:func:`wavedqm.analysis.stats.shift_in_sigmas`), with the shift test's ±3σ band;
a channel beyond it is red, one beyond the strip's range a triangle at its edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wavedqm.analysis.stats import Spread
from wavedqm.exporters.plots import (
    CURRENT_COLOUR,
    INACTIVE_COLOUR,
    LABEL_SIZE,
    PROBLEM_COLOUR,
    REFERENCE_COLOUR,
    TICK_SIZE,
    figure_legend,
    legend_handles,
    nonneg,
    page_figure,
    panel_title,
    shade_inactive,
    step_band,
    style_axes,
)

REFERENCE_RUN_COLOUR = "#7b3294"
"""The reference run's medians (purple bars, right of each channel's point)."""
DEVIATION_RANGE = 8.0
"""Half-height of the change strip (σ); a change beyond it is drawn as a triangle at its edge."""
DEVIATION_BAND_COLOUR = "#d9f0d3"
"""Fill of the strip's band where a change passes the test (within ±limit σ)."""
_MARGINS = dict(top=0.885, bottom=0.085, left=0.075, right=0.985)
"""Page margins of the panels (fractions of the page), as ``plots.axes_grid``."""


def channel_series_figure(
    title: str,
    y_label: str,
    current: Spread,
    previous: Spread | None,
    n_previous: int,
    *,
    adcs: Sequence[int],
    active: np.ndarray | None = None,
    highlight: np.ndarray | None = None,
    highlight_label: str = "new problem",
    reference_lines: Sequence[float] = (),
    reference_label: str = "configured limits",
    deviation: np.ndarray | None = None,
    deviation_limit: float | None = None,
    deviation_test: str = "shift test",
    reference: Spread | None = None,
    reference_name: str = "",
) -> Figure:
    """One panel per ADC of ``adcs`` (2 × 2 for four ADCs), x = channel, y = the quantity.

    ``current``/``previous``: (n_adcs, n_channels) medians with their low/high errors in the
    units of ``y_label``; ``previous`` None (or ``n_previous`` 0) draws no band. ``active``:
    bool (a, c), other channels are shaded and not drawn. ``highlight``: bool (a, c), channels
    circled in red. ``reference_lines``: y values drawn dashed (e.g. the allowed range).
    ``deviation``: (a, c) this file's change from the previous files in σ, drawn in a strip
    under each panel when there are previous files; ``deviation_limit``: the σ a change may
    reach before ``deviation_test`` flags it (its band; None: no test, no band).
    ``reference``: the reference run's medians with their errors (quality tests), drawn as a
    short horizontal bar per channel with its error span, beside this file and the previous
    files.
    """
    fig = page_figure(title)
    n = len(adcs)
    n_cols = 2 if n > 1 else 1
    n_rows = -(-n // n_cols)
    median = np.asarray(current.median, dtype=np.float64)
    n_channels = median.shape[1]
    x = np.arange(n_channels, dtype=np.float64)
    show_previous = previous is not None and n_previous > 0
    strips = show_previous and deviation is not None
    panels, strip_axes = _layout(fig, n_rows, n_cols, strips)
    for k, (ax, adc) in enumerate(zip(panels, adcs, strict=False)):
        style_axes(ax)
        keep = np.ones(n_channels, bool) if active is None else np.asarray(active[adc], bool)
        shade_inactive(ax, x, ~keep)
        if show_previous and previous is not None:
            p_mid = np.where(keep, previous.median[adc], np.nan)
            step_band(ax, x, p_mid - previous.err_low[adc], p_mid + previous.err_high[adc],
                      p_mid, f"previous {n_previous} files")  # fmt: skip
        if reference is not None:
            r_mid = np.where(keep, reference.median[adc], np.nan)
            ax.errorbar(x + 0.3, r_mid, yerr=[nonneg(reference.err_low[adc]),
                        nonneg(reference.err_high[adc])], fmt="_", ms=7, mew=1.6, lw=0.7,
                        color=REFERENCE_RUN_COLOUR, zorder=2)  # fmt: skip
        y = np.where(keep, median[adc], np.nan)
        ax.errorbar(x, y, yerr=[nonneg(current.err_low[adc]), nonneg(current.err_high[adc])],
                    fmt="o", ms=2.8, lw=0.8, color=CURRENT_COLOUR, zorder=3)  # fmt: skip
        if highlight is not None and np.any(highlight[adc] & keep):
            cells = np.flatnonzero(highlight[adc] & keep)
            ax.scatter(x[cells], y[cells], s=70, facecolors="none", edgecolors=PROBLEM_COLOUR,
                       linewidths=1.4, zorder=4)  # fmt: skip
        for ref in reference_lines:
            ax.axhline(ref, color=REFERENCE_COLOUR, ls="--", lw=0.9)
        panel_title(ax, f"ADC {adc}")
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE)
        if strips and deviation is not None:
            strip = strip_axes[k]
            shade_inactive(strip, x, ~keep)
            _deviation_strip(strip, x, np.where(keep, deviation[adc], np.nan), deviation_limit)
    panels[0].set_xlim(-0.7, n_channels - 0.3)  # shared by every panel
    panels[0].set_xticks(np.arange(0, n_channels, 8))
    for ax in panels[len(adcs) :] + strip_axes[len(adcs) :]:
        ax.set_visible(False)
    bottom_row = strip_axes if strips else panels
    for ax in bottom_row[-n_cols:]:
        ax.set_xlabel("channel", fontsize=LABEL_SIZE)
    extra = _extra_handles(median, adcs, active, highlight, highlight_label, reference_lines,
                           reference_label, strips, deviation_limit, deviation_test)  # fmt: skip
    if reference is not None:
        extra.insert(0, Line2D([], [], marker="_", ls="", ms=10, mew=1.6,
                               color=REFERENCE_RUN_COLOUR,
                               label=f"reference {reference_name}".strip()))  # fmt: skip
    figure_legend(fig, legend_handles(n_previous, previous=show_previous, extra=extra))
    return fig


def _layout(fig: Figure, n_rows: int, n_cols: int, strips: bool) -> tuple[list[Axes], list[Axes]]:
    """The panels (row-major) and, with ``strips``, a short strip under each (same x)."""
    if not strips:
        grid = fig.add_gridspec(n_rows, n_cols, hspace=0.25, wspace=0.2, **_MARGINS)
        first = fig.add_subplot(grid[0, 0])
        panels = [first] + [
            fig.add_subplot(grid[r, c], sharex=first)
            for r in range(n_rows) for c in range(n_cols) if (r, c) != (0, 0)
        ]  # fmt: skip
        for ax in panels[:-n_cols]:
            ax.tick_params(labelbottom=False)
        return panels, []
    outer = fig.add_gridspec(n_rows, n_cols, hspace=0.3, wspace=0.2, **_MARGINS)
    panels: list[Axes] = []
    strip_axes: list[Axes] = []
    for r in range(n_rows):
        for c in range(n_cols):
            inner = outer[r, c].subgridspec(2, 1, height_ratios=(3.0, 1.0), hspace=0.06)
            share = panels[0] if panels else None
            ax = fig.add_subplot(inner[0], sharex=share)
            strip = fig.add_subplot(inner[1], sharex=ax)
            ax.tick_params(labelbottom=False)
            if r < n_rows - 1:
                strip.tick_params(labelbottom=False)
            panels.append(ax)
            strip_axes.append(strip)
    return panels, strip_axes


def _deviation_strip(ax: Axes, x: np.ndarray, dev: np.ndarray, limit: float | None) -> None:
    """This file's change from the previous files in σ; beyond the limit red, beyond the
    strip's range a triangle at its edge."""
    style_axes(ax)
    r = DEVIATION_RANGE
    if limit is not None:
        ax.axhspan(-limit, limit, color=DEVIATION_BAND_COLOUR, lw=0, zorder=0)
    ax.axhline(0.0, color="0.45", lw=0.7, zorder=1)
    finite = np.isfinite(dev) | np.isinf(dev)
    flagged = finite & (np.abs(dev) > limit) if limit is not None else np.zeros_like(finite)
    colour = np.where(flagged, PROBLEM_COLOUR, CURRENT_COLOUR)
    inside = finite & (np.abs(dev) <= r)
    ax.scatter(x[inside], dev[inside], s=9, c=colour[inside], zorder=3, linewidths=0)
    for sign, marker in ((1.0, "^"), (-1.0, "v")):
        out = finite & (sign * dev > r)
        if out.any():
            ax.scatter(x[out], np.full(out.sum(), sign * r * 0.9), marker=marker, s=22,
                       c=colour[out], zorder=3, linewidths=0)  # fmt: skip
    ax.set_ylim(-r, r)
    ax.set_yticks([-limit, 0, limit] if limit is not None else [-r / 2, 0, r / 2])
    ax.tick_params(labelsize=TICK_SIZE)
    # inside the strip: the panel's own y label runs down beside it
    ax.text(0.005, 0.93, "Δ vs previous (σ)", transform=ax.transAxes, ha="left", va="top",
            fontsize=TICK_SIZE, color="0.3",
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1.0))  # fmt: skip


def _extra_handles(
    median: np.ndarray,
    adcs: Sequence[int],
    active: np.ndarray | None,
    highlight: np.ndarray | None,
    highlight_label: str,
    reference_lines: Sequence[float],
    reference_label: str,
    strips: bool,
    deviation_limit: float | None,
    deviation_test: str,
) -> list[Line2D | Patch]:
    extra: list[Line2D | Patch] = []
    shown = np.ones(median.shape, bool) if active is None else np.asarray(active, bool)
    if highlight is not None and np.any((highlight & shown)[list(adcs)]):
        extra.append(Line2D([], [], marker="o", ls="", ms=8, mfc="none", mec=PROBLEM_COLOUR,
                            mew=1.4, label=highlight_label))  # fmt: skip
    if reference_lines:
        extra.append(Line2D([], [], color=REFERENCE_COLOUR, ls="--", label=reference_label))
    if strips and deviation_limit is not None:
        extra.append(Patch(facecolor=DEVIATION_BAND_COLOUR, edgecolor="0.7",
                           label=f"strip: change vs previous, ±{deviation_limit:g}σ passes "
                           f"the {deviation_test}"))  # fmt: skip
    elif strips:
        extra.append(Line2D([], [], marker="o", ls="", ms=3, color=CURRENT_COLOUR,
                            label="strip: change vs previous (σ)"))  # fmt: skip
    if active is not None:
        extra.append(Patch(facecolor=INACTIVE_COLOUR, edgecolor="0.8", label="not connected"))
    return extra
