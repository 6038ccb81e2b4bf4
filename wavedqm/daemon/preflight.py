"""Checks before a command starts work: the output and state folders can be written, the
HTTP address can be bound. Each failure is a ``ConfigError`` whose one line names the folder or
address, why, and the option that changes it (``wavedqm`` exits 2 with it)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from wavedqm.config import Config
from wavedqm.errors import ConfigError

PROBE_PREFIX = ".wavedqm-probe-"
"""Temporary file made (and removed at once) to see that a folder takes new files."""


def check_writable(folder: Path, what: str, option: str) -> None:
    """Create ``folder`` if needed and write (then remove) a probe file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(
            f"{what} {folder} is not writable ({reason}): choose another with {option}"
        ) from None


def check_output_folders(cfg: Config) -> None:
    """The output and state folders of ``cfg`` take new files."""
    check_writable(Path(cfg.output.dir), "output folder", "--out or [output] dir")
    check_writable(Path(cfg.output.state_dir), "state folder", "--state or [output] state_dir")


def listen_error(host: str, port: int, err: OSError) -> ConfigError:
    """The one-line error for an address that cannot be bound (busy port, unknown host)."""
    reason = err.strerror or str(err)
    if err.errno == errno.EADDRINUSE:
        reason = "address already in use: another wavedqm or program listens there"
    return ConfigError(
        f"cannot listen on {host}:{port} ({reason}): choose another address with "
        "--listen HOST:PORT or [metrics] listen"
    )
