"""Reading and validating the header of a ``.wfm`` file: :func:`read_wfm_header`.

:func:`_parse` reads the first header bytes of an open file (at most the longest version's
header, 838 bytes in v3), identifies and refuses files with :mod:`wavedqm.formats.wfm_checks`,
then checks every size against the others and against the file size (bytes) before anything
large is allocated or mapped: data format code and bytes per point, frames (N + 1), the curve
offsets (bytes, whole samples), record length (samples), curve buffer offset, bytes-to-EOF
field and the curve buffer plus 8-byte checksum, the trailing bytes (only a ``tekmeta!``
trailer may follow). It reads the stored checksum and returns a :class:`WfmHeader`. Error
reasons: ``empty``, ``not_wfm``, ``unsupported``, ``truncated``, ``wrong_layout``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from wavedqm.errors import InputFileError
from wavedqm.formats.wfm_checks import (
    _check_start,
    _check_supported,
    _fail,
    _unsupported_record,
)
from wavedqm.formats.wfm_header import WfmHeader
from wavedqm.formats.wfm_layout import (
    BYTES_TO_EOF_BASE,
    CHECKSUM_BYTES,
    CURVE_RECORD_BYTES,
    ENDIAN_CHAR,
    EXP_FORMAT,
    EXP_OFFSET,
    EXP_SCALE,
    EXP_STORAGE,
    EXP_UNITS,
    EXPECTED_FILE,
    FORMAT_CODES,
    FRAME_RECORD_BYTES,
    IMP_OFFSET,
    IMP_SCALE,
    IMP_UNITS,
    LABEL_BYTES,
    LAYOUTS,
    MAX_FRAMES,
    MAX_RECORD_LENGTH,
    OFF_BYTES_PER_POINT,
    OFF_BYTES_TO_EOF,
    OFF_CURVE_OFFSET,
    OFF_EXP_DIM_COUNT,
    OFF_FF_ACQUIRED,
    OFF_FF_REQUESTED,
    OFF_IMP_DIM_COUNT,
    OFF_LABEL,
    OFF_N_FRAMES_MINUS_1,
    OFF_RECORD_TYPE,
    OFF_SET_TYPE,
    OFF_SUMMARY_FRAME,
    RECORD_TYPE_VECTOR,
    SET_TYPES,
    TEKMETA_MAGIC,
    UNITS_BYTES,
)


class _Fields:
    """struct reads of one byte order from a bytes buffer."""

    def __init__(self, buf: bytes, endian: str) -> None:
        self.buf = buf
        self.e = endian

    def get(self, fmt: str, offset: int) -> Any:
        return struct.unpack_from(self.e + fmt, self.buf, offset)[0]

    def text(self, offset: int, n: int) -> str:
        raw = self.buf[offset : offset + n].split(b"\0", 1)[0]
        return raw.decode("latin-1").strip()


def _parse(f: BinaryIO, path: Path, size: int, check_supported: bool) -> WfmHeader:
    """Read and validate the header of an open file of ``size`` bytes."""
    if size == 0:
        raise _fail(path, "empty", "file is empty (0 bytes)", EXPECTED_FILE)
    f.seek(0)
    head = f.read(max(lay.header_end for lay in LAYOUTS.values()))
    byte_order, version = _check_start(path, head, size)
    lay = LAYOUTS[version]
    if size < lay.header_end:
        raise _fail(
            path,
            "truncated",
            f"file is {size} bytes long: cut inside the {version} header",
            f"at least the {lay.header_end}-byte header",
        )
    r = _Fields(head, ENDIAN_CHAR[byte_order])
    n_minus_1 = r.get("I", OFF_N_FRAMES_MINUS_1)
    frames = n_minus_1 + 1
    bpp = r.get("B", OFF_BYTES_PER_POINT)
    code = r.get("i", lay.exp_dim1 + EXP_FORMAT)
    ci = lay.curve_info
    pre_start, data_start, post_start, post_stop = (r.get("I", ci + 10 + 4 * k) for k in range(4))
    bytes_to_eof = r.get("i", OFF_BYTES_TO_EOF)
    curve_offset = r.get("i", OFF_CURVE_OFFSET)

    def wrong(what: str, expected: str) -> InputFileError:
        return _fail(path, "wrong_layout", what, expected)

    # header values on their own ----------------------------------------------------------
    summary = r.get("H", OFF_SUMMARY_FRAME) if lay.has_summary_frame else None
    set_type = r.get("i", OFF_SET_TYPE)
    record_type = r.get("i", OFF_RECORD_TYPE)
    storage = r.get("i", lay.exp_dim1 + EXP_STORAGE)
    time_base = r.get("i", lay.time_base1 + 8)
    imp_dims = r.get("I", OFF_IMP_DIM_COUNT)
    exp_dims = r.get("I", OFF_EXP_DIM_COUNT)
    if check_supported and record_type != RECORD_TYPE_VECTOR:
        # say "digital" before complaining about sizes a digital record may use differently
        raise _unsupported_record(path, record_type)
    if code not in FORMAT_CODES:
        raise wrong(
            f"data format code {code} at byte {lay.exp_dim1 + EXP_FORMAT}",
            "0 int16, 1 int32, 2 uint32, 3 uint64, 4 float32, 5 float64, 6 uint8 or 7 int8",
        )
    dt = np.dtype(FORMAT_CODES[code]).newbyteorder(ENDIAN_CHAR[byte_order])
    if bpp != dt.itemsize:
        raise wrong(
            f"{bpp} bytes per point (byte 15) with data format code {code} ({dt.name})",
            f"{dt.itemsize} bytes per point for {dt.name}",
        )
    if frames > MAX_FRAMES:
        raise wrong(
            f"{frames} frames (N + 1, N = {n_minus_1} at byte 72)",
            f"at most {MAX_FRAMES} frames",
        )
    if set_type not in SET_TYPES:
        raise wrong(f"set type {set_type} at byte 78", "0 (single waveform) or 1 (FastFrame)")
    offsets = (pre_start, data_start, post_start, post_stop)
    if not pre_start <= data_start <= post_start <= post_stop:
        raise wrong(
            f"curve offsets pre-charge start {pre_start}, data start {data_start}, "
            f"post-charge start {post_start}, post-charge stop {post_stop} (bytes)",
            "pre-charge start <= data start <= post-charge start <= post-charge stop",
        )
    if any(v % bpp for v in offsets):
        raise wrong(
            f"curve offsets {offsets} (bytes) not multiples of {bpp} bytes per point",
            "whole samples",
        )
    record_length = (post_start - data_start) // bpp
    if record_length == 0 or record_length > MAX_RECORD_LENGTH:
        raise wrong(
            f"record length {record_length} samples "
            f"(data start {data_start}, post-charge start {post_start} bytes, {bpp} per point)",
            f"1 to {MAX_RECORD_LENGTH} samples per frame",
        )
    records_end = lay.header_end + (frames - 1) * (FRAME_RECORD_BYTES + CURVE_RECORD_BYTES)
    if curve_offset < records_end:
        raise wrong(
            f"curve buffer offset {curve_offset} (byte 16) inside the header and "
            f"{frames - 1} FastFrame records that end at byte {records_end}",
            f"a curve buffer at byte {records_end} or later",
        )
    curve_end = curve_offset + frames * post_stop
    wfm_end = BYTES_TO_EOF_BASE + bytes_to_eof
    if bytes_to_eof < 0 or wfm_end != curve_end + CHECKSUM_BYTES:
        raise wrong(
            f"bytes-to-EOF field (byte 11) puts the end of the waveform data at byte "
            f"{wfm_end}, but {frames} frames × {post_stop} bytes from byte {curve_offset} "
            f"plus the {CHECKSUM_BYTES}-byte checksum end at byte {curve_end + CHECKSUM_BYTES}",
            "the two to agree",
        )
    # the header against the file ---------------------------------------------------------
    if size < wfm_end:
        raise _fail(
            path,
            "truncated",
            f"file is {size} bytes long but its header describes {frames} frame(s) of "
            f"{record_length} samples whose curve buffer and checksum end at byte {wfm_end}",
            "a completely written file",
        )
    has_trailer = False
    if size > wfm_end:
        f.seek(wfm_end)
        tail = f.read(len(TEKMETA_MAGIC))
        if not (tail.startswith(TEKMETA_MAGIC) or TEKMETA_MAGIC.startswith(tail)):
            raise wrong(
                f"file is {size} bytes long but its waveform data and checksum end at byte "
                f"{wfm_end}; the {size - wfm_end} bytes after them start with {tail!r}",
                f"the file to end there or a {TEKMETA_MAGIC.decode()} trailer",
            )
        has_trailer = True
    f.seek(curve_end)
    (checksum,) = struct.unpack(r.e + "Q", f.read(CHECKSUM_BYTES))
    ed1, id1 = lay.exp_dim1, lay.imp_dim1
    header = WfmHeader(
        path=path,
        version=version,
        byte_order=byte_order,
        set_type=set_type,
        frames=frames,
        acquired_fast_frames=r.get("I", OFF_FF_ACQUIRED),
        record_length=record_length,
        dtype=dt.str,
        bytes_per_point=bpp,
        precharge_pts=(data_start - pre_start) // bpp,
        postcharge_pts=(post_stop - post_start) // bpp,
        curve_offset=curve_offset,
        vscale=r.get("d", ed1 + EXP_SCALE),
        voffset=r.get("d", ed1 + EXP_OFFSET),
        vunits=r.text(ed1 + EXP_UNITS, UNITS_BYTES),
        dt_s=r.get("d", id1 + IMP_SCALE),
        t0_s=r.get("d", id1 + IMP_OFFSET),
        tunits=r.text(id1 + IMP_UNITS, UNITS_BYTES),
        label=r.text(OFF_LABEL, LABEL_BYTES),
        has_tekmeta_trailer=has_trailer,
        size_bytes=size,
        format_code=code,
        record_type=record_type,
        storage_type=storage,
        time_base=time_base,
        summary_frame_type=summary,
        requested_fast_frames=r.get("I", OFF_FF_REQUESTED),
        frame_stride_bytes=post_stop,
        data_start_bytes=data_start,
        header_bytes=lay.header_end,
        checksum_offset=curve_end,
        stored_checksum=checksum,
    )
    if check_supported:
        _check_supported(path, header, imp_dims, exp_dims)
    return header


def read_wfm_header(path: str | Path, *, check_supported: bool = True) -> WfmHeader:
    """Read and validate the header of a ``.wfm`` file (a few hundred bytes are read).

    Raises ``InputFileError`` with ``reason``: ``empty``; ``not_wfm`` (bad byte-order word or
    version string); ``unsupported`` (unknown WFM version; with ``check_supported``: a digital
    or other non-vector record, min/max storage, a spectral time base); ``truncated`` (the file
    ends before the header or before the curve buffer and checksum it describes);
    ``wrong_layout`` (sizes that contradict each other or the file, absurd sizes, bytes per
    point not matching the data type, unknown trailing bytes). ``FileNotFoundError`` as is.
    ``check_supported=False`` describes any well-formed file (e.g. a digital record).
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        return _parse(f, path, size, check_supported)
