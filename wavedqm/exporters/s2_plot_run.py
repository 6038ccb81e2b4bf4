"""Run-level S2 plots across sets: mean S2 area (raw or normalised) against the drift field
(``{run}_s2_vs_drift.png``, ``{run}_s2_vs_drift_normalized.png``) and the diffusion analysis
(``{run}_diffusion_analysis.png``).

Against the drift field: one point per set, its 95% CI as a thick capped error bar and as
``± value`` beside the set's name; a set without a CI is drawn hollow. Diffusion: σ²_obs of
each set against t_d, t_d/v_d² and E/p, with the least-squares line of
:func:`wavedqm.analysis.ratag_calibration.linear_fit`, slope and intercept ± their standard
errors in the legend, the line's 1σ band (``LinearFit.band``), and the number of sets in
each panel's title ("no fit" and why below 3). Nothing to draw: a "no data" page or panel.
Drawing only: the numbers come from :mod:`wavedqm.analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wavedqm.analysis.ratag_calibration import DiffusionFits, LinearFit
from wavedqm.exporters.s2_plot_base import FIT_RED, MEAN_BLUE, fmt, no_data_figure, no_data_panel

RUN_FIGSIZE = (10, 6)
DIFFUSION_FIGSIZE = (11, 11)
MIN_FIT_POINTS = 3
""":func:`~wavedqm.analysis.ratag_calibration.linear_fit` fits with 3 sets or more."""


def s2_vs_drift_figure(
    run_id: str,
    drift_field: np.ndarray,
    values: np.ndarray,
    errors: np.ndarray,
    labels: Sequence[str],
    *,
    normalized: bool = False,
    why: str | None = None,
) -> Figure:
    """One point per set: mean ion S2 area (mV·µs) — or A_ion / A_xray when ``normalized`` —
    against the drift field (V/cm), error bars the 95% CI. ``why``: what to say when no set
    has a value (default: no fitted S2 area / no calibration yet)."""
    if normalized:
        title = f"Normalised S2 area vs drift field — run {run_id}"
        unit = ""
    else:
        title = f"Mean S2 area vs drift field — run {run_id}"
        unit = " mV·µs"
    x = np.asarray(drift_field, np.float64)
    y = np.asarray(values, np.float64)
    e = np.asarray(errors, np.float64)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        default = (
            "no X-ray calibration or fitted S2 area yet"
            if normalized
            else "no set with a fitted S2 area yet"
        )
        return no_data_figure(title, f"{why or default} ({len(x)} sets)", RUN_FIGSIZE)
    fig = Figure(figsize=RUN_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    with_ci = good & np.isfinite(e)
    point = "each set's A_ion / A_xray" if normalized else "each set's fitted mean area"
    what = "its 95% CI" + (" (ion fit only, X-ray error not included)" if normalized else "")
    if with_ci.any():
        ax.errorbar(
            x[with_ci], y[with_ci], yerr=e[with_ci], fmt="o", capsize=7, capthick=2,
            elinewidth=2.2, markersize=7, color=MEAN_BLUE, ecolor=MEAN_BLUE, zorder=3,
            label=f"{point}; error bar: {what}",
        )  # fmt: skip
    if (good & ~with_ci).any():
        ax.plot(
            x[good & ~with_ci], y[good & ~with_ci], "o", mfc="white", mec=MEAN_BLUE, mew=1.5,
            markersize=7, zorder=3, label="sets without a CI",
        )  # fmt: skip
    for xi, yi, ei, name in zip(x[good], y[good], e[good], np.asarray(labels)[good], strict=True):
        ci = f"{fmt(yi, 4)} ± {fmt(ei, 2)}{unit}" if np.isfinite(ei) else f"{fmt(yi, 4)}{unit}"
        ax.annotate(
            f"{str(name).replace('FieldScan_', '')}\n{ci}", (xi, yi), textcoords="offset points",
            xytext=(8, 0), va="center", fontsize=8, color="#444444", annotation_clip=False,
        )  # fmt: skip
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=9, frameon=False)
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel("drift field (V/cm)")
    ax.set_ylabel("normalised S2 area (A_ion / A_xray)" if normalized else "mean S2 area (mV·µs)")
    ax.set_title(f"{title}\n{int(good.sum())} of {len(x)} sets with a value", parse_math=False)
    ax.grid(alpha=0.3)
    return fig


def _fit_status(fit: LinearFit, n: int) -> str:
    if fit.fit_success:
        return "linear fit"
    if n < MIN_FIT_POINTS:
        return f"no fit (a fit needs at least {MIN_FIT_POINTS})"
    return "no fit (the sets have no spread in x)"


def _diffusion_panel(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    fit: LinearFit,
    xlabel: str,
    title: str,
    unit: str,
) -> None:
    good = np.isfinite(x) & np.isfinite(y)
    n = int(good.sum())
    if n == 0:
        no_data_panel(ax, "no set with S2 duration statistics yet", f"{title} — 0 sets")
        return
    ax.set_title(f"{title} — {n} set{'s' if n != 1 else ''}; {_fit_status(fit, n)}", fontsize=11)
    ax.scatter(
        x[good], y[good], s=45, color=MEAN_BLUE, zorder=3,
        label="sets (the results hold\nno per-point uncertainty)",
    )  # fmt: skip
    if fit.fit_success:
        xs = np.linspace(x[good].min(), x[good].max(), 200)
        line = fit.slope * xs + fit.intercept
        ax.plot(
            xs, line, color=FIT_RED, ls="--", lw=1.8,
            label=f"fit: slope {fmt(fit.slope)} ± {fmt(fit.slope_err, 2)} {unit}\n"
            f"intercept {fmt(fit.intercept)} ± {fmt(fit.intercept_err, 2)} µs²",
        )  # fmt: skip
        band = fit.band(xs)
        if np.isfinite(band).all():
            ax.fill_between(
                xs, line - band, line + band, color=FIT_RED, alpha=0.18, lw=0,
                label="1σ band of the fit",
            )  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("σ²_obs (µs²)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.15)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)


def diffusion_figure(run_id: str, fits: DiffusionFits) -> Figure:
    """Three panels: σ²_obs = s2_duration_std² against t_d, t_d / v_d² and E/p."""
    title = f"S2 duration variance (diffusion) — run {run_id}"
    y = np.asarray(fits.sigma2_obs, np.float64)
    if not np.isfinite(y).any():
        why = f"no set with S2 duration statistics yet ({y.size} sets)"
        return no_data_figure(title, why, DIFFUSION_FIGSIZE)
    fig = Figure(figsize=DIFFUSION_FIGSIZE, layout="constrained")
    fig.suptitle(title, parse_math=False)
    axes = fig.subplots(3, 1)
    panels = (
        (fits.drift_time_us, fits.vs_drift_time, "drift time t_d (µs)", "σ²_obs vs drift time",
         "µs²/µs"),
        (fits.td_over_vd2, fits.vs_td_over_vd2, "t_d / v_d² (µs³/mm²)", "σ²_obs vs t_d / v_d²",
         "mm²/µs"),
        (fits.e_over_p, fits.vs_e_over_p, "reduced drift field E/p (V·cm⁻¹·bar⁻¹)",
         "σ²_obs vs E/p", "µs²·cm·bar/V"),
    )  # fmt: skip
    for ax, (x, fit, xlabel, panel_title, unit) in zip(axes, panels, strict=True):
        _diffusion_panel(ax, np.asarray(x, np.float64), y, fit, xlabel, panel_title, unit)
    return fig
