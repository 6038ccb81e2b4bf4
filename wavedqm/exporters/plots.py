"""The page kit of the PDF reports: every page is a ``matplotlib.figure.Figure`` (no pyplot
state), A4 landscape, and nothing here computes physics: the builders draw the arrays the
analysis gives them. This module holds the style every page shares (colours, sizes, title,
footer, axes grids, legends, the previous-files step band) and the pages of any kind of data:
:func:`text_figure`, :func:`table_figure`, :func:`trend_figure`, :func:`error_figure` (the
first page, tables, trends over files and the page that replaces a failed plot). The light
pages (per-channel series, fractions, spectra, jump) are in
:mod:`wavedqm.exporters.light_pages`.

Colours are the same on every page: this file / current values :data:`CURRENT_COLOUR` (blue),
previous files :data:`PREVIOUS_COLOUR` (grey band), new problems :data:`PROBLEM_COLOUR` (red).
Every page's title is its figure ``suptitle`` (found by PDF text extractors). Text that comes
from outside (file names, configuration values, error messages) is drawn with
``parse_math=False``: a ``$`` in a file name never becomes mathtext.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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
UPPER_LIMIT_LABEL = "0 of n: upper limit of the interval"
UPPER_LIMIT_COLOUR = "#7f7f7f"
"""A fraction measured 0 of n is drawn at 0 with a light caret at its upper limit, not with
an error bar: a row of 0/n channels no longer looks like a comb of 10-30 % bars."""


def page_figure(title: str) -> Figure:
    """An empty A4-landscape page with ``title`` as its suptitle. Layout is fixed (see
    :func:`axes_grid`): no layout engine, so a page is laid out once, when it is saved."""
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


def style_axes(ax: Axes) -> None:
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)


def step_band(
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


def shade_inactive(ax: Axes, x: np.ndarray, inactive: np.ndarray) -> None:
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


def panel_title(ax: Axes, text: str, *, above_top_axis: bool = False) -> None:
    """Title at the top left of a panel. Its height is fixed (``y=1``, a padding that clears
    a top axis' labels when there is one): matplotlib's automatic placement measures every
    top tick label of every panel and costs a tenth of the drawing time."""
    pad = 6 + (TICK_SIZE * 1.5 + 4 if above_top_axis else 0)
    ax.set_title(text, fontsize=LABEL_SIZE, loc="left", y=1.0, pad=pad, parse_math=False)


def nonneg(a: np.ndarray) -> np.ndarray:
    """Error bar lengths: NaN and negative (rounding) become 0."""
    return np.clip(np.nan_to_num(np.asarray(a, dtype=np.float64)), 0.0, None)


def legend_handles(
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


def figure_legend(fig: Figure, handles: Sequence[Line2D | Patch]) -> None:
    fig.legend(
        handles=list(handles),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncol=len(handles),
        fontsize=TEXT_SIZE,
        frameon=False,
    )


def axes_grid(
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


# --- text, tables, trends, errors ---------------------------------------------------------------


COLUMN_BREAK: tuple[str, Sequence[str]] = ("\f", ())
"""A block of :func:`text_figure` that starts a new column."""
_MONO_CHAR_EM = 0.625
"""Advance of one DejaVu Sans Mono character, in font sizes."""
_LINE_SPACING = 1.3


PATH_LINE_CHARS = 36
"""Longest line of a folder on a report's first page (characters of its monospaced column)."""


def path_lines(folder: Path, width: int = PATH_LINE_CHARS) -> list[str]:
    """``folder`` cut into lines of at most ``width`` characters at its separators only (a
    longer single name keeps its own line): a path wrapped mid-name is hard to read."""
    parts = folder.parts
    lines: list[str] = []
    line = ""
    for k, part in enumerate(parts):
        piece = part if k == 0 or parts[k - 1].endswith("/") else "/" + part
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = piece
        else:
            line += piece
    return [*lines, line] if line else lines


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
        fig.text(0.02, 0.035, note, fontsize=TEXT_SIZE, color="0.3", va="bottom", parse_math=False)
    return fig


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
