"""`wavedqm demo` as a new user runs it: every simulated file is processed and printed as it
is done, and the outputs it points to exist when it says it is done."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def test_demo_processes_every_file_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "wavedqm.cli", "demo", "--out", str(out), "--files", "2"]
    cmd += ["--events", "20", "--interval", "0.2", "--listen", "127.0.0.1:0", "--exit-when-done"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == "wavedqm demo: reference 'demo-good' from good simulated files of every kind ..."
    )
    parts = [line.split(":")[0].strip() for line in lines[1:5]]
    assert parts == ["light", "s2", "shots", "voxels"], lines[:5]
    assert lines[5].startswith("wavedqm demo: compiling the kernels")
    progress = [line for line in lines if re.match(r"\s+\[\d+/\d+\] ", line)]
    total = int(re.match(r"\s+\[\d+/(\d+)\]", progress[0]).group(1))
    assert len(progress) == total >= 4  # light and S2 files, one line each, as they are done
    assert not [line for line in progress if "FAILED" in line]
    assert any("light: 20 events, dead 1:9 6:40" in line for line in progress)
    assert any("S2 mean" in line for line in progress)
    assert any(line.startswith("where to look") for line in lines)
    results = out / "results"
    flows = sorted(results.glob("*.FLOW.hdf5"))
    assert len(flows) == 2
    for folder in flows:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["events"] == 20
        # tested against the demo's reference (20 events: under min_events, not enough data)
        assert summary["quality"]["reference"] == "demo-good"
        assert summary["charge"]["quality"]["reference"] == "demo-good"
        for name in ("report.pdf", "flatline.png", "baseline.png"):
            assert (folder / name).stat().st_size > 1000, name
    assert (results / "reports" / "latest.pdf").is_file()
    assert list((results / "RUN_demo" / "plots").glob("*_s2_histogram.png"))
    assert any("shots: shot 0012 of shots_demo" in line for line in progress)
    assert any("quality vs demo-good: ok" in line for line in progress)
    for set_json in (results / "RUN_demo").glob("*/s2_results.json"):
        assert json.loads(set_json.read_text())["quality"]["reference"] == "demo-good"
    assert any("photodiode: low_signal" in line or "noisy_baseline" in line for line in progress)
    shots = results / "shots_demo"
    assert len(list(shots.glob("[0-9]*.json"))) == 12
    for name in ("shot_metrics.csv", "shot_report.pdf", "shot_report.md", "trends_vs_shot.png"):
        assert (shots / name).stat().st_size > 500, name
    assert (results / "images" / "shot_overlay.png").is_file()
    assert list((results / "voxels").glob("*/voxels.h5"))
    assert "metrics:  http://127.0.0.1:" in done.stdout
