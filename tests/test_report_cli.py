"""`wavedqm report`: a run report from a run folder (processing what is missing) or an OUT."""

from __future__ import annotations

from pathlib import Path

from wavedqm.cli import main
from wavedqm.simulate.flow import ChannelFaults, write_flow_file

from pdfutil import page_text


def test_report_from_run_folder_processes_missing_files(tmp_path: Path) -> None:
    run = tmp_path / "run7"
    run.mkdir()
    for i in range(3):
        faults = ChannelFaults(dead=((1, 9),)) if i == 2 else None
        write_flow_file(
            run / f"run7_p{i}.FLOW.hdf5",
            n_events=8,
            seed=i,
            detector_seed=1,
            faults=faults,
            start_time_s=1.8e9 + 600 * i,
        )
    results, state = tmp_path / "out", tmp_path / "state"
    config = tmp_path / "no-pdf.toml"
    config.write_text("[output]\nreports = false\n")  # per-file PDFs are tested elsewhere
    args = ["report", str(run), "--results", str(results), "--state", str(state)]
    args += ["--config", str(config)]
    assert main(args) == 0
    pdf = results / "run7_run_report.pdf"
    text = page_text(pdf)
    for i in range(3):
        assert f"run7_p{i}.FLOW.hdf5" in text
        assert (results / f"run7_p{i}.FLOW.hdf5" / "summary.json").is_file()
    assert "Files with problems" in text

    last = tmp_path / "last.pdf"
    assert main(["report", str(results), "--last", "1", "--out", str(last)]) == 0
    text = page_text(last)
    assert "run7_p2.FLOW.hdf5" in text and "run7_p0.FLOW.hdf5" not in text

    since = tmp_path / "since.pdf"
    window = ["--since", "2027-01-15T08:10:00", "--until", "2027-01-15T08:15:00"]
    assert main(["report", str(results), *window, "--out", str(since)]) == 0
    text = page_text(since)
    assert "run7_p1.FLOW.hdf5" in text
    assert "run7_p0.FLOW.hdf5" not in text and "run7_p2.FLOW.hdf5" not in text


def test_report_of_empty_folder_fails_clearly(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 1
    assert "no processed files" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "absent")]) == 2
