"""S2 plots of a set and of a run, as seed 000 describes them, all in ``OUT/<run>/plots/``.

Per set: ``{set}_s2_histogram.png`` (ion S2 areas: green bars, red Gaussian fit, blue dashed
mean with its 95% CI band; mV·µs) and ``{set}_waveform_validation.png`` (randomly chosen
frames, each in its own panel, with the set's S1 time (red), S2 start (blue) and S2 end
(purple): dashed line at the value, shaded 95% band ±1.96σ). Per run:
``{run}_xray_histogram.png`` (combined X-ray areas, blue bars, red fit, dark-red dashed mean),
``{run}_s2_vs_drift.png`` and ``{run}_s2_vs_drift_normalized.png`` (one point per set with
its 95% CI), ``{run}_diffusion_analysis.png`` (σ²_obs against t_d, t_d/v_d² and E/p, each
with its linear fit).

Every figure is a ``matplotlib.figure.Figure`` (no pyplot state), written as PNG at 150 DPI,
atomically. The builders draw what the analysis gives them (fits, histograms, fields) and
compute nothing physical; text from outside (set and run names) is drawn without mathtext.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wavedqm import constants as C
from wavedqm.analysis.ratag import DiffusionFits, FitResult, LinearFit
from wavedqm.atomic import atomic_write_bytes
from wavedqm.errors import InputFileError
from wavedqm.formats.wfm import open_wfm
from wavedqm.logs import get_logger

if TYPE_CHECKING:
    from wavedqm.analysis.ratag_run import RunResult, SetResult

log = get_logger(__name__)

PNG_DPI = 150
BAND_Z = 1.96
"""Half-width of the shaded timing bands in σ (95% of a Gaussian)."""

DATA_GREEN = "#2ca02c"
FIT_RED = "#d62728"
ALL_AREAS_GREY = "#8c8c8c"
MEAN_BLUE = "#1f77b4"
XRAY_BLUE = "#1f77b4"
XRAY_MEAN = "#8b0000"
S1_COLOUR = "#d62728"
S2_START_COLOUR = "#1f4fd6"
S2_END_COLOUR = "#8e44ad"
TRACE_COLOUR = "#333333"
NO_DATA = "no data yet"


def s2_histogram_name(set_name: str) -> str:
    return f"{set_name}_s2_histogram.png"


def waveform_validation_name(set_name: str) -> str:
    return f"{set_name}_waveform_validation.png"


def run_plot_names(run_id: str) -> dict[str, str]:
    """The four run-level PNG names, by kind."""
    return {
        "xray_histogram": f"{run_id}_xray_histogram.png",
        "s2_vs_drift": f"{run_id}_s2_vs_drift.png",
        "s2_vs_drift_normalized": f"{run_id}_s2_vs_drift_normalized.png",
        "diffusion_analysis": f"{run_id}_diffusion_analysis.png",
    }


def figure_png(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_png(path: Path, fig: Figure, dpi: int = PNG_DPI) -> Path:
    """Render ``fig`` to PNG (150 DPI) and write it atomically."""
    return atomic_write_bytes(path, figure_png(fig, dpi))


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def _fmt(x: float | None, digits: int = 3) -> str:
    return f"{float(x):.{digits}g}" if _finite(x) else "n/a"


def _no_data(ax: Axes, text: str = NO_DATA) -> None:
    ax.text(
        0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
        fontsize=12, color="#777777", parse_math=False,
    )  # fmt: skip


def _histogram(fit: FitResult, values: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit's own histogram when it has one, else a plain one of the values in its cuts."""
    if fit.counts.size and fit.bin_edges.size == fit.counts.size + 1:
        return np.asarray(fit.counts), np.asarray(fit.bin_edges)
    lo, hi = fit.bin_cuts
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > lo) & (v < hi)]
    if v.size == 0:
        return np.zeros(0), np.zeros(0)
    counts, edges = np.histogram(v, bins=nbins)
    return counts, edges


def _outside_fit_range(ax: Axes, fit: FitResult, values: np.ndarray, nbins: int) -> None:
    """No area inside the fit range: every finite area in grey, the fit range shaded (and
    named, with an arrow, when it lies off the areas' axis) so the crew sees where it should
    be."""
    lo, hi = fit.bin_cuts
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        _no_data(ax, f"no area yet (fit range {lo:g}–{hi:g} mV·µs)")
        return
    a, b = np.quantile(v, (0.005, 0.995))
    if not b > a:
        a, b = a - 0.5, b + 0.5
    counts, edges = np.histogram(v[(v >= a) & (v <= b)], bins=nbins, range=(a, b))
    ax.bar(
        edges[:-1], counts, width=np.diff(edges), align="edge", color=ALL_AREAS_GREY,
        alpha=0.8, lw=0, label=f"all areas ({v.size}), none inside the fit range",
    )  # fmt: skip
    margin = 0.05 * (b - a)
    ax.set_xlim(a - margin, b + margin)
    ax.axvspan(lo, hi, color=FIT_RED, alpha=0.15, lw=0, label=f"fit range {lo:g}–{hi:g} mV·µs")
    if hi < a - margin or lo > b + margin:
        right = lo > b
        ax.annotate(
            f"fit range {lo:g}–{hi:g} mV·µs\n(run.toml [fit] ion_bin_cuts)",
            xy=(0.99 if right else 0.01, 0.5), xycoords="axes fraction",
            xytext=(0.80 if right else 0.20, 0.5), textcoords="axes fraction",
            ha="center", va="center", fontsize=10, color=FIT_RED,
            arrowprops={"arrowstyle": "->", "color": FIT_RED},
        )  # fmt: skip
    why = "no fit: " + fit.message.replace("; ", "\n") if fit.message else "no fit"
    ax.set_ylim(0, max(1.0, float(counts.max())) * 1.3)  # room for the reason and the legend
    ax.text(
        0.01, 0.98, why, ha="left", va="top", transform=ax.transAxes, fontsize=9,
        color=FIT_RED, parse_math=False, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
    )  # fmt: skip


def _area_histogram(
    ax: Axes,
    fit: FitResult,
    values: np.ndarray,
    *,
    bar_colour: str,
    mean_colour: str,
    data_label: str,
    nbins: int,
) -> None:
    counts, edges = _histogram(fit, values, nbins)
    if counts.size == 0:
        _outside_fit_range(ax, fit, values, nbins)
    else:
        ax.bar(
            edges[:-1], counts, width=np.diff(edges), align="edge", color=bar_colour,
            alpha=0.65, edgecolor=bar_colour, linewidth=0.3, label=f"{data_label} ({counts.sum()})",
        )  # fmt: skip
    if fit.fit_success and counts.size:
        x = np.linspace(edges[0], edges[-1], 600)
        ax.plot(
            x, fit.curve(x), color=FIT_RED, lw=2,
            label=f"Gaussian fit: σ = {_fmt(fit.sigma)} mV·µs",
        )  # fmt: skip
        ci = fit.ci95 if _finite(fit.ci95) else 0.0
        ax.axvspan(fit.mean - ci, fit.mean + ci, color=mean_colour, alpha=0.18, lw=0)
        ax.axvline(
            fit.mean, color=mean_colour, ls="--", lw=1.8,
            label=f"mean {_fmt(fit.mean, 4)} ± {_fmt(fit.ci95, 2)} mV·µs (95% CI)",
        )  # fmt: skip
    elif counts.size:
        why = fit.message or "fit failed"
        ax.text(
            0.01, 0.98, f"no fit: {why}", ha="left", va="top", transform=ax.transAxes,
            fontsize=9, color=FIT_RED, parse_math=False,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )  # fmt: skip
    ax.set_xlabel("S2 area (mV·µs)")
    ax.set_ylabel("counts per bin")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=9)


# --------------------------------------------------------------------------------------------
# per set


def s2_histogram_figure(
    set_name: str,
    fit: FitResult,
    areas: np.ndarray,
    *,
    n_frames: int | None = None,
    nbins: int = 100,
) -> Figure:
    """Ion S2 areas of a set with their Gaussian fit (``fit`` from
    :func:`wavedqm.analysis.ratag.fit_area_histogram`; its histogram is drawn)."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    _area_histogram(
        ax, fit, areas, bar_colour=DATA_GREEN, mean_colour=MEAN_BLUE, data_label="frames",
        nbins=nbins,
    )  # fmt: skip
    frames = f", {n_frames} frames" if n_frames is not None else ""
    ax.set_title(f"S2 area histogram — {set_name}{frames}", parse_math=False)
    return fig


@dataclass(frozen=True, eq=False)
class Trace:
    """One frame to draw: pedestal-subtracted signal (mV, polarity inverted) against time."""

    label: str
    t_us: np.ndarray
    mv: np.ndarray


_TIMING_MARKERS = (
    ("t_s1", "t_s1_std", "S1", S1_COLOUR),
    ("t_s2_start_mean", "t_s2_start_std", "S2 start", S2_START_COLOUR),
    ("t_s2_end_mean", "t_s2_end_std", "S2 end", S2_END_COLOUR),
)


def waveform_validation_figure(
    set_name: str, traces: Sequence[Trace], timing: Mapping[str, Any]
) -> Figure:
    """Each trace in its own panel with the set's S1 time, S2 start and S2 end (``timing``:
    the set_metadata keys ``t_s1``, ``t_s1_std``, ``t_s2_start_mean``, ... in µs)."""
    n = max(1, len(traces))
    fig = Figure(figsize=(11, 1.9 * n + 1.0), layout="constrained")
    fig.suptitle(
        f"Waveform validation — {set_name} ({len(traces)} random frames)", parse_math=False
    )
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    if not traces:
        _no_data(axes[0])
    for i, (ax, tr) in enumerate(zip(axes, traces, strict=False)):
        ax.plot(tr.t_us, tr.mv, color=TRACE_COLOUR, lw=0.5)
        for key, std_key, name, colour in _TIMING_MARKERS:
            t, s = timing.get(key), timing.get(std_key)
            if not _finite(t):
                continue
            ax.axvline(float(t), color=colour, ls="--", lw=1.2, label=f"{name} {float(t):.2f} µs")
            if _finite(s) and float(s) > 0:
                ax.axvspan(
                    float(t) - BAND_Z * float(s), float(t) + BAND_Z * float(s),
                    color=colour, alpha=0.15, lw=0,
                )  # fmt: skip
        ax.set_ylabel("mV", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.text(
            0.005, 0.93, tr.label, transform=ax.transAxes, ha="left", va="top", fontsize=8,
            parse_math=False, bbox={"facecolor": "white", "alpha": 0.7, "lw": 0},
        )  # fmt: skip
        if i == 0 and ax.get_legend_handles_labels()[0]:
            ax.legend(
                loc="upper right",
                fontsize=8,
                ncols=3,
                title="dashed: set value; band: 95% (±1.96σ)",
                title_fontsize=7,
            )
    axes[-1].set_xlabel("time from trigger (µs)")
    return fig


# --------------------------------------------------------------------------------------------
# per run


def xray_histogram_figure(
    run_id: str, fit: FitResult, areas: np.ndarray, nbins: int = 100
) -> Figure:
    """Combined X-ray S2 areas of a run with their Gaussian fit (the calibration input)."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    _area_histogram(
        ax, fit, areas, bar_colour=XRAY_BLUE, mean_colour=XRAY_MEAN, data_label="X-ray events",
        nbins=nbins,
    )  # fmt: skip
    ax.set_title(f"Combined X-ray S2 areas — run {run_id}", parse_math=False)
    return fig


def s2_vs_drift_figure(
    run_id: str,
    drift_field: np.ndarray,
    values: np.ndarray,
    errors: np.ndarray,
    labels: Sequence[str],
    *,
    normalized: bool = False,
) -> Figure:
    """One point per set: mean ion S2 area (mV·µs) — or A_ion / A_xray when ``normalized`` —
    against the drift field (V/cm), error bars the 95% CI."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    x = np.asarray(drift_field, np.float64)
    y = np.asarray(values, np.float64)
    e = np.asarray(errors, np.float64)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        _no_data(ax, "no set with a fitted S2 area yet" if not normalized else
                 "no X-ray calibration or fitted S2 area yet")  # fmt: skip
    else:
        ax.errorbar(
            x[good], y[good], yerr=np.where(np.isfinite(e[good]), e[good], 0.0), fmt="o",
            capsize=5, markersize=7, color=MEAN_BLUE, ecolor=MEAN_BLUE, label="sets (95% CI)",
        )  # fmt: skip
        for xi, yi, name in zip(x[good], y[good], np.asarray(labels)[good], strict=True):
            ax.annotate(
                str(name).replace("FieldScan_", ""), (xi, yi), textcoords="offset points",
                xytext=(6, 6), fontsize=7, color="#555555", annotation_clip=False,
            )  # fmt: skip
        ax.legend(loc="best", fontsize=9)
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("drift field (V/cm)")
    if normalized:
        ax.set_ylabel("normalised S2 area (A_ion / A_xray)")
        title = f"Normalised S2 area vs drift field — run {run_id}"
    else:
        ax.set_ylabel("mean S2 area (mV·µs)")
        title = f"Mean S2 area vs drift field — run {run_id}"
    ax.set_title(title, parse_math=False)
    ax.grid(alpha=0.3)
    return fig


def _diffusion_panel(
    ax: Axes, x: np.ndarray, y: np.ndarray, fit: LinearFit, xlabel: str, title: str, unit: str
) -> None:
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        _no_data(ax, "no set with S2 duration statistics yet")
    else:
        ax.scatter(x[good], y[good], s=45, color=MEAN_BLUE, zorder=3, label="sets")
    if fit.fit_success:
        xs = np.linspace(x[good].min(), x[good].max(), 100)
        ax.plot(
            xs, fit.slope * xs + fit.intercept, color=FIT_RED, ls="--", lw=1.8,
            label=f"linear fit: slope {_fmt(fit.slope)} ± {_fmt(fit.slope_err, 2)} {unit}",
        )  # fmt: skip
    elif good.any():
        ax.text(
            0.98, 0.05, f"no fit ({fit.n_points} sets; at least 3 needed)", ha="right",
            va="bottom", transform=ax.transAxes, fontsize=8, color="#777777",
        )  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("σ²_obs (µs²)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.15)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)


def diffusion_figure(run_id: str, fits: DiffusionFits) -> Figure:
    """Three panels: σ²_obs = s2_duration_std² against t_d, t_d / v_d² and E/p."""
    fig = Figure(figsize=(10, 11), layout="constrained")
    fig.suptitle(f"S2 duration variance (diffusion) — run {run_id}", parse_math=False)
    axes = fig.subplots(3, 1)
    _diffusion_panel(
        axes[0], fits.drift_time_us, fits.sigma2_obs, fits.vs_drift_time,
        "drift time t_d (µs)", "σ²_obs vs drift time", "µs",
    )  # fmt: skip
    _diffusion_panel(
        axes[1], fits.td_over_vd2, fits.sigma2_obs, fits.vs_td_over_vd2,
        "t_d / v_d² (µs³/mm²)", "σ²_obs vs t_d / v_d²", "mm²/µs",
    )  # fmt: skip
    _diffusion_panel(
        axes[2], fits.e_over_p, fits.sigma2_obs, fits.vs_e_over_p,
        "reduced drift field E/p (V·cm⁻¹·bar⁻¹)", "σ²_obs vs E/p", "µs²·cm·bar/V",
    )  # fmt: skip
    return fig


# --------------------------------------------------------------------------------------------
# plot jobs (run on the plotting thread, wavedqm.exporters.plotting)


@dataclass(frozen=True)
class Pick:
    """One frame of a set drawn on the waveform-validation page."""

    path: Path
    frame: int
    label: str


def read_trace(
    path: Path, frame: int, n_pedestal: int, polarity: int, label: str
) -> Trace:
    """One frame of a ``.wfm`` file as the analysis sees it: mV after polarity inversion,
    pedestal (mean of the first ``n_pedestal`` samples) subtracted, against µs."""
    with open_wfm(path) as w:
        volts = w.volts(int(frame))
        t_us = w.time_axis_s() * 1e6
    mv = polarity * volts * 1e3
    mv -= mv[: max(1, min(n_pedestal, mv.size))].mean()
    return Trace(label, t_us, mv)


def set_plot_job(
    result: SetResult,
    areas: np.ndarray,
    picks: Sequence[Pick],
    plots_dir: Path,
    nbins: int,
    n_pedestal: int,
) -> Callable[[], dict[str, Path]]:
    """The set's two PNGs: its S2 area histogram and the validation waveforms (read from
    their files when the job runs)."""

    def job() -> dict[str, Path]:
        written = {}
        fig = s2_histogram_figure(
            result.set_name, result.ion_fit, areas, n_frames=result.n_frames, nbins=nbins
        )
        path = plots_dir / s2_histogram_name(result.set_name)
        written[f"{result.set_name}/s2_histogram"] = write_png(path, fig)
        traces = []
        for pick in picks:
            try:
                traces.append(
                    read_trace(pick.path, pick.frame, n_pedestal, C.RATAG_POLARITY, pick.label)
                )
            except (OSError, InputFileError, IndexError) as err:
                log.warning("s2_trace_unreadable", file=str(pick.path), error=str(err))
        fig = waveform_validation_figure(result.set_name, traces, result.metadata)
        path = plots_dir / waveform_validation_name(result.set_name)
        written[f"{result.set_name}/waveform_validation"] = write_png(path, fig)
        return written

    return job


def run_plot_job(rr: RunResult, plots_dir: Path, nbins: int) -> Callable[[], dict[str, Path]]:
    """The run's four PNGs (X-ray histogram, S2 against drift field raw and normalised,
    diffusion)."""
    names = run_plot_names(rr.run)

    def job() -> dict[str, Path]:
        rec = rr.recombination
        nan = np.full(len(rr.sets), math.nan)
        figures = {
            "xray_histogram": xray_histogram_figure(rr.run, rr.xray_fit, rr.xray_areas, nbins),
            "s2_vs_drift": s2_vs_drift_figure(
                rr.run, rr.drift_field, rr.ion_mean, rr.ion_ci95, rr.sets
            ),
            "s2_vs_drift_normalized": s2_vs_drift_figure(
                rr.run,
                rr.drift_field,
                nan if rec is None else rec.normalised_s2,
                nan if rec is None else rec.normalised_s2_err,
                rr.sets,
                normalized=True,
            ),
            "diffusion_analysis": diffusion_figure(rr.run, rr.diffusion),
        }
        return {
            f"run/{kind}": write_png(plots_dir / names[kind], fig)
            for kind, fig in figures.items()
        }

    return job
