"""Reader of Tektronix ``.wfm`` reference waveform files (WFM#001/002/003), memory-mapped.

Layout (spec: tektronix-wfm.md; Tektronix 077-0220-xx): a static file header, a waveform
header with two explicit and two implicit dimension blocks, time-base and curve information for
the first frame, then for a FastFrame set of N + 1 frames N × 24-byte frame records (timing)
and N × 30-byte curve records, then the curve buffer at the offset stored in byte 16: N + 1
equal blocks of ``post-charge stop`` bytes, each pre-charge, record, post-charge. After the
curve buffer an 8-byte checksum (the sum of every byte before it) and, in 4/5/6-Series files,
a ``tekmeta!`` trailer. The bytes-to-EOF field (byte 11) counts from byte 15 to the end of the
checksum (checked on every sample file): a trailer is not included.

Versions differ only in offsets: v1 has no summary-frame field (every offset from byte 154 on
is 2 lower than in v2); v3 stores each dimension block's point density as f8 instead of u4
(each of the four blocks is 4 bytes longer than in v2). Both byte orders are read.

Reading: the whole file is mapped read-only (``mmap`` + ``np.frombuffer``) and
:attr:`WfmFile.raw` is a ``(frames, record_length)`` strided view into the mapping that skips
pre/post charge: no sample is copied until a consumer reads it. Every header value is checked
against the file size before anything large is allocated or mapped.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from wavedqm import constants as C
from wavedqm.errors import InputFileError
from wavedqm.formats.batch import WaveformBatch

FORMAT_NAME = "tektronix-wfm"
VERSIONS = (":WFM#001", ":WFM#002", ":WFM#003")
BYTE_ORDER_WORDS = {0x0F0F: "LE", 0xF0F0: "BE"}
"""Byte-order word at byte 0, read little-endian: 0x0F0F little-endian file, 0xF0F0 big."""
ENDIAN_CHAR = {"LE": "<", "BE": ">"}
EXPECTED_FILE = "a Tektronix WFM#001/002/003 reference waveform file"

BYTES_TO_EOF_BASE = 15
"""The bytes-to-EOF field (byte 11) counts from this byte (checked on every sample file)."""
CHECKSUM_BYTES = 8
"""u8 after the curve buffer: the sum of every byte of the file before it."""
TEKMETA_MAGIC = b"tekmeta!"
FRAME_RECORD_BYTES = 24
"""One FastFrame time-base record: u4 real-point offset, f8 tt offset, f8 frac s, i4 GMT s."""
CURVE_RECORD_BYTES = 30
"""One FastFrame curve record: u4 state, i4 checksum type, i2 checksum, 5 × u4 offsets."""

MAX_FRAMES = 10**7
MAX_RECORD_LENGTH = 2**31

FORMAT_CODES: dict[int, str] = {
    0: "i2",
    1: "i4",
    2: "u4",
    3: "u8",
    4: "f4",
    5: "f8",
    6: "u1",
    7: "i1",
}
"""Explicit-dimension data format code -> numpy type (without byte order). 6 and 7 (uint8,
int8) exist in v3 only: the reader accepts them in any version, the writer only in v3."""
V3_ONLY_CODES = (6, 7)
INVALID_FORMAT_CODE = {":WFM#001": 6, ":WFM#002": 6, ":WFM#003": 8}
"""Format code a scope writes into the unused explicit dimension 2 (EXP_INVALID_FORMAT)."""

RECORD_TYPES = {
    0: "scalar measurement",
    1: "scalar constant",
    2: "vector waveform",
    4: "invalid",
    5: "waveform database (pixel map)",
    6: "digital",
}
RECORD_TYPE_VECTOR = 2
STORAGE_TYPES = {
    0: "sample",
    1: "min/max pairs",
    2: "vertical histogram",
    3: "horizontal histogram",
    4: "row order",
    5: "column order",
    6: "invalid",
}
TIME_BASES = {0: "time", 1: "spectral magnitude", 2: "spectral phase", 3: "invalid"}
SET_TYPES = {0: "single waveform", 1: "FastFrame"}


# --------------------------------------------------------------------------------------------
# offsets


@dataclass(frozen=True)
class WfmLayout:
    """Byte offsets of one WFM version. Dimension-block fields are relative to the block."""

    version: str
    exp_dim1: int
    """Start of explicit dimension 1 (vertical: scale, offset, units, format, storage)."""
    exp_block: int
    """Bytes per explicit dimension block (160 in v3, 156 before)."""
    imp_dim1: int
    """Start of implicit dimension 1 (horizontal: dt, t0, size, units)."""
    imp_block: int
    """Bytes per implicit dimension block (136 in v3, 132 before)."""
    time_base1: int
    """Time-base info 1: u4 real-point spacing, i4 sweep, i4 type of base (0 = time)."""
    update_spec: int
    """First frame's timing: u4 real-point offset, f8 tt offset, f8 frac s, i4 GMT s."""
    curve_info: int
    """First frame's curve info: u4 state, i4 checksum type, i2 checksum, then u4 pre-charge
    start, data start, post-charge start, post-charge stop, end of curve buffer (bytes)."""
    header_end: int
    """The header ends here: FastFrame records follow (838 in v3)."""
    has_summary_frame: bool
    """v2 and v3 have a u2 summary-frame type at byte 154."""
    point_density_f8: bool


def _layout(version: str) -> WfmLayout:
    v = int(version[-3:])
    shift = 0 if v >= 2 else -2
    exp_block = 160 if v >= 3 else 156
    imp_block = 136 if v >= 3 else 132
    exp_dim1 = 168 + shift
    imp_dim1 = exp_dim1 + 2 * exp_block
    time_base1 = imp_dim1 + 2 * imp_block
    update_spec = time_base1 + 2 * 12
    curve_info = update_spec + FRAME_RECORD_BYTES
    return WfmLayout(
        version=version,
        exp_dim1=exp_dim1,
        exp_block=exp_block,
        imp_dim1=imp_dim1,
        imp_block=imp_block,
        time_base1=time_base1,
        update_spec=update_spec,
        curve_info=curve_info,
        header_end=curve_info + CURVE_RECORD_BYTES,
        has_summary_frame=v >= 2,
        point_density_f8=v >= 3,
    )


LAYOUTS: dict[str, WfmLayout] = {v: _layout(v) for v in VERSIONS}
"""v3: explicit dim 1 at 168, implicit dim 1 at 488, tt offset at 788, header end 838;
v2: 168, 480, 772, 822; v1: 166, 478, 770, 820."""

# static file information (same in every version)
OFF_BYTE_ORDER = 0
OFF_VERSION = 2
OFF_DIGITS = 10
OFF_BYTES_TO_EOF = 11
OFF_BYTES_PER_POINT = 15
OFF_CURVE_OFFSET = 16
OFF_LABEL = 40
LABEL_BYTES = 32
OFF_N_FRAMES_MINUS_1 = 72
OFF_HEADER_SIZE = 76
# waveform header (same in every version up to byte 154)
OFF_SET_TYPE = 78
OFF_WFM_COUNT = 82
OFF_UPDATE_SPEC_COUNT = 110
OFF_IMP_DIM_COUNT = 114
OFF_EXP_DIM_COUNT = 118
OFF_RECORD_TYPE = 122
OFF_ACCUMULATED = 134
OFF_TARGET_ACCUMULATION = 138
OFF_CURVE_REF_COUNT = 142
OFF_FF_REQUESTED = 146
OFF_FF_ACQUIRED = 150
OFF_SUMMARY_FRAME = 154
# relative to an explicit dimension block
EXP_SCALE = 0
EXP_OFFSET = 8
EXP_SIZE = 16
EXP_UNITS = 20
EXP_RESOLUTION = 56
EXP_FORMAT = 72
EXP_STORAGE = 76
EXP_USER_SCALE = 100
EXP_USER_UNITS = 108
EXP_POINT_DENSITY = 136
UNITS_BYTES = 20
# relative to an implicit dimension block
IMP_SCALE = 0
IMP_OFFSET = 8
IMP_SIZE = 16
IMP_UNITS = 20
IMP_USER_SCALE = 76
IMP_USER_UNITS = 84
IMP_POINT_DENSITY = 112


def _href_offset(block_point_density: int, layout: WfmLayout) -> int:
    """Offset of the f8 'href' that follows a block's point density."""
    return block_point_density + (8 if layout.point_density_f8 else 4)


def frame_record_dtype(byte_order: str) -> np.dtype:
    """numpy dtype of a 24-byte FastFrame time-base record (also the first frame's)."""
    e = ENDIAN_CHAR[byte_order]
    return np.dtype(
        {
            "names": ["real_point_offset", "tt_offset", "frac_sec", "gmt_sec"],
            "formats": [e + "u4", e + "f8", e + "f8", e + "i4"],
            "offsets": [0, 4, 12, 20],
            "itemsize": FRAME_RECORD_BYTES,
        }
    )


def curve_record_dtype(byte_order: str) -> np.dtype:
    """numpy dtype of a 30-byte curve record (offsets in bytes from the frame's block)."""
    e = ENDIAN_CHAR[byte_order]
    names = ["state_flags", "checksum_type", "checksum", "precharge_start", "data_start"]
    names += ["postcharge_start", "postcharge_stop", "end_of_curve"]
    return np.dtype(
        {
            "names": names,
            "formats": [e + "u4", e + "i4", e + "i2"] + [e + "u4"] * 5,
            "offsets": [0, 4, 8, 10, 14, 18, 22, 26],
            "itemsize": CURVE_RECORD_BYTES,
        }
    )


# --------------------------------------------------------------------------------------------
# the header


@dataclass(frozen=True)
class WfmHeader:
    """What a ``.wfm`` file holds, from its header and size only (no sample is read).

    Volts are ``raw × vscale + voffset``; sample ``i`` of a frame is at ``t0_s + i·dt_s``
    (seconds, relative to that frame's trigger).
    """

    path: Path
    version: str
    """``":WFM#001"``, ``":WFM#002"`` or ``":WFM#003"``."""
    byte_order: str
    """``"LE"`` or ``"BE"``."""
    set_type: int
    """0 single waveform, 1 FastFrame."""
    frames: int
    """Frames in the file: N + 1 (N at byte 72)."""
    acquired_fast_frames: int
    """FastFrames acquired as the scope records it (0 for a single waveform)."""
    record_length: int
    """Samples per frame, pre/post charge excluded."""
    dtype: str
    """numpy dtype string of a raw sample, with byte order (e.g. ``"<i2"``, ``"|i1"``)."""
    bytes_per_point: int
    precharge_pts: int
    """Samples before each frame's record in the curve buffer (not part of the record)."""
    postcharge_pts: int
    """Samples after each frame's record in the curve buffer (not part of the record)."""
    curve_offset: int
    """Byte offset of the curve buffer in the file."""
    vscale: float
    """V per raw count (vertical scale)."""
    voffset: float
    """V added after scaling (vertical offset)."""
    vunits: str
    dt_s: float
    """Sample interval (s)."""
    t0_s: float
    """Time of the first record sample relative to the trigger (s)."""
    tunits: str
    label: str
    has_tekmeta_trailer: bool
    size_bytes: int
    """File size in bytes."""
    format_code: int
    """Explicit-dimension data format code (0 int16 ... 7 int8)."""
    record_type: int
    """2 vector waveform; 6 digital (refused) ..."""
    storage_type: int
    """0 sample storage (the only one read)."""
    time_base: int
    """0 time (the only one read); 1/2 spectral magnitude/phase."""
    summary_frame_type: int | None
    """0 off, 1 average, 2 envelope (v2/v3); None in v1 (no such field)."""
    requested_fast_frames: int
    frame_stride_bytes: int
    """Bytes per frame block of the curve buffer (pre-charge + record + post-charge)."""
    data_start_bytes: int
    """Offset of the record inside a frame block (bytes)."""
    header_bytes: int
    """End of the version's fixed header (838 in v3); frame records follow."""
    checksum_offset: int
    """Byte offset of the 8-byte checksum (just after the curve buffer)."""
    stored_checksum: int

    @property
    def frame_stride_pts(self) -> int:
        return self.frame_stride_bytes // self.bytes_per_point

    @property
    def data_start_pts(self) -> int:
        return self.data_start_bytes // self.bytes_per_point

    @property
    def curve_end(self) -> int:
        """Byte offset just after the curve buffer (= :attr:`checksum_offset`)."""
        return self.curve_offset + self.frames * self.frame_stride_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain str/int/float/bool/None values."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def _fail(path: Path, reason: str, what: str, expected: str = "") -> InputFileError:
    return InputFileError(path, reason, what, expected)


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


# --------------------------------------------------------------------------------------------
# the open file


FrameSelection = slice | int | Sequence[int] | np.ndarray


class WfmFile:
    """An open, memory-mapped ``.wfm`` file: ``with open_wfm(path) as w: w.raw ...``.

    - :attr:`raw`: ``(frames, record_length)`` view of the raw samples in the file's dtype
      (read-only, no copy; rows are ``frame_stride_bytes`` apart when there is pre/post charge).
    - :attr:`curve_block`: ``(frames, pre + record + post)`` view of the whole curve buffer.
    - per-frame timing (float64/int64 arrays of ``frames``): :attr:`trigger_offsets`,
      :attr:`frac_seconds`, :attr:`gmt_seconds`, :attr:`timestamps_s`.
    - :meth:`volts` converts only the frames asked for; :meth:`batches` streams frames as
      :class:`WaveformBatch`.

    ``close()`` (or leaving the ``with`` block) drops the reader's views and unmaps the file;
    arrays a caller still holds keep the mapping alive until they are released (Python refuses
    to unmap a buffer in use), so they never point at unmapped memory.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mm: mmap.mmap | None = None
        self._block: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._timing: dict[str, np.ndarray] | None = None
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.header = _parse(f, self.path, size, check_supported=True)
            try:
                self._mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
            except ValueError as err:  # the file shrank since its size was read
                raise _fail(
                    self.path,
                    "truncated",
                    f"cannot map {size} bytes: {err}",
                    "a completely written file",
                ) from err
        h = self.header
        try:
            self._block = np.frombuffer(
                self._mm,
                dtype=np.dtype(h.dtype),
                count=h.frames * h.frame_stride_pts,
                offset=h.curve_offset,
            ).reshape(h.frames, h.frame_stride_pts)
        except BaseException:
            self.close()
            raise
        self._raw = self._block[:, h.data_start_pts : h.data_start_pts + h.record_length]

    # -- lifetime -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closed (the mapping itself is released when no caller view is left)."""
        return self._raw is None

    def close(self) -> None:
        self._raw = None
        self._block = None
        mm, self._mm = self._mm, None
        if mm is not None:
            # BufferError: a caller still holds a view; the mapping goes away with it
            with contextlib.suppress(BufferError):
                mm.close()

    def __enter__(self) -> WfmFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _need_open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._raw is None or self._block is None:
            raise ValueError(f"{self.path}: the WFM file is closed")
        return self._raw, self._block

    # -- samples --------------------------------------------------------------------------------

    @property
    def raw(self) -> np.ndarray:
        """``(frames, record_length)`` raw samples, file dtype, a read-only view (no copy)."""
        return self._need_open()[0]

    @property
    def curve_block(self) -> np.ndarray:
        """``(frames, precharge + record + postcharge)``: the curve buffer, a read-only view."""
        return self._need_open()[1]

    def volts(self, frames: FrameSelection = slice(None)) -> np.ndarray:
        """float64 V of the selected frames (``raw × vscale + voffset``); only those frames are
        converted. An int selects one frame (1-D result), a slice/sequence several (2-D)."""
        raw = self._need_open()[0]
        out = raw[frames].astype(np.float64)  # always a fresh array
        out *= self.header.vscale
        out += self.header.voffset
        return out

    def time_axis_s(self) -> np.ndarray:
        """float64 ``(record_length,)``: ``t0_s + i·dt_s`` (s, relative to the trigger)."""
        h = self.header
        return h.t0_s + np.arange(h.record_length, dtype=np.float64) * h.dt_s

    # -- per-frame timing -----------------------------------------------------------------------

    def _frame_timing(self) -> dict[str, np.ndarray]:
        if self._timing is None:
            if self._mm is None:
                raise ValueError(f"{self.path}: the WFM file is closed")
            h = self.header
            lay = LAYOUTS[h.version]
            rec = frame_record_dtype(h.byte_order)
            first = np.frombuffer(self._mm, rec, count=1, offset=lay.update_spec)
            rest = np.frombuffer(self._mm, rec, count=h.frames - 1, offset=lay.header_end)
            self._timing = {
                name: np.concatenate([first[name], rest[name]]).astype(kind)
                for name, kind in (
                    ("tt_offset", np.float64),
                    ("frac_sec", np.float64),
                    ("gmt_sec", np.int64),
                )
            }
            del first, rest
        return self._timing

    @property
    def trigger_offsets(self) -> np.ndarray:
        """float64 ``(frames,)``: each frame's trigger time-stamp offset ("tt offset", the
        fractional trigger position in sample intervals: × ``dt_s`` gives s)."""
        return self._frame_timing()["tt_offset"]

    @property
    def frac_seconds(self) -> np.ndarray:
        """float64 ``(frames,)``: fractional second of each frame's trigger (s)."""
        return self._frame_timing()["frac_sec"]

    @property
    def gmt_seconds(self) -> np.ndarray:
        """int64 ``(frames,)``: GMT (unix) second of each frame's trigger (s)."""
        return self._frame_timing()["gmt_sec"]

    @property
    def timestamps_s(self) -> np.ndarray:
        """float64 ``(frames,)``: unix time of each frame's trigger, ``gmt + frac`` (s)."""
        t = self._frame_timing()
        return t["gmt_sec"].astype(np.float64) + t["frac_sec"]

    # -- streaming ------------------------------------------------------------------------------

    def batches(
        self, frames_per_batch: int | None = None, *, native: bool = True
    ) -> Iterator[WaveformBatch]:
        """Yield the frames in order, ``frames_per_batch`` at a time (the last may be shorter).

        ``samples`` is ``(n, record_length)``: a view into the mapping (no copy) — except for a
        file whose byte order is not the machine's with ``native=True`` (numba kernels cannot
        read non-native arrays), where it is a byte-swapped copy in one buffer reused by every
        batch. Default batch size: ``READ_CHUNK_BYTES`` of samples. ``valid`` is None (every
        frame holds a waveform), ``trig_type`` zeros, ``time_s`` the frames' unix times (NaN for
        a frame without an absolute time, GMT second <= 0, as the FLOW reader does).
        """
        raw = self._need_open()[0]
        h = self.header
        if frames_per_batch is None:
            frames_per_batch = max(1, C.READ_CHUNK_BYTES // (h.record_length * h.bytes_per_point))
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch={frames_per_batch} (expected >= 1)")
        swap = native and not raw.dtype.isnative
        buf = (
            np.empty(
                (min(frames_per_batch, h.frames), h.record_length), raw.dtype.newbyteorder("=")
            )
            if swap
            else None
        )
        times = self.timestamps_s.copy()
        times[self.gmt_seconds <= 0] = np.nan
        for a in range(0, h.frames, frames_per_batch):
            b = min(h.frames, a + frames_per_batch)
            samples = raw[a:b]
            if buf is not None:
                samples = buf[: b - a]
                np.copyto(samples, raw[a:b])
            yield WaveformBatch(
                samples=samples,
                valid=None,
                trig_type=np.zeros(b - a, np.uint8),
                time_s=times[a:b],
                first_event=a,
            )

    # -- integrity ------------------------------------------------------------------------------

    def verify_checksum(self, chunk_bytes: int = C.READ_CHUNK_BYTES) -> bool:
        """True if the stored 8-byte checksum equals the sum of every byte before it (reads
        the whole file once, ``chunk_bytes`` at a time)."""
        if self._mm is None:
            raise ValueError(f"{self.path}: the WFM file is closed")
        end = self.header.checksum_offset
        total = np.uint64(0)
        step = max(1, int(chunk_bytes))
        for a in range(0, end, step):
            part = np.frombuffer(self._mm, np.uint8, count=min(step, end - a), offset=a)
            total = total + part.sum(dtype=np.uint64)
            del part
        return int(total) == self.header.stored_checksum


WfmRecord = WfmFile
"""Alias: the open file is the record set."""


def open_wfm(path: str | Path) -> WfmFile:
    """Open and validate a ``.wfm`` file (see :func:`read_wfm_header` for the errors);
    use as a context manager."""
    return WfmFile(path)


# --------------------------------------------------------------------------------------------
# inspect


def _mean_raw(raw: np.ndarray, chunk_bytes: int = C.READ_CHUNK_BYTES) -> float:
    """Mean of ``raw`` in float64, summed in bounded row chunks (no full float copy)."""
    rows = max(1, chunk_bytes // max(1, raw.shape[1] * raw.dtype.itemsize))
    total = 0.0
    for a in range(0, raw.shape[0], rows):
        total += float(raw[a : a + rows].sum(dtype=np.float64))
    return total / raw.size


def _time_or_none(gmt: int, frac: float) -> float | None:
    return float(gmt) + float(frac) if gmt > 0 else None


def inspect_wfm(path: str | Path) -> dict[str, Any]:
    """What a ``.wfm`` file holds, JSON-ready: ``format`` ("tektronix-wfm"), every header
    value, ``frame0_mean_v`` / ``last_frame_mean_v`` / ``mean_v`` (V, means of the samples
    of the first frame, of the last frame, of all frames), ``time_start_s`` / ``time_end_s``
    (unix time of the first/last frame's trigger, None without an absolute time) and the first
    and last frame's ``gmt``/``frac`` seconds and trigger offsets. Reads every sample once.
    """
    with open_wfm(path) as w:
        h = w.header
        raw = w.raw
        out: dict[str, Any] = {"format": FORMAT_NAME}
        out.update(h.to_dict())
        scale, offset = h.vscale, h.voffset
        out["frame0_mean_v"] = _mean_raw(raw[:1]) * scale + offset
        out["last_frame_mean_v"] = _mean_raw(raw[-1:]) * scale + offset
        out["mean_v"] = _mean_raw(raw) * scale + offset
        gmt, frac, tt = w.gmt_seconds, w.frac_seconds, w.trigger_offsets
        out["time_start_s"] = _time_or_none(int(gmt[0]), float(frac[0]))
        out["time_end_s"] = _time_or_none(int(gmt[-1]), float(frac[-1]))
        out["gmt_seconds_first"] = int(gmt[0])
        out["gmt_seconds_last"] = int(gmt[-1])
        out["frac_seconds_first"] = float(frac[0])
        out["frac_seconds_last"] = float(frac[-1])
        out["trigger_offset_first"] = float(tt[0])
        out["trigger_offset_last"] = float(tt[-1])
        out["native_byte_order"] = h.byte_order == ("LE" if sys.byteorder == "little" else "BE")
        del raw
    return out
