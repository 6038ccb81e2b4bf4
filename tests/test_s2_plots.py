"""What the S2 plots show: legends off the traces, labelled 95% CI bands, the frame
accounting in the titles, the one bin rule, "no data" pages without axes, the diffusion fits
with their uncertainties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from wavedqm.analysis import ratag as R
from wavedqm.analysis import ratag_fit as RF
from wavedqm.analysis.ratag_run import RunResult
from wavedqm.exporters import s2_plots as P

SET = "FieldScan_Gate0200_Anode2100"
CUTS = (0.0, 72.8)


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def _figure_texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def _bars(ax) -> list[Rectangle]:
    return [p for c in ax.containers for p in c.patches]


def _set_areas(rng: np.random.Generator) -> np.ndarray:
    """300 frames: 290 areas in the fit range, 6 above it, 3 without an area, 1 below."""
    return np.concatenate([rng.normal(26.0, 4.0, 290), [80.0] * 6, [np.nan] * 3, [0.0]])


def _metadata() -> dict[str, float | None]:
    s1 = R.S1Stats(-1.0, 0.01, 100, 98)
    spread = R.WindowSpread(12.0, 11.5, 12.5, 90)
    windows = R.S2WindowStats(spread, R.WindowSpread(20.0, 19.0, 21.0, 90), spread, 12.2, 95)
    return R.set_metadata(s1, windows, R.set_physics(R.parse_set_name(SET)))


def _diffusion(n: int, nan: bool = False) -> R.DiffusionFits:
    td = np.linspace(8.0, 14.0, n)
    sd = np.sqrt(0.03 + 0.002 * td + 0.001 * np.sin(7 * td))
    return R.diffusion_fits(np.full(n, np.nan) if nan else sd, td, 14.0 / td, 1000 / td)


# --------------------------------------------------------------------------------------------
# area histograms


def test_histogram_title_says_what_the_two_numbers_are() -> None:
    areas = _set_areas(np.random.default_rng(1))
    fit = R.fit_area_histogram(areas, CUTS)
    assert fit.fit_success and fit.n_events == 290
    fig = P.s2_histogram_figure(SET, fit, areas, n_frames=300)
    (ax,) = fig.axes
    title = ax.get_title()
    assert "290 of 300 frames in the histogram" in title
    assert "(S2 area inside the fit range 0–72.8 mV·µs)" in title
    assert (
        "10 not: 3 without an S2 area (window unknown or empty), 1 at or below 0 mV·µs, "
        "6 at or above 72.8 mV·µs"
    ) in title
    assert "frames in the histogram (290)" in _legend_texts(ax)


def test_accounting_text_without_left_out_areas() -> None:
    c = RF.area_counts(np.array([1.0, 2.0]), (0.0, 4.0))
    text = P.accounting_text(c, (0.0, 4.0), "frames", "S2 area", "without an S2 area")
    assert text == "2 of 2 frames in the histogram (S2 area inside the fit range 0–4 mV·µs)"


@pytest.mark.parametrize("n", [40, 294, 3000])
def test_every_histogram_uses_the_one_bin_rule(n: int) -> None:
    rng = np.random.default_rng(n)
    areas = rng.normal(30.0, 4.0, n)
    fit = R.fit_area_histogram(areas, CUTS, nbins=100, min_events=3)
    want = RF.histogram_bins(areas[(areas > CUTS[0]) & (areas < CUTS[1])])
    for fig in (P.s2_histogram_figure(SET, fit, areas), P.xray_histogram_figure("R", fit, areas)):
        (ax,) = fig.axes
        assert len(_bars(ax)) == want
        # the fitted Gaussian is drawn per drawn bar: its peak is amplitude × width ratio
        curve = next(line for line in ax.lines if line.get_label().startswith("Gaussian"))
        width = _bars(ax)[0].get_width()
        assert max(curve.get_ydata()) == pytest.approx(
            fit.amplitude * width / fit.bin_width, rel=1e-3
        )
    # an area histogram with no area in its fit range uses the rule too
    off = R.fit_area_histogram(areas, (0.0, 4.0))
    (ax,) = P.s2_histogram_figure(SET, off, areas).axes
    assert len(_bars(ax)) == RF.histogram_bins(
        areas[(areas >= np.quantile(areas, 0.005)) & (areas <= np.quantile(areas, 0.995))]
    )


def test_ci_band_is_visible_and_labelled() -> None:
    areas = _set_areas(np.random.default_rng(2))
    fit = R.fit_area_histogram(areas, CUTS)
    for fig in (P.s2_histogram_figure(SET, fit, areas), P.xray_histogram_figure("R", fit, areas)):
        (ax,) = fig.axes
        bands = [p for p in ax.patches if p.get_label().startswith("95% CI of the mean")]
        assert len(bands) == 1
        band = bands[0]
        assert f"±{fit.ci95:.2g}" in band.get_label()
        assert band.get_alpha() >= 0.3
        assert band.get_zorder() > max(b.get_zorder() for b in _bars(ax))  # over the bars
        assert isinstance(band, Rectangle)
        assert band.get_x() == pytest.approx(fit.mean - fit.ci95)
        assert band.get_width() == pytest.approx(2 * fit.ci95)


# --------------------------------------------------------------------------------------------
# no data


def _assert_no_data_page(fig: Figure, *words: str) -> None:
    assert fig.axes == []  # no made-up axes
    text = _figure_texts(fig)
    assert "no data: " in text
    for w in words:
        assert w in text


def test_empty_plots_are_no_data_pages(tmp_path: Path) -> None:
    nofit = R.fit_area_histogram(np.zeros(0))
    n = 3
    nan = np.full(n, np.nan)
    pages = {
        "hist": (P.s2_histogram_figure(SET, nofit, np.zeros(0)), "no frame"),
        "hist_nan": (
            P.s2_histogram_figure(SET, nofit, np.full(40, np.nan)),
            "none of the 40 frames has an S2 area",
        ),
        "xray": (P.xray_histogram_figure("R", nofit, np.zeros(0)), "no accepted X-ray"),
        "waveforms": (P.waveform_validation_figure(SET, [], _metadata()), "no frame"),
        "unreadable": (
            P.waveform_validation_figure(SET, [], {}, "none of the 2 chosen frames could be read"),
            "could be read",
        ),
        "drift": (
            P.s2_vs_drift_figure("R", np.arange(n) * 100.0, nan, nan, ["a", "b", "c"]),
            "no set with a fitted S2 area yet (3 sets)",
        ),
        "norm": (
            P.s2_vs_drift_figure(
                "R", np.arange(n) * 1.0, nan, nan, ["a"] * n, normalized=True, why="no cal"
            ),
            "no data: no cal (3 sets)",
        ),
        "diffusion": (P.diffusion_figure("R", _diffusion(3, nan=True)), "S2 duration"),
    }
    for name, (fig, words) in pages.items():
        _assert_no_data_page(fig, words)
        P.write_png(tmp_path / f"{name}.png", fig)


def test_run_job_says_why_there_is_no_normalised_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, Figure] = {}
    monkeypatch.setattr(P, "write_png", lambda path, fig: drawn.setdefault(path.name, fig))
    nofit = R.fit_area_histogram(np.zeros(0))
    rr = RunResult(
        run="R", sets=["a", "b"], xray_areas=np.zeros(0), xray_fit=nofit, calibration=None,
        drift_field=np.array([100.0, 200.0]), ion_mean=np.array([20.0, 25.0]),
        ion_ci95=np.array([0.5, 0.6]), recombination=None, diffusion=_diffusion(2),
    )  # fmt: skip
    P.run_plot_job(rr, tmp_path, 100)()
    assert set(drawn) == set(P.run_plot_names("R").values())
    _assert_no_data_page(
        drawn["R_s2_vs_drift_normalized.png"],
        "no X-ray calibration yet (no accepted X-ray event in any set)",
    )
    _assert_no_data_page(drawn["R_xray_histogram.png"], "no accepted X-ray event")
    assert len(drawn["R_s2_vs_drift.png"].axes) == 1


# --------------------------------------------------------------------------------------------
# waveforms, drift field, diffusion


def test_validation_legend_hides_no_trace() -> None:
    t = np.linspace(-5, 30, 500)
    traces = [P.Trace(f"f.wfm — frame {i}", t, np.sin(t)) for i in range(4)]
    fig = P.waveform_validation_figure(SET, traces, _metadata())
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 4
    assert all(ax.get_legend() is None for ax in panels)  # nothing drawn over a trace
    assert [ax.get_title(loc="left") for ax in panels] == [tr.label for tr in traces]
    (legend_ax,) = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert not legend_ax.axison and not legend_ax.lines
    labels = _legend_texts(legend_ax)
    assert labels == ["S1 -1.00 ± 0.02 µs", "S2 start 12.00 ± 0.98 µs", "S2 end 20.00 ± 2 µs"]
    # the legend's row is above the first trace
    assert legend_ax.get_position().y0 >= panels[0].get_position().y1


def test_s2_vs_drift_shows_each_ci() -> None:
    fig = P.s2_vs_drift_figure(
        "R", np.array([100.0, 300.0, 500.0]), np.array([20.0, 25.0, 30.0]),
        np.array([0.5, math.nan, 0.7]), ["FieldScan_A", "FieldScan_B", "FieldScan_C"],
    )  # fmt: skip
    (ax,) = fig.axes
    labels = _legend_texts(ax)
    assert any("error bar: its 95% CI" in t for t in labels)
    assert "sets without a CI" in labels
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["A\n20 ± 0.5 mV·µs", "B\n25 mV·µs", "C\n30 ± 0.7 mV·µs"]
    assert "2 of 3 sets" not in ax.get_title() and "3 of 3 sets with a value" in ax.get_title()


def test_diffusion_panels_show_fit_uncertainties() -> None:
    fits = _diffusion(4)
    fig = P.diffusion_figure("R", fits)
    axes = fig.axes
    assert len(axes) == 3
    for ax, fit in zip(
        axes, (fits.vs_drift_time, fits.vs_td_over_vd2, fits.vs_e_over_p), strict=True
    ):
        assert fit.fit_success and math.isfinite(fit.slope_err)
        assert "— 4 sets; linear fit" in ax.get_title()
        labels = "\n".join(_legend_texts(ax))
        assert f"slope {fit.slope:.3g} ± {fit.slope_err:.2g}" in labels
        assert f"intercept {fit.intercept:.3g} ± {fit.intercept_err:.2g} µs²" in labels
        assert "1σ band of the fit" in labels
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        x = np.asarray(ax.collections[0].get_offsets())[:, 0]  # the sets' points
        xs = np.linspace(x.min(), x.max(), 200)
        top = band.get_paths()[0].vertices[:, 1].max()
        assert top == pytest.approx(float(np.max(fit.slope * xs + fit.intercept + fit.band(xs))))


@pytest.mark.parametrize("n", [1, 2])
def test_diffusion_without_enough_sets_says_no_fit(n: int) -> None:
    fig = P.diffusion_figure("R", _diffusion(n))
    for ax in fig.axes:
        set_word = "set" if n == 1 else "sets"
        assert f"— {n} {set_word}; no fit (a fit needs at least 3)" in ax.get_title()
        assert not ax.lines  # no line drawn
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
