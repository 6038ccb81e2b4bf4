"""S2 area histograms: a set's ion S2 areas (``{set}_s2_histogram.png``) and a run's combined
X-ray areas (``{run}_xray_histogram.png``), each with its Gaussian fit.

The bars are :func:`wavedqm.analysis.ratag_fit.display_histogram` of the areas inside the fit
range (bins from :func:`~wavedqm.analysis.ratag_fit.histogram_bins`, the one rule of every
drawn S2 histogram); the fitted Gaussian (fitted on the fit's own ``nbins`` histogram) is drawn
per bar width; the fitted mean's 95% CI is an orange band, named in the legend with its
bounds. The title's second line says how many areas are in the histogram and, by reason, why
the others are not (:func:`~wavedqm.analysis.ratag_fit.area_counts`). No area at all: a
"no data" page. With a reference in use, the reference set's histogram
(:class:`~wavedqm.analysis.s2_quality.ReferenceOverlay`, scaled to the set's frames) is drawn
over a set's bars as a black step line, per drawn bin width. Drawing only: the numbers come
from :mod:`wavedqm.analysis`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wavedqm.analysis.ratag_fit import AreaCounts, FitResult, area_counts, display_histogram
from wavedqm.analysis.s2_quality import ReferenceOverlay
from wavedqm.exporters.s2_plot_base import (
    ALL_AREAS_GREY,
    CI_ORANGE,
    DATA_GREEN,
    FIT_RED,
    MEAN_BLUE,
    XRAY_BLUE,
    XRAY_MEAN,
    finite,
    fmt,
    no_data_figure,
)

HIST_FIGSIZE = (10, 6)
HEADROOM = 1.45
"""y range over the tallest bar: the legend and the fit message sit above the bars."""
CI_TOO_NARROW = 0.004
"""A CI band narrower than this fraction of the x range is below a pixel at 640 px."""
REFERENCE_COLOUR = "#111111"


def _reference_overlay(ax: Axes, ref: ReferenceOverlay, edges: np.ndarray) -> None:
    """The reference set's histogram as a step line, in counts per drawn bin (``edges``: the
    drawn bars' edges; the reference's own bins are drawn, rescaled by the width ratio)."""
    width = float(edges[1] - edges[0]) if edges.size >= 2 else float(ref.edges[1] - ref.edges[0])
    per_bin = ref.counts * (width / np.diff(ref.edges))
    ax.stairs(
        per_bin, ref.edges, color=REFERENCE_COLOUR, lw=1.6, zorder=5,
        label=f"reference {ref.reference!r} ({ref.reference_frames} frames), scaled to this "
        "set's frames" + (f"\nquality: {ref.verdict}" if ref.verdict else ""),
    )  # fmt: skip
    top = float(per_bin.max()) * HEADROOM if per_bin.size else 0.0
    if top > ax.get_ylim()[1]:
        ax.set_ylim(0, top)


def accounting_text(
    counts: AreaCounts, cuts: tuple[float, float], what: str, area: str, missing: str
) -> str:
    """What the title's and the legend's numbers are, e.g. "294 of 300 frames in the
    histogram (S2 area inside the fit range 0–72.8 mV·µs);" and, on a second line when some
    are left out, "6 not: 6 at or above 72.8 mV·µs" (``missing`` names those without an
    area)."""
    lo, hi = cuts
    text = (
        f"{counts.n_in_range} of {counts.n_total} {what} in the histogram "
        f"({area} inside the fit range {lo:g}–{hi:g} mV·µs)"
    )
    reasons = [
        (counts.n_no_area, missing),
        (counts.n_below, f"at or below {lo:g} mV·µs"),
        (counts.n_above, f"at or above {hi:g} mV·µs"),
    ]
    why = [f"{n} {reason}" for n, reason in reasons if n]
    return text + (f";\n{counts.n_outside} not: " + ", ".join(why) if why else "")


def _outside_fit_range(ax: Axes, fit: FitResult, values: np.ndarray, cuts_key: str) -> None:
    """No area inside the fit range: every finite area in grey, the fit range shaded (and
    named, with an arrow, when it lies off the areas' axis) so the crew sees where it should
    be."""
    lo, hi = fit.bin_cuts
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    a, b = np.quantile(v, (0.005, 0.995))
    inner = v[(v >= a) & (v <= b)]
    counts, edges = display_histogram(inner)
    ax.bar(
        edges[:-1], counts, width=np.diff(edges), align="edge", color=ALL_AREAS_GREY,
        alpha=0.8, lw=0, label=f"all finite areas ({inner.size}), none inside the fit range",
    )  # fmt: skip
    a, b = float(edges[0]), float(edges[-1])
    margin = 0.05 * (b - a)
    ax.set_xlim(a - margin, b + margin)
    ax.axvspan(lo, hi, color=FIT_RED, alpha=0.15, lw=0, label=f"fit range {lo:g}–{hi:g} mV·µs")
    if hi < a - margin or lo > b + margin:
        right = lo > b
        ax.annotate(
            f"fit range {lo:g}–{hi:g} mV·µs\n(run.toml [fit] {cuts_key})",
            xy=(0.99 if right else 0.01, 0.5), xycoords="axes fraction",
            xytext=(0.80 if right else 0.20, 0.5), textcoords="axes fraction",
            ha="center", va="center", fontsize=10, color=FIT_RED,
            arrowprops={"arrowstyle": "->", "color": FIT_RED},
        )  # fmt: skip
    ax.set_ylim(0, max(1.0, float(counts.max())) * HEADROOM)
    ax.set_ylabel(f"counts per bin ({fmt(edges[1] - edges[0])} mV·µs)")


def _fit_overlay(ax: Axes, fit: FitResult, edges: np.ndarray, mean_colour: str) -> None:
    """The fitted Gaussian (per drawn bin), the mean and its 95% CI band, the left-out bin."""
    width = float(edges[1] - edges[0])
    x = np.linspace(edges[0], edges[-1], 600)
    ax.plot(
        x, fit.curve(x, bin_width=width), color=FIT_RED, lw=2,
        label=f"Gaussian fit: σ = {fmt(fit.sigma)} mV·µs ({fit.nbins}-bin fit histogram)",
    )  # fmt: skip
    if finite(fit.ci95):
        lo, hi = fit.mean - fit.ci95, fit.mean + fit.ci95
        narrow = 2 * fit.ci95 < CI_TOO_NARROW * float(edges[-1] - edges[0])
        ax.axvspan(
            lo, hi, facecolor=CI_ORANGE, alpha=0.45, edgecolor=CI_ORANGE, lw=1.5, zorder=3,
            label=f"95% CI of the mean: ±{fmt(fit.ci95, 2)} ({fmt(lo, 4)}–{fmt(hi, 4)}) mV·µs"
            + (", narrower than a line here" if narrow else ""),
        )  # fmt: skip
    ax.axvline(
        fit.mean, color=mean_colour, ls="--", lw=1.8, zorder=4,
        label=f"fitted mean {fmt(fit.mean, 4)} mV·µs",
    )  # fmt: skip
    if fit.exclude_first_bin and fit.bin_edges.size >= 2:
        ax.axvspan(
            fit.bin_edges[0], fit.bin_edges[1], facecolor="none", edgecolor="#555555",
            hatch="///", lw=0, label="first fit bin, left out of the fit",
        )  # fmt: skip


def _area_histogram(
    ax: Axes,
    fit: FitResult,
    values: np.ndarray,
    *,
    bar_colour: str,
    mean_colour: str,
    data_label: str,
    cuts_key: str,
    reference: ReferenceOverlay | None = None,
) -> None:
    counts, edges = display_histogram(values, fit.bin_cuts)
    if counts.size == 0:
        _outside_fit_range(ax, fit, values, cuts_key)
    else:
        ax.bar(
            edges[:-1], counts, width=np.diff(edges), align="edge", color=bar_colour,
            alpha=0.65, edgecolor=bar_colour, linewidth=0.3,
            label=f"{data_label} in the histogram ({counts.sum()})",
        )  # fmt: skip
        ax.set_ylim(0, max(1.0, float(counts.max())) * HEADROOM)
        ax.set_ylabel(f"counts per bin ({fmt(edges[1] - edges[0])} mV·µs)")
    if reference is not None:
        _reference_overlay(ax, reference, edges)
    if fit.fit_success and counts.size:
        _fit_overlay(ax, fit, edges, mean_colour)
    else:
        why = fit.message.replace("; ", "\n") if fit.message else "fit failed"
        ax.text(
            0.01, 0.98, f"no fit: {why}", ha="left", va="top", transform=ax.transAxes,
            fontsize=9, color=FIT_RED, parse_math=False,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )  # fmt: skip
    ax.set_xlabel("S2 area (mV·µs)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=9)


def _histogram_figure(
    title: str,
    fit: FitResult,
    areas: np.ndarray,
    accounting: str,
    reference: ReferenceOverlay | None = None,
    **style: str,
) -> Figure:
    fig = Figure(figsize=HIST_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    _area_histogram(ax, fit, areas, reference=reference, **style)
    ax.set_title(f"{title}\n{accounting}", parse_math=False, fontsize=11)
    return fig


def s2_histogram_figure(
    set_name: str,
    fit: FitResult,
    areas: np.ndarray,
    *,
    n_frames: int | None = None,
    reference: ReferenceOverlay | None = None,
) -> Figure:
    """Ion S2 areas of a set with their Gaussian fit (``fit`` from
    :func:`wavedqm.analysis.ratag.fit_area_histogram`). ``n_frames``: the set's frames
    (default: one area per frame); frames beyond ``areas`` count as without an area.
    ``reference``: the reference set's histogram to draw over the bars."""
    title = f"S2 area histogram — {set_name}"
    counts = area_counts(areas, fit.bin_cuts, n_frames)
    if counts.n_total == counts.n_no_area:
        why = (
            "the set has no frame yet"
            if counts.n_total == 0
            else f"none of the {counts.n_total} frames has an S2 area yet "
            "(integration window not known yet, or empty)"
        )
        return no_data_figure(title, why, HIST_FIGSIZE)
    text = accounting_text(
        counts, fit.bin_cuts, "frames", "S2 area", "without an S2 area (window unknown or empty)"
    )
    return _histogram_figure(
        title, fit, areas, text, reference, bar_colour=DATA_GREEN, mean_colour=MEAN_BLUE,
        data_label="frames", cuts_key="ion_bin_cuts",
    )  # fmt: skip


def xray_histogram_figure(run_id: str, fit: FitResult, areas: np.ndarray) -> Figure:
    """Combined accepted X-ray S2 areas of a run with their Gaussian fit (the calibration
    input)."""
    title = f"Combined X-ray S2 areas — run {run_id}"
    counts = area_counts(areas, fit.bin_cuts)
    if counts.n_total == counts.n_no_area:
        return no_data_figure(title, "no accepted X-ray event in any set yet", HIST_FIGSIZE)
    text = accounting_text(
        counts, fit.bin_cuts, "accepted X-ray events", "area", "without a finite area"
    )
    return _histogram_figure(
        title, fit, areas, text, bar_colour=XRAY_BLUE, mean_colour=XRAY_MEAN,
        data_label="X-ray events", cuts_key="xray_bin_cuts",
    )  # fmt: skip
