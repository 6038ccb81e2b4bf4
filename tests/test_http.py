"""The HTTP endpoint over real loopback HTTP."""

from __future__ import annotations

import gzip
import http.client
import os

import pytest
from prometheus_client import CollectorRegistry, Gauge

from wavedqm.daemon.http import HttpServer, resolve_static

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
PDF = b"%PDF-1.4\n" + os.urandom(200)


class Health:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


@pytest.fixture(scope="module")
def static(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("http")
    root = tmp_path / "out"
    (root / "images" / "adc0").mkdir(parents=True)
    (root / "reports").mkdir()
    (root / "images" / "latest.png").write_bytes(PNG)
    (root / "images" / "adc0" / "noise.png").write_bytes(PNG[::-1])
    (root / "images" / ".partial.png").write_bytes(b"half")
    (root / "reports" / "latest.pdf").write_bytes(PDF)
    (root / "reports" / "summary.json").write_text('{"ok": true}')
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", root / "images" / "escape.png")
    os.symlink(root / "images" / "latest.png", root / "images" / "alias.png")
    return root


@pytest.fixture(scope="module")
def module_server(static):
    registry = CollectorRegistry()
    g = Gauge("wavedqm_test_value_adc", "a test gauge", ["adc"], registry=registry)
    g.labels(adc="3").set(42.5)
    health = Health()
    srv = HttpServer("127.0.0.1", 0, registry=registry, health=health, static_dir=static)
    srv.start()
    srv.health_flag = health  # for the tests
    yield srv
    srv.stop()


@pytest.fixture
def server(module_server):
    module_server.health_flag.ok = True
    return module_server


def request(srv, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_port_zero_gives_real_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics(server):
    status, headers, body = request(server, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert 'wavedqm_test_value_adc{adc="3"} 42.5' in body.decode()
    # query strings are ignored; gzip when asked for
    status, headers, body = request(
        server, "GET", "/metrics?x=1", {"Accept-Encoding": "gzip, deflate"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert 'wavedqm_test_value_adc{adc="3"} 42.5' in gzip.decompress(body).decode()
    # OpenMetrics when the scraper asks for it
    status, headers, body = request(
        server, "GET", "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_healthz(server):
    assert request(server, "GET", "/healthz")[::2] == (200, b"ok\n")
    server.health_flag.ok = False
    assert request(server, "GET", "/healthz")[::2] == (503, b"unhealthy\n")


def test_healthz_exception_is_unhealthy(static):
    def broken():
        raise RuntimeError("boom")

    with HttpServer("127.0.0.1", 0, registry=CollectorRegistry(), health=broken) as srv:
        assert request(srv, "GET", "/healthz")[0] == 503


@pytest.mark.parametrize(
    ("path", "ctype", "expected"),
    [
        ("/images/latest.png", "image/png", PNG),
        ("/images/adc0/noise.png", "image/png", PNG[::-1]),
        ("/images/alias.png", "image/png", PNG),  # symlink inside the folder is fine
        ("/reports/latest.pdf", "application/pdf", PDF),
        ("/reports/summary.json", "application/json", b'{"ok": true}'),
        ("/images/latest.png?t=123", "image/png", PNG),
    ],
)
def test_static_files(server, path, ctype, expected):
    status, headers, body = request(server, "GET", path)
    assert status == 200
    assert headers["Content-Type"] == ctype
    assert int(headers["Content-Length"]) == len(expected)
    assert body == expected


def test_head_has_headers_but_no_body(server):
    status, headers, body = request(server, "HEAD", "/images/latest.png")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) == len(PNG)
    status, _, body = request(server, "HEAD", "/healthz")
    assert status == 200 and body == b""


@pytest.mark.parametrize(
    "path",
    [
        "/images/../../secret.txt",
        "/images/..%2F..%2Fsecret.txt",
        "/images/%2e%2e/%2e%2e/secret.txt",
        "/images//etc/passwd",
        "/images/%2Fetc%2Fpasswd",
        "/images/escape.png",  # symlink leading outside
        "/images/",  # no listing
        "/images/adc0",  # a folder
        "/images/.partial.png",  # hidden (temporary) file
        "/images/missing.png",
        "/reports/..",
        "/images",
        "/",
        "/secret.txt",
        "/metrics/extra",
        "/other/latest.png",
    ],
)
def test_not_found(server, path):
    status, _, body = request(server, "GET", path)
    assert status == 404
    assert b"secret" not in body and b"root:" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_other_methods_405(server, method):
    status, headers, _ = request(server, method, "/metrics")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_no_static_dir_means_404(static):
    with HttpServer("127.0.0.1", 0, registry=CollectorRegistry(), health=lambda: True) as srv:
        assert request(srv, "GET", "/images/latest.png")[0] == 404
        assert request(srv, "GET", "/metrics")[0] == 200


def test_stop_closes_port(static):
    srv = HttpServer("127.0.0.1", 0, registry=CollectorRegistry(), health=lambda: True)
    srv.start()
    port = srv.port
    assert request(srv, "GET", "/healthz")[0] == 200
    srv.stop()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    with pytest.raises(OSError):
        conn.request("GET", "/healthz")
        conn.getresponse()
    conn.close()
    srv.stop()  # idempotent


def test_no_request_logging_on_stderr(server, capfd):
    request(server, "GET", "/healthz")
    request(server, "GET", "/nope")
    assert capfd.readouterr().err == ""


def test_resolve_static(static):
    base = static / "images"
    assert resolve_static(base, "latest.png") == (base / "latest.png").resolve()
    for bad in ("", "../x", "a/../../x", "/etc/passwd", "escape.png", "adc0", "a\0b", "a\\b"):
        assert resolve_static(base, bad) is None
