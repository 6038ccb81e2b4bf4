"""A dead channel in simulated files reaches Alertmanager's webhook as WavedqmChannelDead, and a
channel whose noise doubles against the reference run fires WavedqmQualityError, then resolves
once its noise is back, with real Prometheus and Alertmanager on loopback; every Grafana panel's
query returns data (after a light + charge file, a shot and a three-file S2 set, with a
reference in use)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavedqm.dashboards import load_dashboards, panel_queries
from wavedqm.simulate.flow import ChannelFaults, publish_flow_file
from wavedqm.simulate.shots import simulate_shots
from wavedqm.simulate.wfm import simulate_field_scan

from daemonutil import Daemon, start_daemon
from netutil import wait_for
from stack import (
    Webhook,
    alertmanager,
    missing_binaries,
    prometheus,
    query,
    rules_with_for,
    webhook_receiver,
)

DEAD = (2, 7)
NOISY = (3, 20)
DETECTOR_SEED = 99
QUALITY_EVENTS = 60
"""Events of the files tested against the reference (more than QUALITY_MIN_EVENTS)."""
GRAFANA = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, str, Webhook]]:
    why = missing_binaries()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("stack")
    spool = work / "spool"
    spool.mkdir()
    _make_reference(work)
    # the quality alert's 2 minutes of slack would make the test wait: 1 s in this copy
    rules = rules_with_for(work, {"WavedqmQualityError": "1s"})
    daemon = start_daemon(work, spool)
    try:
        with (
            webhook_receiver() as hook,
            alertmanager(work, hook) as am_url,
            prometheus(work, f"127.0.0.1:{daemon.port}", am_url, rules) as prom_url,
        ):
            yield daemon, prom_url, hook
    finally:
        daemon.kill()


def _make_reference(work: Path) -> None:
    """Reference "good" of three good light + charge files of the same detector, three shots
    and an S2 set, made and chosen with the CLI in the state folder the daemon will use
    (start_daemon's ``work/state``)."""
    good = work / "good-run"
    for i in range(3):
        publish_flow_file(
            good, f"good_p{i:04d}.FLOW.hdf5", n_events=QUALITY_EVENTS, seed=1000 + i,
            detector_seed=DETECTOR_SEED, with_charge=True,
        )  # fmt: skip
    # and of the other kinds, so that their quality series exist (the panels' queries)
    simulate_shots(good / "shots", shots=3, n_samples=500, seed=21)
    simulate_field_scan(
        good / "RUN0", sets=((200.0, 2100.0),), files_per_set=1, frames_per_file=200
    )
    cli = [sys.executable, "-m", "wavedqm.cli", "reference"]
    state = ["--state", str(work / "state")]
    for args in (["create", "good", str(good)], ["use", "good"]):
        done = subprocess.run(cli + args + state, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"reference {args[0]}: {done.stderr}"


def _publish(
    daemon: Daemon,
    index: int,
    dead: tuple[tuple[int, int], ...],
    n_events: int = 12,
    noise_scale: dict[tuple[int, int], float] | None = None,
) -> None:
    publish_flow_file(
        daemon.spool,
        f"alert_p{index:04d}.FLOW.hdf5",
        n_events=n_events,
        seed=index,
        detector_seed=DETECTOR_SEED,
        faults=ChannelFaults(dead=dead),
        noise_scale=noise_scale,
        with_charge=True,
    )
    wait_for(
        lambda: (daemon.value("wavedqm_files_processed_total") or 0) >= index,
        20,
        what=f"file {index} processed",
    )


def test_panel_queries_return_data_after_one_file(stack) -> None:
    daemon, prom, _ = stack
    _publish(daemon, 1, ())
    simulate_shots(daemon.spool / "shots", shots=1, n_samples=500)
    wait_for(lambda: daemon.value("wavedqm_shots_processed_total") == 1, 30, what="shot")
    # an S2 set of three files: its mean shift (from the second file) and file interval
    # (from the third) are numbers, not NaN
    (s2_set,) = simulate_field_scan(
        daemon.spool / "RUN1", sets=((200.0, 2100.0),), files_per_set=3, frames_per_file=200
    )
    labels = {"run": "RUN1", "set": s2_set.set_name}
    wait_for(
        lambda: daemon.value("wavedqm_s2_files_processed_total", **labels) == 3, 30, what="S2 set"
    )
    wait_for(lambda: query(prom, "wavedqm_shots_processed_total >= 1"), 20, what="scraped")
    wait_for(lambda: query(prom, "wavedqm_s2_files_processed_total >= 3"), 20, what="S2 scraped")
    time.sleep(3)  # a few more scrapes, so rate()/increase() have two samples
    dashboards = load_dashboards(GRAFANA)
    assert dashboards, "no dashboards found"
    checked = 0
    for dashboard in dashboards:
        for title, expr in panel_queries(dashboard):
            result = query(prom, expr.replace("$instance", ".*").replace("$__rate_interval", "1m"))
            assert result, f"panel {title!r}: {expr!r} returned no data after one file"
            checked += 1
    assert checked >= 10
    # the S2 set's trend is known, not NaN: a NaN sample would satisfy "returned data"
    for expr in (
        "abs(wavedqm_s2_mean_shift_std_errors) >= 0",
        "wavedqm_s2_file_interval_seconds > 0",
    ):
        assert query(prom, expr), f"{expr!r}: the S2 set's trend is still NaN"


def test_dead_channel_pages_after_two_files_and_only_that_channel(stack) -> None:
    daemon, prom, hook = stack
    start = (daemon.value("wavedqm_files_processed_total") or 0) + 1
    _publish(daemon, int(start), (DEAD,))
    # one dead file is a blip: the streak is 1 and nothing is sent
    wait_for(
        lambda: query(prom, 'wavedqm_channel_dead_consecutive_files{adc="2",channel="7"} == 1'),
        15,
        what="first dead file scraped",
    )
    time.sleep(3)
    assert hook.firing("WavedqmChannelDead") == []
    second_file = time.monotonic()
    _publish(daemon, int(start) + 1, (DEAD,))
    alerts = wait_for(lambda: hook.firing("WavedqmChannelDead"), 60, what="webhook alert")
    assert time.monotonic() - second_file < 60
    assert {(a["adc"], a["channel"]) for a in alerts} == {("2", "7")}
    assert alerts[0]["severity"] == "critical"
    time.sleep(3)  # nothing else arrives for healthy channels
    assert {(a["adc"], a["channel"]) for a in hook.firing("WavedqmChannelDead")} == {("2", "7")}


def test_quality_error_fires_then_resolves_when_the_channel_recovers(stack) -> None:
    daemon, prom, hook = stack
    start = int(daemon.value("wavedqm_files_processed_total") or 0) + 1
    _publish(daemon, start, (), n_events=QUALITY_EVENTS, noise_scale={NOISY: 2.0})
    adc, channel = (str(x) for x in NOISY)
    assert daemon.value("wavedqm_channel_quality_status", adc=adc, channel=channel) == 2
    alerts = wait_for(lambda: hook.firing("WavedqmQualityError"), 60, what="quality alert")
    # only the noisy channel: the other channels of the file pass against the reference
    assert {(a["adc"], a["channel"]) for a in alerts} == {(adc, channel)}
    assert hook.resolved("WavedqmQualityError") == []
    # the channel recovers: the next file is good, the alert resolves by itself
    _publish(daemon, start + 1, (), n_events=QUALITY_EVENTS)
    assert daemon.value("wavedqm_channel_quality_status", adc=adc, channel=channel) == 0
    resolved = wait_for(lambda: hook.resolved("WavedqmQualityError"), 60, what="resolved")
    assert {(a["adc"], a["channel"]) for a in resolved} == {(adc, channel)}
    assert query(prom, 'ALERTS{alertname="WavedqmQualityError"}') == []
