"""Binary layout of Tektronix ``.wfm`` files (WFM#001/002/003): constants, codes, offsets.

What the reader (:mod:`wavedqm.formats.wfm`) and the writer (:mod:`wavedqm.formats.wfm_writer`)
share (spec: tektronix-wfm.md; Tektronix 077-0220-xx): the format name, the version strings and
byte-order words, the sizes of the checksum (8 bytes), of a FastFrame frame record (24 bytes)
and curve record (30 bytes), the sanity limits on frames and record length (samples), the data
format codes and the record/storage/time-base/set type tables, the byte offsets of every
header field (:class:`WfmLayout` per version in :data:`LAYOUTS`; ``OFF_*`` absolute, ``EXP_*``
/ ``IMP_*`` relative to a dimension block) and the numpy dtypes of the frame and curve records.
Every offset and size is in bytes. Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
