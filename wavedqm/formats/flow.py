"""Reader of ndlar_flow / h5flow ``.FLOW.hdf5`` files: light waveforms in bounded row chunks.

Layout (spec: flow-hdf5.md): ``light/events/data`` holds one row per trigger (``trig_type``,
``wvfm_valid`` (n_adcs, n_channels), ``utime_ms`` (n_adcs,) ...); ``light/wvfm/data`` one row per
trigger with a single field ``samples``, int16 ADC16 counts of shape
(n_adcs, n_channels, n_samples). The two tables are 1:1 by row. A file may hold light, charge
(``charge/events/data``, ``charge/calib_prompt_hits/data``) or both.

Reading: rows ``[a, b)`` of the waveform table go straight into one preallocated int16 buffer
through a hyperslab read whose memory type names only the ``samples`` field, so no field
extraction or copy follows and memory stays bounded by ``chunk_bytes`` whatever the file size.
For gzip-compressed files (with or without the shuffle filter, as h5flow writes them) whole
HDF5 chunks are read raw (``read_direct_chunk``) and inflated with ``zlib`` on a small thread
pool (zlib releases the GIL): h5py inflates on one thread only. Any other filter pipeline,
or a chunk that cannot be read raw, goes through h5py.

Modules: :mod:`~wavedqm.formats.flow_open` (:func:`open_flow`, read-only with the HDF5 lock,
and the mapping of h5py errors to ``InputFileError`` / ``FileNotReady``),
:mod:`~wavedqm.formats.flow_layout` (table names and fields, validation of the light tables),
:mod:`~wavedqm.formats.flow_info` (:class:`FlowInfo`, :func:`inspect_flow`: description from
metadata and event tables, time range in unix s), :mod:`~wavedqm.formats.flow_chunks` (raw
``preadv`` reads, inflating of gzip chunks, read-ahead, event rows of batches) and
:mod:`~wavedqm.formats.flow_reader` (:class:`FlowLightReader`). This module is the public entry
point: it re-exports all of them.
"""

from __future__ import annotations

from wavedqm.formats.flow_chunks import METADATA_BATCH_ROWS
from wavedqm.formats.flow_chunks import _EventRows as _EventRows
from wavedqm.formats.flow_chunks import _gzip_pipeline as _gzip_pipeline
from wavedqm.formats.flow_chunks import _inflate_into as _inflate_into
from wavedqm.formats.flow_chunks import _pread_exactly as _pread_exactly
from wavedqm.formats.flow_chunks import _Prefetcher as _Prefetcher
from wavedqm.formats.flow_chunks import _raw_storage as _raw_storage
from wavedqm.formats.flow_info import (
    METADATA_READ_ROWS,
    FlowInfo,
    inspect_flow,
    inspect_flow_dict,
)
from wavedqm.formats.flow_info import _build_info as _build_info
from wavedqm.formats.flow_info import _charge_times_s as _charge_times_s
from wavedqm.formats.flow_info import _describe as _describe
from wavedqm.formats.flow_info import _event_times_s as _event_times_s
from wavedqm.formats.flow_info import _scan_range as _scan_range
from wavedqm.formats.flow_info import _table_len as _table_len
from wavedqm.formats.flow_layout import (
    CHARGE_EVENTS,
    CHARGE_HITS,
    EVENT_FIELDS,
    EXPECTED_LAYOUT,
    FORMAT_NAME,
    LIGHT_EVENTS,
    LIGHT_WVFM,
    N_SAMPLES_ATTR,
    SAMPLES_FIELD,
    compression_name,
)
from wavedqm.formats.flow_layout import _get_table as _get_table
from wavedqm.formats.flow_layout import _light_layout as _light_layout
from wavedqm.formats.flow_layout import _LightLayout as _LightLayout
from wavedqm.formats.flow_layout import _n_samples_attr as _n_samples_attr
from wavedqm.formats.flow_layout import _wrong as _wrong
from wavedqm.formats.flow_open import LOCKING, data_error, open_flow
from wavedqm.formats.flow_open import _open_error as _open_error
from wavedqm.formats.flow_reader import (
    CACHE_BATCH_BYTES,
    DEFAULT_THREADS,
    PREFETCH_BUFFERS,
    READ_THREADS,
    FlowLightReader,
)
from wavedqm.logs import get_logger

log = get_logger(__name__)

__all__ = [
    "CACHE_BATCH_BYTES",
    "CHARGE_EVENTS",
    "CHARGE_HITS",
    "DEFAULT_THREADS",
    "EVENT_FIELDS",
    "EXPECTED_LAYOUT",
    "FORMAT_NAME",
    "LIGHT_EVENTS",
    "LIGHT_WVFM",
    "LOCKING",
    "METADATA_BATCH_ROWS",
    "METADATA_READ_ROWS",
    "N_SAMPLES_ATTR",
    "PREFETCH_BUFFERS",
    "READ_THREADS",
    "SAMPLES_FIELD",
    "FlowInfo",
    "FlowLightReader",
    "compression_name",
    "data_error",
    "inspect_flow",
    "inspect_flow_dict",
    "open_flow",
]
