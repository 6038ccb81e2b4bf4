"""`wavedqm process --pushgateway` against Debian's real prometheus-pushgateway on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavedqm.cli import main
from wavedqm.simulate.flow import ChannelFaults, write_flow_file

from netutil import free_port, http_get, metric_value, wait_for

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    if PUSHGATEWAY is None:
        pytest.skip(
            "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)"
        )
    port = free_port()
    proc = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/-/ready")[0] == 200, 20, what="pushgateway ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_process_pushes_file_metrics(tmp_path: Path, pushgateway: str) -> None:
    good = tmp_path / "p.FLOW.hdf5"
    write_flow_file(good, n_events=8, seed=4, faults=ChannelFaults(dead=((4, 44),)))
    bad = tmp_path / "bad.FLOW.hdf5"
    bad.write_bytes(b"\0" * 1000)
    code = main(
        [
            "process",
            str(good),
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--state",
            str(tmp_path / "state"),
            "--pushgateway",
            pushgateway,
        ]
    )
    assert code == 1
    _, body = http_get(f"{pushgateway}/metrics")
    text = body.decode()
    assert metric_value(text, "wavedqm_files_processed_total", job="wavedqm") == 1
    assert metric_value(text, "wavedqm_files_failed_total", job="wavedqm", reason="not_hdf5") == 1
    assert metric_value(text, "wavedqm_events_processed_total", job="wavedqm") == 8
    assert metric_value(text, "wavedqm_dead_channels", job="wavedqm") == 1
    assert metric_value(text, "wavedqm_channel_alive", job="wavedqm", adc="4", channel="44") == 0
