"""The open, memory-mapped ``.wfm`` file: :class:`WfmFile` (alias :data:`WfmRecord`) and
:func:`open_wfm`.

The header is read and validated (:func:`wavedqm.formats.wfm_parse._parse`), then the whole
file is mapped read-only (``mmap`` + ``np.frombuffer``): :attr:`WfmFile.raw` is a
``(frames, record_length)`` strided view into the mapping that skips pre/post charge (no sample
is copied until a consumer reads it). Also here: conversion to V (``raw × vscale + voffset``),
the time axis (s, relative to the trigger), per-frame timing from the first frame's record and
the N FastFrame frame records (trigger offsets in sample intervals, fractional and GMT seconds,
unix times in s), streaming as :class:`WaveformBatch` and the 8-byte checksum check.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from wavedqm import constants as C
from wavedqm.formats.batch import WaveformBatch
from wavedqm.formats.wfm_checks import _fail
from wavedqm.formats.wfm_layout import LAYOUTS, frame_record_dtype
from wavedqm.formats.wfm_parse import _parse

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
