"""`wavedqm inspect` picks the reader from the file's first bytes, for every sample file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wavedqm.cli import main


def test_inspect_wfm_json_matches_expected_values(
    shared_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = shared_dir / "data" / "wfm"
    expected = json.loads((folder / "expected_values.json").read_text())
    analog = {name: values for name, values in expected.items() if "digital" not in name}
    assert analog, "expected_values.json lists no analog file"
    for name, values in analog.items():
        assert main(["inspect", str(folder / name), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["format"] == "tektronix-wfm"
        assert info["version"] == values["version"]
        assert info["frames"] == values["frames"]
        assert info["record_length"] == values["record_length"]
        assert info["dtype"] == values["dtype"]
        for key in ("dt_s", "t0_s", "vscale", "voffset"):
            assert info[key] == pytest.approx(values[key]), (name, key)
        assert info["frame0_mean_v"] == pytest.approx(values["volts_frame0_mean"], rel=1e-9)
        assert info["last_frame_mean_v"] == pytest.approx(values["volts_last_mean"], rel=1e-9)


def test_inspect_refuses_digital_wfm_and_unknown_files(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["inspect", str(shared_dir / "data" / "wfm" / "tmdt_digital_waveform.wfm")]) == 1
    assert "digital" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert main(["inspect", str(text)]) == 1
    err = capsys.readouterr().err
    assert "not a file of any known format" in err
    assert "HDF5" in err and "Tektronix" in err  # says which formats it knows


def test_inspect_flow_sample_file(shared_dir: Path, capsys: pytest.CaptureFixture) -> None:
    sample = shared_dir / "data" / "flow" / "UCD_2x2_sample_data.hdf5"
    assert main(["inspect", str(sample), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "flow-hdf5"
    assert info["has_light"] is False and info["has_charge"] is True
    assert info["n_charge_events"] == 100
    assert info["n_charge_hits"] == 15297
