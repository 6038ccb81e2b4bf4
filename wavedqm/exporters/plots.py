"""Generic figure builders for the PDF reports: every page is a ``matplotlib.figure.Figure``
(no pyplot state), A4 landscape, and nothing here computes physics: the builders draw the
arrays the analysis gives them.

One plotting path per kind of page:

- :func:`channel_series_figure`: a per-channel quantity (baseline, noise; ADC16) for a set of
  ADCs — this file as points with asymmetric errors (one ``errorbar`` call per ADC), the
  previous files as a step band (one ``fill_between`` per ADC);
- :func:`fraction_figure`: a flag fraction (clipped, negative; %) with its Clopper–Pearson
  interval at any granularity ("channel", "epcb", "tpc", "total") for several trigger
  selections — one function, parameterised by the granularity;
- :func:`spectra_figure`: power spectra (V², log y) per EPCB, regions of interest shaded;
- :func:`jump_figure`: the waveform with the largest sample-to-sample jump;
- :func:`text_figure`, :func:`table_figure`, :func:`trend_figure`, :func:`error_figure`:
  the first page, tables, trends over files and the page that replaces a failed plot.

Colours are the same on every page: this file / current values :data:`CURRENT_COLOUR` (blue),
previous files :data:`PREVIOUS_COLOUR` (grey band), new problems :data:`PROBLEM_COLOUR` (red).
Every page's title is its figure ``suptitle`` (found by PDF text extractors). Text that comes
from outside (file names, configuration values, error messages) is drawn with
``parse_math=False``: a ``$`` in a file name never becomes mathtext.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from wavedqm.analysis.fractions import Fraction
from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.stats import Spread

A4_LANDSCAPE_IN = (11.69, 8.27)
"""Page size (inches)."""
CURRENT_COLOUR = "#2166ac"
"""This file (blue)."""
PREVIOUS_COLOUR = "#9e9e9e"
"""Band of the previous files (grey)."""
PREVIOUS_LINE_COLOUR = "#4d4d4d"
PROBLEM_COLOUR = "#d73027"
"""New problems (red, as in the mask PNGs)."""
REFERENCE_COLOUR = "#1a9850"
"""Configured limits (green dashed lines)."""
INACTIVE_COLOUR = "#f0f0f0"
"""Background of channels that are not connected."""
SERIES_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#ad494a",
)
"""One colour per series (ADC, EPCB of an ADC, TPC) on the pages with several lines."""
TITLE_SIZE = 15
LABEL_SIZE = 10
TICK_SIZE = 8.5
TEXT_SIZE = 9
FOOTER_SIZE = 7.5
NO_EVENTS_LABEL = "no events over threshold"


def page_figure(title: str) -> Figure:
    """An empty A4-landscape page with ``title`` as its suptitle. Layout is fixed (see
    :func:`_grid`): no layout engine, so a page is laid out once, when it is saved."""
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    fig.suptitle(title, fontsize=TITLE_SIZE, weight="bold", y=0.985, va="top", parse_math=False)
    return fig


def add_footer(fig: Figure, text: str) -> None:
    """Small grey text at the bottom right of the page (file name, page number)."""
    fig.text(0.99, 0.008, text, fontsize=FOOTER_SIZE, color="0.35", ha="right", parse_math=False)


def utc_text(t: float | None) -> str:
    """Unix time (s) as ``YYYY-MM-DD HH:MM:SS UTC``; ``-`` for None."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(float(t), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _style(ax: Axes) -> None:
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)


def _step_band(
    ax: Axes,
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    mid: np.ndarray | None,
    label: str,
    width: float = 0.84,
) -> None:
    """The previous files as a band over integer positions ``x``: a flat step of ``width``
    centred on each position (``lo`` to ``hi``, the median as a dash), steps apart from each
    other so that neighbouring channels never look joined. One ``fill_between`` and one
    ``plot`` call for all positions (NaN separators); NaN values leave a gap."""
    half = width / 2
    gap = np.full(x.shape, np.nan)
    edges = np.column_stack([x - half, x + half, gap]).ravel()

    def steps(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return np.column_stack([v, v, gap]).ravel()

    ax.fill_between(
        edges, steps(lo), steps(hi), color=PREVIOUS_COLOUR, alpha=0.5, lw=0, label=label
    )
    if mid is not None:
        ax.plot(edges, steps(mid), color=PREVIOUS_LINE_COLOUR, lw=1.0)


def _shade_inactive(ax: Axes, x: np.ndarray, inactive: np.ndarray) -> None:
    """Light background on positions that are not connected (one call)."""
    if not inactive.any():
        return
    edges = np.column_stack([x - 0.5, x + 0.5]).ravel()
    ax.fill_between(
        edges,
        0,
        1,
        where=np.repeat(inactive, 2),
        transform=ax.get_xaxis_transform(),
        color=INACTIVE_COLOUR,
        lw=0,
        zorder=0,
    )


def _panel_title(ax: Axes, text: str, *, above_top_axis: bool = False) -> None:
    """Title at the top left of a panel. Its height is fixed (``y=1``, a padding that clears
    a top axis' labels when there is one): matplotlib's automatic placement measures every
    top tick label of every panel and costs a tenth of the drawing time."""
    pad = 6 + (TICK_SIZE * 1.5 + 4 if above_top_axis else 0)
    ax.set_title(text, fontsize=LABEL_SIZE, loc="left", y=1.0, pad=pad, parse_math=False)


def _nonneg(a: np.ndarray) -> np.ndarray:
    """Error bar lengths: NaN and negative (rounding) become 0."""
    return np.clip(np.nan_to_num(np.asarray(a, dtype=np.float64)), 0.0, None)


def _legend_handles(
    n_previous: int, *, previous: bool, extra: Sequence[Line2D | Patch] = ()
) -> list[Line2D | Patch]:
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=CURRENT_COLOUR, marker="o", ms=4, ls="", label="this file")
    ]
    if previous:
        handles.append(
            Patch(
                facecolor=PREVIOUS_COLOUR,
                alpha=0.6,
                edgecolor=PREVIOUS_LINE_COLOUR,
                label=f"previous {n_previous} files",
            )
        )
    handles.extend(extra)
    return handles


def _figure_legend(fig: Figure, handles: Sequence[Line2D | Patch]) -> None:
    fig.legend(
        handles=list(handles),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncol=len(handles),
        fontsize=TEXT_SIZE,
        frameon=False,
    )


def _grid(
    fig: Figure,
    n_rows: int,
    n_cols: int,
    *,
    sharex: bool = False,
    top: float = 0.885,
    bottom: float = 0.085,
    left: float = 0.075,
    right: float = 0.985,
    hspace: float | None = None,
    wspace: float = 0.2,
) -> list[Axes]:
    """``n_rows × n_cols`` axes in fixed page margins (fractions of the page): room above for
    the title and the legend, below for the x label and the footer, left for the y label."""
    if hspace is None:
        hspace = 0.38 if sharex else 0.5
    axes = fig.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        sharex=sharex,
        gridspec_kw=dict(
            top=top, bottom=bottom, left=left, right=right, hspace=hspace, wspace=wspace
        ),
    )
    return list(axes.ravel())


# --- per-channel quantity ---------------------------------------------------------------------


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
) -> Figure:
    """One panel per ADC of ``adcs`` (2 × 2 for four ADCs), x = channel, y = the quantity.

    ``current``/``previous``: (n_adcs, n_channels) medians with their low/high errors in the
    units of ``y_label``; ``previous`` None (or ``n_previous`` 0) draws no band. ``active``:
    bool (a, c), other channels are shaded and not drawn. ``highlight``: bool (a, c), channels
    circled in red. ``reference_lines``: y values drawn dashed (e.g. the allowed range).
    """
    fig = page_figure(title)
    n = len(adcs)
    n_cols = 2 if n > 1 else 1
    n_rows = -(-n // n_cols)
    axes = _grid(fig, n_rows, n_cols, sharex=True, hspace=0.25)
    median = np.asarray(current.median, dtype=np.float64)
    n_channels = median.shape[1]
    x = np.arange(n_channels, dtype=np.float64)
    show_previous = previous is not None and n_previous > 0
    for ax, adc in zip(axes, adcs, strict=False):
        _style(ax)
        keep = np.ones(n_channels, bool) if active is None else np.asarray(active[adc], bool)
        _shade_inactive(ax, x, ~keep)
        if show_previous and previous is not None:
            p_mid = np.where(keep, previous.median[adc], np.nan)
            _step_band(
                ax,
                x,
                p_mid - previous.err_low[adc],
                p_mid + previous.err_high[adc],
                p_mid,
                f"previous {n_previous} files",
            )
        y = np.where(keep, median[adc], np.nan)
        ax.errorbar(
            x,
            y,
            yerr=[_nonneg(current.err_low[adc]), _nonneg(current.err_high[adc])],
            fmt="o",
            ms=2.8,
            lw=0.8,
            color=CURRENT_COLOUR,
            zorder=3,
        )
        if highlight is not None and np.any(highlight[adc] & keep):
            cells = np.flatnonzero(highlight[adc] & keep)
            ax.scatter(
                x[cells],
                y[cells],
                s=70,
                facecolors="none",
                edgecolors=PROBLEM_COLOUR,
                linewidths=1.4,
                zorder=4,
            )
        for ref in reference_lines:
            ax.axhline(ref, color=REFERENCE_COLOUR, ls="--", lw=0.9)
        _panel_title(ax, f"ADC {adc}")
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE)
    axes[0].set_xlim(-0.7, n_channels - 0.3)  # shared by every panel
    axes[0].set_xticks(np.arange(0, n_channels, 8))
    for ax in axes[len(adcs) :]:
        ax.set_visible(False)
    for ax in axes[-n_cols:]:
        ax.set_xlabel("channel", fontsize=LABEL_SIZE)
    extra: list[Line2D | Patch] = []
    shown = np.ones(median.shape, bool) if active is None else np.asarray(active, bool)
    if highlight is not None and np.any((highlight & shown)[list(adcs)]):
        extra.append(
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                ms=8,
                mfc="none",
                mec=PROBLEM_COLOUR,
                mew=1.4,
                label=highlight_label,
            )
        )
    if reference_lines:
        extra.append(Line2D([], [], color=REFERENCE_COLOUR, ls="--", label=reference_label))
    if active is not None:
        extra.append(Patch(facecolor=INACTIVE_COLOUR, edgecolor="0.8", label="not connected"))
    _figure_legend(fig, _legend_handles(n_previous, previous=show_previous, extra=extra))
    return fig


# --- fractions: one path for every granularity --------------------------------------------------


GRANULARITY_AXIS = {
    "channel": "channel",
    "epcb": "EPCB",
    "tpc": "TPC",
    "total": "",
}


@dataclass(frozen=True)
class _FractionPanel:
    """What one panel of :func:`fraction_figure` shows (1-d arrays over positions ``x``)."""

    title: str
    x: np.ndarray
    current: Fraction
    previous: Fraction | None
    shown: np.ndarray
    """bool: positions drawn (active channels)."""
    top_axis: bool = False
    """The panel has a top axis (its title goes above it)."""


def _slice_fraction(f: Fraction, index: int | None) -> Fraction:
    """The 1-d view of a fraction: row ``index`` of a (a, c) one, the whole of a 1-d one, a
    length-1 array of a 0-d ("total") one."""

    def cut(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim == 0:
            return a.reshape(1)
        return a[index] if index is not None else a

    return Fraction(
        k=cut(f.k), n=cut(f.n), fraction=cut(f.fraction), lower=cut(f.lower), upper=cut(f.upper)
    )


def _draw_fraction_panel(ax: Axes, panel: _FractionPanel, n_previous: int) -> float:
    """Points with asymmetric Clopper–Pearson errors (one ``errorbar`` call), n = 0 hollow,
    previous files as a step band. Returns the highest y drawn (%)."""
    _style(ax)
    x = panel.x
    cur = panel.current
    shown = panel.shown
    _shade_inactive(ax, x, ~shown)
    top = 0.0
    if panel.previous is not None:
        prev = panel.previous
        has = shown & (prev.n > 0)
        lo = np.where(has, 100 * prev.lower, np.nan)
        hi = np.where(has, 100 * prev.upper, np.nan)
        _step_band(
            ax,
            x,
            lo,
            hi,
            np.where(has, 100 * prev.fraction, np.nan),
            f"previous {n_previous} files",
        )
        if has.any():
            top = max(top, float(np.nanmax(hi)))
    with_events = shown & (cur.n > 0)
    y = np.where(with_events, 100 * cur.fraction, np.nan)
    ax.errorbar(
        x,
        y,
        yerr=[
            _nonneg(100 * (cur.fraction - cur.lower)) * with_events,
            _nonneg(100 * (cur.upper - cur.fraction)) * with_events,
        ],
        fmt="o",
        ms=3.2 if x.size > 16 else 5,
        lw=0.9 if x.size > 16 else 1.4,
        capsize=0 if x.size > 16 else 4,
        color=CURRENT_COLOUR,
        zorder=3,
    )
    if with_events.any():
        top = max(top, float(np.nanmax(100 * cur.upper[with_events])))
    if x.size <= 16:  # few positions: the counts behind each point
        for xi, k, n, up in zip(
            x[shown], cur.k[shown], cur.n[shown], cur.upper[shown], strict=True
        ):
            ax.annotate(
                f"{int(k)}/{int(n)}",
                (xi, 100 * float(up) if n > 0 else 0.0),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=TICK_SIZE,
                color=CURRENT_COLOUR,
            )
    empty = shown & (cur.n == 0)
    if empty.any():
        ax.scatter(
            x[empty],
            np.zeros(int(empty.sum())),
            s=18,
            facecolors="none",
            edgecolors=PREVIOUS_LINE_COLOUR,
            linewidths=0.9,
            zorder=3,
        )
    _panel_title(ax, panel.title, above_top_axis=panel.top_axis)
    return top


def fraction_figure(
    title: str,
    granularity: str,
    fractions: Mapping[str, Fraction],
    previous: Mapping[str, Fraction] | None,
    n_previous: int,
    *,
    adcs: Sequence[int] | None = None,
    active: np.ndarray | None = None,
    groups_per_adc: int | None = None,
    y_label: str = "fraction of events (%)",
    selection_labels: Mapping[str, str] | None = None,
) -> Figure:
    """A flag fraction (%) at one granularity, one panel per selection (and per ADC for
    "channel"), with 68% (or the configured) Clopper–Pearson intervals.

    ``fractions``/``previous``: selection name -> :class:`Fraction` of this granularity
    ((a, c) for "channel", (n_epcb,), (n_tpc,), 0-d for "total"); ``previous`` None (or
    ``n_previous`` 0): no band. ``adcs``: the ADCs shown for "channel" (one row each, one
    column per selection). ``active``: bool (a, c) for "channel": other channels shaded, not
    drawn. ``groups_per_adc``: for "epcb", draws a separator and an "ADC a" label every so many
    EPCBs. ``selection_labels``: panel titles per selection (default: the name).
    Points whose denominator is 0 are drawn hollow at 0 ("no events over threshold").
    """
    if granularity not in GRANULARITY_AXIS:
        raise ValueError(f"granularity: {granularity!r} (expected one of {list(GRANULARITY_AXIS)})")
    selections = list(fractions)
    labels = dict(selection_labels or {})
    show_previous = previous is not None and n_previous > 0
    fig = page_figure(title)

    panels: list[_FractionPanel] = []
    if granularity == "channel":
        if adcs is None:
            adcs = range(np.asarray(next(iter(fractions.values())).k).shape[0])
        for adc in adcs:
            for sel in selections:
                cur = _slice_fraction(fractions[sel], adc)
                shown = (
                    np.ones(cur.k.shape, bool) if active is None else np.asarray(active[adc], bool)
                )
                prev = _slice_fraction(previous[sel], adc) if show_previous and previous else None
                panels.append(
                    _FractionPanel(
                        f"ADC {adc} - {labels.get(sel, sel)}",
                        np.arange(cur.k.size, dtype=np.float64),
                        cur,
                        prev,
                        shown,
                    )
                )
        n_rows, n_cols = len(list(adcs)), len(selections)
    else:
        for sel in selections:
            cur = _slice_fraction(fractions[sel], None)
            prev = _slice_fraction(previous[sel], None) if show_previous and previous else None
            panels.append(
                _FractionPanel(
                    labels.get(sel, sel),
                    np.arange(cur.k.size, dtype=np.float64),
                    cur,
                    prev,
                    np.ones(cur.k.shape, bool),
                    top_axis=granularity == "epcb" and bool(groups_per_adc),
                )
            )
        n_rows, n_cols = (len(selections), 1) if granularity == "epcb" else (1, len(selections))

    axes = _grid(
        fig,
        n_rows,
        n_cols,
        sharex=granularity == "channel",
        top=0.865 if granularity == "epcb" else 0.885,
    )
    top = 0.0
    for ax, panel in zip(axes, panels, strict=True):
        top = max(top, _draw_fraction_panel(ax, panel, n_previous))
    y_top = max(1.0, 1.08 * top)
    any_empty = False
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_ylim(-0.04 * y_top, y_top)
        n_x = panel.x.size
        ax.set_xlim(-0.7, n_x - 0.3) if n_x > 1 else ax.set_xlim(-1.5, 1.5)
        any_empty |= bool(np.any(panel.shown & (panel.current.n == 0)))
        if granularity == "channel":
            if ax is axes[0]:  # shared by every panel
                ax.set_xticks(np.arange(0, n_x, 8))
        elif granularity == "epcb":
            step = groups_per_adc or n_x
            ax.set_xticks(np.arange(0, n_x, 2 if n_x <= 64 else 8))
            for b in range(step, n_x, step):
                ax.axvline(b - 0.5, color="0.45", lw=0.9)
            if groups_per_adc:  # "ADC a" above each block of EPCBs, outside the data
                top_axis = ax.secondary_xaxis("top")
                centres = np.arange(0, n_x, step) + step / 2 - 0.5
                top_axis.set_xticks(centres, labels=[f"ADC {i}" for i in range(centres.size)])
                top_axis.tick_params(length=0, labelsize=TICK_SIZE, labelcolor="0.3")
        elif granularity == "tpc":
            ax.set_xticks(np.arange(n_x))
        else:
            ax.set_xticks([0], labels=["all channels"])
    rows = [axes[i * n_cols : (i + 1) * n_cols] for i in range(n_rows)]
    for row in rows:
        row[0].set_ylabel(y_label, fontsize=LABEL_SIZE)
    if GRANULARITY_AXIS[granularity]:
        for ax in rows[-1]:
            ax.set_xlabel(GRANULARITY_AXIS[granularity], fontsize=LABEL_SIZE)
    extra: list[Line2D | Patch] = []
    if any_empty:
        extra.append(
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                ms=5,
                mfc="none",
                mec=PREVIOUS_LINE_COLOUR,
                label=NO_EVENTS_LABEL,
            )
        )
    if active is not None and granularity == "channel":
        extra.append(Patch(facecolor=INACTIVE_COLOUR, edgecolor="0.8", label="not connected"))
    _figure_legend(fig, _legend_handles(n_previous, previous=show_previous, extra=extra))
    return fig


# --- spectra ----------------------------------------------------------------------------------


def spectra_figure(
    freq_mhz: np.ndarray,
    epcb_spectra: np.ndarray,
    *,
    title: str = "Power spectra per EPCB",
    epcb_per_adc: int,
    adcs: Sequence[int],
    roi_centres_mhz: Sequence[float] = (),
    roi_half_width_mhz: float = 0.0,
    y_label: str = "power per bin (V²)",
) -> Figure:
    """Power spectra per EPCB: one panel per ADC of ``adcs`` holding its ``epcb_per_adc``
    EPCBs (global EPCB ``adc * epcb_per_adc + local``), log y, the DC bin (index 0) left out,
    regions of interest shaded. ``epcb_spectra``: (n_epcb, n_bins) V² per bin; ``freq_mhz``:
    (n_bins,) MHz."""
    fig = page_figure(title)
    n = len(adcs)
    n_cols = 2 if n > 1 else 1
    n_rows = -(-n // n_cols)
    axes = _grid(fig, n_rows, n_cols, sharex=True)
    freq = np.asarray(freq_mhz, dtype=np.float64)[1:]
    power = np.asarray(epcb_spectra, dtype=np.float64)[:, 1:]
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(epcb_per_adc)]
    for ax, adc in zip(axes, adcs, strict=False):
        _style(ax)
        for centre in roi_centres_mhz:
            ax.axvspan(
                centre - roi_half_width_mhz,
                centre + roi_half_width_mhz,
                color="#fee08b",
                alpha=0.7,
                lw=0,
                zorder=0,
            )
        block = power[adc * epcb_per_adc : (adc + 1) * epcb_per_adc]
        block = np.where(block > 0, block, np.nan)  # log axis: no zeros
        ax.set_prop_cycle(color=colours[: block.shape[0]])
        if np.isfinite(block).any():
            ax.plot(freq, block.T, lw=0.8)  # one call: every EPCB of the ADC
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())  # decades only: minor ticks cost 0.1 s
        else:
            ax.text(
                0.5,
                0.5,
                "no spectra for this ADC",
                transform=ax.transAxes,
                ha="center",
                fontsize=TEXT_SIZE,
            )
        _panel_title(ax, f"ADC {adc}")
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE)
        if freq.size:
            ax.set_xlim(0, float(freq[-1]))
    for ax in axes[len(adcs) :]:
        ax.set_visible(False)
    for ax in axes[-n_cols:]:
        ax.set_xlabel("frequency (MHz)", fontsize=LABEL_SIZE)
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=c, lw=1.5, label=f"EPCB {i}") for i, c in enumerate(colours)
    ]
    if len(roi_centres_mhz):
        handles.append(Patch(facecolor="#fee08b", label="regions of interest"))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.96),
        ncol=len(handles),
        fontsize=TEXT_SIZE,
        frameon=False,
        title="EPCB of the ADC (median over its channels and events)",
        title_fontsize=TEXT_SIZE,
    )
    return fig


# --- jump ---------------------------------------------------------------------------------------


TRIGGER_NAMES = {0: "self", 1: "beam"}


def jump_figure(
    jump: JumpEvent, *, title: str = "Largest sample-to-sample jump", zoom_samples: int = 25
) -> Figure:
    """The waveform (ADC16 counts against µs) with the largest |s[i+1] − s[i]| of the file:
    the whole waveform, then ``± zoom_samples`` around the jump; the two samples marked."""
    fig = page_figure(title)
    top, bottom = _grid(fig, 2, 1)
    t = jump.time_us()
    s = np.asarray(jump.samples, dtype=np.float64)
    i = int(jump.sample)
    pair = np.array([i, min(i + 1, s.size - 1)])
    lo, hi = max(0, i - zoom_samples), min(s.size, i + zoom_samples + 2)
    for ax, sl in ((top, slice(None)), (bottom, slice(lo, hi))):
        _style(ax)
        ax.plot(t[sl], s[sl], color=CURRENT_COLOUR, lw=0.8, marker="." if ax is bottom else None)
        ax.plot(t[pair], s[pair], "o", ms=6, mfc="none", mec=PROBLEM_COLOUR, mew=1.5)
        ax.set_ylabel("sample (ADC16 counts)", fontsize=LABEL_SIZE)
        ax.set_xlabel("time from the waveform start (µs)", fontsize=LABEL_SIZE)
    if s.size:
        top.axvspan(t[lo], t[hi - 1], color="#fee08b", alpha=0.6, lw=0, zorder=0)
    trig = TRIGGER_NAMES.get(int(jump.trig_type), str(jump.trig_type))
    top.set_title(
        f"event {jump.event}, ADC {jump.adc}, channel {jump.channel}, {trig} trigger: "
        f"|s[i+1] - s[i]| = {jump.jump_adc16} ADC16 counts at sample {i} "
        f"(t = {t[i] if s.size else float('nan'):.3f} µs)",
        fontsize=LABEL_SIZE,
        loc="left",
    )
    bottom.set_title(
        f"zoom: samples {lo} to {hi - 1} (the jump circled in red)", fontsize=LABEL_SIZE, loc="left"
    )
    return fig


# --- text, tables, trends, errors ---------------------------------------------------------------


COLUMN_BREAK: tuple[str, Sequence[str]] = ("\f", ())
"""A block of :func:`text_figure` that starts a new column."""
_MONO_CHAR_EM = 0.625
"""Advance of one DejaVu Sans Mono character, in font sizes."""
_LINE_SPACING = 1.3


def text_figure(
    title: str,
    blocks: Sequence[tuple[str, Sequence[str]]],
    *,
    n_columns: int = 3,
    font_size: float = TEXT_SIZE,
) -> Figure:
    """A text page: (heading, lines) blocks in monospace, flowed top to bottom through
    ``n_columns`` columns (a block that does not fit goes on in the next column, its heading
    repeated with "(continued)"; :data:`COLUMN_BREAK` starts a new one); lines longer than a
    column are wrapped (continuations indented). Lines that do not fit on the page are cut,
    the last one saying how many."""
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    fig.suptitle(title, fontsize=TITLE_SIZE, weight="bold", y=0.985, va="top", parse_math=False)
    page_w_pt, page_h_pt = (v * 72 for v in A4_LANDSCAPE_IN)
    left, right, top, bottom = 0.025, 0.985, 0.915, 0.05
    col_w = (right - left) / n_columns
    wrap = max(20, int(col_w * page_w_pt / (_MONO_CHAR_EM * font_size)) - 2)
    line_h = font_size * _LINE_SPACING / page_h_pt  # page fraction per line
    head_h = (font_size + 1.5) * _LINE_SPACING / page_h_pt

    column, y = 0, top
    for heading, lines in blocks:
        if heading == COLUMN_BREAK[0]:
            if y < top:
                column, y = column + 1, top
            continue
        wrapped: list[str] = []
        for line in lines:
            wrapped.extend(
                textwrap.wrap(line, wrap, subsequent_indent="    ", break_on_hyphens=False) or [""]
            )
        label = heading
        while True:
            if column >= n_columns:
                return fig
            room = int((y - bottom - head_h) / line_h)
            if room < min(3, max(1, len(wrapped))) and y < top:  # next column
                column, y = column + 1, top
                continue
            part, wrapped = wrapped[:room], wrapped[room:]
            if wrapped and column == n_columns - 1:  # last column: cut, say so
                part[-1] = f"... ({len(wrapped) + 1} more lines not shown)"
                wrapped = []
            x = left + column * col_w
            fig.text(x, y, label, fontsize=font_size + 1.5, weight="bold", va="top")
            y -= head_h + 0.25 * line_h
            if part:
                fig.text(
                    x,
                    y,
                    "\n".join(part),
                    fontsize=font_size,
                    family="monospace",
                    va="top",
                    linespacing=_LINE_SPACING,
                    parse_math=False,
                )
            y -= line_h * (len(part) + 0.8)
            if not wrapped:
                break
            label = f"{heading} (continued)"
            column, y = column + 1, top
    return fig


def table_figure(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    highlight: Sequence[bool] = (),
    col_widths: Sequence[float] | None = None,
    note: str = "",
) -> Figure:
    """A table page (header row bold); rows whose ``highlight`` is True get a red tint."""
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    fig.suptitle(title, fontsize=TITLE_SIZE, weight="bold", y=0.985, va="top", parse_math=False)
    ax = fig.add_axes((0.02, 0.06, 0.96, 0.86))
    ax.set_axis_off()
    cell_text = [list(r) for r in rows] or [["(none)"] + [""] * (len(columns) - 1)]
    n_rows = len(cell_text) + 1
    row_h = min(0.06, 1.0 / max(n_rows, 1))
    table = ax.table(
        cellText=cell_text,
        colLabels=list(columns),
        colWidths=list(col_widths) if col_widths is not None else None,
        cellLoc="left",
        colLoc="left",
        loc="upper left",
        bbox=(0, 1 - row_h * n_rows, 1, row_h * n_rows),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    widths = list(col_widths) if col_widths is not None else [1 / len(columns)] * len(columns)
    for (r, c), cell in table.get_celld().items():
        cell.PAD = 0.006 / max(widths[c], 1e-3)  # same padding in every column
        cell.set_edgecolor("0.8")
        cell.set_linewidth(0.5)
        cell.get_text().set_parse_math(False)
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8e8e8")
        elif r - 1 < len(highlight) and highlight[r - 1]:
            cell.set_facecolor("#fbd5d0")
    if note:
        fig.text(0.02, 0.04, note, fontsize=TEXT_SIZE, color="0.3", parse_math=False)
    return fig


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
    n_cols: int = 1,
    panel_legends: bool = True,
) -> Figure:
    """Quantities against the file index: one panel per :class:`TrendPanel`, one line per
    series (one ``plot``/``errorbar`` call each). Legends on the right of each panel, or
    (``panel_legends`` False: every panel has the same series) one legend above them all.
    ``time_labels``: per file (data start times), shown on a top axis at a few ticks."""
    fig = page_figure(title)
    n_rows = max(1, -(-len(panels) // n_cols))
    axes = _grid(
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
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        _style(ax)
        n_series = len(panel.series)
        for i, s in enumerate(panel.series):
            colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
            xs = x + (i - (n_series - 1) / 2) * min(0.12, 0.6 / n_series) if panel.dodge else x
            y = np.asarray(s.y, dtype=np.float64)
            if panel.log_y:
                y = np.where(y > 0, y, np.nan)
            if s.lower is not None and s.upper is not None:
                ax.errorbar(
                    xs,
                    y,
                    yerr=[_nonneg(y - s.lower), _nonneg(s.upper - y)],
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
        if panel.log_y and any(np.any(np.asarray(s.y) > 0) for s in panel.series):
            ax.set_yscale("log")
        if panel.integer_y:
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.set_ylim(bottom=-0.5)
        _panel_title(ax, panel.title, above_top_axis=show_times and k < n_cols)
        ax.set_ylabel(panel.y_label, fontsize=LABEL_SIZE)
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
    if show_times:
        fig.text(
            0.01,
            0.955,
            "top axis: data start of the file (UTC)",
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


def error_figure(title: str, error: str) -> Figure:
    """The page that replaces a plot that failed: ``<title>: could not be drawn: <error>``."""
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    fig.suptitle(title, fontsize=TITLE_SIZE, weight="bold", y=0.985, va="top", parse_math=False)
    message = f"{title}: could not be drawn: {error}"
    wrapped = "\n".join(textwrap.wrap(message, 100, break_on_hyphens=False)[:30])
    fig.text(
        0.05,
        0.85,
        wrapped,
        fontsize=LABEL_SIZE + 1,
        va="top",
        color=PROBLEM_COLOUR,
        family="monospace",
        parse_math=False,
    )
    fig.text(
        0.05,
        0.1,
        "The other pages of this report were drawn; see the service log for the traceback.",
        fontsize=TEXT_SIZE,
        color="0.3",
    )
    return fig
