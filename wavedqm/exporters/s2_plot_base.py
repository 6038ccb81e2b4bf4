"""What every S2 plot shares: colours, PNG writing, number formatting, and the "no data"
figure and panel (a titled page saying why there is nothing to draw, with no axes).

Drawing only: nothing here computes physics (:mod:`wavedqm.exporters.s2_plots`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wavedqm.atomic import atomic_write_bytes

PNG_DPI = 150
BAND_Z = 1.96
"""Half-width of the shaded timing bands in σ (95% of a Gaussian)."""

DATA_GREEN = "#2ca02c"
FIT_RED = "#d62728"
ALL_AREAS_GREY = "#8c8c8c"
MEAN_BLUE = "#1f77b4"
XRAY_BLUE = "#1f77b4"
XRAY_MEAN = "#8b0000"
CI_ORANGE = "#ff7f0e"
"""The 95% CI band of a fitted mean: a colour no bar or fit line uses."""
S1_COLOUR = "#d62728"
S2_START_COLOUR = "#1f4fd6"
S2_END_COLOUR = "#8e44ad"
TRACE_COLOUR = "#333333"
NO_DATA_GREY = "#555555"
NO_DATA = "no data yet"


def figure_png(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_png(path: Path, fig: Figure, dpi: int = PNG_DPI) -> Path:
    """Render ``fig`` to PNG (150 DPI) and write it atomically."""
    return atomic_write_bytes(path, figure_png(fig, dpi))


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def fmt(x: float | None, digits: int = 3) -> str:
    return f"{float(x):.{digits}g}" if finite(x) else "n/a"


def no_data_text(why: str) -> str:
    """``"no data: <why>"`` (``why`` already starting with "no …" is kept as it is)."""
    why = why.strip() or NO_DATA
    return why if why.startswith("no data") else f"no data: {why}"


def no_data_figure(title: str, why: str, figsize: tuple[float, float] = (10, 6)) -> Figure:
    """A page with the plot's title and ``no data: <why>`` — no axes, so no made-up scale."""
    fig = Figure(figsize=figsize)
    fig.text(
        0.5, 0.62, title, ha="center", va="center", fontsize=15, parse_math=False, wrap=True,
    )  # fmt: skip
    fig.text(
        0.5, 0.45, no_data_text(why), ha="center", va="center", fontsize=13,
        color=NO_DATA_GREY, parse_math=False, wrap=True,
    )  # fmt: skip
    return fig


def no_data_panel(ax: Axes, why: str, title: str | None = None) -> None:
    """One empty panel of a multi-panel figure: its title, ``no data: <why>``, no axes."""
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11, parse_math=False)
    ax.text(
        0.5, 0.5, no_data_text(why), ha="center", va="center", transform=ax.transAxes,
        fontsize=12, color=NO_DATA_GREY, parse_math=False, wrap=True,
    )  # fmt: skip
