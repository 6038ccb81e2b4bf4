"""Atomic output files: write to a temporary file in the same folder, fsync, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from wavedqm.errors import OutputError

OUTPUT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
     errno.EFBIG, errno.ENOENT, errno.ENOTDIR}
)  # fmt: skip
"""``errno`` values of a write that failed because of where it writes, not what."""


def is_medium_error(err: BaseException) -> bool:
    """True when ``err`` says the medium refused the write (:data:`OUTPUT_ERRNOS`), from its
    ``errno`` or, for HDF5's errors (``errno = 28, error message = 'No space left on
    device'``), from its message."""
    if isinstance(err, OutputError):
        return True
    if isinstance(err, OSError) and err.errno in OUTPUT_ERRNOS:
        return True
    text = str(err)
    return any(f"errno = {n}," in text or os.strerror(n) in text for n in OUTPUT_ERRNOS
               if n not in (errno.ENOENT, errno.ENOTDIR))  # fmt: skip


def output_error(path: str | Path, err: OSError) -> OSError:
    """``err`` as an :class:`~wavedqm.errors.OutputError` when it is a medium problem
    (:data:`OUTPUT_ERRNOS`), else ``err`` itself."""
    if isinstance(err, OutputError) or not is_medium_error(err):
        return err
    return OutputError(path, err.strerror or str(err))


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success it replaces
    ``path`` in one rename, on error it is removed and ``path`` is left as it was. A full,
    read-only or failing medium raises :class:`~wavedqm.errors.OutputError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        converted = output_error(path, err)
        if converted is not err:
            raise converted from err
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        converted = output_error(path, err) if isinstance(err, OSError) else err
        if converted is not err:
            raise converted from err
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_open(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """JSON with NaN/inf refused (write ``None`` instead): strict JSON for any reader."""
    return atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def atomic_write_with(path: str | Path, writer: Callable[[BinaryIO], None]) -> Path:
    """Let ``writer`` fill the temporary file (e.g. ``fig.savefig(fh, format="png")``)."""
    with atomic_open(path) as fh:
        writer(fh)
    return Path(path)


def set_aside(path: str | Path) -> Path:
    """Rename a damaged state file to ``<name>.damaged-<UTC time>`` (never overwritten, never
    deleted: someone may want to look at it); returns the new path."""
    import time

    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(target)
    return target


_OUR_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
"""The names :func:`atomic_open` gives its temporary files (``tempfile.mkstemp``)."""


def sweep_temp_files(root: str | Path, keep_out: tuple[Path, ...] = ()) -> list[Path]:
    """Remove the temporary files a killed writer of ours left below ``root`` (the daemon's
    own output or state folder: nothing else writes there). Folders in ``keep_out`` (the
    watched folders, should they overlap) are never touched. Returns what was removed."""
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    guarded = [p.resolve() for p in keep_out]
    for folder, _dirs, files in os.walk(root):
        here = Path(folder).resolve()
        if any(here == g or g in here.parents or here in g.parents for g in guarded):
            continue
        for name in files:
            if _OUR_TEMP.match(name):
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed
