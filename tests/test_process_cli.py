"""`wavedqm process` end to end on simulated files: exactly the faulty channels, right values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wavedqm.cli import main
from wavedqm.config import Config
from wavedqm.simulate.flow import ChannelFaults, write_flow_file

FAULTS = ChannelFaults(
    dead=((0, 5), (3, 40)),
    clipped=((1, 20),),
    noisy=((2, 30),),
    baseline_off=((5, 60),),
    negative=((6, 10),),
)


def _pairs(pairs) -> list[list[int]]:
    return sorted([int(a), int(c)] for a, c in pairs)


@pytest.mark.parametrize(("seed", "compression"), [(11, None), (12, "gzip")])
def test_process_reports_exactly_the_simulated_faults(
    tmp_path: Path, seed: int, compression: str | None
) -> None:
    path = tmp_path / f"run_{seed}.FLOW.hdf5"
    truth = write_flow_file(path, n_events=40, seed=seed, faults=FAULTS, compression=compression)
    out = tmp_path / "out"
    assert main(["process", str(path), "--out", str(out), "--state", str(tmp_path / "state")]) == 0

    summary = json.loads((out / path.name / "summary.json").read_text())
    assert summary["file"] == str(path)
    assert summary["format"] == "flow-hdf5"
    assert summary["events"] == 40
    assert summary["events_by_trigger"]["beam"] + summary["events_by_trigger"]["self"] == 40
    assert summary["events_by_trigger"]["beam"] == truth.n_beam
    assert summary["dead_channels"] == _pairs(FAULTS.dead)
    assert summary["clipped_channels"] == _pairs(FAULTS.clipped)
    assert summary["negative_channels"] == _pairs(FAULTS.negative)
    assert summary["baseline_flagged"] == [[5, 60, -1]]
    assert summary["known_dead_channels"] == []

    active = Config().light.active_channel_list()
    noise = np.array(summary["light"]["noise_adc16"], dtype=float)[:, active]
    baseline = np.array(summary["light"]["baseline_adc16"], dtype=float)[:, active]
    true_noise = truth.noise_adc16[:, active]
    true_baseline = truth.baseline_adc16[:, active]
    assert np.all(np.abs(noise / true_noise - 1) < 0.05), "noise within 5% of the simulated"
    assert np.all(np.abs(baseline - true_baseline) < 0.01 * np.abs(true_baseline))
    assert np.all(np.abs(baseline - true_baseline) < 10), "baseline within 10 ADC16 counts"
    # the noisy channel stands out against its ADC's other channels
    noisy_adc, noisy_ch = FAULTS.noisy[0]
    adc_noise = np.array(summary["light"]["noise_adc16"], dtype=float)[noisy_adc, active]
    assert summary["light"]["noise_adc16"][noisy_adc][noisy_ch] > 3 * np.median(adc_noise)


def test_process_known_dead_channels_are_not_new(tmp_path: Path) -> None:
    path = tmp_path / "known.FLOW.hdf5"
    write_flow_file(path, n_events=20, seed=3, faults=ChannelFaults(dead=((0, 5), (2, 8))))
    status = np.zeros((8, 64), dtype=int)
    status[:, [0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51]] = -1
    status[0, 5] = 1  # known dead
    csv = tmp_path / "status.csv"
    csv.write_text("\n".join(",".join(f"{v}.0" for v in row) for row in status) + "\n\n")
    out = tmp_path / "out"
    state = str(tmp_path / "state")
    assert (
        main(["process", str(path), "--out", str(out), "--status", str(csv), "--state", state]) == 0
    )
    summary = json.loads((out / path.name / "summary.json").read_text())
    assert summary["dead_channels"] == [[2, 8]]
    assert summary["known_dead_channels"] == [[0, 5]]


def test_process_charge_only_file_gives_a_charge_section_and_no_light(
    tmp_path: Path, shared_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """The real 2x2 charge-only file: the charge processor accumulates its hits (success),
    the light processor says "no light data"; the input is untouched."""
    sample = shared_dir / "data" / "flow" / "UCD_2x2_sample_data.hdf5"
    before = sample.stat()
    out = tmp_path / "out"
    code = main(["process", str(sample), "--out", str(out), "--state", str(tmp_path / "state")])
    assert code == 0
    line = capsys.readouterr().out
    assert "light: no light data" in line and "charge: 15297 hits" in line
    summary = json.loads((out / sample.name / "summary.json").read_text())
    assert summary["has_light"] is False
    assert summary["light"] is None
    assert summary["charge"]["hits"] == 15297
    assert summary["charge"]["events"] == 100
    after = sample.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_charge_only_file_with_the_charge_processor_off_is_no_data(
    tmp_path: Path, shared_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    sample = shared_dir / "data" / "flow" / "UCD_2x2_sample_data.hdf5"
    config = tmp_path / "c.toml"
    config.write_text('[processors]\ndisabled = ["charge"]\n')
    args = ["process", str(sample), "--config", str(config), "--out", str(tmp_path / "o")]
    assert main([*args, "--state", str(tmp_path / "s")]) == 1
    assert "no data for any processor (light: none in the file)" in capsys.readouterr().err


def test_process_exit_codes_and_one_line_per_failure(tmp_path: Path) -> None:
    good = tmp_path / "good.FLOW.hdf5"
    write_flow_file(good, n_events=5, seed=1)
    bad = tmp_path / "bad.FLOW.hdf5"
    bad.write_bytes(b"this is not an HDF5 file\n" * 100)
    empty = tmp_path / "empty.FLOW.hdf5"
    empty.touch()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "wavedqm.cli", "process", "--out", str(out)]
    cmd += ["--state", str(tmp_path / "state")]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run(
        [*cmd, str(good), str(bad), str(empty)], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("wavedqm:")]
    assert len(errors) == 2
    assert str(bad) in errors[0] and "HDF5" in errors[0]
    assert str(empty) in errors[1] and "empty" in errors[1]
    usage = subprocess.run([*cmd], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("[light]\nptp = 1\n")
    config_error = subprocess.run(
        [*cmd, "--config", str(bad_cfg), str(good)], capture_output=True, text=True, timeout=60
    )
    assert config_error.returncode == 2
    assert "unknown key light.ptp" in config_error.stderr


def test_inspect_json_describes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "x.FLOW.hdf5"
    write_flow_file(path, n_events=7, n_samples=200, seed=2)
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "flow-hdf5"
    assert info["n_light_events"] == 7
    assert info["n_samples"] == 200
    assert info["n_adcs"] == 8 and info["n_channels"] == 64
    assert info["time_start_s"] <= info["time_end_s"]
