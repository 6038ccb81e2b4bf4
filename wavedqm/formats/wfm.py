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

Modules: :mod:`~wavedqm.formats.wfm_layout` (constants, format codes, byte offsets per version,
record dtypes), :mod:`~wavedqm.formats.wfm_header` (the :class:`WfmHeader` result type),
:mod:`~wavedqm.formats.wfm_checks` (not_wfm / unsupported refusals),
:mod:`~wavedqm.formats.wfm_parse` (:func:`read_wfm_header`: reading and validating the header
against the file size), :mod:`~wavedqm.formats.wfm_file` (:class:`WfmFile`, :func:`open_wfm`:
the mapped samples, per-frame timing, batches, checksum). This module is the public entry
point: it re-exports all of them and holds :func:`inspect_wfm`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.formats.wfm_file import (
    FrameSelection,
    WfmFile,
    WfmRecord,
    open_wfm,
)
from wavedqm.formats.wfm_header import WfmHeader
from wavedqm.formats.wfm_layout import EXPECTED_FILE, FORMAT_NAME, MAX_FRAMES, MAX_RECORD_LENGTH
from wavedqm.formats.wfm_parse import read_wfm_header

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


__all__ = [
    "EXPECTED_FILE",
    "FORMAT_NAME",
    "MAX_FRAMES",
    "MAX_RECORD_LENGTH",
    "FrameSelection",
    "WfmFile",
    "WfmHeader",
    "WfmRecord",
    "inspect_wfm",
    "open_wfm",
    "read_wfm_header",
]
