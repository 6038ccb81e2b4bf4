"""Debian's real Prometheus and Alertmanager, started on loopback ports for a test, plus a
webhook receiver that records what Alertmanager sends."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from netutil import free_port, http_get, wait_for

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "prometheus" / "wavedqm-rules.yml"


def missing_binaries() -> str | None:
    """Why the stack cannot run here, or None."""
    if PROMETHEUS is None:
        return "prometheus is not installed (apt-get install prometheus)"
    if ALERTMANAGER is None:
        return "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
    return None


@dataclass
class Webhook:
    """An HTTP receiver for Alertmanager's webhook_config: keeps every alert it is sent."""

    port: int
    alerts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alert"

    def firing(self, alertname: str) -> list[dict[str, str]]:
        with self.lock:
            return [
                a["labels"]
                for a in self.alerts
                if a["labels"].get("alertname") == alertname and a.get("status") == "firing"
            ]

    def resolved(self, alertname: str) -> list[dict[str, str]]:
        """Labels of the resolved notifications received for ``alertname``."""
        with self.lock:
            return [
                a["labels"]
                for a in self.alerts
                if a["labels"].get("alertname") == alertname and a.get("status") == "resolved"
            ]


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook = Webhook(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with hook.lock:
                hook.alerts.extend(json.loads(body)["alerts"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _process(cmd: list[str], log: Path, ready_url: str, what: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        try:
            wait_for(lambda: http_get(ready_url)[0] == 200, 30, what=f"{what} ready")
        except AssertionError:
            raise AssertionError(f"{what} did not start:\n{log.read_text()[-3000:]}") from None
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def rules_with_for(workdir: Path, durations: dict[str, str]) -> Path:
    """A copy of wavedqm's rules in ``workdir`` where the alerts named in ``durations`` have
    that ``for:`` instead of theirs (e.g. ``{"WavedqmQualityError": "1s"}``, so a test need
    not wait minutes); nothing else changes."""
    lines = RULES.read_text().splitlines(keepends=True)
    current, changed = None, set()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("- alert:") or stripped.startswith("- record:"):
            current = stripped.split(":", 1)[1].strip()
        elif current in durations and stripped.startswith("for:"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}for: {durations[current]}\n"
            changed.add(current)
    missing = set(durations) - changed
    assert not missing, f"no 'for:' found for {sorted(missing)} in {RULES}"
    copy = workdir / "wavedqm-rules.yml"
    copy.write_text("".join(lines))
    return copy


@contextmanager
def alertmanager(workdir: Path, webhook: Webhook) -> Iterator[str]:
    """Alertmanager routing everything to ``webhook`` at once (1 s group wait)."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: test-webhook\n"
        "  group_by: [alertname, adc, channel]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: test-webhook\n"
        f"    webhook_configs:\n      - url: {webhook.url}\n        send_resolved: true\n"
    )
    storage = workdir / "am-data"
    cmd = [
        str(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(cmd, workdir / "alertmanager.log", f"{url}/-/ready", "alertmanager"):
        yield url


@contextmanager
def prometheus(
    workdir: Path, target: str, alertmanager_url: str | None, rules: Path = RULES
) -> Iterator[str]:
    """Prometheus scraping ``target`` (host:port) every second with wavedqm's real rules (or
    ``rules``: a copy of them, see :func:`rules_with_for`)."""
    port = free_port()
    config = workdir / "prometheus.yml"
    text = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}\n"
        "scrape_configs:\n"
        "  - job_name: wavedqm\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    if alertmanager_url:
        host = urllib.parse.urlparse(alertmanager_url).netloc
        text += (
            f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{host}']\n"
        )
    config.write_text(text)
    cmd = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(cmd, workdir / "prometheus.log", f"{url}/-/ready", "prometheus"):
        yield url


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; the result vector (or matrix/scalar as a one-element list)."""
    status, body = http_get(
        f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {status} {doc.get('error')}")
    data = doc["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"value": data["result"]}]
    return data["result"]
