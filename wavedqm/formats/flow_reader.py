"""The ``.FLOW.hdf5`` light waveform reader, :class:`FlowLightReader`: bounded batches.

Rows ``[a, b)`` of the waveform table go into one of a ring of preallocated int16 buffers (ADC
counts), at most ``chunk_bytes`` bytes of samples per batch, whatever the file size: straight
from the file with ``os.preadv`` for unfiltered storage, inflated on a thread pool for gzip
(``[shuffle,] deflate``) chunks, otherwise through an h5py hyperslab read whose memory type
names only the ``samples`` field. The next batches are read ahead on a background thread. The
helpers (raw reads, inflating, read-ahead, event rows) are in :mod:`~wavedqm.formats.flow_chunks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.formats.batch import WaveformBatch
from wavedqm.formats.flow_chunks import (
    METADATA_BATCH_ROWS,
    _EventRows,
    _gzip_pipeline,
    _inflate_into,
    _pread_exactly,
    _Prefetcher,
    _raw_storage,
)
from wavedqm.formats.flow_info import _describe
from wavedqm.formats.flow_layout import LIGHT_WVFM, SAMPLES_FIELD
from wavedqm.formats.flow_open import LOCKING, data_error, open_flow
from wavedqm.formats.h5checks import H5_ERRORS, check_allocation

CACHE_BATCH_BYTES = 4 * 2**20
"""Largest batch of uncompressed samples (B): two such buffers (current and prefetched)
stay in the CPU's L3 cache, so the kernels read the samples from the cache, not from memory
a second time (measured on 2-core EPYC: 1.1 GB kernel 0.04 s in 32 MiB batches, 0.01 s in
4 MiB ones)."""
PREFETCH_BUFFERS = 3
"""Sample buffers of cache-sized batches: the one being used plus two read ahead (larger
batches: one read ahead)."""
READ_THREADS = 1
"""Threads reading batches ahead. ``os.preadv`` releases the GIL, so one thread copies the
samples out of the page cache while the consumer runs the kernels on the other core; a second
reading thread was measured no faster end to end on 2 cores (it competes with the consumer)."""
DEFAULT_THREADS = 2
"""Inflate threads for gzip files (the target machines have 2 cores)."""


class FlowLightReader:
    """Stream the light waveforms of a ``.FLOW.hdf5`` file in bounded row chunks.

    ``with FlowLightReader(path) as r: for batch in r.batches(): ...``

    - ``chunk_bytes``: raw sample bytes per batch at most (at least one row is read at a time).
      When the file's HDF5 chunk fits, batches are whole multiples of it (each chunk is read
      once). Uncompressed files are read in batches of at most ``CACHE_BATCH_BYTES`` instead
      when that is smaller, so that the consumer finds the samples still in the CPU cache.
    - ``max_events``: read only the first this many events (0: all).
    - ``threads``: inflate threads for gzip files; ``direct_chunks=False`` forces the h5py path
      (no direct chunk reads, no raw reads).
    - ``prefetch``: read the next batches on a background thread (``READ_THREADS``) while the
      consumer works on the current one.

    Read paths: uncompressed data whose bytes are the samples themselves (``raw_reads``:
    contiguous or unfiltered chunked storage in the file itself) is copied with ``os.preadv``
    straight from the file into the buffer, which releases the GIL, so that it overlaps with
    the consumer's kernels and Python code (h5py holds the GIL while it reads); gzip data
    (``direct_chunks``) is inflated on a thread pool; anything else goes through h5py.

    Memory: a ring of int16 sample buffers of ``rows_per_batch`` rows, reused for the whole
    file: ``PREFETCH_BUFFERS`` (3) for cache-sized batches, 2 for larger ones, 1 with
    ``prefetch=False`` or a single batch; plus, for compressed files, up to ``threads``
    inflated HDF5 chunks in flight (or an HDF5 chunk cache of one chunk when a chunk is larger
    than a batch), plus the event rows of ``METADATA_BATCH_ROWS`` events. One pass
    (``batches()``) at a time: passes share the buffers.
    The file is opened read-only and holds a shared HDF5 lock until ``close()``.
    """

    def __init__(
        self,
        path: str | Path,
        chunk_bytes: int = C.READ_CHUNK_BYTES,
        max_events: int = 0,
        *,
        threads: int = DEFAULT_THREADS,
        direct_chunks: bool = True,
        prefetch: bool = True,
        locking: Any = LOCKING,
        max_allocation_bytes: int = C.MAX_ALLOCATION_BYTES,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes={chunk_bytes} (expected a positive number of bytes)")
        if max_events < 0:
            raise ValueError(f"max_events={max_events} (expected >= 0; 0 reads all events)")
        self.path = Path(path)
        self.chunk_bytes = int(chunk_bytes)
        self.max_events = int(max_events)
        self.threads = max(1, int(threads))
        self.prefetch = bool(prefetch)
        self._file: h5py.File | None = open_flow(self.path, locking)
        self._pool: ThreadPoolExecutor | None = None
        self._prefetchers: set[_Prefetcher] = set()
        self._buffers: list[np.ndarray] = []
        try:
            self._layout, self.info = _describe(self._file, self.path)
            cache = self._chunk_cache_bytes()
            if cache:
                # HDF5 takes the chunk cache size when a dataset is first opened: reopen
                self._file.close()
                self._file = open_flow(self.path, locking, rdcc_nbytes=cache, rdcc_w0=1.0)
                self._layout, self.info = _describe(self._file, self.path)
            try:
                self._setup(direct_chunks)
            except H5_ERRORS as err:
                raise data_error(self.path, err, "opening the light waveform table") from err
            check_allocation(
                self.path,
                f"reading {LIGHT_WVFM} (rows of {self._row_bytes_declared()} bytes)",
                self.planned_nbytes(),
                max_allocation_bytes,
            )
        except BaseException:
            self.close()
            raise

    # -- set-up ---------------------------------------------------------------------------------

    def _plan(self) -> tuple[int, int, int | None]:
        """(events to read, rows per batch, rows per HDF5 chunk or None)."""
        lay = self._layout
        if lay is None:
            return 0, 0, None
        n_events = min(lay.n_events, self.max_events) if self.max_events else lay.n_events
        row_bytes = lay.n_adcs * lay.n_channels * lay.n_samples * 2
        rows = max(1, self.chunk_bytes // row_bytes)
        if lay.wvfm.id.get_create_plist().get_nfilters() == 0:
            rows = min(rows, max(1, CACHE_BATCH_BYTES // row_bytes))
        chunk_rows = int(lay.wvfm.chunks[0]) if lay.wvfm.chunks else None
        if chunk_rows and rows >= chunk_rows:
            rows -= rows % chunk_rows  # whole HDF5 chunks per batch: each chunk read once
            needed = -(-n_events // chunk_rows) * chunk_rows
        else:
            needed = n_events
        return n_events, max(1, min(rows, needed)), chunk_rows

    def _chunk_cache_bytes(self) -> int:
        """HDF5 chunk cache needed so that a batch smaller than a filtered (compressed) chunk
        does not decode the chunk again for every batch; 0: the default cache will do."""
        lay = self._layout
        n_events, rows, chunk_rows = self._plan()
        if lay is None or not chunk_rows or rows >= chunk_rows or rows >= n_events:
            return 0
        if lay.wvfm.id.get_create_plist().get_nfilters() == 0:
            return 0
        return chunk_rows * lay.wvfm.dtype.itemsize + 1

    def _setup(self, direct_chunks: bool) -> None:
        lay = self._layout
        self.n_events, self.rows_per_batch, chunk_rows = self._plan()
        self.direct_chunks = False
        self.raw_reads = False
        if lay is None:
            return
        rows = self.rows_per_batch
        self.row_bytes = lay.n_adcs * lay.n_channels * lay.n_samples * 2
        self._mem_dtype = np.dtype(
            [(SAMPLES_FIELD, "=i2", (lay.n_adcs, lay.n_channels, lay.n_samples))]
        )
        self._mem_type = h5py.h5t.py_create(self._mem_dtype)
        self._shuffle_size: int | None = None
        self._wvfm_id = lay.wvfm.id
        self._chunk_rows = int(chunk_rows) if chunk_rows else 0
        if not direct_chunks or lay.wvfm.dtype != self._mem_dtype:
            return
        shuffle_size = _gzip_pipeline(lay.wvfm)
        if shuffle_size is not None and chunk_rows and rows % chunk_rows == 0:
            self.direct_chunks = True
            self._shuffle_size = shuffle_size
            return
        assert self._file is not None
        raw = _raw_storage(self._file, lay.wvfm)
        if raw is not None:
            self.raw_reads = True
            self._fd, self._raw_offset = raw

    def _row_bytes_declared(self) -> int:
        return int(self._layout.wvfm.dtype.itemsize) if self._layout is not None else 0

    def planned_nbytes(self) -> int:
        """Bytes this reader will allocate at most, from the header alone: the sample
        buffers, the inflated or cached HDF5 chunks of a compressed file, the event rows."""
        lay = self._layout
        if lay is None or self.n_events == 0:
            return 0
        row = self._row_bytes_declared()
        total = PREFETCH_BUFFERS * self.rows_per_batch * row
        if lay.wvfm.id.get_create_plist().get_nfilters():
            total += (self.threads + 1) * (self._chunk_rows or 1) * row
        total += METADATA_BATCH_ROWS * lay.event_mem_dtype.itemsize
        return total

    # -- public API -----------------------------------------------------------------------------

    @property
    def buffer_nbytes(self) -> int:
        """Bytes of the reused sample buffers (0 before the first batch or without light)."""
        return sum(int(b.nbytes) for b in self._buffers)

    def batches(self) -> Iterator[WaveformBatch]:
        """Yield the events in order, ``rows_per_batch`` at a time (the last may be shorter).

        ``samples`` is a view into one of the reused buffers: valid until the next batch is
        requested (its buffer is then handed back to the prefetch thread). ``valid``,
        ``trig_type`` and ``time_s`` are never overwritten. Nothing is yielded for a file
        without light. Raises ``InputFileError`` (``read_error`` / ``truncated``) if a chunk
        cannot be read, when the batch holding it is requested.
        """
        lay = self._layout
        if lay is None or self.n_events == 0:
            return
        if self._file is None:
            raise ValueError(f"{self.path}: reader is closed")
        rows = self.rows_per_batch
        spans = [(a, min(self.n_events, a + rows)) for a in range(0, self.n_events, rows)]
        n_buffers = 1
        if self.prefetch and len(spans) > 1:
            ring = PREFETCH_BUFFERS if rows * self.row_bytes <= CACHE_BATCH_BYTES else 2
            n_buffers = min(len(spans), ring)
        while len(self._buffers) < n_buffers:
            self._buffers.append(
                np.empty((rows, lay.n_adcs, lay.n_channels, lay.n_samples), np.int16)
            )
        meta = _EventRows(lay, self.n_events, rows)
        prefetcher = None
        if n_buffers > 1:
            threads = READ_THREADS if self.raw_reads else 1  # gzip: inflated on self._pool
            prefetcher = _Prefetcher(self._read_samples, spans, self._buffers[:n_buffers], threads)
            self._prefetchers.add(prefetcher)
        try:
            for a, b in spans:
                what = f"reading light events {a}..{b - 1}"
                try:
                    if prefetcher is not None:
                        buf = prefetcher.next()
                    else:
                        buf = self._buffers[0]
                        self._read_samples(a, b, buf)
                except H5_ERRORS as err:
                    raise data_error(self.path, err, what) from err
                try:
                    valid, trig, times = meta.rows(a, b)
                except H5_ERRORS as err:
                    raise data_error(self.path, err, what) from err
                yield WaveformBatch(
                    samples=buf[: b - a],
                    valid=valid,
                    trig_type=trig,
                    time_s=times,
                    first_event=a,
                )
        finally:
            if prefetcher is not None:  # never leave a read writing into a buffer
                prefetcher.stop()
                self._prefetchers.discard(prefetcher)

    def close(self) -> None:
        for prefetcher in list(self._prefetchers):
            prefetcher.stop()
        self._prefetchers.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffers = []

    def __enter__(self) -> FlowLightReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------

    def _read_samples(self, a: int, b: int, buf: np.ndarray) -> None:
        """Rows [a, b) into ``buf[:b - a]``, by the fastest path the file allows."""
        if self.raw_reads:
            self._read_raw(a, b, buf)
        elif not (self.direct_chunks and self._read_direct_chunks(a, b, buf)):
            self._read_h5py(a, b, buf)

    def _read_h5py(self, a: int, b: int, buf: np.ndarray) -> None:
        fspace = self._wvfm_id.get_space()
        fspace.select_hyperslab((a,), (b - a,))
        mspace = h5py.h5s.create_simple((b - a,))
        self._wvfm_id.read(mspace, fspace, buf[: b - a], self._mem_type)

    def _read_raw(self, a: int, b: int, buf: np.ndarray) -> None:
        """Rows [a, b) of unfiltered storage straight from the file (``os.preadv``); a chunk
        not allocated in the file (fill value) is read through h5py."""
        rb = self.row_bytes
        flat = buf.reshape(-1).view(np.uint8)
        if self._raw_offset is not None:  # contiguous
            _pread_exactly(self._fd, flat[: (b - a) * rb], self._raw_offset + a * rb)
            return
        c = self._chunk_rows
        pos = a
        while pos < b:
            start = pos - pos % c
            stop = min(b, start + c)
            info = self._wvfm_id.get_chunk_info_by_coord((start,))
            if info.byte_offset is None or info.filter_mask != 0 or info.size != c * rb:
                self._read_h5py(pos, stop, buf[pos - a :])
            else:
                dst = flat[(pos - a) * rb : (stop - a) * rb]
                _pread_exactly(self._fd, dst, info.byte_offset + (pos - start) * rb)
            pos = stop

    def _read_direct_chunks(self, a: int, b: int, buf: np.ndarray) -> bool:
        """Read rows [a, b) chunk by chunk, inflating on the pool; False: use h5py instead
        (a chunk not allocated or stored with a filter skipped)."""
        c = self._chunk_rows
        chunk_bytes = c * self.row_bytes
        flat = buf.reshape(-1).view(np.uint8)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wavedqm-inflate")
        futures: list[Future[None]] = []
        ok = True
        try:
            for i, start in enumerate(range(a, b, c)):
                try:
                    mask, raw = self._wvfm_id.read_direct_chunk((start,))
                except H5_ERRORS:
                    ok = False
                    break
                if mask != 0:
                    ok = False
                    break
                dst = flat[i * chunk_bytes : (i + 1) * chunk_bytes]
                futures.append(self._pool.submit(_inflate_into, raw, dst, self._shuffle_size))
        finally:
            for fut in futures:
                fut.exception()  # wait for every task before the buffer is reused
        for fut in futures:
            fut.result()  # re-raise the first error
        return ok
