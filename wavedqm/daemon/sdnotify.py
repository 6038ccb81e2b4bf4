"""systemd ``sd_notify`` without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

Used for ``Type=notify`` units: ``READY=1`` once watching, ``STATUS=...`` after each file,
``WATCHDOG=1`` at half of ``$WATCHDOG_USEC`` while healthy and ``STOPPING=1`` on shutdown.
Outside systemd (``$NOTIFY_SOCKET`` unset) every call is a no-op returning ``False``.
"""

from __future__ import annotations

import os
import socket

from wavedqm.logs import get_logger

log = get_logger(__name__)


def _socket_address() -> str | None:
    """``$NOTIFY_SOCKET`` as an AF_UNIX address ('@name' -> abstract '\\0name'), or None."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # vsock:... and other transports of newer systemd versions are not supported here.
    log.debug("sd_notify_unsupported_socket", address=address)
    return None


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``) to systemd; True if it was sent.

    Never raises: a missing or broken socket is logged at debug level and gives False.
    """
    address = _socket_address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8"), address)
    except OSError as e:
        log.debug("sd_notify_failed", message=message, error=str(e))
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC`` (µs), or None.

    None when the watchdog is not enabled for this process: ``$WATCHDOG_USEC`` unset, not a
    positive integer, or ``$WATCHDOG_PID`` set to another process's pid.
    """
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1e6
