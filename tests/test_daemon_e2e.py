"""`wavedqm watch` as a real process on a real folder, scraped over real HTTP."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from wavedqm.errors import FAILURE_REASONS
from wavedqm.simulate.flow import ChannelFaults, publish_flow_file, write_flow_file

from daemonutil import SETTLE_S, Daemon, start_daemon
from netutil import http_get, metric_value, wait_for


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def daemon(tmp_path: Path, spool: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path, spool)
    yield d
    d.kill()


def _processed(d: Daemon, n: int) -> bool:
    return (d.value("wavedqm_files_processed_total") or 0) >= n


def test_renamed_in_file_reaches_metrics_in_under_a_second_by_default(tmp_path: Path) -> None:
    """Default config (2 s settle): a file published by rename needs only the short settle
    (the rename is the writer's "done"), so the counter moves in under a second."""
    spool = tmp_path / "spool"
    spool.mkdir()
    d = start_daemon(tmp_path, spool, settle_s=None)
    try:
        publish_flow_file(spool, "fast_p0001.FLOW.hdf5", n_events=20, n_samples=256, seed=1)
        published = time.monotonic()
        wait_for(lambda: _processed(d, 1), 20, interval=0.02, what="file processed")
        assert time.monotonic() - published < 1.0
    finally:
        d.kill()


def test_renamed_in_file_reaches_metrics_within_seconds(daemon: Daemon) -> None:
    faults = ChannelFaults(dead=((2, 7),))
    path, truth = publish_flow_file(
        daemon.spool, "a_p0001.FLOW.hdf5", n_events=20, seed=5, faults=faults
    )
    published = time.monotonic()
    wait_for(lambda: _processed(daemon, 1), 20, what="file processed")
    assert time.monotonic() - published < 10
    assert daemon.value("wavedqm_channel_alive", adc="2", channel="7") == 0
    assert daemon.value("wavedqm_channel_alive", adc="2", channel="8") == 1
    assert daemon.value("wavedqm_channel_alive", adc="2", channel="0") is None  # inactive
    assert daemon.value("wavedqm_dead_channels") == 1
    assert daemon.value("wavedqm_events_processed_total") == 20
    assert daemon.value("wavedqm_file_latency_seconds_count") == 1
    assert daemon.value("wavedqm_queue_files") == 0
    noise = daemon.value("wavedqm_channel_noise_adc", adc="0", channel="4")
    assert noise == pytest.approx(truth.noise_adc16[0, 4], rel=0.05)
    assert daemon.value("wavedqm_last_file_processed_timestamp_seconds") > time.time() - 60
    summary = json.loads((daemon.out / path.name / "summary.json").read_text())
    assert summary["dead_channels"] == [[2, 7]]
    # masks and the PDF report follow, per file and as 'latest' served over HTTP
    for url, magic in (
        ("/images/flatline.png", b"\x89PNG"),
        ("/images/baseline.png", b"\x89PNG"),
        ("/reports/latest.pdf", b"%PDF"),
    ):
        body = wait_for(
            lambda u=url: (lambda r: r[1] if r[0] == 200 else None)(http_get(daemon.url + u)),
            60,
            what=url,
        )
        assert body.startswith(magic), url
    for name in ("flatline.png", "baseline.png", "report.pdf"):
        assert (daemon.out / path.name / name).stat().st_size > 1000
    assert daemon.value("wavedqm_build_info", version=__import__("wavedqm").__version__) == 1


def test_bad_files_are_counted_by_reason_and_daemon_carries_on(
    daemon: Daemon, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    good = staging / "good.FLOW.hdf5"
    write_flow_file(good, n_events=6, seed=1)
    data = good.read_bytes()
    bad_files = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "not_hdf5": b"timestamp,adc,channel\n1,2,3\n" * 50,
    }
    for reason, content in bad_files.items():
        tmp = staging / f"{reason}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, daemon.spool / f"{reason}.FLOW.hdf5")
    wrong = staging / "wrong.tmp"
    with h5py.File(wrong, "w") as f:
        f.create_dataset("light/events/data", data=np.zeros(3, dtype=[("id", "u8")]))
    os.replace(wrong, daemon.spool / "wrong_layout.FLOW.hdf5")
    for reason in (*bad_files, "wrong_layout"):
        wait_for(
            lambda r=reason: daemon.value("wavedqm_files_failed_total", reason=r) == 1,
            20,
            what=f"failure counted as {reason}",
        )
    assert http_get(f"http://127.0.0.1:{daemon.port}/healthz")[0] == 200
    os.replace(good, daemon.spool / "good.FLOW.hdf5")
    wait_for(lambda: _processed(daemon, 1), 20, what="good file after bad ones")
    assert daemon.proc.poll() is None
    log = daemon.log.read_text()
    assert '"event": "file_failed"' in log and '"reason": "truncated"' in log
    # the bad inputs are still there, untouched
    assert (daemon.spool / "empty.FLOW.hdf5").stat().st_size == 0
    assert (daemon.spool / "truncated.FLOW.hdf5").read_bytes() == bad_files["truncated"]


def test_slowly_written_file_is_processed_once_complete(daemon: Daemon, tmp_path: Path) -> None:
    source = tmp_path / "source.FLOW.hdf5"
    write_flow_file(source, n_events=12, seed=8)
    data = source.read_bytes()
    target = daemon.spool / "slow.FLOW.hdf5"
    pieces = np.array_split(np.frombuffer(data, dtype=np.uint8), 10)
    with target.open("wb") as fh:
        for piece in pieces:
            fh.write(piece.tobytes())
            fh.flush()
            time.sleep(SETTLE_S / 2)
            assert not (daemon.out / target.name / "summary.json").exists()
    wait_for(lambda: _processed(daemon, 1), 20, what="slow file processed")
    text = daemon.metrics()
    for reason in FAILURE_REASONS:
        assert metric_value(text, "wavedqm_files_failed_total", reason=reason) == 0, reason
    summary = json.loads((daemon.out / target.name / "summary.json").read_text())
    assert summary["events"] == 12


def test_restart_neither_repeats_nor_skips(tmp_path: Path, spool: Path) -> None:
    first = start_daemon(tmp_path, spool)
    try:
        path1, _ = publish_flow_file(spool, "r_p0001.FLOW.hdf5", n_events=5, seed=1)
        wait_for(lambda: _processed(first, 1), 20, what="first file")
        summary1 = first.out / path1.name / "summary.json"
        written = summary1.stat().st_mtime_ns
        assert first.stop() == 0
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    # a file arrives while the daemon is down
    path2, _ = publish_flow_file(spool, "r_p0002.FLOW.hdf5", n_events=5, seed=2)
    second = start_daemon(tmp_path, spool)
    try:
        wait_for(
            lambda: (second.out / path2.name / "summary.json").exists(),
            20,
            what="file written while down processed on start",
        )
        wait_for(lambda: _processed(second, 1), 10, what="metrics of the second daemon")
        time.sleep(2 * SETTLE_S + 0.5)
        assert second.value("wavedqm_files_processed_total") == 1
        assert summary1.stat().st_mtime_ns == written
        assert second.stop() == 0
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
