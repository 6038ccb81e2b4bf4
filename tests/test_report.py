"""Per-file PDF report: built from a real pipeline run on simulated files (with faults and a
history of previous files), checked through Debian's poppler tools (``pdfinfo``,
``pdftotext``): one page per planned page, every page title present, metadata, a failing
page replaced by an error page while the others still come out, atomic writes."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.artist import Artist
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from structlog.testing import capture_logs

from wavedqm import atomic
from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.masks import baseline_cells, flatline_cells
from wavedqm.analysis.spectra import SpectraAccumulator, SpectraResult
from wavedqm.config import Config
from wavedqm.exporters import light_pages, plots
from wavedqm.exporters import report as report_mod
from wavedqm.exporters.report import (
    ReportInputs,
    build_pages,
    write_file_report,
    write_pages,
)
from wavedqm.formats.flow import FlowLightReader
from wavedqm.processors.light import REPORT_SECTIONS, LightFileResult
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import ChannelFaults

from pdfutil import page_text, pdf_info, pdf_pages
from routing import route_light

FAULTS = ChannelFaults(
    dead=((1, 9),), clipped=((3, 22),), baseline_off=((7, 60),), negative=((2, 10),)
)
N_SAMPLES = 256


@dataclass
class Run:
    """Three files through one pipeline: the last one (with faults) over the first two."""

    outcomes: list[LightFileResult]
    cfg: Config
    out: Path


@pytest.fixture(scope="module")
def run(flow_file, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("report_run")
    cfg = Config().with_overrides(
        output={"dir": str(root / "out"), "state_dir": str(root / "state")}
    )
    pipeline = Router(cfg)
    outcomes = []
    try:
        for i in range(3):
            path, _ = flow_file(
                n_events=40,
                n_samples=N_SAMPLES,
                seed=100 + i,
                detector_seed=7,
                faults=FAULTS if i == 2 else None,
                start_time_s=1_700_000_000.0 + 600 * i,
            )
            outcomes.append(route_light(pipeline, path))
    finally:
        pipeline.close()
    return Run(outcomes=outcomes, cfg=cfg, out=root / "out")


def file_spectra(path: Path, active: np.ndarray) -> SpectraResult:
    acc: SpectraAccumulator | None = None
    with FlowLightReader(path) as reader:
        for batch in reader.batches():
            if acc is None:
                acc = SpectraAccumulator(
                    8,
                    64,
                    batch.samples.shape[-1],
                    0.016,
                    16,
                    active,
                    expected_events=reader.info.n_light_events,
                )
            acc.add(batch)
    assert acc is not None
    return acc.result()


def hand_jump() -> JumpEvent:
    samples = np.full(N_SAMPLES, -28000, np.int16)
    samples[120:] += 3000
    return JumpEvent(
        event=5,
        adc=3,
        channel=22,
        jump_adc16=3000,
        sample=119,
        trig_type=1,
        samples=samples,
        sample_period_us=0.016,
    )


@pytest.fixture(scope="module")
def inputs(run: Run) -> ReportInputs:
    last = run.outcomes[-1]
    assert last.light is not None and last.previous is not None
    return ReportInputs(
        file=last.path,
        summary=last.summary,
        config={k: v for k, v in run.cfg.to_dict().items() if k in REPORT_SECTIONS},
        light=last.light,
        previous=last.previous,
        spectra=file_spectra(last.path, last.light.active),
        jump=hand_jump(),
        flatline_cells=flatline_cells(last.light),
        baseline_cells=baseline_cells(last.light),
        processing_seconds=last.processing_seconds,
        version="9.9.9-test",
    )


@pytest.fixture(scope="module")
def written(inputs: ReportInputs, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("report")
    outcome = write_file_report(
        folder / "file" / "report.pdf", inputs, latest=folder / "reports" / "latest.pdf"
    )
    return folder, outcome


def test_inputs_come_from_a_real_run_with_problems(inputs: ReportInputs) -> None:
    light = inputs.light
    assert (1, 9) in light.dead_new
    assert (3, 22) in light.clipped_channels
    assert any((a, c) == (7, 60) for a, c, _ in light.baseline_flagged)
    assert inputs.previous is not None and inputs.previous.n_files == 2


def test_planned_pages(inputs: ReportInputs) -> None:
    titles = [t for t, _ in build_pages(inputs)]
    assert titles[0] == f"wavedqm report: {inputs.file.name}"
    assert len(titles) == len(set(titles))
    expected = {
        "Baseline per channel, ADC 0-3",
        "Baseline per channel, ADC 4-7",
        "Noise per channel, ADC 0-3",
        "Noise per channel, ADC 4-7",
        "Largest sample-to-sample jump",
        "Power spectra per EPCB, ADC 0-3",
        "Power spectra per EPCB, ADC 4-7",
        "Alive and dead channels",
        "Channels baseline status",
    }
    for flag in ("Clipped", "Negative"):
        expected |= {
            f"{flag} fraction per channel, ADC 0-3",
            f"{flag} fraction per channel, ADC 4-7",
            f"{flag} fraction per EPCB",
            f"{flag} fraction per TPC",
            f"{flag} fraction in total",
        }
    assert expected <= set(titles)
    assert len(titles) == 1 + len(expected)


def test_pages_without_spectra_or_jump_are_not_planned(inputs: ReportInputs) -> None:
    bare = ReportInputs(
        file=inputs.file,
        summary=inputs.summary,
        config=inputs.config,
        light=inputs.light,
    )
    titles = [t for t, _ in build_pages(bare)]
    assert not any("spectra" in t or "jump" in t for t in titles)
    assert len(titles) == len(build_pages(inputs)) - 3
    # the masks come from the light result when not given
    assert "Alive and dead channels" in titles


def test_report_has_every_page_and_title(written, inputs: ReportInputs) -> None:
    folder, outcome = written
    path = folder / "file" / "report.pdf"
    assert outcome.path == path and outcome.failed == []
    planned = [t for t, _ in build_pages(inputs)]
    assert outcome.pages == planned
    assert pdf_pages(path) == len(planned)
    for i, title in enumerate(planned, start=1):
        text = page_text(path, i)
        assert title in text, f"page {i}: {title!r} not in {text[:200]!r}"
    info = pdf_info(path)
    assert info["Title"] == f"wavedqm report: {inputs.file.name}"
    assert "Light data quality" in info["Subject"]
    assert info["Page size"].endswith("(A4)")
    sizes = subprocess.run(["pdfinfo", "-f", "1", "-l", str(len(planned)), str(path)],
                           check=True, capture_output=True, text=True).stdout  # fmt: skip
    page_sizes = [ln for ln in sizes.splitlines() if ln.startswith("Page") and "size" in ln]
    assert len(page_sizes) == len(planned)
    assert all(ln.endswith("(A4)") for ln in page_sizes), page_sizes  # the masks too
    assert outcome.seconds > 0


def test_first_page_shows_file_data_and_configuration(written, inputs: ReportInputs) -> None:
    folder, _ = written
    text = page_text(folder / "file" / "report.pdf", 1)
    light = inputs.light
    assert inputs.file.name in text
    assert "data start: 2023-11-14 22:33:20 UTC" in text  # 1_700_000_000 + 1200 s
    assert f"beam trigger: {light.events_by_trigger['beam']}" in text
    assert f"self trigger: {light.events_by_trigger['self']}" in text
    assert "wavedqm version: 9.9.9-test" in text
    assert "new dead: 1:9" in text
    assert "clipped: 3:22" in text
    assert "files: 2" in text  # previous files
    # the full configuration: every key of every section
    for section, values in inputs.config.items():
        assert f"[{section}]" in text
        for key in values:
            assert f"{key} =" in text, key


def test_plot_pages_carry_units_and_legends(written) -> None:
    folder, outcome = written
    path = folder / "file" / "report.pdf"
    by_title = {t: i for i, t in enumerate(outcome.pages, start=1)}
    baseline = page_text(path, by_title["Baseline per channel, ADC 4-7"])
    assert "baseline (ADC16 counts)" in baseline
    assert "this file" in baseline and "previous 2 files" in baseline
    assert "new baseline problem" in baseline  # 7:60 is on this page
    assert "allowed baseline range" in baseline
    clipped = page_text(path, by_title["Clipped fraction per TPC"])
    assert "fraction of events (%)" in clipped and "TPC" in clipped
    assert "beam trigger (20 events)" in clipped and "self trigger (20 events)" in clipped
    spectra = page_text(path, by_title["Power spectra per EPCB, ADC 0-3"])
    assert "frequency (MHz)" in spectra and "V²" in spectra
    jump = page_text(path, by_title["Largest sample-to-sample jump"])
    assert "3000 ADC16 counts" in jump and "ADC 3, channel 22" in jump


def test_latest_copy_is_identical(written) -> None:
    folder, _ = written
    report = (folder / "file" / "report.pdf").read_bytes()
    assert (folder / "reports" / "latest.pdf").read_bytes() == report
    leftovers = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failing_builder_gives_an_error_page_and_the_rest(
    inputs: ReportInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> Figure:
        raise RuntimeError("the jump went wrong")

    monkeypatch.setattr(light_pages, "jump_figure", broken)
    path = tmp_path / "report.pdf"
    with capture_logs() as logs:
        outcome = write_file_report(path, inputs)
    planned = [t for t, _ in build_pages(inputs)]
    assert outcome.pages == planned
    assert outcome.failed == [
        ("Largest sample-to-sample jump", "RuntimeError: the jump went wrong")
    ]
    assert pdf_pages(path) == len(planned)
    page = planned.index("Largest sample-to-sample jump") + 1
    text = page_text(path, page)
    assert (
        "Largest sample-to-sample jump: could not be drawn: RuntimeError: the jump went wrong"
        in text
    )
    for i, title in enumerate(planned, start=1):  # every other page is still there
        assert title in page_text(path, i)
    assert any(e["event"] == "report_page_failed" for e in logs)


class _FailsWhenDrawn(Artist):
    def draw(self, renderer: object) -> None:
        raise ValueError("cannot draw this")


def test_a_figure_failing_while_saved_is_replaced_in_place(tmp_path: Path) -> None:
    def bad() -> Figure:
        fig = plots.page_figure("Half drawn")
        fig.add_artist(_FailsWhenDrawn())
        return fig

    pages = [
        ("First", lambda: plots.page_figure("First")),
        ("Half drawn", bad),
        ("Last", lambda: plots.page_figure("Last")),
    ]
    path = tmp_path / "r.pdf"
    titles, failed = write_pages(path, pages, title="t", subject="s")
    assert titles == ["First", "Half drawn", "Last"]
    assert failed == [("Half drawn", "ValueError: cannot draw this")]
    assert pdf_pages(path) == 3
    assert "First" in page_text(path, 1)
    assert "Half drawn: could not be drawn: ValueError: cannot draw this" in page_text(path, 2)
    assert "Last" in page_text(path, 3)


def test_a_failed_write_leaves_the_previous_report(
    inputs: ReportInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 previous report\n")
    # a short plan keeps the test fast; the write fails when the file is synced (disk full)
    monkeypatch.setattr(report_mod, "build_pages", lambda i: build_pages(i)[:2])

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_file_report(path, inputs, latest=tmp_path / "latest.pdf")
    assert path.read_bytes() == b"%PDF-1.4 previous report\n"
    assert not (tmp_path / "latest.pdf").exists()
    assert sorted(os.listdir(tmp_path)) == ["report.pdf"]


def test_file_names_are_not_mathtext(inputs: ReportInputs, tmp_path: Path) -> None:
    odd = ReportInputs(
        file=inputs.file.with_name("run_$x$_^2.FLOW.hdf5"),
        summary=inputs.summary,
        config=inputs.config,
        light=inputs.light,
    )
    pages = build_pages(odd)[:1]
    path = tmp_path / "odd.pdf"
    _, failed = write_pages(path, pages, title="t", subject="s")
    assert failed == []
    assert "run_$x$_^2.FLOW.hdf5" in page_text(path, 1)


def test_fraction_figure_marks_groups_without_events() -> None:
    from wavedqm.analysis.fractions import Fraction

    frac = Fraction.from_counts(np.array([0, 3, 0]), np.array([0, 10, 5]))
    fig = light_pages.fraction_figure("F", "tpc", {"beam": frac}, None, 0)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["this file", plots.UPPER_LIMIT_LABEL, plots.NO_EVENTS_LABEL]
    # 0 of 5 is an upper limit (a caret at it), not an error bar from 0; 3 of 10 has its bar
    ax = fig.axes[0]
    [bars] = [c for c in ax.collections if isinstance(c, LineCollection)]
    drawn = [len(seg) for seg in bars.get_segments()]  # points of each position's bar
    assert drawn == [0, 2, 0]
    carets = [ln for ln in ax.lines if ln.get_marker() == "v"]
    [caret] = carets
    assert caret.get_xdata().tolist() == [2.0]
    assert caret.get_ydata()[0] == pytest.approx(100 * frac.upper[2])
    with pytest.raises(ValueError, match="granularity"):
        light_pages.fraction_figure("F", "adc", {"beam": frac}, None, 0)


def test_the_first_page_cuts_a_long_folder_at_its_separators_only():
    from wavedqm.exporters.plots import path_lines

    assert path_lines(Path("/tmp/demo1/spool")) == ["/tmp/demo1/spool"]
    long = Path("/data/daq/2x2/run_00123/light_files/a_very_long_folder_name_over_36_chars")
    lines = path_lines(long)
    assert lines == ["/data/daq/2x2/run_00123/light_files",
                     "/a_very_long_folder_name_over_36_chars"]  # fmt: skip
    assert "".join(lines) == str(long) and all(len(x) <= 36 for x in lines[:-1])
