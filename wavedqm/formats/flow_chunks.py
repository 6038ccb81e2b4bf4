"""Low-level reading of the light tables: raw and gzip chunks, read-ahead, event rows.

- :func:`_raw_storage` / :func:`_pread_exactly`: unfiltered samples copied straight from the
  file with ``os.preadv`` (releases the GIL); a file that ends first is reported truncated.
- :func:`_gzip_pipeline` / :func:`_inflate_into`: a raw ``[shuffle,] deflate`` HDF5 chunk
  inflated with ``zlib`` into a buffer of exactly the chunk's size in bytes, shuffle undone.
- :class:`_Prefetcher`: batches read ahead on background threads into a ring of buffers.
- :class:`_EventRows`: per-event ``wvfm_valid`` / ``trig_type`` / time (unix s) of batches,
  read ``METADATA_BATCH_ROWS`` events at a time.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import h5py
import numpy as np

from wavedqm.formats.flow_info import _event_times_s
from wavedqm.formats.flow_layout import _LightLayout

METADATA_BATCH_ROWS = 1024
"""Event rows read at once while streaming batches (~0.6 MB for 8 x 64 channels)."""


def _gzip_pipeline(dset: h5py.Dataset) -> int | None:
    """If the filter pipeline is exactly [shuffle,] deflate: the shuffle element size in bytes
    (0: no shuffle). None otherwise (other filters, not chunked)."""
    if dset.chunks is None:
        return None
    plist = dset.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if codes == [h5py.h5z.FILTER_DEFLATE]:
        return 0
    if codes == [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]:
        return dset.dtype.itemsize
    return None


def _inflate_into(raw: bytes, dst: np.ndarray, shuffle_size: int) -> None:
    """Inflate one raw gzip chunk into ``dst`` (uint8, exactly the chunk's size), undoing the
    HDF5 shuffle filter when ``shuffle_size`` > 1 (bytes of element k at k, k+n, k+2n ...)."""
    data = zlib.decompress(raw, bufsize=dst.nbytes)
    if len(data) != dst.nbytes:
        raise zlib.error(f"chunk inflated to {len(data)} bytes, expected {dst.nbytes}")
    src = np.frombuffer(data, np.uint8)
    if shuffle_size > 1 and dst.nbytes // shuffle_size > 1:
        np.copyto(dst.reshape(-1, shuffle_size), src.reshape(shuffle_size, -1).T)
    else:
        np.copyto(dst, src)


class _Prefetcher:
    """Reads the batches ``spans`` in order on ``threads`` background threads, into a ring of
    buffers: as many batches are in flight as there are buffers.

    ``next`` hands the consumer the next batch's buffer once read and gives the previous one
    back (its next read is queued). A read error is raised by ``next`` for the batch it belongs
    to.
    """

    def __init__(
        self,
        read: Callable[[int, int, np.ndarray], None],
        spans: list[tuple[int, int]],
        buffers: list[np.ndarray],
        threads: int,
    ) -> None:
        self._read = read
        self._spans = spans
        self._buffers = buffers
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="wavedqm-read")
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._next_span = 0
        self._current: int | None = None
        for i in range(len(buffers)):
            self._submit(i)

    def _submit(self, buffer_index: int) -> None:
        if self._next_span < len(self._spans):
            a, b = self._spans[self._next_span]
            self._next_span += 1
            future = self._pool.submit(self._read, a, b, self._buffers[buffer_index])
            self._pending.append((future, buffer_index))

    def next(self) -> np.ndarray:
        """The next batch's buffer (waits for its read); re-raises the read's error."""
        if self._current is not None:
            self._submit(self._current)  # the consumer is done with the previous batch
            self._current = None
        future, i = self._pending.popleft()
        future.result()
        self._current = i
        return self._buffers[i]

    def stop(self) -> None:
        """Wait for the reads under way, drop the queued ones (idempotent)."""
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


class _EventRows:
    """Per-event metadata of batches, read ``METADATA_BATCH_ROWS`` events at a time (one h5py
    call per block instead of one per batch); blocks are whole batches."""

    def __init__(self, lay: _LightLayout, n_events: int, batch_rows: int) -> None:
        self._lay = lay
        self._n_events = n_events
        self._block_rows = batch_rows * max(1, METADATA_BATCH_ROWS // batch_rows)
        self._buf = np.empty(min(self._block_rows, n_events), lay.event_mem_dtype)
        self._start = self._stop = 0
        self._valid = np.empty((0, lay.n_adcs, lay.n_channels), np.bool_)
        self._trig = np.empty(0, np.uint8)
        self._time = np.empty(0, np.float64)

    def rows(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(valid, trig_type, time_s) of events [a, b): views of arrays never overwritten."""
        if not self._start <= a < b <= self._stop:
            stop = min(self._n_events, a + self._block_rows)
            k = stop - a
            self._lay.events.read_direct(self._buf, np.s_[a:stop], np.s_[0:k])
            rows = self._buf[:k]
            self._valid = rows["wvfm_valid"] != 0
            self._trig = rows["trig_type"].astype(np.uint8)
            self._time = _event_times_s(rows["utime_ms"])
            self._start, self._stop = a, stop
        i, j = a - self._start, b - self._start
        return self._valid[i:j], self._trig[i:j], self._time[i:j]


def _raw_storage(f: h5py.File, dset: h5py.Dataset) -> tuple[int, int | None] | None:
    """``(file descriptor, byte offset of row 0 or None when chunked)`` when the dataset's
    samples can be read with plain ``pread`` calls on the file: no filter, contiguous or chunked
    storage in this file (no external or virtual storage), the default (sec2) driver, no user
    block. None otherwise."""
    if not hasattr(os, "preadv"):  # not on every platform
        return None
    dcpl = dset.id.get_create_plist()
    if dcpl.get_nfilters() != 0 or dcpl.get_external_count() != 0:
        return None
    if f.id.get_access_plist().get_driver() != h5py.h5fd.SEC2:
        return None
    if f.id.get_create_plist().get_userblock() != 0:
        return None
    layout = dcpl.get_layout()
    fd = f.id.get_vfd_handle()
    if not isinstance(fd, int):
        return None
    if layout == h5py.h5d.CHUNKED:
        return fd, None
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dset.id.get_offset()
        return None if offset is None else (fd, int(offset))
    return None


def _pread_exactly(fd: int, dst: np.ndarray, offset: int) -> None:
    """Fill ``dst`` (contiguous uint8) from ``fd`` at ``offset``; a file that ends first is
    reported as truncated."""
    view = memoryview(dst).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError(
                f"file truncated: {len(view) - done} bytes missing at byte {offset + done} "
                "(end of file)"
            )
        done += n
