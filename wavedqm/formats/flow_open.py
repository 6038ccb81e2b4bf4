"""Opening of ``.FLOW.hdf5`` files (read-only, HDF5 lock) and mapping of h5py errors.

:func:`open_flow` opens a file read-only with ``locking=`` :data:`LOCKING`; an h5py failure
becomes ``InputFileError`` (``empty``: 0 bytes, ``not_hdf5``, ``truncated``, ``read_error``)
or ``FileNotReady`` (the writer still holds the HDF5 lock, errno 11). :func:`data_error` maps a
failure while reading the tables of an open file (``truncated`` / ``read_error``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import h5py

from wavedqm.errors import FileNotReady, InputFileError

LOCKING: Any = "best-effort"
"""h5py ``locking=``: take the HDF5 lock (so a file its writer still holds fails with errno 11)
but do not fail on file systems without lock support (NFS without lockd)."""


# --------------------------------------------------------------------------------------------
# opening and classification of errors


def _open_error(path: Path, err: OSError) -> Exception:
    """The wavedqm error for an h5py failure to open ``path``."""
    msg = str(err)
    low = msg.lower()
    if err.errno == errno.EAGAIN or "unable to lock file" in low:
        return FileNotReady(path, f"the HDF5 file is locked by its writer ({msg})")
    if "signature not found" in low:
        return InputFileError(
            path, "not_hdf5", "not an HDF5 file (no HDF5 signature)", "an HDF5 .FLOW.hdf5 file"
        )
    if "truncated" in low or "eof" in low:
        return InputFileError(
            path, "truncated", f"truncated HDF5 file ({msg})", "a completely written file"
        )
    return InputFileError(path, "read_error", f"cannot open the HDF5 file ({msg})")


def data_error(path: Path, err: Exception, what: str) -> InputFileError:
    """The wavedqm error for a failure while reading tables of an open file."""
    msg = str(err)
    low = msg.lower()
    if "truncated" in low or "eof" in low or "addr overflow" in low:
        return InputFileError(
            path, "truncated", f"truncated HDF5 file: {what}: {msg}", "a completely written file"
        )
    return InputFileError(path, "read_error", f"{what}: {msg}")


def open_flow(path: Path, locking: Any = LOCKING, **h5py_kwargs: Any) -> h5py.File:
    """Open ``path`` read-only, or raise ``InputFileError`` (``empty``, ``not_hdf5``,
    ``truncated``, ``read_error``) or ``FileNotReady`` (the writer holds the HDF5 lock).

    A missing file raises ``FileNotFoundError`` as usual. ``h5py_kwargs`` go to ``h5py.File``.
    """
    size = os.stat(path).st_size
    if size == 0:
        raise InputFileError(path, "empty", "file is empty (0 bytes)", "an HDF5 .FLOW.hdf5 file")
    try:
        return h5py.File(path, "r", locking=locking, **h5py_kwargs)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise _open_error(path, err) from err
