"""Refusals of a ``.wfm`` file that is not one, or not one wavedqm reads.

- :func:`_check_start`: the first 10 bytes (byte-order word at byte 0, version string at
  byte 2) -> ``InputFileError`` reasons ``not_wfm``, ``truncated`` (a file shorter than 10 bytes
  that starts like a WFM file) or ``unsupported`` (an unknown ``:WFM#nnn`` version).
- :func:`_check_supported` / :func:`_unsupported_record`: reason ``unsupported`` for anything
  but an analog vector waveform of samples in time (digital or other record types, not one
  implicit and one explicit dimension, min/max or histogram storage, a spectral time base).

The size and layout checks (``wrong_layout``, ``truncated`` against the file size in bytes)
are made while the header is read, in :mod:`wavedqm.formats.wfm_parse`.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from wavedqm.errors import InputFileError
from wavedqm.formats.wfm_header import WfmHeader
from wavedqm.formats.wfm_layout import (
    BYTE_ORDER_WORDS,
    EXPECTED_FILE,
    LAYOUTS,
    OFF_BYTE_ORDER,
    OFF_DIGITS,
    OFF_VERSION,
    RECORD_TYPE_VECTOR,
    RECORD_TYPES,
    STORAGE_TYPES,
    TIME_BASES,
    VERSIONS,
)


def _fail(path: Path, reason: str, what: str, expected: str = "") -> InputFileError:
    return InputFileError(path, reason, what, expected)


def _check_start(path: Path, head: bytes, size: int) -> tuple[str, str]:
    """(byte order, version) from the first 10 bytes; not_wfm / truncated / unsupported."""
    if size < OFF_DIGITS:
        if any((word + b":WFM#00").startswith(head) for word in (b"\x0f\x0f", b"\xf0\xf0")):
            raise _fail(
                path,
                "truncated",
                f"file is {size} bytes long: cut inside the WFM header",
                f"at least {LAYOUTS[':WFM#001'].header_end} bytes for {EXPECTED_FILE}",
            )
        raise _fail(
            path, "not_wfm", f"{size}-byte file that does not start like a WFM file", EXPECTED_FILE
        )
    word = struct.unpack_from("<H", head, OFF_BYTE_ORDER)[0]
    if word not in BYTE_ORDER_WORDS:
        raise _fail(
            path,
            "not_wfm",
            f"byte-order word at byte 0 is 0x{word:04X}",
            f"0x0F0F (little-endian) or 0xF0F0 (big-endian) in {EXPECTED_FILE}",
        )
    version_bytes = head[OFF_VERSION : OFF_VERSION + 8]
    version = version_bytes.decode("latin-1")
    if version not in VERSIONS:
        if re.fullmatch(r":WFM#\d{3}", version):
            raise _fail(
                path,
                "unsupported",
                f"WFM file version {version} is not supported",
                "version :WFM#001, :WFM#002 or :WFM#003",
            )
        raise _fail(
            path,
            "not_wfm",
            f"version string at byte 2 is {version_bytes!r}",
            f"':WFM#001', ':WFM#002' or ':WFM#003' in {EXPECTED_FILE}",
        )
    return BYTE_ORDER_WORDS[word], version


def _unsupported_record(path: Path, record_type: int) -> InputFileError:
    kind = RECORD_TYPES.get(record_type, "unknown")
    what = f"record type {record_type} ({kind})"
    if record_type == 6:
        what = "a digital record (record type 6: the logic levels of an MSO's digital channels)"
    return _fail(
        path,
        "unsupported",
        f"{what}: wavedqm reads only analog vector waveforms",
        "record type 2 (WFMDATA_VECTOR, an analog waveform)",
    )


def _check_supported(path: Path, h: WfmHeader, imp_dims: int, exp_dims: int) -> None:
    """Refuse (reason ``unsupported``) anything but an analog vector waveform of samples."""
    if h.record_type != RECORD_TYPE_VECTOR:
        raise _unsupported_record(path, h.record_type)
    if imp_dims != 1 or exp_dims != 1:
        raise _fail(
            path,
            "unsupported",
            f"{imp_dims} implicit and {exp_dims} explicit dimensions",
            "one of each (a voltage-versus-time waveform)",
        )
    if h.storage_type != 0:
        kind = STORAGE_TYPES.get(h.storage_type, "unknown")
        raise _fail(
            path,
            "unsupported",
            f"samples stored as storage type {h.storage_type} ({kind})",
            "storage type 0 (one sample per point)",
        )
    if h.time_base != 0:
        kind = TIME_BASES.get(h.time_base, "unknown")
        raise _fail(
            path,
            "unsupported",
            f"time base {h.time_base} ({kind}), not a waveform in time",
            "time base 0 (BASE_TIME)",
        )
