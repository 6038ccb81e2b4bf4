"""The public result type of a ``.wfm`` header: :class:`WfmHeader`.

A frozen dataclass of what a Tektronix ``.wfm`` file holds, from its header and size only (no
sample is read): version, byte order, frames, record length (samples per frame), raw dtype,
vertical scale/offset (V per count, V), sample interval and first-sample time (s, relative to
the trigger), byte offsets and strides of the curve buffer (bytes), the stored checksum.
Filled by :func:`wavedqm.formats.wfm_parse.read_wfm_header`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


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
