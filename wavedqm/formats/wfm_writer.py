"""Writer of Tektronix ``.wfm`` files (WFM#001/002/003, both byte orders), for the simulator.

Writes exactly the layout :mod:`wavedqm.formats.wfm` reads (spec: tektronix-wfm.md): the
version's header with every field the reader uses at its offset (and the others filled as a
scope fills them), for a FastFrame set (frames > 1, set type 1) the N × 24-byte frame timing
records and N × 30-byte curve records, the curve buffer (per frame: pre-charge filled with the
frame's first sample, the record, post-charge filled with its last sample) and the 8-byte
checksum (the sum of every byte before it). No ``tekmeta!`` trailer.

Samples are written with numpy in chunks of whole frames (bounded memory, no per-sample
Python loop). The file is written in place: publishing it atomically (temporary name, then
rename) is the caller's job.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.formats.wfm_layout import (
    BYTES_TO_EOF_BASE,
    CHECKSUM_BYTES,
    CURVE_RECORD_BYTES,
    ENDIAN_CHAR,
    EXP_FORMAT,
    EXP_OFFSET,
    EXP_POINT_DENSITY,
    EXP_RESOLUTION,
    EXP_SCALE,
    EXP_STORAGE,
    EXP_UNITS,
    EXP_USER_SCALE,
    EXP_USER_UNITS,
    FORMAT_CODES,
    FRAME_RECORD_BYTES,
    IMP_OFFSET,
    IMP_POINT_DENSITY,
    IMP_SCALE,
    IMP_SIZE,
    IMP_UNITS,
    IMP_USER_SCALE,
    IMP_USER_UNITS,
    INVALID_FORMAT_CODE,
    LABEL_BYTES,
    LAYOUTS,
    MAX_FRAMES,
    OFF_ACCUMULATED,
    OFF_BYTE_ORDER,
    OFF_BYTES_PER_POINT,
    OFF_BYTES_TO_EOF,
    OFF_CURVE_OFFSET,
    OFF_CURVE_REF_COUNT,
    OFF_DIGITS,
    OFF_EXP_DIM_COUNT,
    OFF_FF_ACQUIRED,
    OFF_FF_REQUESTED,
    OFF_HEADER_SIZE,
    OFF_IMP_DIM_COUNT,
    OFF_LABEL,
    OFF_N_FRAMES_MINUS_1,
    OFF_RECORD_TYPE,
    OFF_SET_TYPE,
    OFF_SUMMARY_FRAME,
    OFF_TARGET_ACCUMULATION,
    OFF_UPDATE_SPEC_COUNT,
    OFF_VERSION,
    OFF_WFM_COUNT,
    RECORD_TYPE_VECTOR,
    UNITS_BYTES,
    V3_ONLY_CODES,
    VERSIONS,
    WfmLayout,
    curve_record_dtype,
    frame_record_dtype,
)

WRITE_CHUNK_BYTES = 8 * 2**20
"""Curve-buffer bytes assembled per write (whole frames; at least one frame)."""
WAVEFORM_HEADER_SIZE = 512
"""Value scopes store in the u2 'size of the waveform header' field (byte 76)."""
BYTE_ORDER_BYTES = {"LE": b"\x0f\x0f", "BE": b"\xf0\xf0"}
MAX_BYTES_TO_EOF = 2**31 - 1
"""The bytes-to-EOF field is an i4: a WFM file holds at most ~2 GiB."""

_CODE_BY_TYPE = {np.dtype(t).newbyteorder("=").str: c for c, t in FORMAT_CODES.items()}


def format_code(dtype: np.dtype | type | str) -> int:
    """The WFM data format code of a numpy dtype (any byte order); ValueError if none."""
    dt = np.dtype(dtype)
    key = dt.newbyteorder("=").str if dt.kind in "iuf" else None
    if key not in _CODE_BY_TYPE:
        allowed = ", ".join(np.dtype(t).name for t in FORMAT_CODES.values())
        raise ValueError(f"samples of dtype {dt} cannot be stored in a WFM file ({allowed})")
    return _CODE_BY_TYPE[key]


def _per_frame(name: str, value: Any, frames: int, kind: type) -> np.ndarray:
    if value is None:
        return np.zeros(frames, kind)
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.full(frames, arr, kind)
    if arr.shape != (frames,):
        raise ValueError(f"{name} has shape {arr.shape} (expected a scalar or ({frames},))")
    return arr.astype(kind)


def _put_text(buf: bytearray, offset: int, text: str, size: int, what: str) -> None:
    raw = text.encode("latin-1")
    if len(raw) >= size:
        raise ValueError(f"{what} {text!r} is {len(raw)} bytes (at most {size - 1})")
    buf[offset : offset + len(raw)] = raw


def _header(
    lay: WfmLayout,
    e: str,
    *,
    code: int,
    bpp: int,
    frames: int,
    record: int,
    curve_offset: int,
    bytes_to_eof: int,
    dt_s: float,
    t0_s: float,
    vscale: float,
    voffset: float,
    vunits: str,
    tunits: str,
    label: str,
    timing0: tuple[float, float, int],
    curve_info: bytes,
) -> bytearray:
    buf = bytearray(lay.header_end)

    def put(fmt: str, offset: int, value: Any) -> None:
        struct.pack_into(e + fmt, buf, offset, value)

    # static file information
    buf[OFF_BYTE_ORDER : OFF_BYTE_ORDER + 2] = BYTE_ORDER_BYTES["LE" if e == "<" else "BE"]
    buf[OFF_VERSION : OFF_VERSION + 8] = lay.version.encode("ascii")
    put("B", OFF_DIGITS, len(str(bytes_to_eof)))
    put("i", OFF_BYTES_TO_EOF, bytes_to_eof)
    put("B", OFF_BYTES_PER_POINT, bpp)
    put("i", OFF_CURVE_OFFSET, curve_offset)
    put("i", 20, 1)  # horizontal zoom scale factor
    put("d", 28, 1.0)  # vertical zoom scale factor
    _put_text(buf, OFF_LABEL, label, LABEL_BYTES, "label")
    put("I", OFF_N_FRAMES_MINUS_1, frames - 1)
    put("H", OFF_HEADER_SIZE, WAVEFORM_HEADER_SIZE)
    # waveform header
    fastframe = frames > 1
    put("i", OFF_SET_TYPE, 1 if fastframe else 0)
    put("I", OFF_WFM_COUNT, 1)
    put("I", OFF_UPDATE_SPEC_COUNT, 1)
    put("I", OFF_IMP_DIM_COUNT, 1)
    put("I", OFF_EXP_DIM_COUNT, 1)
    put("i", OFF_RECORD_TYPE, RECORD_TYPE_VECTOR)
    put("I", OFF_ACCUMULATED, 1)
    put("I", OFF_TARGET_ACCUMULATION, 1)
    put("I", OFF_CURVE_REF_COUNT, 1)
    put("I", OFF_FF_REQUESTED, frames if fastframe else 0)
    put("I", OFF_FF_ACQUIRED, frames if fastframe else 0)
    if lay.has_summary_frame:
        put("H", OFF_SUMMARY_FRAME, 0)
    density = "d" if lay.point_density_f8 else "I"
    href = EXP_POINT_DENSITY + (8 if lay.point_density_f8 else 4)
    # explicit dimension 1: the vertical axis
    x = lay.exp_dim1
    put("d", x + EXP_SCALE, vscale)
    put("d", x + EXP_OFFSET, voffset)
    _put_text(buf, x + EXP_UNITS, vunits, UNITS_BYTES, "vertical units")
    put("d", x + EXP_RESOLUTION, 1.0)
    put("i", x + EXP_FORMAT, code)
    put("i", x + EXP_STORAGE, 0)  # EXPLICIT_SAMPLE
    put("d", x + EXP_USER_SCALE, vscale)
    _put_text(buf, x + EXP_USER_UNITS, vunits, UNITS_BYTES, "vertical units")
    put(density, x + EXP_POINT_DENSITY, 1)
    put("d", x + href, 50.0)
    # explicit dimension 2: unused
    x2 = lay.exp_dim1 + lay.exp_block
    put("i", x2 + EXP_FORMAT, INVALID_FORMAT_CODE[lay.version])
    put("i", x2 + EXP_STORAGE, 6)  # EXPLICIT_INVALID_STORAGE
    # implicit dimension 1: the time axis
    m = lay.imp_dim1
    imp_href = IMP_POINT_DENSITY + (8 if lay.point_density_f8 else 4)
    put("d", m + IMP_SCALE, dt_s)
    put("d", m + IMP_OFFSET, t0_s)
    put("I", m + IMP_SIZE, record)
    _put_text(buf, m + IMP_UNITS, tunits, UNITS_BYTES, "horizontal units")
    put("d", m + IMP_USER_SCALE, dt_s)
    _put_text(buf, m + IMP_USER_UNITS, tunits, UNITS_BYTES, "horizontal units")
    put(density, m + IMP_POINT_DENSITY, 1)
    put("d", m + imp_href, 50.0)
    # time base 1 (sample spacing 1, SWEEP_SAMPLE, BASE_TIME) and 2 (invalid)
    tb = lay.time_base1
    put("I", tb, 1)
    put("i", tb + 4, 1)
    put("i", tb + 8, 0)
    put("i", tb + 16, 3)
    put("i", tb + 20, 3)
    # first frame: timing and curve information
    tt, frac, gmt = timing0
    put("I", lay.update_spec, 0)
    put("d", lay.update_spec + 4, tt)
    put("d", lay.update_spec + 12, frac)
    put("i", lay.update_spec + 20, gmt)
    buf[lay.curve_info : lay.curve_info + CURVE_RECORD_BYTES] = curve_info
    return buf


def write_wfm(
    path: str | Path,
    raw: np.ndarray,
    *,
    dt_s: float,
    t0_s: float,
    vscale: float,
    voffset: float,
    version: str = ":WFM#003",
    byte_order: str = "LE",
    precharge: int = 32,
    postcharge: int = 32,
    gmt_seconds: Any = None,
    frac_seconds: Any = None,
    tt_offsets: Any = None,
    label: str = "",
    vunits: str = "V",
    tunits: str = "s",
) -> Path:
    """Write ``raw`` (``(frames, record_length)``, or 1-D for one record) as a ``.wfm`` file.

    - ``raw`` dtype sets the data format: int16, int32, uint32, uint64, float32, float64, and
      in ``:WFM#003`` only uint8, int8 (any byte order; converted to ``byte_order``).
    - ``dt_s`` sample interval (s), ``t0_s`` time of the first sample from the trigger (s);
      ``vscale`` (V per count) and ``voffset`` (V): volts = raw × vscale + voffset.
    - ``precharge`` / ``postcharge``: samples around each record in the curve buffer, filled
      with the frame's first / last sample.
    - ``gmt_seconds`` (int, unix s), ``frac_seconds`` (s) and ``tt_offsets`` (trigger offset,
      fraction of a sample): a scalar or one value per frame; None = 0.

    frames > 1 writes a FastFrame set (set type 1), frames == 1 a single waveform. Returns the
    path. ValueError for anything the format cannot hold.
    """
    path = Path(path)
    if version not in VERSIONS:
        raise ValueError(f"version {version!r} (expected one of {', '.join(VERSIONS)})")
    if byte_order not in ENDIAN_CHAR:
        raise ValueError(f"byte_order {byte_order!r} (expected 'LE' or 'BE')")
    data = np.asarray(raw)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(f"raw has shape {np.shape(raw)} (expected (frames, record_length) >= 1)")
    code = format_code(data.dtype)
    if code in V3_ONLY_CODES and version != ":WFM#003":
        raise ValueError(f"{data.dtype} samples (format code {code}) exist only in :WFM#003")
    if precharge < 0 or postcharge < 0:
        raise ValueError(f"precharge={precharge}, postcharge={postcharge} (expected >= 0)")
    frames, record = (int(n) for n in data.shape)
    if frames > MAX_FRAMES:
        raise ValueError(f"{frames} frames (at most {MAX_FRAMES})")
    e = ENDIAN_CHAR[byte_order]
    lay = LAYOUTS[version]
    file_dt = np.dtype(FORMAT_CODES[code]).newbyteorder(e)
    bpp = file_dt.itemsize
    stride_pts = precharge + record + postcharge
    stride = stride_pts * bpp
    n = frames - 1
    curve_offset = lay.header_end + n * (FRAME_RECORD_BYTES + CURVE_RECORD_BYTES)
    curve_end = curve_offset + frames * stride
    bytes_to_eof = curve_end + CHECKSUM_BYTES - BYTES_TO_EOF_BASE
    if bytes_to_eof > MAX_BYTES_TO_EOF or stride > 2**32 - 1:
        raise ValueError(
            f"{frames} frames × {stride} bytes make a {curve_end + CHECKSUM_BYTES}-byte file "
            f"(a WFM file holds at most {MAX_BYTES_TO_EOF + BYTES_TO_EOF_BASE} bytes)"
        )
    gmt = _per_frame("gmt_seconds", gmt_seconds, frames, np.int64)
    if gmt.size and (gmt.min() < -(2**31) or gmt.max() > 2**31 - 1):
        raise ValueError("gmt_seconds out of the i4 range of the format")
    frac = _per_frame("frac_seconds", frac_seconds, frames, np.float64)
    tt = _per_frame("tt_offsets", tt_offsets, frames, np.float64)

    cdt = curve_record_dtype(byte_order)
    curve_rec = np.zeros(1, cdt)
    curve_rec["data_start"] = precharge * bpp
    curve_rec["postcharge_start"] = (precharge + record) * bpp
    curve_rec["postcharge_stop"] = stride
    curve_rec["end_of_curve"] = stride
    header = _header(
        lay,
        e,
        code=code,
        bpp=bpp,
        frames=frames,
        record=record,
        curve_offset=curve_offset,
        bytes_to_eof=bytes_to_eof,
        dt_s=float(dt_s),
        t0_s=float(t0_s),
        vscale=float(vscale),
        voffset=float(voffset),
        vunits=vunits,
        tunits=tunits,
        label=label,
        timing0=(float(tt[0]), float(frac[0]), int(gmt[0])),
        curve_info=curve_rec.tobytes(),
    )
    frame_recs = np.zeros(n, frame_record_dtype(byte_order))
    frame_recs["tt_offset"] = tt[1:]
    frame_recs["frac_sec"] = frac[1:]
    frame_recs["gmt_sec"] = gmt[1:]
    curve_recs = np.repeat(curve_rec, n)

    checksum = np.uint64(0)

    def add(chunk: np.ndarray | bytes | bytearray) -> None:
        nonlocal checksum
        view = np.frombuffer(chunk, np.uint8) if not isinstance(chunk, np.ndarray) else chunk
        checksum = checksum + view.sum(dtype=np.uint64)

    rows = max(1, min(frames, WRITE_CHUNK_BYTES // stride))
    buf = np.empty((rows, stride_pts), file_dt)
    with open(path, "wb") as f:
        for part in (header, frame_recs.tobytes(), curve_recs.tobytes()):
            f.write(part)
            add(part)
        for a in range(0, frames, rows):
            b = min(frames, a + rows)
            block = buf[: b - a]
            block[:, precharge : precharge + record] = data[a:b]
            if precharge:
                block[:, :precharge] = data[a:b, :1]
            if postcharge:
                block[:, precharge + record :] = data[a:b, -1:]
            octets = block.reshape(-1).view(np.uint8)
            add(octets)
            f.write(octets.data)
        f.write(struct.pack(e + "Q", int(checksum)))
    return path
