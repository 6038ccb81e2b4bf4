"""Alert rules, their promtool unit tests and the example Prometheus / Alertmanager configs.

Runs Debian's real ``promtool`` (prometheus 2.42), ``amtool`` and ``prometheus-alertmanager``
(0.25); a test is skipped, saying which package to install, only when its binary is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from netutil import free_port, http_get, wait_for

PROM_DIR = Path(__file__).resolve().parents[1] / "prometheus"
RULES = PROM_DIR / "wavedqm-rules.yml"
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
PROMETHEUS_CONFIG = PROM_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = PROM_DIR / "alertmanager.yml"

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

SEVERITIES = {"critical", "warning", "info"}
PER_CHANNEL_METRICS = re.compile(r"\bwavedqm_channel_\w+")
TIMEOUT_S = 60


def _need(binary: str | None, name: str, package: str) -> str:
    if binary is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return binary


def _run(args: list[str | Path], cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _alert_rule_tests() -> list[dict[str, Any]]:
    cases = []
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def _duration_s(text: str) -> float:
    """Prometheus duration (``1m30s``, ``0s``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


# ------------------------------------------------------------------ static checks of the rules


def test_rules_file_passes_promtool_check() -> None:
    promtool = _need(PROMTOOL, "promtool", "prometheus")
    result = _run([promtool, "check", "rules", RULES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in result.stdout


def test_rules_are_one_group_at_15s() -> None:
    doc = yaml.safe_load(RULES.read_text())
    assert [g["name"] for g in doc["groups"]] == ["wavedqm"]
    assert doc["groups"][0]["interval"] == "15s"


def test_the_expected_alerts_exist() -> None:
    names = {rule["alert"] for rule in _alert_rules()}
    assert names == {
        "WavedqmChannelDead",
        "WavedqmDaemonDown",
        "WavedqmNoRecentFiles",
        "WavedqmFileFailures",
        "WavedqmBaselineShift",
        "WavedqmClippingHigh",
        "WavedqmNoiseHigh",
        "WavedqmVoxelDeadRegion",
        "WavedqmShotChannelFlagged",
        "WavedqmFileStalled",
        "WavedqmS2FitFailed",
        "WavedqmS2MeanJump",
        "WavedqmS2SetStalled",
        "WavedqmQualityError",
        "WavedqmQualityChannelsFailing",
        "WavedqmS2QualityError",
        "WavedqmVoxelQualityError",
        "WavedqmShotQualityError",
    }


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_and_crew_annotations(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"Wavedqm(?:[A-Z][a-z0-9]+)+", rule["alert"]), "CamelCase, Wavedqm..."
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook"):
        assert str(annotations.get(key, "")).strip(), f"{rule['alert']} lacks {key}"
    # one line the crew can act on: what to check and whom to call
    assert "\n" not in annotations["runbook"].strip()
    assert re.search(
        r"(LRS|charge-readout|pulsed-diagnostics|xenon-TPC) expert", annotations["runbook"]
    )
    assert "for" in rule, f"{rule['alert']} has no explicit for:"
    if PER_CHANNEL_METRICS.search(rule["expr"]):
        for label in ("adc", "channel"):
            assert f"$labels.{label}" in annotations["description"]
        assert "by (" not in rule["expr"] and "without" not in rule["expr"], "keep adc/channel"


def test_dead_channel_alert_has_no_long_for() -> None:
    """It must reach Alertmanager within a minute of the second dead file at 15 s."""
    (rule,) = [r for r in _alert_rules() if r["alert"] == "WavedqmChannelDead"]
    assert rule["labels"]["severity"] == "critical"
    assert _duration_s(rule["for"]) <= 15


# ------------------------------------------------------------------ promtool unit tests


def test_rule_unit_tests_pass() -> None:
    promtool = _need(PROMTOOL, "promtool", "prometheus")
    assert RULE_TESTS, "no promtool test files in prometheus/tests"
    result = _run([promtool, "test", "rules", *RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_is_unit_tested_firing_and_silent(rule: dict[str, Any]) -> None:
    cases = [c for c in _alert_rule_tests() if c["alertname"] == rule["alert"]]
    firing = [c for c in cases if c.get("exp_alerts")]
    silent = [c for c in cases if not c.get("exp_alerts")]
    assert firing, f"no alert_rule_test where {rule['alert']} fires"
    assert silent, f"no alert_rule_test where {rule['alert']} stays silent"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
            # annotations are compared in full, so a wrong template is caught
            assert set(alert["exp_annotations"]) == set(rule["annotations"])


def _broken_copy(tmp_path: Path, old: str, new: str) -> list[Path]:
    """The rules with ``old`` replaced by ``new`` and the unit tests beside them, in tmp_path
    (the tests name ``../wavedqm-rules.yml``, relative to themselves)."""
    text = RULES.read_text()
    assert text.count(old) == 1, f"{old!r} is not exactly once in the rules"
    (tmp_path / RULES.name).write_text(text.replace(old, new))
    shutil.copytree(PROM_DIR / "tests", tmp_path / "tests")
    return sorted((tmp_path / "tests").glob("*.yml"))


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        # a dead channel must page on its second dead file, not its third
        (
            "WavedqmChannelDead",
            "wavedqm_channel_dead_consecutive_files >= 2",
            "wavedqm_channel_dead_consecutive_files >= 3",
        ),
        # ... nor on a one-file blip
        (
            "WavedqmChannelDead",
            "wavedqm_channel_dead_consecutive_files >= 2",
            "wavedqm_channel_dead_consecutive_files >= 1",
        ),
        # no-files must respect data_taking_expected
        ("WavedqmNoRecentFiles", "and wavedqm_data_taking_expected == 1", ""),
        # NaN != 0 is true: the NaN-unsafe form must be caught
        (
            "WavedqmBaselineShift",
            "wavedqm_channel_baseline_status < 0 or wavedqm_channel_baseline_status > 0",
            "wavedqm_channel_baseline_status != 0",
        ),
        # without the absolute floor a quiet channel would page
        ("WavedqmNoiseHigh", "wavedqm_channel_noise_adc > 50\n", "wavedqm_channel_noise_adc > 0\n"),
        # without the statistics gate a run's first files (few hits) would page
        (
            "WavedqmVoxelDeadRegion",
            "wavedqm_voxel_mean_hits_per_occupied >= 20",
            "wavedqm_voxel_mean_hits_per_occupied >= 0",
        ),
        # off by one: a channel flagged K-1 times in a row would page
        (
            "WavedqmShotChannelFlagged",
            "wavedqm_shot_flag_streak\n          >= on",
            "wavedqm_shot_flag_streak + 1\n          >= on",
        ),
        # a set with too few frames for a fit (fit_ok 0, nothing counted) must not page
        (
            "WavedqmS2FitFailed",
            "increase(wavedqm_s2_fits_failed_total[30m]) > 0\n          and\n          ",
            "",
        ),
        # ... and a good fit must resolve it
        ("WavedqmS2FitFailed", "\n          and\n          wavedqm_s2_fit_ok == 0", ""),
        # the limit is 5 standard errors, and a jump down counts as much as one up
        (
            "WavedqmS2MeanJump",
            "abs(wavedqm_s2_mean_shift_std_errors) > 5",
            "abs(wavedqm_s2_mean_shift_std_errors) > 4",
        ),
        (
            "WavedqmS2MeanJump",
            "abs(wavedqm_s2_mean_shift_std_errors) > 5",
            "wavedqm_s2_mean_shift_std_errors > 5",
        ),
        # the scan's previous sets stop getting files by design
        (
            "WavedqmS2SetStalled",
            "\n          and (\n            wavedqm_s2_last_file_timestamp_seconds\n"
            "              == on(job, instance) group_left()\n"
            "            max by (job, instance) (wavedqm_s2_last_file_timestamp_seconds)\n"
            "          )",
            "",
        ),
        # a fast cadence's short pause is not a stop
        (
            "WavedqmS2SetStalled",
            "and (time() - wavedqm_s2_last_file_timestamp_seconds > 300)",
            "and (time() - wavedqm_s2_last_file_timestamp_seconds > 0)",
        ),
        # files waiting in wavedqm: late, not stalled
        ("WavedqmS2SetStalled", "\n          and on(job, instance) wavedqm_queue_files == 0", ""),
        # a known-noisy channel (status-CSV bit 4) must not page
        (
            "WavedqmQualityError",
            "wavedqm_channel_quality_status >= 2\n"
            "          unless on(job, instance, adc, channel)\n"
            "          wavedqm_channel_alert_masked == 1",
            "wavedqm_channel_quality_status >= 2",
        ),
        (
            "WavedqmNoiseHigh",
            "offset 15m)\n          unless on(job, instance, adc, channel)\n"
            "          wavedqm_channel_alert_masked == 1",
            "offset 15m)",
        ),
        # a warning is not an error
        (
            "WavedqmQualityError",
            "wavedqm_channel_quality_status >= 2",
            "wavedqm_channel_quality_status >= 1",
        ),
        # "not enough data" (-1) must not page either
        (
            "WavedqmQualityError",
            "wavedqm_channel_quality_status >= 2",
            "wavedqm_channel_quality_status != 0",
        ),
        # the limit is the daemon's, not a fixed number
        (
            "WavedqmQualityChannelsFailing",
            "> on(job, instance) group_left()\n          wavedqm_quality_channels_failing_limit",
            "> 0.5",
        ),
    ],
    ids=[
        "dead>=3",
        "dead>=1",
        "no-files-ignores-config",
        "baseline-nan",
        "noise-no-floor",
        "voxel-no-statistics-gate",
        "shot-streak-off-by-one",
        "s2-fit-ignores-frames",
        "s2-fit-never-resolves",
        "s2-jump-limit-4",
        "s2-jump-up-only",
        "s2-stalled-any-set",
        "s2-stalled-no-floor",
        "s2-stalled-ignores-queue",
        "quality-ignores-mask",
        "noise-ignores-mask",
        "quality-warning-pages",
        "quality-not-enough-pages",
        "quality-fixed-limit",
    ],
)
def test_unit_tests_catch_a_broken_rule(tmp_path: Path, alert: str, old: str, new: str) -> None:
    """The unit tests are not vacuous: the same tests fail against a subtly wrong rule."""
    promtool = _need(PROMTOOL, "promtool", "prometheus")
    tests = _broken_copy(tmp_path, old, new)
    assert _run([promtool, "check", "rules", tmp_path / RULES.name]).returncode == 0
    result = _run([promtool, "test", "rules", *tests], cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr
    assert f"alertname: {alert}" in result.stdout + result.stderr


# ------------------------------------------------------------------ example configurations


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    promtool = _need(PROMTOOL, "promtool", "prometheus")
    # from the repository root: the rule file path in it is relative to the config file
    result = _run([promtool, "check", "config", PROMETHEUS_CONFIG], cwd=PROM_DIR.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert f"SUCCESS: {len(_alert_rules())} rules found" in result.stdout


def test_prometheus_config_scrapes_the_daemon_and_alerts_to_alertmanager() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == [RULES.name]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "wavedqm"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9093"]


def test_alertmanager_config_is_valid() -> None:
    amtool = _need(AMTOOL, "amtool", "prometheus-alertmanager")
    result = _run([amtool, "check-config", ALERTMANAGER_CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "1 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=WavedqmChannelDead", "severity=critical"], "shift-webhook,lrs-email"),
        (["alertname=WavedqmDaemonDown", "severity=critical"], "shift-webhook,lrs-email"),
        (["alertname=WavedqmNoiseHigh", "severity=warning"], "shift-webhook"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receivers: str) -> None:
    amtool = _need(AMTOOL, "amtool", "prometheus-alertmanager")
    result = _run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_alertmanager_groups_per_channel_quickly() -> None:
    route = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
    assert route["group_by"] == ["alertname", "adc", "channel"]
    # with <= 15 s scrape and <= 15 s evaluation, a dead channel is out within a minute
    assert _duration_s(route["group_wait"]) + 15 + 15 <= 60


# ------------------------------------------------------------------ a real Alertmanager


class _Webhook:
    """A webhook receiver on loopback: records every notification body (JSON) it gets."""

    def __init__(self) -> None:
        received: list[tuple[float, dict[str, Any]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alertnames(self) -> list[tuple[str, str]]:
        return [
            (a["labels"]["alertname"], a["labels"].get("job", ""))
            for _, body in list(self.received)
            for a in body["alerts"]
        ]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, _Webhook]]:
    """Alertmanager with prometheus/alertmanager.yml, its webhook pointed at a local receiver
    and its mail relay at a closed loopback port (no mail leaves the machine)."""
    binary = _need(ALERTMANAGER, "prometheus-alertmanager", "prometheus-alertmanager")
    webhook = _Webhook()
    webhook.thread.start()
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"] == "http://127.0.0.1:9099/alert"
            hook["url"] = f"http://127.0.0.1:{webhook.port}/alert"
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{free_port()}"
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/-/ready")[0] == 200, 20, what="alertmanager ready")
        yield url, webhook
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        webhook.server.shutdown()
        webhook.server.server_close()


def _post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.mark.slow
def test_alertmanager_inhibits_while_daemon_down_and_delivers_fast(
    alertmanager: tuple[str, _Webhook],
) -> None:
    """WavedqmDaemonDown mutes the other wavedqm alerts of the same job; alerts of another job
    are still delivered to the webhook, within group_wait (10 s) of reaching Alertmanager."""
    url, webhook = alertmanager
    instance = {"instance": "127.0.0.1:9108"}
    down = {"alertname": "WavedqmDaemonDown", "severity": "critical", "job": "wavedqm"}
    dead = {"alertname": "WavedqmChannelDead", "severity": "critical", "job": "wavedqm"}
    dead |= {"adc": "6", "channel": "40", **instance}
    # alerts of another job (e.g. a second daemon scraped under its own job name) stay active
    other_dead = dead | {"job": "wavedqm-hall2"}
    other_noise = {"alertname": "WavedqmNoiseHigh", "severity": "warning", "job": "wavedqm-hall2"}
    other_noise |= {"adc": "4", "channel": "5", **instance}
    posted = time.monotonic()
    _post_alerts(url, [down | instance, dead, other_dead, other_noise])

    def all_four() -> dict[tuple[str, str], dict[str, Any]] | None:
        _, body = http_get(f"{url}/api/v2/alerts")
        found = {(a["labels"]["alertname"], a["labels"]["job"]): a for a in json.loads(body)}
        return found if len(found) == 4 else None

    state = wait_for(all_four, 10, what="the 4 alerts in Alertmanager")
    muted = state[("WavedqmChannelDead", "wavedqm")]["status"]
    assert muted["state"] == "suppressed"
    assert muted["inhibitedBy"] == [state[("WavedqmDaemonDown", "wavedqm")]["fingerprint"]]
    active = {k for k, a in state.items() if a["status"]["state"] == "active"}
    assert active == {
        ("WavedqmDaemonDown", "wavedqm"),
        ("WavedqmChannelDead", "wavedqm-hall2"),
        ("WavedqmNoiseHigh", "wavedqm-hall2"),
    }
    receivers = {k: sorted(r["name"] for r in a["receivers"]) for k, a in state.items()}
    assert receivers[("WavedqmDaemonDown", "wavedqm")] == ["lrs-email", "shift-webhook"]
    assert receivers[("WavedqmChannelDead", "wavedqm-hall2")] == ["lrs-email", "shift-webhook"]
    assert receivers[("WavedqmNoiseHigh", "wavedqm-hall2")] == ["shift-webhook"]

    wait_for(lambda: active <= set(webhook.alertnames()), 30, what="webhook notifications")
    first = min(t for t, _ in webhook.received)
    assert first - posted < 20, "notifications must go out after group_wait (10 s), not later"
    time.sleep(1.0)  # the muted alert's group was flushed together with the others
    assert ("WavedqmChannelDead", "wavedqm") not in webhook.alertnames()
    assert all(body["receiver"] == "shift-webhook" for _, body in webhook.received)
