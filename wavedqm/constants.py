"""Every physics and service constant of wavedqm, in one place.

Values come from ``shared/spec`` (flow-hdf5.md, light-dqm.md, operations.md). The config file
(``wavedqm.config``) takes its defaults from here; code never repeats a literal of these.
"""

from __future__ import annotations

# --- 2x2 light readout (spec: flow-hdf5.md) -------------------------------------------------
LIGHT_N_ADCS = 8
LIGHT_N_CHANNELS = 64
LIGHT_SAMPLE_PERIOD_US = 0.016
"""Digitiser sample period in µs (62.5 MHz)."""
ADC14_MAX = 8191
ADC14_TO_ADC16 = 4
"""14-bit ADC values are stored multiplied by 4 (ADC16 counts)."""
LIGHT_CLIP_LEVEL_ADC16 = (ADC14_MAX - 1) * ADC14_TO_ADC16
"""A sample at or above this (32760 ADC16) is clipped."""
LIGHT_ADC16_MAX = ADC14_MAX * ADC14_TO_ADC16
"""Largest value a sample can hold (32764 ADC16)."""
LIGHT_ADC_RANGE_V = 2.0
"""Full input range in V: volts = ADC16 * 2.0 / (8191 * 4)."""
LIGHT_ACTIVE_CHANNELS = "4-15,20-31,36-47,52-63"
"""Connected channels of each ADC (48); 0-3, 16-19, 32-35, 48-51 are not connected."""
LIGHT_EPCB_SIZE = 6
"""An EPCB is 6 consecutive active channels: 8 EPCBs per ADC."""
LIGHT_TPC_ADC_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))
"""ADC pairs reading one TPC pair; channels below LIGHT_TPC_SPLIT_CHANNEL see the even TPC."""
LIGHT_TPC_SPLIT_CHANNEL = 32

# --- light DQM thresholds (spec: light-dqm.md) ------------------------------------------------
PEDESTAL_SAMPLES = 50
PTP_THRESHOLD_ADC16 = 500
"""``ptps16bit``: a negative excursion is a sample below baseline minus this (ADC16 counts)."""
FLATLINE_THRESHOLD_ADC16 = 300
"""A channel is dead (flatline) if no event has a max above baseline of at least this."""
BASELINE_RANGE_ADC16 = (-30000.0, -26000.0)
"""Median baseline outside this range gives baseline status -1 (ADC16 counts)."""
BASELINE_SPREAD_LIMIT_ADC16 = 900.0
"""68% spread (p84 - p16) of the baseline over events above this gives status 1."""
CONFIDENCE_LEVEL = 0.68
"""Coverage of the Clopper-Pearson intervals and of the 16/84% quantile errors."""

# --- channel status codes (spec: flow-hdf5.md) -----------------------------------------------
STATUS_INACTIVE = -1
STATUS_GOOD = 0
STATUS_KNOWN_DEAD = 1
STATUS_KNOWN_BASELINE = 2
STATUS_KNOWN_BOTH = 3

# Baseline status codes written per channel (spec: light-dqm.md)
BASELINE_OUT_OF_RANGE = -1
BASELINE_OK = 0
BASELINE_SPREAD = 1
BASELINE_SHIFT = 2
BASELINE_SPREAD_AND_SHIFT = 3

TRIG_SELF = 0
TRIG_BEAM = 1

# --- service (spec: operations.md) ------------------------------------------------------------
FLOW_PATTERNS = ("*.FLOW.hdf5",)
SETTLE_SECONDS = 2.0
"""Size and mtime must be unchanged this long before a file counts as complete (s)."""
MIN_FILE_AGE_SECONDS = 0.0
"""The old nearline used 30 s; with settle detection 0 is safe."""
MAX_FILE_SIZE_BYTES = 50 * 10**9
"""The old nearline refused files over 50 GB."""
POLL_INTERVAL_SECONDS = 1.0
QUEUE_MAX_FILES = 10000
LISTEN_ADDRESS = "127.0.0.1:9108"
OUTPUT_DIR = "wavedqm-out"
STATE_DIR = "wavedqm-state"
READ_CHUNK_BYTES = 32 * 2**20
"""Raw bytes of samples read per batch: bounds memory whatever the file size."""
NOT_READY_RETRY_SECONDS = 2.0
"""How long to wait before retrying a file whose HDF5 lock is still held."""

LEDGER_FILE = "ledger.sqlite3"
SUMMARY_FILE = "summary.json"

# --- mask cells (Grafana PNGs): what each (ADC, channel) cell shows ---------------------------
CELL_INACTIVE = -1
"""Not connected: drawn blank."""
CELL_OK = 0
"""Healthy: green hollow circle."""
CELL_KNOWN = 1
"""Known problem (channel-status CSV): small black dot."""
CELL_NEW = 2
"""New problem: red mark."""

# --- alerting ---------------------------------------------------------------------------------
MAX_FILE_GAP_SECONDS = 1800.0
"""WavedqmNoRecentFiles fires when no file was processed for this long while data taking is
expected (exported as ``wavedqm_max_file_gap_seconds``)."""
DEAD_STREAKS_FILE = "dead_streaks.json"
IMAGES_DIR = "images"
"""Under the output folder: stable 'latest' PNGs served at ``/images/``."""
REPORTS_DIR = "reports"
