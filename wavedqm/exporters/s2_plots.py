"""S2 plots of a set and of a run, as seed 000 describes them, all in ``OUT/<run>/plots/``.

Per set: ``{set}_s2_histogram.png`` (ion S2 areas: green bars, red Gaussian fit, blue dashed
mean with its 95% CI as an orange band; mV·µs; the title says how many frames are in the
histogram and why the others are not) and ``{set}_waveform_validation.png`` (randomly
chosen frames, each in its own panel titled with its file and frame, with the set's S1 time
(red), S2 start (blue) and S2 end (purple): dashed line at the value, shaded 95% band
±1.96σ; one legend above the panels). Per run: ``{run}_xray_histogram.png`` (combined X-ray
areas, blue bars, red fit, dark-red dashed mean, orange CI band), ``{run}_s2_vs_drift.png``
and ``{run}_s2_vs_drift_normalized.png`` (one point per set with its 95% CI),
``{run}_diffusion_analysis.png`` (σ²_obs against t_d, t_d/v_d² and E/p, each with its
linear fit, slope ± error and 1σ band). Every drawn histogram's bins come from
:func:`wavedqm.analysis.ratag_fit.histogram_bins`. A plot with nothing to show is a page
saying ``no data: <why>``, without axes.

The builders live by concern in :mod:`~wavedqm.exporters.s2_plot_base` (colours, PNG, no-data
page), :mod:`~wavedqm.exporters.s2_plot_hist` (area histograms) and
:mod:`~wavedqm.exporters.s2_plot_run` (against the drift field, diffusion); this module
names the files, draws the validation waveforms, runs the plot jobs and re-exports them all.

Every figure is a ``matplotlib.figure.Figure`` (no pyplot state), written as PNG at 150 DPI,
atomically. The builders draw what the analysis gives them (fits, histograms, fields) and
compute nothing physical; text from outside (set and run names) is drawn without mathtext.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from wavedqm import constants as C
from wavedqm.errors import InputFileError
from wavedqm.exporters.s2_plot_base import (
    ALL_AREAS_GREY,
    BAND_Z,
    CI_ORANGE,
    DATA_GREEN,
    FIT_RED,
    MEAN_BLUE,
    NO_DATA,
    PNG_DPI,
    S1_COLOUR,
    S2_END_COLOUR,
    S2_START_COLOUR,
    TRACE_COLOUR,
    XRAY_BLUE,
    XRAY_MEAN,
    figure_png,
    finite,
    no_data_figure,
    write_png,
)
from wavedqm.exporters.s2_plot_hist import (
    accounting_text,
    s2_histogram_figure,
    xray_histogram_figure,
)
from wavedqm.exporters.s2_plot_run import diffusion_figure, s2_vs_drift_figure
from wavedqm.formats.wfm import open_wfm
from wavedqm.logs import get_logger

if TYPE_CHECKING:
    from wavedqm.analysis.ratag_run import RunResult, SetResult
    from wavedqm.analysis.s2_quality import ReferenceOverlay

__all__ = [
    "ALL_AREAS_GREY",
    "BAND_Z",
    "CI_ORANGE",
    "DATA_GREEN",
    "FIT_RED",
    "MEAN_BLUE",
    "NO_DATA",
    "PNG_DPI",
    "S1_COLOUR",
    "S2_END_COLOUR",
    "S2_START_COLOUR",
    "TRACE_COLOUR",
    "XRAY_BLUE",
    "XRAY_MEAN",
    "Pick",
    "Trace",
    "accounting_text",
    "diffusion_figure",
    "figure_png",
    "no_data_figure",
    "read_trace",
    "run_plot_job",
    "run_plot_names",
    "s2_histogram_figure",
    "s2_histogram_name",
    "s2_vs_drift_figure",
    "set_plot_job",
    "waveform_validation_figure",
    "waveform_validation_name",
    "write_png",
    "xray_histogram_figure",
]

log = get_logger(__name__)


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


def _timing_handles(timing: Mapping[str, Any]) -> list[Line2D]:
    """Legend entries of the set's S1 time, S2 start and S2 end that are known."""
    handles = []
    for key, std_key, name, colour in _TIMING_MARKERS:
        t, s = timing.get(key), timing.get(std_key)
        if finite(t):
            spread = f" ± {BAND_Z * float(s):.2g}" if finite(s) and float(s) > 0 else ""
            handles.append(
                Line2D([], [], color=colour, ls="--", lw=1.2,
                       label=f"{name} {float(t):.2f}{spread} µs")
            )  # fmt: skip
    return handles


def waveform_validation_figure(
    set_name: str, traces: Sequence[Trace], timing: Mapping[str, Any], why: str | None = None
) -> Figure:
    """Each trace in its own panel (titled with its file and frame) with the set's S1 time,
    S2 start and S2 end (``timing``: the set_metadata keys ``t_s1``, ``t_s1_std``,
    ``t_s2_start_mean``, ... in µs); one legend above the panels, none over a trace. No
    trace: a "no data" page saying ``why`` (default: no frame yet)."""
    title = f"Waveform validation — {set_name}"
    if not traces:
        return no_data_figure(title, why or "the set has no frame to show yet")
    n = len(traces)
    fig = Figure(figsize=(11, 1.9 * n + 1.5), layout="constrained")
    handles = _timing_handles(timing)
    known = "" if handles else "; the set's S1 and S2 times are not known yet"
    fig.suptitle(f"{title} ({n} random frames{known})", parse_math=False)
    # the legend has a row of its own above the panels (a figure legend "outside" the
    # panels would overlap the suptitle)
    top = [0.3] if handles else []
    rows = fig.subplots(
        n + len(top), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": top + [1] * n}
    )[:, 0]
    axes = rows[len(top) :]
    for ax, tr in zip(axes, traces, strict=True):
        ax.plot(tr.t_us, tr.mv, color=TRACE_COLOUR, lw=0.5)
        for key, std_key, _, colour in _TIMING_MARKERS:
            t, s = timing.get(key), timing.get(std_key)
            if not finite(t):
                continue
            ax.axvline(float(t), color=colour, ls="--", lw=1.2)
            if finite(s) and float(s) > 0:
                ax.axvspan(
                    float(t) - BAND_Z * float(s), float(t) + BAND_Z * float(s),
                    color=colour, alpha=0.15, lw=0,
                )  # fmt: skip
        ax.set_ylabel("mV", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.set_title(tr.label, loc="left", fontsize=8, pad=3, parse_math=False)
    if handles:
        rows[0].set_axis_off()
        rows[0].legend(
            handles=handles, loc="center", ncols=len(handles), fontsize=9,
            title="the set's values — dashed: value; shaded band: 95% (±1.96σ)",
            title_fontsize=8, frameon=False,
        )  # fmt: skip
    axes[-1].set_xlabel("time from trigger (µs)")
    return fig


# --------------------------------------------------------------------------------------------
# plot jobs (run on the plotting thread, wavedqm.exporters.plotting)


@dataclass(frozen=True)
class Pick:
    """One frame of a set drawn on the waveform-validation page."""

    path: Path
    frame: int
    label: str


def read_trace(path: Path, frame: int, n_pedestal: int, polarity: int, label: str) -> Trace:
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
    reference: ReferenceOverlay | None = None,
) -> Callable[[], dict[str, Path]]:
    """The set's two PNGs: its S2 area histogram (with ``reference``'s drawn over it when one
    is in use) and the validation waveforms (read from their files when the job runs).
    ``nbins`` is the fit's bin count (kept for the callers: the fit has already been made, and
    the drawn bins follow :func:`wavedqm.analysis.ratag_fit.histogram_bins`)."""
    del nbins

    def job() -> dict[str, Path]:
        written = {}
        fig = s2_histogram_figure(
            result.set_name, result.ion_fit, areas, n_frames=result.n_frames, reference=reference
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
        why = None
        if picks and not traces:
            why = (
                f"none of the {len(picks)} chosen frames could be read "
                "(see the log: s2_trace_unreadable)"
            )
        fig = waveform_validation_figure(result.set_name, traces, result.metadata, why)
        path = plots_dir / waveform_validation_name(result.set_name)
        written[f"{result.set_name}/waveform_validation"] = write_png(path, fig)
        return written

    return job


def _no_calibration(rr: RunResult) -> str:
    """Why a run has no X-ray calibration (hence no normalised S2)."""
    if not rr.xray_areas.size:
        return "no X-ray calibration yet (no accepted X-ray event in any set)"
    return f"no X-ray calibration yet (the combined X-ray fit failed: {rr.xray_fit.message})"


def run_plot_job(rr: RunResult, plots_dir: Path, nbins: int) -> Callable[[], dict[str, Path]]:
    """The run's four PNGs (X-ray histogram, S2 against drift field raw and normalised,
    diffusion). ``nbins``: as :func:`set_plot_job`'s."""
    del nbins
    names = run_plot_names(rr.run)

    def job() -> dict[str, Path]:
        rec = rr.recombination
        nan = np.full(len(rr.sets), math.nan)
        figures = {
            "xray_histogram": xray_histogram_figure(rr.run, rr.xray_fit, rr.xray_areas),
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
                why=None if rec is not None else _no_calibration(rr),
            ),
            "diffusion_analysis": diffusion_figure(rr.run, rr.diffusion),
        }
        return {
            f"run/{kind}": write_png(plots_dir / names[kind], fig) for kind, fig in figures.items()
        }

    return job
