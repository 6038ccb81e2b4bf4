"""The daemon's HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz``, and the latest PNGs
and reports for Grafana's image panels.

- ``GET /metrics``: the registry in the format the scraper asks for (``Accept``), gzip when
  ``Accept-Encoding`` allows it.
- ``GET /healthz``: 200 ``ok`` when ``health()`` is true, else 503 ``unhealthy``;
  ``health()`` may return ``(ok, line)`` to say why (e.g. outputs failing).
- ``GET /images/<name>``, ``/reports/<name>``: regular files below ``static_dir/images`` and
  ``static_dir/reports``, read-only. ``..``, absolute paths, hidden names, folders and
  symlinks leading outside the folder give 404; there is no directory listing.
- Anything else 404; methods other than GET and HEAD 405.

Requests are logged with structlog at debug level, never on stderr.
"""

from __future__ import annotations

import email.utils
import gzip
import os
import shutil
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from wavedqm.logs import get_logger

log = get_logger(__name__)

CONTENT_TYPES = {
    ".png": "image/png",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".prom": "text/plain; charset=utf-8",
}
STATIC_ROUTES = ("images", "reports")
"""URL prefixes served from the folders of the same name under ``static_dir``."""
REQUEST_TIMEOUT_SECONDS = 10.0
"""A client idle this long is disconnected (s)."""


def resolve_static(base: Path, relative: str) -> Path | None:
    """The regular file ``relative`` (URL-decoded, '/'-separated) below folder ``base``, or
    None if it is absent, hidden, a folder, or leads outside ``base`` (``..``, absolute path,
    symlink pointing elsewhere)."""
    if not relative or "\0" in relative or "\\" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    try:
        root = base.resolve(strict=True)
        target = (root / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


class _Handler(BaseHTTPRequestHandler):
    """Request handler; the owning :class:`HttpServer` is ``self.server.owner``."""

    server_version = "wavedqm"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def __getattr__(self, name: str) -> Any:
        # Every other method (POST, PUT, DELETE, OPTIONS, ...) -> 405, not http.server's 501.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            b"method not allowed\n",
            "text/plain; charset=utf-8",
            head=False,
            extra={"Allow": "GET, HEAD"},
        )

    def _serve(self, head: bool) -> None:
        owner: HttpServer = self.server.owner  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        try:
            if path == "/metrics":
                self._metrics(owner, head)
            elif path == "/healthz":
                self._healthz(owner, head)
            else:
                prefix, sep, rest = path.lstrip("/").partition("/")
                if sep and prefix in STATIC_ROUTES and owner.static_dir is not None:
                    self._static(owner.static_dir / prefix, unquote(rest), head)
                else:
                    self._not_found(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    # -- routes ----------------------------------------------------------------------------

    def _metrics(self, owner: HttpServer, head: bool) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(owner.registry)
        extra = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        self._send(HTTPStatus.OK, body, content_type, head, extra)

    def _healthz(self, owner: HttpServer, head: bool) -> None:
        try:
            answer = owner.health()
            ok, text = answer if isinstance(answer, tuple) else (bool(answer), "")
        except Exception:
            log.exception("health_check_failed")
            ok, text = False, ""
        text = text or ("ok" if ok else "unhealthy")
        status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8", head)

    def _static(self, base: Path, relative: str, head: bool) -> None:
        target = resolve_static(base, relative)
        if target is None:
            self._not_found(head)
            return
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._not_found(head)
            return
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            content_type = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if not head:
                shutil.copyfileobj(fh, self.wfile, length=st.st_size if st.st_size else 1)

    def _not_found(self, head: bool) -> None:
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8", head)

    # -- helpers ---------------------------------------------------------------------------

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", client=self.client_address[0], message=format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HttpServer


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """``/metrics``, ``/healthz`` and static files on ``host:port`` (port 0: a free port),
    served from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        health: Callable[[], bool | tuple[bool, str]],
        static_dir: Path | str | None = None,
    ) -> None:
        self.host = host
        self.registry = registry
        self.health = health
        self.static_dir = Path(static_dir) if static_dir is not None else None
        server_cls = _Server6 if ":" in host else _Server
        self._server = server_cls((host, port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve in a background daemon thread."""
        if self._thread is not None:
            raise RuntimeError("HttpServer already started")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="wavedqm-http",
            daemon=True,
        )
        self._thread.start()
        log.info("http_started", url=self.url, static_dir=str(self.static_dir))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
