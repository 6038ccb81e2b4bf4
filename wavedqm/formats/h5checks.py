"""Checks of what an HDF5 header declares against what the file really holds, made before
anything is read or allocated from it (a hostile or half-written header must neither hang a
worker nor size an allocation).

- :func:`check_stored_rows`: a table declaring more rows than were ever written: contiguous
  storage that would run past the end of the file (``truncated``), or chunked storage with
  chunks never written (``unwritten_rows``: HDF5 would hand back fill values for them).
- :func:`check_allocation`: an allocation sized by the header beyond the configured
  ``[reader] max_allocation_bytes`` (``too_large``).

:data:`H5_ERRORS` are the exceptions h5py and numpy raise for a damaged header or chunk index
(seen by fuzzing: ``IndexError`` from a filter pipeline's parse, ``TypeError`` for a datatype
with no NumPy equivalent, ``OverflowError`` from a chunk offset past 2⁶³): every reader turns
them into an ``InputFileError`` with a reason.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import h5py

from wavedqm.errors import InputFileError

H5_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    RuntimeError,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
    OverflowError,
    zlib.error,
)
"""What reading a damaged HDF5 file can raise from h5py, numpy or zlib (module doc)."""

REASON_UNWRITTEN = "unwritten_rows"
REASON_TOO_LARGE = "too_large"
REASON_TRUNCATED = "truncated"


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size for messages."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_stored_rows(path: Path, dset: h5py.Dataset, name: str, file_size: int) -> None:
    """Raise ``InputFileError`` when the 1-D table ``dset`` declares rows the file does not
    hold (module doc). Costs a few metadata reads, never a read of the rows."""
    n_rows = int(dset.shape[0]) if dset.shape else 0
    if n_rows == 0:
        return
    row_bytes = int(dset.dtype.itemsize)
    declared = n_rows * row_bytes
    try:
        stored = int(dset.id.get_storage_size())
        chunks = dset.chunks
        n_chunks = int(dset.id.get_num_chunks()) if chunks else 0
    except H5_ERRORS as err:
        raise InputFileError(
            path, "read_error", f"{name}: cannot read its storage layout ({err})"
        ) from err
    if stored > file_size:
        raise InputFileError(
            path,
            REASON_TRUNCATED,
            f"{name} claims {human_bytes(stored)} of storage but the file is only "
            f"{human_bytes(file_size)}",
            "a completely written file",
        )
    if not chunks:
        if dset.compression is None and stored < declared:
            raise InputFileError(
                path,
                REASON_TRUNCATED,
                f"{name} declares {n_rows} rows ({human_bytes(declared)}) but only "
                f"{human_bytes(stored)} of them are stored",
                "a completely written file",
            )
        return
    chunk_rows = int(chunks[0])
    needed = -(-n_rows // chunk_rows)
    if n_chunks < needed:
        written = min(n_rows, n_chunks * chunk_rows)
        raise InputFileError(
            path,
            REASON_UNWRITTEN,
            f"{name} declares {n_rows} rows but at most {written} were ever written "
            f"({n_chunks} of its {needed} chunks of {chunk_rows} rows are stored; the rest "
            "would read as fill values)",
            "every declared row written (a writer that stopped early, or a damaged header)",
        )


def check_allocation(path: Path, what: str, nbytes: int, limit: int) -> None:
    """Raise ``InputFileError`` (``too_large``) when an allocation of ``nbytes`` sized by
    the file's header exceeds ``limit`` (``[reader] max_allocation_bytes``)."""
    if nbytes > limit:
        raise InputFileError(
            path,
            REASON_TOO_LARGE,
            f"{what} would need {human_bytes(nbytes)} of memory",
            f"at most {human_bytes(limit)}: [reader] max_allocation_bytes",
        )
