"""Grafana mask PNGs: one grid renderer for "Alive and dead channels" and "Channels baseline
status" (x = channel, y = ADC). The cell codes come from the analysis; nothing is computed here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from wavedqm.atomic import atomic_write_bytes
from wavedqm.constants import (
    CELL_BASELINE_OUT_OF_RANGE,
    CELL_BASELINE_SHIFT,
    CELL_BASELINE_SPREAD,
    CELL_BASELINE_SPREAD_AND_SHIFT,
    CELL_KNOWN,
    CELL_NEW,
    CELL_OK,
)

OK_COLOUR = "#1a9850"
NEW_COLOUR = "#d73027"
WARN_COLOUR = "#f46d43"
KNOWN_COLOUR = "0.45"

MASK_SIZE_IN = (12.8, 5.6)
"""Size of the Grafana PNGs (in, at 100 dpi: 1280 × 560 px). Text is sized to stay legible
when a panel shows the image 640 px wide (half size): nothing under 13 pt."""

LEGEND_COLUMNS = 3


@dataclass(frozen=True)
class NewKind:
    """How one kind of new problem is drawn: its cell code, marker, colour, legend label."""

    code: int
    marker: str
    colour: str
    label: str


@dataclass(frozen=True)
class MaskStyle:
    """Wording of one mask: its title, legend labels, and the kinds of new problem it shows."""

    title: str
    ok_label: str
    new_kinds: tuple[NewKind, ...]
    known_label: str = "known problem (status CSV): ignored"


FLATLINE_STYLE = MaskStyle(
    title="Alive and dead channels",
    ok_label="Alive",
    new_kinds=(NewKind(CELL_NEW, "X", NEW_COLOUR, "Dead: no pulse"),),
)
BASELINE_STYLE = MaskStyle(
    title="Channels baseline status",
    ok_label="Baseline OK",
    new_kinds=(
        NewKind(CELL_BASELINE_OUT_OF_RANGE, "X", NEW_COLOUR, "out of range"),
        NewKind(CELL_BASELINE_SHIFT, "^", NEW_COLOUR, "moved > 3σ vs previous files"),
        NewKind(CELL_BASELINE_SPREAD, "D", WARN_COLOUR, "spread over events too wide"),
        NewKind(CELL_BASELINE_SPREAD_AND_SHIFT, "P", NEW_COLOUR, "moved and spread"),
    ),
)


def _time_text(start_s: float | None, end_s: float | None) -> str:
    def fmt(t: float | None, form: str) -> str:
        if t is None:
            return "?"
        return datetime.fromtimestamp(t, tz=UTC).strftime(form)

    start = fmt(start_s, "%Y-%m-%d %H:%M:%S")
    same_day = (start_s is not None and end_s is not None
                and fmt(start_s, "%Y-%m-%d") == fmt(end_s, "%Y-%m-%d"))  # fmt: skip
    end = fmt(end_s, "%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
    return f"data {start} → {end} UTC"


def _is_new(cells: np.ndarray) -> np.ndarray:
    return cells >= CELL_NEW


def render_mask(
    cells: np.ndarray,
    style: MaskStyle,
    *,
    time_start_s: float | None = None,
    time_end_s: float | None = None,
    source: str = "",
    tpc_split_channel: int = 32,
    figsize: tuple[float, float] = MASK_SIZE_IN,
    verdict: tuple[str, str] | None = None,
) -> Figure:
    """Draw the (n_adcs, n_channels) grid of cell codes ``constants.CELL_*``: healthy hollow
    green circles, each kind of new problem its own marker, known problems grey dots,
    not-connected cells blank. ``figsize`` (in): the PNG's by default, A4 for the report.
    ``verdict``: ``(text, colour)`` of the top-right line (default: the count of new
    problems)."""
    n_adcs, n_channels = cells.shape
    fig = Figure(figsize=figsize, dpi=100)
    h = figsize[1]
    legend_rows = -(-(len(style.new_kinds) + 2) // LEGEND_COLUMNS)
    top = 1 - (1.2 + 0.32 * legend_rows) / h  # title, time and legend above the grid
    ax = fig.add_axes((0.055, 0.95 / h, 0.93, top - 0.95 / h))
    ax.scatter(*np.nonzero(cells == CELL_OK)[::-1], marker="o", s=70, facecolors="none",
               edgecolors=OK_COLOUR, linewidths=1.8, zorder=3)  # fmt: skip
    ax.scatter(*np.nonzero(cells == CELL_KNOWN)[::-1], marker="o", s=70, color=KNOWN_COLOUR,
               zorder=3)  # fmt: skip
    ok_handle = Line2D([], [], marker="o", ls="", mfc="none", mec=OK_COLOUR, mew=1.8, ms=11,
                       label=style.ok_label)  # fmt: skip
    legend = [ok_handle]
    for kind in style.new_kinds:
        adc, channel = np.nonzero(cells == kind.code)
        ax.scatter(channel, adc, marker=kind.marker, s=190, color=kind.colour,
                   edgecolors="black", linewidths=0.8, zorder=4)  # fmt: skip
        legend.append(Line2D([], [], marker=kind.marker, ls="", color=kind.colour, mec="black",
                             mew=0.8, ms=13, label=kind.label))  # fmt: skip
    legend.append(Line2D([], [], marker="o", ls="", color=KNOWN_COLOUR, ms=7,
                         label=style.known_label))  # fmt: skip
    ax.axvline(tpc_split_channel - 0.5, color="0.15", lw=2.5)
    for boundary in range(2, n_adcs, 2):
        ax.axhline(boundary - 0.5, color="0.45", lw=1.2)
    ax.set_xlim(-0.7, n_channels - 0.3)
    ax.set_ylim(n_adcs - 0.5, -0.5)
    ax.set_xticks(range(0, n_channels, 4))
    ax.set_xticks(range(n_channels), minor=True)
    ax.set_yticks(range(n_adcs))
    ax.tick_params(labelsize=14)
    ax.grid(which="minor", axis="x", color="0.92", lw=0.6)
    ax.set_xlabel("channel", fontsize=15, labelpad=1)
    ax.set_ylabel("ADC", fontsize=15)
    ax.legend(handles=legend, ncol=LEGEND_COLUMNS, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              fontsize=14, frameon=False, handletextpad=0.2, columnspacing=1.5)  # fmt: skip
    n_new = int(np.count_nonzero(_is_new(cells)))
    fig.text(0.055, 1 - 0.12 / h, style.title, fontsize=22, weight="bold", va="top")
    text = (f"{n_new} new problem{'s' if n_new != 1 else ''}: contact LRS expert" if n_new
            else "no new problem")  # fmt: skip
    colour = NEW_COLOUR if n_new else OK_COLOUR
    if verdict is not None:
        text, colour = verdict
    fig.text(0.985, 1 - 0.12 / h, text, fontsize=22, weight="bold", va="top", ha="right",
             color=colour)  # fmt: skip
    fig.text(0.055, 1 - 0.62 / h, f"{source}   {_time_text(time_start_s, time_end_s)}",
             fontsize=14, va="top", color="0.2")  # fmt: skip
    fig.text(0.055, 0.1 / h, f"thick line: TPC split (channel {tpc_split_channel});"
             " thin lines: ADC pairs; blank: not connected", fontsize=13, color="0.3")  # fmt: skip
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_mask_png(path: Path, fig: Figure, latest: Path | None = None) -> Path:
    """Write the PNG atomically; also as a stable 'latest' copy when ``latest`` is given."""
    data = figure_png(fig)
    atomic_write_bytes(path, data)
    if latest is not None:
        atomic_write_bytes(latest, data)
    return path
