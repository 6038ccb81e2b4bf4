"""The light pages of the per-file PDF report (drawn with the kit of
:mod:`wavedqm.exporters.plots`; nothing here computes physics; the per-channel baseline and
noise pages are in :mod:`wavedqm.exporters.channel_pages`):

- :func:`fraction_figure`: a flag fraction (clipped, negative; %) with its Clopper–Pearson
  interval at any granularity ("channel", "epcb", "tpc", "total") for several trigger
  selections — one function, parameterised by the granularity;
- :func:`spectra_figure`: power spectra (V², log y) per EPCB, regions of interest shaded;
- :func:`jump_figure`: the waveform with the largest sample-to-sample jump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.fractions import Fraction
from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.spectra import NoisiestChannel, SpectraResult
from wavedqm.exporters.plots import (
    CURRENT_COLOUR,
    INACTIVE_COLOUR,
    LABEL_SIZE,
    NO_EVENTS_LABEL,
    PREVIOUS_LINE_COLOUR,
    PROBLEM_COLOUR,
    SERIES_COLOURS,
    TEXT_SIZE,
    TICK_SIZE,
    UPPER_LIMIT_COLOUR,
    UPPER_LIMIT_LABEL,
    axes_grid,
    figure_legend,
    legend_handles,
    nonneg,
    page_figure,
    panel_title,
    shade_inactive,
    step_band,
    style_axes,
)

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
    style_axes(ax)
    x = panel.x
    cur = panel.current
    shown = panel.shown
    shade_inactive(ax, x, ~shown)
    top = 0.0
    if panel.previous is not None:
        prev = panel.previous
        has = shown & (prev.n > 0)
        lo = np.where(has, 100 * prev.lower, np.nan)
        hi = np.where(has, 100 * prev.upper, np.nan)
        step_band(
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
    measured = with_events & (cur.k > 0)  # 0 of n: an upper limit, not an error bar
    zero = with_events & (cur.k == 0)
    y = np.where(measured, 100 * cur.fraction, np.nan)
    ax.errorbar(
        x,
        y,
        yerr=[
            nonneg(100 * (cur.fraction - cur.lower)) * measured,
            nonneg(100 * (cur.upper - cur.fraction)) * measured,
        ],
        fmt="o",
        ms=3.2 if x.size > 16 else 5,
        lw=0.9 if x.size > 16 else 1.4,
        capsize=0 if x.size > 16 else 4,
        color=CURRENT_COLOUR,
        zorder=3,
    )
    if zero.any():  # the point at 0, and a light caret at its upper limit
        small = x.size > 16
        ax.plot(x[zero], np.zeros(int(zero.sum())), "o", ms=3.2 if small else 5,
                color=CURRENT_COLOUR, zorder=3)  # fmt: skip
        ax.plot(x[zero], 100 * cur.upper[zero], "v", ms=3.5 if small else 6, mfc="none",
                mec=UPPER_LIMIT_COLOUR, mew=0.8, zorder=2)  # fmt: skip
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
    panel_title(ax, panel.title, above_top_axis=panel.top_axis)
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

    axes = axes_grid(
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
    any_empty = any_zero = False
    for ax, panel in zip(axes, panels, strict=True):
        any_zero |= bool(np.any(panel.shown & (panel.current.n > 0) & (panel.current.k == 0)))
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
    if any_zero:
        extra.append(Line2D([], [], marker="v", ls="", ms=6, mfc="none", mec=UPPER_LIMIT_COLOUR,
                            label=UPPER_LIMIT_LABEL))  # fmt: skip
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
    figure_legend(fig, legend_handles(n_previous, previous=show_previous, extra=extra))
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
    noisiest: Sequence[NoisiestChannel | None] | None = None,
) -> Figure:
    """Power spectra per EPCB: one panel per ADC of ``adcs`` holding its ``epcb_per_adc``
    EPCBs (global EPCB ``adc * epcb_per_adc + local``), log y, the DC bin (index 0) left out,
    regions of interest shaded and labelled with their centre (MHz) on the top row.
    ``epcb_spectra``: (n_epcb, n_bins) V² per bin; ``freq_mhz``: (n_bins,) MHz. ``noisiest``:
    per ADC (indexed by ADC number) its noisiest channel, drawn black over the EPCB medians
    that would hide it, with its power against the ADC's typical channel."""
    fig = page_figure(title)
    n = len(adcs)
    n_cols = 2 if n > 1 else 1
    n_rows = -(-n // n_cols)
    axes = axes_grid(fig, n_rows, n_cols, sharex=True, top=0.83)  # room: a 2-row legend
    freq = np.asarray(freq_mhz, dtype=np.float64)[1:]
    power = np.asarray(epcb_spectra, dtype=np.float64)[:, 1:]
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(epcb_per_adc)]
    for ax, adc in zip(axes, adcs, strict=False):
        style_axes(ax)
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
        worst = noisiest[adc] if noisiest is not None and adc < len(noisiest) else None
        if np.isfinite(block).any():
            ax.plot(freq, block.T, lw=0.8)  # one call: every EPCB of the ADC
            if worst is not None:
                w = np.asarray(worst.spectrum, dtype=np.float64)[1:]
                ax.plot(freq, np.where(w > 0, w, np.nan), color="black", lw=0.7, alpha=0.85,
                        zorder=2.5)  # fmt: skip
                ax.text(0.99, 0.96, f"noisiest: channel {worst.channel}, "
                        f"{worst.ratio:.1f}× the ADC's median channel power",
                        transform=ax.transAxes, ha="right", va="top", fontsize=TICK_SIZE,
                        bbox=dict(facecolor="white", edgecolor="none", alpha=0.85,
                                  pad=1.0))  # fmt: skip
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
        labelled = bool(len(roi_centres_mhz)) and ax in axes[:n_cols]
        panel_title(ax, f"ADC {adc}", above_top_axis=labelled)  # clear of the ROI labels
        ax.set_ylabel(y_label, fontsize=LABEL_SIZE)
        if freq.size:
            ax.set_xlim(0, float(freq[-1]))
    for ax in axes[len(adcs) :]:
        ax.set_visible(False)
    for ax in axes[: min(n_cols, len(adcs))]:
        _label_rois(ax, roi_centres_mhz)
    for ax in axes[-n_cols:]:
        ax.set_xlabel("frequency (MHz)", fontsize=LABEL_SIZE)
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=c, lw=1.5, label=f"EPCB {i}") for i, c in enumerate(colours)
    ]
    if noisiest is not None and any(n is not None for n in noisiest):
        handles.append(Line2D([], [], color="black", lw=1.0, label="noisiest channel"))
    if len(roi_centres_mhz):
        handles.append(Patch(facecolor="#fee08b", label="regions of interest (centre, MHz)"))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.96),
        ncol=min(len(handles), 6),
        fontsize=TEXT_SIZE,
        frameon=False,
        title="EPCB of the ADC (median over its channels and events)",
        title_fontsize=TEXT_SIZE,
    )
    return fig


def _label_rois(ax: Axes, centres_mhz: Sequence[float]) -> None:
    """Each region of interest's centre (MHz) just above the panel, alternately staggered
    when two are close."""
    span = ax.get_xlim()[1] - ax.get_xlim()[0] or 1.0
    last = -np.inf
    row = 0
    for c in sorted(centres_mhz):
        row = 1 - row if (c - last) / span < 0.04 else 0
        last = c
        ax.text(c, 1.01 + 0.045 * row, f"{c:g}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=TICK_SIZE - 1, color="#8c6d00")  # fmt: skip


# --- jump ---------------------------------------------------------------------------------------


TRIGGER_NAMES = {0: "self", 1: "beam"}


def jump_figure(
    jump: JumpEvent, *, title: str = "Largest sample-to-sample jump", zoom_samples: int = 25
) -> Figure:
    """The waveform (ADC16 counts against µs) with the largest |s[i+1] − s[i]| of the file:
    the whole waveform, then ``± zoom_samples`` around the jump; the two samples marked."""
    fig = page_figure(title)
    top, bottom = axes_grid(fig, 2, 1)
    t = jump.time_us()
    s = np.asarray(jump.samples, dtype=np.float64)
    i = int(jump.sample)
    pair = np.array([i, min(i + 1, s.size - 1)])
    lo, hi = max(0, i - zoom_samples), min(s.size, i + zoom_samples + 2)
    for ax, sl in ((top, slice(None)), (bottom, slice(lo, hi))):
        style_axes(ax)
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


def spectra_page(
    title: str, spectra: SpectraResult, cmap: ChannelMap, adcs: Sequence[int]
) -> Figure:
    """One page of power spectra per EPCB of ``adcs``, the noisiest channel and the ROIs."""
    return spectra_figure(
        spectra.freq_mhz,
        spectra.epcb_median(cmap),
        title=title,
        epcb_per_adc=cmap.epcb_per_adc,
        adcs=adcs,
        roi_centres_mhz=list(spectra.roi_centres_mhz),
        roi_half_width_mhz=spectra.roi_half_width_mhz,
        y_label="median power per bin (V²)",
        noisiest=spectra.noisiest_channels(),
    )
