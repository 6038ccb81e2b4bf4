"""Trend pages (the run report): quantities against the file index, one panel per
:class:`TrendPanel`, one line per :class:`TrendSeries`, with the files' data start times on a
top axis (:func:`time_axis_labels`: as short as the run's span allows and never the same
label twice). Drawn with the kit of :mod:`wavedqm.exporters.plots`; nothing here computes
physics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from wavedqm.exporters.plots import (
    LABEL_SIZE,
    SERIES_COLOURS,
    TEXT_SIZE,
    TICK_SIZE,
    UPPER_LIMIT_LABEL,
    axes_grid,
    nonneg,
    page_figure,
    panel_title,
    style_axes,
)


@dataclass
class TrendSeries:
    """One line of a trend panel: ``y`` over the files, optional interval ``lower``/``upper``
    (same units) drawn as error bars."""

    label: str
    y: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


@dataclass
class TrendPanel:
    """One panel of :func:`trend_figure`."""

    title: str
    y_label: str
    series: list[TrendSeries] = field(default_factory=list)
    log_y: bool = False
    integer_y: bool = False
    dodge: bool = False
    """Shift the series sideways a little (counts that coincide stay visible)."""


def trend_figure(
    title: str,
    x: np.ndarray,
    panels: Sequence[TrendPanel],
    *,
    x_label: str = "file index",
    time_labels: Sequence[str] = (),
    time_note: str = "top axis: data start of the file (UTC)",
    n_cols: int = 1,
    panel_legends: bool = True,
) -> Figure:
    """Quantities against the file index: one panel per :class:`TrendPanel`, one line per
    series (one ``plot``/``errorbar`` call each). Legends on the right of each panel, or
    (``panel_legends`` False: every panel has the same series) one legend above them all.
    ``time_labels``: per file (data start times, :func:`time_axis_labels`), shown on a top
    axis at a few ticks and explained by ``time_note``. A ``log_y`` panel whose values span
    less than a factor 10 is drawn linear in scaled units (``power (10⁻⁷ V²)``): a log axis
    inside one decade labels every tick with a long mantissa."""
    fig = page_figure(title)
    n_rows = max(1, -(-len(panels) // n_cols))
    axes = axes_grid(
        fig,
        n_rows,
        n_cols,
        sharex=True,
        right=0.85 if panel_legends else 0.985,
        top=0.88 if panel_legends else 0.86,
        hspace=0.35 if n_rows > 1 else None,
        wspace=0.38 if n_cols > 1 else 0.2,
    )
    x = np.asarray(x, dtype=np.float64)
    ticks = _index_ticks(x.size)
    show_times = len(time_labels) == x.size and x.size > 0
    any_zero = False
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        style_axes(ax)
        n_series = len(panel.series)
        log_y, scale, y_label = _y_axis(panel)
        for i, s in enumerate(panel.series):
            colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
            xs = x + (i - (n_series - 1) / 2) * min(0.08, 0.36 / n_series) if panel.dodge else x
            y = np.asarray(s.y, dtype=np.float64) * scale
            if panel.log_y:
                y = np.where(y > 0, y, np.nan)
            if s.lower is not None and s.upper is not None:
                lower, upper = np.asarray(s.lower) * scale, np.asarray(s.upper) * scale
                # 0 of n: no bar from 0 to the upper limit (a comb over every file), a caret
                zero = (y == 0) & (lower == 0) & (upper > 0)
                if zero.any():
                    ax.plot(xs[zero], upper[zero], "v", ms=3.5, mfc="none", mec=colour,
                            mew=0.7, alpha=0.6, zorder=2)  # fmt: skip
                    any_zero = True
                ax.errorbar(
                    xs,
                    y,
                    yerr=[nonneg(y - lower), np.where(zero, 0.0, nonneg(upper - y))],
                    fmt="o-",
                    ms=3,
                    lw=1,
                    elinewidth=0.8,
                    capsize=0,
                    color=colour,
                    label=s.label,
                )
            else:
                ax.plot(xs, y, "o-", ms=3, lw=1, color=colour, label=s.label)
        if log_y and any(np.any(np.asarray(s.y) > 0) for s in panel.series):
            ax.set_yscale("log")
        elif panel.log_y:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        if panel.integer_y:
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.set_ylim(bottom=-0.5)
        panel_title(ax, panel.title, above_top_axis=show_times and k < n_cols)
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE)
        if panel.series and panel_legends:
            ax.legend(
                loc="center left",
                bbox_to_anchor=(1.005, 0.5),
                fontsize=TICK_SIZE,
                frameon=False,
                ncol=1 if len(panel.series) <= 10 else 2,
            )
    axes[0].set_xticks(ticks)  # shared by every panel
    if x.size:
        axes[0].set_xlim(-0.5, x.size - 0.5)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[-n_cols:]:
        ax.set_xlabel(x_label, fontsize=LABEL_SIZE)
    if show_times:
        time_ticks = _index_ticks(x.size, max_ticks=max(2, 10 // n_cols))
        for ax in axes[: min(n_cols, len(panels))]:
            top = ax.secondary_xaxis("top")
            top.set_xticks(time_ticks, labels=[time_labels[int(t)] for t in time_ticks])
            top.tick_params(labelsize=TICK_SIZE - 1.5)
    if not panel_legends and panels and panels[0].series:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.955),
            ncol=len(labels),
            fontsize=TEXT_SIZE,
            frameon=False,
        )
    if any_zero:
        fig.text(0.99, 0.955, f"▽ {UPPER_LIMIT_LABEL}", fontsize=TICK_SIZE, color="0.35",
                 va="top", ha="right")  # fmt: skip
    if show_times:
        fig.text(
            0.01,
            0.955,
            time_note,
            fontsize=TICK_SIZE,
            color="0.35",
            va="top",
        )
    return fig


def _index_ticks(n: int, max_ticks: int = 12) -> np.ndarray:
    """Integer ticks 0..n−1, at most about ``max_ticks`` of them."""
    if n <= 0:
        return np.zeros(0)
    step = max(1, -(-n // max_ticks))
    return np.arange(0, n, step, dtype=np.float64)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _y_axis(panel: TrendPanel) -> tuple[bool, float, str]:
    """(log scale?, factor applied to the values, y label) of a panel (module doc)."""
    if not panel.log_y:
        return False, 1.0, panel.y_label
    values = np.concatenate([np.asarray(s.y, dtype=np.float64).ravel() for s in panel.series]
                            or [np.zeros(0)])  # fmt: skip
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0 or positive.max() >= 10 * positive.min():
        return True, 1.0, panel.y_label
    exponent = int(np.floor(np.log10(positive.max())))
    power = f"10{str(exponent).translate(_SUPERSCRIPT)}"
    label = panel.y_label
    label = label.replace("(", f"({power} ", 1) if "(" in label else f"{label} (× {power})"
    return False, 10.0**-exponent, label


def time_axis_labels(times: Sequence[float | None]) -> tuple[list[str], str]:
    """Top-axis labels for files starting at unix ``times`` (s; None: unknown) and the note
    that explains them: ``HH:MM`` or ``HH:MM:SS`` with the date in the note when the run
    stays within one day (seconds when minutes repeat), ``MM-DD HH:MM`` over several days,
    seconds after the first file when even whole seconds repeat."""
    known = [t for t in times if t is not None and np.isfinite(t)]
    if not known:
        return ["-"] * len(times), "top axis: data start of the file (UTC)"
    stamps = [None if t is None or not np.isfinite(t) else datetime.fromtimestamp(t, tz=UTC)
              for t in times]  # fmt: skip
    days = {d.date() for d in stamps if d is not None}

    def labels(fmt: str) -> list[str]:
        return ["-" if d is None else d.strftime(fmt) for d in stamps]

    def distinct(out: list[str]) -> bool:
        shown = [v for v in out if v != "-"]
        return len(set(shown)) == len(shown)

    day = min(days).isoformat()
    if len(days) > 1:
        formats = (("%m-%d %H:%M", "month-day hour:minute"),
                   ("%m-%d %H:%M:%S", "month-day hour:minute:second"))  # fmt: skip
        suffix = ")"
    else:
        formats = (("%H:%M", "hour:minute"), ("%H:%M:%S", "hour:minute:second"))
        suffix = f", {day})"
    for fmt, what in formats:
        out = labels(fmt)
        if distinct(out):
            return out, f"top axis: data start of the file (UTC, {what}{suffix}"
    t0 = min(known)
    out = ["-" if t is None or not np.isfinite(t) else f"+{t - t0:.1f} s" for t in times]
    first = datetime.fromtimestamp(t0, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return out, f"top axis: data start of the file, seconds after {first} UTC"
