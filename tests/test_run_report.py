"""Run report: summaries collected from a real pipeline output folder (three simulated files,
one with faults), ordered by data start, drawn into a PDF read back with ``pdftotext``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from wavedqm import atomic
from wavedqm.config import Config
from wavedqm.exporters.run_report import (
    adc_means,
    build_run_pages,
    collect_summaries,
    file_name,
    problems,
    write_run_report,
)
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import ChannelFaults

from pdfutil import page_text, pdf_pages

FAULTS = ChannelFaults(dead=((1, 9),), clipped=((3, 22),))
START = 1_700_000_000.0


@pytest.fixture(scope="module")
def out_dir(flow_file, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT folder of three processed files: data start times in the reverse order of their
    names; the first one (latest data) has a dead and a clipping channel."""
    root = tmp_path_factory.mktemp("run_report")
    cfg = Config().with_overrides(
        output={"dir": str(root / "out"), "state_dir": str(root / "state")}
    )
    pipeline = Router(cfg)
    try:
        for i in range(3):
            path, _ = flow_file(
                n_events=24,
                n_samples=256,
                seed=200 + i,
                detector_seed=9,
                faults=FAULTS if i == 0 else None,
                start_time_s=START + 600 * (2 - i),
            )
            assert pipeline.route(path).ok
    finally:
        pipeline.close()
    (root / "out" / "images").mkdir(exist_ok=True)  # no summary: ignored
    return root / "out"


def test_collect_orders_by_data_start_and_skips_bad_summaries(
    out_dir: Path, tmp_path: Path
) -> None:
    docs = collect_summaries(out_dir)
    assert [d["time_start_s"] for d in docs] == [START, START + 600, START + 1200]
    names = [file_name(d) for d in docs]
    assert names == sorted(names, reverse=True)  # names run against time here
    assert [file_name(d) for d in collect_summaries(out_dir, last=2)] == names[1:]
    assert collect_summaries(out_dir, last=0) == []

    folder = tmp_path / "out"
    shutil.copytree(out_dir, folder)
    (folder / "broken").mkdir()
    (folder / "broken" / "summary.json").write_text("{not json")
    (folder / "other").mkdir()
    (folder / "other" / "summary.json").write_text("[1, 2]")
    no_time = json.loads((folder / names[0] / "summary.json").read_text())
    no_time |= {"file": "/data/a_first_name.FLOW.hdf5", "time_start_s": None}
    (folder / "no_time").mkdir()
    (folder / "no_time" / "summary.json").write_text(json.dumps(no_time))
    with capture_logs() as logs:
        docs = collect_summaries(folder)
    assert [file_name(d) for d in docs] == [*names, "a_first_name.FLOW.hdf5"]
    warned = sorted(Path(e["path"]).parent.name for e in logs if e["event"] == "summary_unreadable")
    assert warned == ["broken", "other"]


def test_problems_and_adc_means(out_dir: Path) -> None:
    docs = collect_summaries(out_dir)
    faulty = docs[-1]
    assert problems(faulty) == ["new dead 1:9", "clipped 3:22"]
    assert problems(docs[0]) == [] and problems(docs[1]) == []
    assert problems({"file": "x", "light": None}) == ["no light data"]

    light = faulty["light"]
    noise = np.array(light["noise_adc16"], dtype=float)
    monitored = np.array(light["monitored"], dtype=bool)
    means = adc_means(faulty, "noise_adc16")
    assert means.shape == (8,)
    for a in range(8):
        assert means[a] == pytest.approx(noise[a][monitored[a]].mean())
    # NaN (None in JSON) channels are left out; an ADC without any value is NaN
    doc = {"light": {"noise_adc16": [[1.0, None, 3.0], [None, None, None]]}}
    np.testing.assert_allclose(adc_means(doc, "noise_adc16"), [2.0, np.nan])


def test_run_report_pdf(out_dir: Path, tmp_path: Path) -> None:
    docs = collect_summaries(out_dir)
    path = tmp_path / "reports" / "run.pdf"
    assert write_run_report(docs, path) == path
    planned = [t for t, _ in build_run_pages(docs)]
    assert planned == [
        "Files of the run",
        "Files with problems",
        "Noise and baseline per ADC",
        "Dead, flagged and clipped channels per file",
        "Clipped fraction per TPC",
        "Negative fraction per TPC",
        "Power in the regions of interest per ADC",  # the pipeline's summaries carry spectra
    ]
    assert pdf_pages(path) == len(planned)
    for i, title in enumerate(planned, start=1):
        assert title in page_text(path, i)

    table = page_text(path, 1)
    for header in ("file", "data start (UTC)", "events", "new dead", "baseline flagged"):
        assert header in table
    for i, doc in enumerate(docs):
        assert f"{i} {file_name(doc)} " in table
    assert "2023-11-14 22:13:20 24 12 / 12" in table  # first row: start, events, beam / self

    problem_page = page_text(path, 2)
    assert f"2 {file_name(docs[-1])} new dead 1:9; clipped 3:22" in problem_page
    assert not any(f"{i} {file_name(d)}" in problem_page for i, d in enumerate(docs[:-1]))

    trends = page_text(path, 3)
    assert "noise (ADC16 counts)" in trends and "baseline (ADC16 counts)" in trends
    assert "ADC 7" in trends and "file index" in trends
    assert sorted(os.listdir(path.parent)) == ["run.pdf"]


def test_run_report_with_spectra_has_roi_page(out_dir: Path, tmp_path: Path) -> None:
    docs = collect_summaries(out_dir)
    centres = [0.5, 1.8, 4.6, 7.1, 8.5, 10.0, 11.5, 19.0, 20.0, 25.0, 30.0]
    for i, doc in enumerate(docs):
        if i != 1:  # a file without spectra leaves a gap
            roi = np.full((8, len(centres)), 1e-6 * (i + 1))
            doc["spectra"] = {"roi_centres_mhz": centres, "roi_power_adc_v2": roi.tolist()}
    path = tmp_path / "run.pdf"
    write_run_report(docs, path)
    planned = [t for t, _ in build_run_pages(docs)]
    assert planned[-1] == "Power in the regions of interest per ADC"
    assert pdf_pages(path) == len(planned)
    text = page_text(path, len(planned))
    assert "0.5 MHz" in text and "30 MHz" in text and "power (V²)" in text


def test_many_files_split_the_table_and_an_empty_run_still_reports(
    out_dir: Path, tmp_path: Path
) -> None:
    doc = collect_summaries(out_dir)[0]
    docs = []
    for i in range(65):
        d = json.loads(json.dumps(doc))
        d["file"] = f"/data/run_p{i:04d}.FLOW.hdf5"
        d["time_start_s"] = START + 60 * i
        docs.append(d)
    titles = [t for t, _ in build_run_pages(docs)]
    assert titles[:3] == [
        "Files of the run (1 of 3)",
        "Files of the run (2 of 3)",
        "Files of the run (3 of 3)",
    ]
    path = tmp_path / "empty.pdf"
    write_run_report([], path)
    assert pdf_pages(path) == len(build_run_pages([]))
    assert "(none)" in page_text(path, 1)


def test_failed_write_keeps_the_previous_run_report(
    out_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.pdf"
    path.write_bytes(b"previous")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_run_report(collect_summaries(out_dir), path)
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["run.pdf"]


def test_time_axis_labels_are_as_short_as_the_span_allows_and_never_repeat():
    from wavedqm.exporters.trend_pages import time_axis_labels

    t0 = 1_764_806_123.0  # 2025-12-03 23:55:23 UTC
    labels, note = time_axis_labels([t0, t0 + 1, t0 + 2, None])
    assert labels == ["23:55:23", "23:55:24", "23:55:25", "-"]  # files seconds apart
    assert note.endswith("(UTC, hour:minute:second, 2025-12-03)")
    labels, note = time_axis_labels([t0, t0 + 120, t0 + 240])
    assert labels == ["23:55", "23:57", "23:59"] and "hour:minute, 2025-12-03" in note
    labels, note = time_axis_labels([t0, t0 + 600])  # across midnight
    assert labels == ["12-03 23:55", "12-04 00:05"] and "month-day" in note
    labels, note = time_axis_labels([t0, t0 + 0.2, t0 + 0.5])  # within one second
    assert labels == ["+0.0 s", "+0.2 s", "+0.5 s"]
    assert note.endswith("seconds after 2025-12-03 23:55:23 UTC")
    assert time_axis_labels([None, None])[0] == ["-", "-"]


def test_a_log_panel_within_one_decade_is_drawn_linear_in_scaled_units():
    from wavedqm.exporters.trend_pages import TrendPanel, TrendSeries, trend_figure

    narrow = TrendPanel("1.8 MHz", "power (V²)", [TrendSeries("ADC 0", np.array([9e-5, 1.01e-4]))],
                        log_y=True)  # fmt: skip
    wide = TrendPanel("11.5 MHz", "power (V²)", [TrendSeries("ADC 0", np.array([1e-6, 2e-5]))],
                      log_y=True)  # fmt: skip
    fig = trend_figure("ROI", np.arange(2), [narrow, wide])
    a, b = fig.axes[:2]
    assert a.get_yscale() == "linear" and a.get_ylabel() == "power (10⁻⁴ V²)"
    assert np.allclose(a.get_lines()[0].get_ydata(), [0.9, 1.01])
    assert b.get_yscale() == "log" and b.get_ylabel() == "power (V²)"


def test_zero_of_n_is_a_caret_at_the_upper_limit_not_a_bar():
    from wavedqm.exporters.trend_pages import TrendPanel, TrendSeries, trend_figure

    s = TrendSeries("TPC 0", np.array([0.0, 30.0]), np.array([0.0, 20.0]), np.array([8.0, 40.0]))
    fig = trend_figure("Clipped", np.arange(2), [TrendPanel("beam", "%", [s])])
    ax = fig.axes[0]
    carets = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert len(carets) == 1 and list(carets[0].get_ydata()) == [8.0]
    bars = ax.containers[0].lines[2][0].get_segments()
    assert [tuple(seg[:, 1]) for seg in bars] == [(0.0, 0.0), (20.0, 40.0)]
    assert any("upper limit" in t.get_text() for t in fig.texts)
