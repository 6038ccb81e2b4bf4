"""The shot pictures (seed 003: "does this look like yesterday's good shots?"). Nothing here
computes physics: the figures draw traces, envelopes and trend series made by
:mod:`wavedqm.analysis.shot_series`.

- :func:`overlay_figure`: one channel, the last N shots (grey: good, red dashed: flagged, the
  latest in black) over the mean ± std envelope of the good ones (blue band);
- :func:`overlay_grid_figure`: the same for every channel, one panel each (Grafana's image);
- :func:`trends_figure`: the trend metrics (rows) of every channel (columns) against the shot
  number or a control variable, flagged shots in red, the latest circled.

With a reference in use (its shots part, :mod:`wavedqm.analysis.shot_quality`), the overlays
show the reference's peak (green cross: mean ± std of the good shots' time of peak and peak)
and the trends a green band, the reference's mean ± std of that metric and channel, its
median dashed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wavedqm.analysis.shot_quality import MetricStats
from wavedqm.analysis.shot_series import SHOT_INDEX, Envelope, Trace, TrendSeries
from wavedqm.exporters.plots import (
    A4_LANDSCAPE_IN,
    CURRENT_COLOUR,
    LABEL_SIZE,
    PREVIOUS_COLOUR,
    PROBLEM_COLOUR,
    REFERENCE_COLOUR,
    TICK_SIZE,
)

OVERLAY_PNG = "shot_overlay.png"
TRENDS_PNG = "shot_trends.png"
PeakBand = tuple[MetricStats, MetricStats]
"""The reference's (time_of_peak, peak) distributions of one channel (s, channel units)."""
TIME_METRICS = ("time_of_peak", "rise_time_10_90")
"""Metrics in s, drawn in µs or ms."""
TIME_INTEGRALS = ("auc",)
"""Metrics in channel units × s, drawn in units × µs or × ms."""
FREQUENCY_METRICS = ("dominant_freq_hz",)


def overlay_png_name(channel: str) -> str:
    return f"overlay_{channel}.png"


def trends_png_name(x: str) -> str:
    return f"trends_vs_{x}.png"


def _seconds_scale(span_s: float) -> tuple[float, str]:
    """A factor and unit that show ``span_s`` seconds as a number below 5000."""
    for factor, unit in ((1e6, "µs"), (1e3, "ms")):
        if span_s * factor < 5000:
            return factor, unit
    return 1.0, "s"


def _time_scale(traces: Sequence[Trace]) -> tuple[float, str]:
    return _seconds_scale(max((float(tr.t[-1] - tr.t[0]) for tr in traces if tr.t.size),
                              default=1.0))  # fmt: skip


def metric_scale(metric: str, values: np.ndarray) -> tuple[float, str]:
    """Factor and axis label of a metric: times in µs/ms, integrals in units × µs/ms,
    frequencies in Hz/kHz/MHz."""
    big = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 1.0
    if metric in TIME_METRICS or metric in TIME_INTEGRALS:
        factor, unit = _seconds_scale(big)
        return factor, f"{metric} ({unit})" if metric in TIME_METRICS else f"{metric} (×{unit})"
    if metric in FREQUENCY_METRICS:
        for factor, unit in ((1e-6, "MHz"), (1e-3, "kHz")):
            if big * factor >= 1:
                return factor, f"dominant freq ({unit})"
        return 1.0, "dominant freq (Hz)"
    return 1.0, metric


def draw_overlay(
    ax: Axes, channel: str, traces: Sequence[Trace], env: Envelope | None,
    peak: PeakBand | None = None,
) -> None:  # fmt: skip
    factor, unit = _time_scale(traces)
    if peak is not None:
        t, y = peak
        ax.errorbar([t.mean * factor], [y.mean], xerr=[_finite(t.std) * factor],
                    yerr=[_finite(y.std)], color=REFERENCE_COLOUR, lw=1.6, capsize=4,
                    marker="D", ms=4, zorder=5)  # fmt: skip
    if env is not None:  # over the earlier shots, under the latest
        ax.fill_between(
            env.t * factor, env.mean - env.std, env.mean + env.std,
            color=CURRENT_COLOUR, alpha=0.35, lw=0, zorder=3.5,
        )  # fmt: skip
        ax.plot(env.t * factor, env.mean, color=CURRENT_COLOUR, lw=1.0, zorder=3.6)
    for tr in traces[:-1]:
        style = dict(color=PREVIOUS_COLOUR, lw=0.6, alpha=0.7)
        if not tr.good:
            style = dict(color=PROBLEM_COLOUR, lw=0.7, ls="--", alpha=0.8)
        ax.plot(tr.t * factor, tr.y, zorder=3, **style)
    if traces:
        last = traces[-1]
        colour = "black" if last.good else PROBLEM_COLOUR
        ax.plot(last.t * factor, last.y, color=colour, lw=0.9, zorder=4)
    n_bad = sum(not tr.good for tr in traces)
    good = "no good shots" if env is None else f"envelope of {env.shots} good"
    ax.set_title(f"{channel}: {len(traces)} shots, {n_bad} flagged, {good}", fontsize=LABEL_SIZE)
    ax.set_xlabel(f"t ({unit})", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(alpha=0.3)
    if not traces:
        ax.text(0.5, 0.5, "no shots", transform=ax.transAxes, ha="center", va="center")


def _finite(x: float) -> float:
    """A std for an error bar: 0 when undefined."""
    return x if math.isfinite(x) else 0.0


def _legend(fig: Figure, latest: str, reference: bool = False) -> None:
    handles = [
        Patch(color=CURRENT_COLOUR, alpha=0.35, label="good shots: mean ± std"),
        Line2D([], [], color=PREVIOUS_COLOUR, lw=0.8, label="earlier shots"),
        Line2D([], [], color=PROBLEM_COLOUR, lw=0.8, ls="--", label="flagged on this channel"),
        Line2D([], [], color="black", lw=1.3, label=f"latest shot ({latest})"),
    ]
    if reference:
        handles.append(Line2D([], [], color=REFERENCE_COLOUR, marker="D", ms=4, lw=1.6,
                              label="reference peak: mean ± std"))  # fmt: skip
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=TICK_SIZE,
               frameon=False,
               bbox_to_anchor=(0.5, 0.955))  # fmt: skip


def overlay_figure(
    series: str, channel: str, traces: Sequence[Trace], env: Envelope | None,
    peak: PeakBand | None = None,
) -> Figure:  # fmt: skip
    fig = Figure(figsize=(10, 5.6))
    ax = fig.add_axes((0.08, 0.11, 0.9, 0.72))
    draw_overlay(ax, channel, traces, env, peak)
    fig.suptitle(f"Shots of {series}: {channel}", fontsize=13, weight="bold", y=0.99)
    _legend(fig, traces[-1].shot_id if traces else "-", peak is not None)
    return fig


def _grid(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    return math.ceil(n / cols), cols


def overlay_grid_figure(
    series: str,
    overlays: Mapping[str, tuple[Sequence[Trace], Envelope | None]],
    title: str = "",
    peaks: Mapping[str, PeakBand | None] | None = None,
) -> Figure:
    """Every channel's overlay on one A4-landscape page (also the Grafana image), with the
    reference's peak of each channel in ``peaks`` (when not None)."""
    peaks = peaks or {}
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    rows, cols = _grid(max(1, len(overlays)))
    axes = fig.subplots(rows, cols, squeeze=False,
                        gridspec_kw=dict(top=0.86, bottom=0.08, left=0.06, right=0.985,
                                         hspace=0.45, wspace=0.18)).ravel()  # fmt: skip
    latest = "-"
    for ax, (channel, (traces, env)) in zip(axes, overlays.items(), strict=False):
        draw_overlay(ax, channel, traces, env, peaks.get(channel))
        latest = traces[-1].shot_id if traces else latest
    for ax in axes[len(overlays) :]:
        ax.set_axis_off()
    fig.suptitle(title or f"Shots of {series}: last shots against the good ones",
                 fontsize=14, weight="bold", y=0.99)  # fmt: skip
    _legend(fig, latest, any(p is not None for p in peaks.values()))
    return fig


def _x_label(x: str) -> str:
    return "shot number" if x == SHOT_INDEX else x


def trends_figure(
    series: str,
    x: str,
    panels: Mapping[tuple[str, str], TrendSeries],
    metrics: Sequence[str],
    channels: Sequence[str],
    bands: Mapping[tuple[str, str], MetricStats] | None = None,
) -> Figure:
    """``panels[(metric, channel)]`` against ``x``: rows are metrics, columns channels; the
    reference's ``bands[(metric, channel)]`` (mean ± std, median dashed) behind them."""
    bands = bands or {}
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    rows, cols = max(1, len(metrics)), max(1, len(channels))
    axes = fig.subplots(rows, cols, squeeze=False,
                        gridspec_kw=dict(top=0.88, bottom=0.08, left=0.07, right=0.99,
                                         hspace=0.45, wspace=0.32))  # fmt: skip
    for i, metric in enumerate(metrics):
        for j, channel in enumerate(channels):
            ax = axes[i][j]
            s = panels.get((metric, channel))
            ax.tick_params(labelsize=TICK_SIZE - 1)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(channel, fontsize=LABEL_SIZE, weight="bold")
            row = [p.y for (m, _), p in panels.items() if m == metric and p.y.size]
            factor, label = metric_scale(metric, np.concatenate(row) if row else np.array([]))
            band = bands.get((metric, channel))
            if band is not None:
                _draw_band(ax, band, factor)
            if j == 0:
                ax.set_ylabel(label, fontsize=TICK_SIZE)
            if i == rows - 1:
                ax.set_xlabel(_x_label(x), fontsize=TICK_SIZE)
            if s is None or s.x.size == 0:
                ax.text(0.5, 0.5, "no values\n(metric off or undefined)",
                        transform=ax.transAxes, ha="center",
                        va="center", fontsize=TICK_SIZE, color="0.4")  # fmt: skip
                continue
            good = ~s.flagged
            y = s.y * factor
            ax.plot(s.x[good], y[good], "o", ms=3.5, color=CURRENT_COLOUR)
            ax.plot(s.x[s.flagged], y[s.flagged], "x", ms=5, color=PROBLEM_COLOUR)
            ax.plot(s.x[-1:], y[-1:], "o", ms=8, mfc="none", mec="black")
    handles = [
        Line2D([], [], ls="", marker="o", ms=4, color=CURRENT_COLOUR, label="no flag"),
        Line2D([], [], ls="", marker="x", ms=5, color=PROBLEM_COLOUR, label="flagged channel"),
        Line2D([], [], ls="", marker="o", ms=8, mfc="none", mec="black", label="latest shot"),
    ]
    if bands:
        label = "reference good shots: mean ± std (dashed: median)"
        handles.append(Patch(color=REFERENCE_COLOUR, alpha=0.25, label=label))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=TICK_SIZE,
               frameon=False, bbox_to_anchor=(0.5, 0.955))  # fmt: skip
    fig.suptitle(f"Shots of {series}: metrics against {_x_label(x)}", fontsize=14,
                 weight="bold", y=0.99)  # fmt: skip
    return fig


def _draw_band(ax: Axes, band: MetricStats, factor: float) -> None:
    """The reference's mean ± std (a band; a line when the std is undefined) and median."""
    if math.isfinite(band.mean):
        std = _finite(band.std)
        if std > 0:
            ax.axhspan((band.mean - std) * factor, (band.mean + std) * factor,
                       color=REFERENCE_COLOUR, alpha=0.25, lw=0, zorder=1)  # fmt: skip
        ax.axhline(band.mean * factor, color=REFERENCE_COLOUR, lw=0.8, zorder=1.1)
    if math.isfinite(band.median):
        ax.axhline(band.median * factor, color=REFERENCE_COLOUR, lw=0.9, ls="--", zorder=1.1)
