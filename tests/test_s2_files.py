"""S2 result files (seed 000 layout), their loader (seed 001: JSON + NPY or NPY only) and the
S2 plot builders, on real files in temporary folders."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from wavedqm.analysis import ratag as R
from wavedqm.exporters import s2_files as F
from wavedqm.exporters import s2_plots as P
from wavedqm.kernels.s2 import XrayReason

from s2_reference import SEED_SET_METADATA_KEYS

SEED_S2_RESULTS_KEYS = [
    "method",
    "params",
    "mean",
    "sigma",
    "ci95",
    "fit_success",
    "set_metadata",
]
SEED_XRAY_RESULTS_KEYS = ["set_id", "params", "n_events", "n_accepted", "n_rejected", "events"]
SEED_XRAY_EVENT_KEYS = ["wf_id", "accepted", "reason", "area"]
SEED_RUN_XRAY_KEYS = ["run_id", "n_areas", "sets", "mean", "std"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metadata() -> dict[str, float | None]:
    s1 = R.S1Stats(-1.0, 0.01, 100, 98)
    spread = R.WindowSpread(12.0, 11.5, 12.5, 90)
    windows = R.S2WindowStats(spread, R.WindowSpread(20.0, 19.0, 21.0, 90), spread, 12.2, 95)
    physics = R.set_physics(R.parse_set_name("FieldScan_Gate0200_Anode2100"))
    return R.set_metadata(s1, windows, physics)


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


def png_dpi(path: Path) -> tuple[float, float]:
    """Pixels per inch from the PNG's pHYs chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"pHYs":
            x, y, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            assert unit == 1  # per metre
            return x * 0.0254, y * 0.0254
        pos += 12 + length
    raise AssertionError(f"{path}: no pHYs chunk")


# --------------------------------------------------------------------------------------------
# s2_areas.npy + s2_results.json


def test_s2_results_pair_has_the_seed_keys_and_loads_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    areas = np.concatenate([rng.normal(2.0, 0.3, 2000), [np.nan]])
    fit = R.fit_area_histogram(areas)
    assert fit.fit_success
    params = {"t_window": (10.0, 22.0), "n_pedestal": 2000, "ma_window": 9, "dt": 0.004}
    out = tmp_path / "RUN1" / "FieldScan_Gate0200_Anode2100"
    written = F.write_s2_results(out, areas, fit, params, _metadata())
    assert set(written) == {"s2_areas", "s2_results"}
    doc = json.loads((out / "s2_results.json").read_text())
    assert list(doc) == SEED_S2_RESULTS_KEYS
    assert list(doc["set_metadata"]) == SEED_SET_METADATA_KEYS
    assert doc["params"]["t_window"] == [10.0, 22.0]
    assert doc["mean"] == pytest.approx(fit.mean) and doc["fit_success"] is True
    np.testing.assert_array_equal(np.load(out / "s2_areas.npy"), areas)
    _no_temporaries(tmp_path)

    s2 = F.load_s2area(out)
    assert s2.set_id == "FieldScan_Gate0200_Anode2100"
    np.testing.assert_array_equal(s2.areas, areas)
    assert (s2.mean, s2.sigma, s2.ci95) == (doc["mean"], doc["sigma"], doc["ci95"])
    assert s2.fit_success is True and s2.method == F.S2_METHOD
    # the seed's notebook line: s2.params['set_metadata']['t_s2_start_mean']
    assert s2.params["set_metadata"]["t_s2_start_mean"] == 12.0
    assert s2.params["n_pedestal"] == 2000
    assert list(s2.set_metadata) == SEED_SET_METADATA_KEYS


def test_failed_fit_and_nan_become_null(tmp_path: Path) -> None:
    fit = R.fit_area_histogram(np.array([1.0, 2.0]))  # too few: fit_success False, NaN
    meta = dict.fromkeys(SEED_SET_METADATA_KEYS, math.nan)
    F.write_s2_results(tmp_path, np.array([np.nan, 1.0]), fit, {"x": math.inf}, meta)
    text = (tmp_path / "s2_results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    assert doc["mean"] is None and doc["sigma"] is None and doc["ci95"] is None
    assert doc["fit_success"] is False and doc["params"]["x"] is None
    assert all(v is None for v in doc["set_metadata"].values())
    s2 = F.load_s2area(tmp_path)
    assert s2.mean is None and s2.fit_success is False


def test_load_s2area_old_npy_only_form(tmp_path: Path) -> None:
    areas = np.array([1.0, 2.5, 3.0])
    np.save(tmp_path / "s2_areas.npy", areas)
    s2 = F.load_s2area(tmp_path)
    np.testing.assert_array_equal(s2.areas, areas)
    assert s2.mean is None and s2.sigma is None and s2.ci95 is None and s2.fit_success is None
    assert s2.method == "loaded_from_npy" and s2.params == {"set_metadata": {}}


def test_load_s2area_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        F.load_s2area(tmp_path)
    np.save(tmp_path / "s2_areas.npy", np.zeros(2))
    (tmp_path / "s2_results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        F.load_s2area(tmp_path)


# --------------------------------------------------------------------------------------------
# xray_areas.npy + xray_results.json


def test_xray_results_event_log(tmp_path: Path) -> None:
    ok, close1, unclassified = (int(XrayReason.PASSED_ALL_CUTS), 5, -1)
    events = F.XrayEventLog.from_events(
        [
            ("RUN1_Batch001_CH3", ok, 2.5),
            ("RUN1_Batch001_CH3", close1, 0.1),
            ("RUN1_Batch002_CH3", ok, 3.25),
            ("RUN1_Batch002_CH3", int(XrayReason.NO_SIGNAL), -0.0),
            ('odd "name"\\x', unclassified, math.nan),
        ]
    )
    written = F.write_xray_results(tmp_path, "FieldScan_Gate0200_Anode2100", {"t_s1": -1.0}, events)
    assert set(written) == {"xray_areas", "xray_results"}
    np.testing.assert_array_equal(np.load(tmp_path / "xray_areas.npy"), [2.5, 3.25])
    doc = json.loads((tmp_path / "xray_results.json").read_text())
    assert list(doc) == SEED_XRAY_RESULTS_KEYS
    assert doc["set_id"] == "FieldScan_Gate0200_Anode2100"
    assert (doc["n_events"], doc["n_accepted"], doc["n_rejected"]) == (5, 2, 2)
    assert all(list(e) == SEED_XRAY_EVENT_KEYS for e in doc["events"])
    assert doc["events"][0] == {
        "wf_id": "RUN1_Batch001_CH3_ff0",
        "accepted": True,
        "reason": "passed_all_cuts",
        "area": 2.5,
    }
    assert doc["events"][1]["reason"] == "too_close_to_s1" and not doc["events"][1]["accepted"]
    assert doc["events"][2]["wf_id"] == "RUN1_Batch002_CH3_ff0"
    assert doc["events"][3]["area"] == 0.0 and doc["events"][3]["reason"] == "no_signal"
    assert doc["events"][4] == {
        "wf_id": 'odd "name"\\x_ff0',
        "accepted": False,
        "reason": "not_classified",
        "area": None,
    }
    _no_temporaries(tmp_path)


def test_xray_results_empty_and_large(tmp_path: Path) -> None:
    empty = F.XrayEventLog([], [], np.zeros(0, np.int8), np.zeros(0))
    F.write_xray_results(tmp_path / "a", "S", {}, empty)
    doc = json.loads((tmp_path / "a" / "xray_results.json").read_text())
    assert doc["events"] == [] and doc["n_events"] == 0
    assert np.load(tmp_path / "a" / "xray_areas.npy").shape == (0,)

    rng = np.random.default_rng(0)
    n = 50_000
    reason = rng.integers(-1, len(XrayReason), n).astype(np.int8)
    area = rng.normal(5, 1, n)
    log = F.XrayEventLog([f"f{i}" for i in range(50)], [n // 50] * 50, reason, area)
    F.write_xray_results(tmp_path / "b", "S", {}, log)
    doc = json.loads((tmp_path / "b" / "xray_results.json").read_text())
    assert len(doc["events"]) == n
    got = np.array([e["area"] for e in doc["events"]])
    np.testing.assert_array_equal(got, area)  # repr round-trips floats exactly
    assert doc["n_accepted"] == int(np.sum(reason == 0))
    assert doc["n_rejected"] == int(np.sum(reason > 0))


def test_xray_event_log_checks_lengths() -> None:
    with pytest.raises(ValueError, match="one value per frame"):
        F.XrayEventLog(["a"], [3], np.zeros(2, np.int8), np.zeros(2))
    with pytest.raises(ValueError, match="file ids"):
        F.XrayEventLog(["a", "b"], [2], np.zeros(2, np.int8), np.zeros(2))


# --------------------------------------------------------------------------------------------
# run level


def test_run_xray_files(tmp_path: Path) -> None:
    areas = np.array([10.0, 12.0, 11.0, 13.0])
    written = F.write_run_xray(tmp_path, "RUN8", areas, ["set1", "set2"])
    assert written["xray_areas_combined"].name == "RUN8_xray_areas_combined.npy"
    np.testing.assert_array_equal(np.load(written["xray_areas_combined"]), areas)
    doc = json.loads((tmp_path / "RUN8_xray_metadata.json").read_text())
    assert list(doc) == SEED_RUN_XRAY_KEYS
    assert doc == {
        "run_id": "RUN8",
        "n_areas": 4,
        "sets": ["set1", "set2"],
        "mean": 11.5,
        "std": pytest.approx(float(np.std(areas))),
    }
    F.write_run_xray(tmp_path, "RUN9", np.zeros(0), [])
    doc = json.loads((tmp_path / "RUN9_xray_metadata.json").read_text())
    assert doc["n_areas"] == 0 and doc["mean"] is None and doc["std"] is None


def test_jsonable() -> None:
    out = F.jsonable(
        {"a": np.float32(1.5), "b": (np.int64(2), math.nan), "c": np.array([1.0, np.inf])}
    )
    assert out == {"a": 1.5, "b": [2, None], "c": [1.0, None]}
    assert json.dumps(out, allow_nan=False)


# --------------------------------------------------------------------------------------------
# plots


def _diffusion(n: int) -> R.DiffusionFits:
    td = np.linspace(8.0, 14.0, n)
    return R.diffusion_fits(0.1 + 0.01 * td, td, 1.4 * 10 / td, 1000 / td)


@pytest.mark.parametrize("with_data", [True, False])
def test_plot_builders_write_150_dpi_pngs(tmp_path: Path, with_data: bool) -> None:
    rng = np.random.default_rng(2)
    areas = rng.normal(2.0, 0.3, 500) if with_data else np.zeros(0)
    fit = R.fit_area_histogram(areas)
    assert bool(fit.fit_success) is with_data
    t = np.linspace(-5, 30, 2000)
    traces = [P.Trace(f"file.wfm — frame {i}", t, rng.normal(0, 0.2, t.size)) for i in range(3)]
    timing = _metadata()
    n = 4 if with_data else 0
    figures = {
        P.s2_histogram_name("FieldScan_X"): P.s2_histogram_figure("FieldScan_X", fit, areas),
        P.waveform_validation_name("FieldScan_X"): P.waveform_validation_figure(
            "FieldScan_X", traces if with_data else [], timing
        ),
        "xray.png": P.xray_histogram_figure("RUN$1", fit, areas),
        "s2.png": P.s2_vs_drift_figure(
            "RUN$1", np.arange(n) * 100.0, np.ones(n), np.full(n, 0.1), [f"s{i}" for i in range(n)]
        ),
        "norm.png": P.s2_vs_drift_figure(
            "R",
            np.arange(n) * 1.0,
            np.full(n, np.nan),
            np.full(n, np.nan),
            ["a"] * n,
            normalized=True,
        ),
        "diff.png": P.diffusion_figure("R", _diffusion(n)),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure)
        path = P.write_png(tmp_path / name, fig)
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert png_dpi(path) == pytest.approx((150, 150), abs=0.5)
    _no_temporaries(tmp_path)
    assert P.run_plot_names("RUN8") == {
        "xray_histogram": "RUN8_xray_histogram.png",
        "s2_vs_drift": "RUN8_s2_vs_drift.png",
        "s2_vs_drift_normalized": "RUN8_s2_vs_drift_normalized.png",
        "diffusion_analysis": "RUN8_diffusion_analysis.png",
    }


def test_validation_figure_has_one_panel_per_frame_and_the_markers() -> None:
    t = np.linspace(-5, 30, 500)
    traces = [P.Trace(f"f{i}", t, np.zeros_like(t)) for i in range(10)]
    fig = P.waveform_validation_figure("S", traces, _metadata())
    axes = [ax for ax in fig.axes if ax.lines]
    assert len(axes) == 10
    for ax in axes:
        xs = sorted(
            float(np.asarray(line.get_xdata())[0])
            for line in ax.lines
            if line.get_linestyle() == "--"
        )
        assert xs == [-1.0, 12.0, 20.0]  # S1, S2 start, S2 end (dashed)
        assert len(ax.patches) == 3  # three shaded 95% bands
