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
from wavedqm.constants import CELL_KNOWN, CELL_NEW, CELL_OK

OK_COLOUR = "#1a9850"
NEW_COLOUR = "#d73027"
KNOWN_COLOUR = "black"


@dataclass(frozen=True)
class MaskStyle:
    """Wording of one mask: its title and legend labels."""

    title: str
    ok_label: str
    new_label: str
    known_label: str = "ignore: known problem"


FLATLINE_STYLE = MaskStyle(
    title="Alive and dead channels", ok_label="Alive", new_label="Dead (contact LRS expert)"
)
BASELINE_STYLE = MaskStyle(
    title="Channels baseline status",
    ok_label="Baseline OK",
    new_label="Deviation (contact LRS expert)",
)


def _time_text(start_s: float | None, end_s: float | None) -> str:
    def fmt(t: float | None) -> str:
        if t is None:
            return "?"
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return f"Data start: {fmt(start_s)}\nData end:   {fmt(end_s)}"


def render_mask(
    cells: np.ndarray,
    style: MaskStyle,
    *,
    time_start_s: float | None = None,
    time_end_s: float | None = None,
    source: str = "",
    tpc_split_channel: int = 32,
) -> Figure:
    """Draw the (n_adcs, n_channels) grid of cell codes ``constants.CELL_*``."""
    n_adcs, n_channels = cells.shape
    fig = Figure(figsize=(16, 5.2), dpi=100)
    ax = fig.add_axes((0.05, 0.12, 0.93, 0.62))
    kinds = (
        (CELL_OK, dict(marker="o", s=70, facecolors="none", edgecolors=OK_COLOUR, linewidths=1.6)),
        (CELL_KNOWN, dict(marker="o", s=14, color=KNOWN_COLOUR)),
        (CELL_NEW, dict(marker="X", s=150, color=NEW_COLOUR, edgecolors="darkred")),
    )
    for code, kwargs in kinds:
        adc, channel = np.nonzero(cells == code)
        ax.scatter(channel, adc, zorder=3, **kwargs)
    ax.axvline(tpc_split_channel - 0.5, color="0.2", lw=2)
    for boundary in range(2, n_adcs, 2):
        ax.axhline(boundary - 0.5, color="0.4", lw=1.2)
    ax.set_xlim(-0.7, n_channels - 0.3)
    ax.set_ylim(n_adcs - 0.5, -0.5)
    ax.set_xticks(range(0, n_channels, 4))
    ax.set_xticks(range(n_channels), minor=True)
    ax.set_yticks(range(n_adcs))
    ax.tick_params(labelsize=12)
    ax.grid(which="minor", axis="x", color="0.92", lw=0.6)
    ax.set_xlabel("Channel", fontsize=13)
    ax.set_ylabel("ADC", fontsize=13)
    legend = [
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            mfc="none",
            mec=OK_COLOUR,
            mew=1.6,
            ms=10,
            label=style.ok_label,
        ),
        Line2D(
            [], [], marker="X", ls="", color=NEW_COLOUR, mec="darkred", ms=12, label=style.new_label
        ),
        Line2D([], [], marker="o", ls="", color=KNOWN_COLOUR, ms=4, label=style.known_label),
    ]
    ax.legend(
        handles=legend,
        ncol=3,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.01),
        fontsize=13,
        frameon=False,
    )
    fig.text(0.05, 0.95, style.title, fontsize=17, weight="bold", va="top")
    fig.text(
        0.98,
        0.95,
        _time_text(time_start_s, time_end_s),
        fontsize=11,
        va="top",
        ha="right",
        family="monospace",
    )
    n_new = int(np.count_nonzero(cells == CELL_NEW))
    fig.text(0.05, 0.025, f"{source}   new problems: {n_new}", fontsize=10, color="0.3")
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
