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
STATUS_KNOWN_NOISY = 4
"""Known noisy (an extension of the old tool's codes, a bit like 1 and 2: 5 = noisy and dead,
6 = noisy and baseline, 7 = all three): the channel is analysed and drawn as any other, its
quality results are on the pages, but no alert fires for it (``wavedqm_channel_alert_masked``)."""

# Baseline status codes written per channel (spec: light-dqm.md)
BASELINE_OUT_OF_RANGE = -1
BASELINE_OK = 0
BASELINE_SPREAD = 1
BASELINE_SHIFT = 2
BASELINE_SPREAD_AND_SHIFT = 3
BASELINE_SHIFT_SIGMAS = 3.0
"""A baseline median moved by more than this many σ from the previous files' is a shift."""

TRIG_SELF = 0
TRIG_BEAM = 1
TRIGGERS = ("beam", "self")
"""Trigger types by name (``trig_type`` 1 and 0)."""
TRIGGER_SELECTIONS = ("all", *TRIGGERS)
"""Event selections of the light statistics: every event, beam triggers, self triggers."""

# --- service (spec: operations.md) ------------------------------------------------------------
SETTLE_SECONDS = 2.0
"""Size and mtime must be unchanged this long before a file counts as complete (s)."""
SIGNALLED_SETTLE_SECONDS = 0.1
"""The same, after the writer said it is done: the file was renamed in or closed after
writing (inotify; never with polling, which sees no such signal) (s)."""
MIN_FILE_AGE_SECONDS = 0.0
"""The old nearline used 30 s; with settle detection 0 is safe."""
MAX_FILE_SIZE_BYTES = 50 * 10**9
"""The old nearline refused files over 50 GB."""
POLL_INTERVAL_SECONDS = 1.0
QUEUE_MAX_FILES = 10000
LISTEN_ADDRESS = "127.0.0.1:9108"
OUTPUT_DIR = "wavedqm-out"
STATE_SUBDIR = "wavedqm"
"""The state folder by default: ``$XDG_STATE_HOME/wavedqm`` (``~/.local/state/wavedqm``)."""
READ_CHUNK_BYTES = 32 * 2**20
"""Raw bytes of samples read per batch: bounds memory whatever the file size."""
MAX_ALLOCATION_BYTES = 2**30
"""Largest allocation a file's header may size (read buffers, spectra store, voxel grid)
before the file is refused as ``too_large`` (bytes)."""
OUTPUT_RETRY_SECONDS = 5.0
"""First wait before retrying a file whose outputs could not be written (s)."""
OUTPUT_RETRY_MAX_SECONDS = 300.0
"""Longest wait between such retries (s): the wait doubles from ``OUTPUT_RETRY_SECONDS``."""
MAX_PROCESSING_SECONDS = 600.0
"""Longest one file may be in hand before the daemon counts as stalled (s): ``/healthz``
answers 503 and the systemd watchdog is withheld, so systemd restarts it. A 50 GB file at
the slowest measured rate (gzip, 0.3 GB/s) takes about 170 s."""
MAX_FILE_STALLS = 2
"""Times a file may stall (be in hand past ``MAX_PROCESSING_SECONDS``, then the daemon is
restarted) before it is failed as ``stalled`` instead of tried again."""
MAX_FILE_ATTEMPTS = 5
"""Times a file's processing may start and end with no trace (the daemon was killed on it:
kill -9, the OOM killer) before it waits behind the other waiting files; such deaths never
fail a file (the stress run's 50 kill -9 land on the same file again and again)."""
NOT_READY_RETRY_SECONDS = 2.0
"""How long to wait before retrying a file whose HDF5 lock is still held."""
LATEST_PLAUSIBLE_TIME_S = 4_102_444_800.0
"""2100-01-01 UTC: an event time past it is a corrupted ``utime_ms``, not a time (s)."""
MAX_PENDING_DRAWINGS = 32
"""Drawings the daemon keeps waiting at most (each holds its file's results, a few MB)."""
DRAWING_PROCESSES = 1
"""Helper processes drawing PNGs and PDFs: the analysis of the next file keeps its GIL."""

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
"""New problem (flatline mask: newly dead): red cross. Every code from here up is a new
problem (the baseline mask's kinds below): the masks count ``cells >= CELL_NEW``."""
CELL_BASELINE_OUT_OF_RANGE = 3
"""Baseline mask, new: median baseline outside ``light.baseline_range_adc16`` (status −1)."""
CELL_BASELINE_SPREAD = 4
"""Baseline mask, new: spread over events too wide (status 1)."""
CELL_BASELINE_SHIFT = 5
"""Baseline mask, new: moved by more than 3σ against the previous files (status 2)."""
CELL_BASELINE_SPREAD_AND_SHIFT = 6
"""Baseline mask, new: both of the last two (status 3)."""

# --- alerting ---------------------------------------------------------------------------------
MAX_FILE_GAP_SECONDS = 1800.0
"""WavedqmNoRecentFiles fires when no file was processed for this long while data taking is
expected (exported as ``wavedqm_max_file_gap_seconds``)."""
DEAD_STREAKS_FILE = "dead_streaks.json"
HISTORY_REPLACE_WINDOW_ROWS = 1000
"""A history record of a file already among the last this many rows replaces that row (a newer
version of the file, or the file again after a crash) instead of adding one; ~1 ms to search."""
HISTORY_PREVIOUS_FILES = 10
"""Files the 'previous files' rollup covers by default. Each file's errors are the spread over
its events and add in quadrature, so a rollup over very many files widens its band (old tool's
choice, kept): a bounded window keeps the 3σ baseline-shift test meaningful."""
IMAGES_DIR = "images"
"""Under the output folder: stable 'latest' PNGs served at ``/images/``."""
REPORTS_DIR = "reports"
REPORT_FILE = "report.pdf"
"""Name of the per-file PDF report in ``OUT/<file name>/``."""
LATEST_REPORT_FILE = "latest.pdf"
"""Stable copy of the newest per-file report, ``OUT/reports/latest.pdf``."""

# --- power spectra (spec: light-dqm.md) -------------------------------------------------------
SPECTRA_ROI_CENTRES_MHZ = (0.5, 1.8, 4.6, 7.1, 8.5, 10.0, 11.5, 19.0, 20.0, 25.0, 30.0)
"""Centres of the regions of interest of the power spectra (MHz)."""
SPECTRA_ROI_HALF_WIDTH_MHZ = 0.25
"""A region of interest holds the bins within ± this of its centre (MHz): 9 bins of 62.5 kHz
for 1000 samples at 16 ns (8 where the centre falls between bins: 1.8, 4.6, 7.1 MHz). Narrow
enough that 19 and 20 MHz, and 0.5 MHz and DC, stay apart."""
SPECTRA_MAX_EVENTS = 64
"""Events whose spectra are kept per file (evenly spread over the file): memory
``max_events × active channels × (S/2 + 1) × 4 B``, 49 MB for 64 events, 384 channels, S = 1000."""

# --- RaTag xenon gas TPC: S2 analysis (spec: ratag-s2.md) -------------------------------------
# Run constants (config): the defaults of ``wavedqm.analysis.ratag.RunConstants``.
RATAG_PRESSURE_BAR = 2.0
RATAG_TEMPERATURE_K = 293.0
RATAG_EL_GAP_CM = 0.8
"""Gate-anode (electroluminescence) gap in cm."""
RATAG_DRIFT_GAP_CM = 1.4
"""Cathode-gate drift gap in cm."""
RATAG_W_VALUE_EV = 22.0
"""Mean energy per electron-ion pair in xenon gas (eV)."""
RATAG_XRAY_ENERGY_KEV = 12.3
"""Calibration X-ray energy (keV)."""
RATAG_DRIFT_SPEED_PARAMS = (0.928097, 17.1733, 0.511930, 0.301073)
"""p0..p3 of v = p0·(1 − exp(−p1·rE)) + p2·rE / (1 + p3·rE), v in mm/µs, rE in Td
(fit to Njoya et al., NIM A 972 (2020) 163965)."""
BOLTZMANN_J_PER_K = 1.380649e-23
TD_PER_V_CM2 = 1e17
"""1 Td = 1e-17 V·cm²: reduced field (Td) = E / n × 1e17 with E in V/cm, n in cm⁻³."""
RATAG_POLARITY = -1
"""PMT pulses are negative: the signal is inverted (mV = −1 × volts × 1000)."""

# Per frame (µs, mV)
RATAG_N_PEDESTAL_TIMING = 200
"""Pedestal samples for S1 time and S2 start/end (RaTag's ``n_points=200``)."""
RATAG_N_PEDESTAL_AREA = 2000
"""Pedestal samples for S2 areas and X-ray classification (RaTag ``IntegrationConfig``)."""
RATAG_MA_WINDOW = 9
"""Moving-average length in samples (``np.convolve(x, ones(9)/9, mode="same")``)."""
RATAG_S1_THRESHOLD_MV = 1.0
RATAG_S2_THRESHOLD_MV = 0.8
RATAG_S2_CLIP_MV = 0.02
"""Smoothed values below this are zeroed before the S2 start/end search (mV)."""
RATAG_S2_SEARCH_DRIFT_FRACTION = 0.3
"""The S2 search starts at t > t_s1 + 0.3 × t_drift."""
RATAG_BS_THRESHOLD_MV = 0.8
"""Smoothed values below this are zeroed before integrating (mV)."""
RATAG_XRAY_MAX_AREA_S1 = 1e5
"""X-ray cut: sum of the samples above bs_threshold before S1 (mV, a sum of samples)."""
RATAG_XRAY_MAX_AREA_S2 = 1e5
"""X-ray cut: sum of the samples above bs_threshold from the S2 start on (mV, a sum)."""
RATAG_XRAY_MIN_S1_SEP_US = 0.5
RATAG_XRAY_MIN_S2_SEP_US = 1.0
RATAG_XRAY_MIN_AREA_MV_US = 0.2

# Per set
RATAG_S1_MAX_TIME_US = -0.5
"""Per-frame S1 times at or after this are not used for the set's S1 time (µs)."""
RATAG_OUTLIER_SIGMA = 3.0
RATAG_S1_HIST_BINS = 50
RATAG_S2_START_CUT = (0.3, 1.5)
"""S2 starts kept for the set statistics: within these multiples of t_s1 + t_drift."""
RATAG_S2_END_CUT = (1.2, 35.0)
"""S2 ends kept: from 1.2 × (t_s1 + t_drift) to 35 µs."""
RATAG_S2_DURATION_CUT_US = (5.0, 25.0)
RATAG_S2_MIN_EVENTS = 10
"""Fewer S2 windows than this after the cuts give no window statistics (NaN)."""
RATAG_WINDOW_SIGMA_BEFORE = 1.0
RATAG_WINDOW_SIGMA_AFTER = 0.5
"""S2 integration window: [start − 1.0 σ_start, end + 0.5 σ_end]."""
RATAG_FIT_BINS = 100
RATAG_MIN_FIT_EVENTS = 50
"""A set's Gaussian is (re)fitted once it holds at least this many areas."""
RATAG_RERUN_TOLERANCE_US = 0.05
"""An earlier file's pass 2 is re-run when the set's window moved by more than this (µs)."""
RATAG_ION_BIN_CUTS = (0.0, 4.0)
"""Gaussian fit range of ion (recoil) S2 areas (mV·µs)."""
RATAG_XRAY_BIN_CUTS = (0.6, 20.0)
"""Gaussian fit range of X-ray S2 areas (mV·µs)."""
RATAG_CI95_Z = 1.96

# --- charge hits and voxels --------------------------------------------------------------------
VOXEL_SIZE_CM = (2.0, 2.0, 2.0)
"""Default voxel size of the grid made from a file's det_bounds (cm)."""
VOXEL_LOW_HITS = 5
"""Voxels with fewer hits count as low-statistics in the diagnostics."""
VOXELS_DIR = "voxels"
"""Folder of the run voxel outputs (``OUT/voxels/<run>/``) and state (``STATE/voxels/``)."""

# --- shots of pulsed experiments (spec: shots-and-voxels.md, seed 003) ------------------------
SHOT_METRICS = (
    "peak",
    "min",
    "peak_to_peak",
    "time_of_peak",
    "auc",
    "rise_time_10_90",
    "dominant_freq_hz",
    "snr_estimate",
)
"""Per-channel metrics of a shot, in the column order of ``shot_metrics.csv``."""
SHOT_FLAGS = ("missing_data", "saturation", "noisy_baseline", "low_signal", "timing_outlier")
"""Quality flags of a channel of a shot."""
SHOT_BASELINE_FRACTION = 0.1
"""Without a configured window, the baseline region is the first 10% of the record (the
original's rise-time baseline) and the signal region the rest."""
SHOT_MISSING_FRACTION = 0.1
"""missing_data: more than this fraction of the samples is NaN."""
SHOT_SATURATION_RUN = 10
"""saturation: at least this many consecutive zero differences."""
SHOT_SATURATION_FRACTION = 0.02
"""saturation: more than this fraction of the samples within the tolerance of max or min."""
SHOT_SATURATION_TOLERANCE = 1e-10
"""saturation: how close to the max / min a sample counts as "at" it (channel units)."""
SHOT_NOISY_BASELINE_RATIO = 0.1
"""noisy_baseline: baseline std / (max − min) above this."""
SHOT_TIMING_SIGMA = 2.0
"""timing_outlier: |event time − median| / std of the previous shots above this."""
SHOT_EVENT_FRACTION = 0.1
"""The event time of a channel: first sample with |x| above this fraction of max |x|."""
SHOT_RISE_LEVELS = (0.1, 0.9)
"""rise_time_10_90: between these fractions of the amplitude (peak − baseline)."""
SHOT_TIMING_MIN_SHOTS = 5
"""timing_outlier is judged once this many earlier clean shots give a reference."""
SHOT_SIDECAR_WAIT_SECONDS = 5.0
"""How long a complete shot waits for its ``.meta.json`` sidecar before going on without."""
SHOT_OVERLAY_SHOTS = 20
"""Shots drawn in the overlay plots (the last N)."""
SHOT_OVERLAY_POINTS = 2000
"""Points kept per channel of a shot for the overlays (block means)."""
SHOT_ALERT_STREAK = 3
"""A channel flagged in this many shots in a row fires WavedqmShotChannelFlagged."""
SHOT_TREND_METRICS = ("peak", "auc", "time_of_peak", "rise_time_10_90")
"""Metrics drawn against the shot index and every control variable."""
SHOTS_STATE_DIR = "shots"
"""Shot histories, under the state folder: ``STATE/shots/<folder>/``."""


# --- quality tests against a reference run (issue 15) ----------------------------------------
REFERENCES_DIR = "references"
"""References, under the state folder: ``STATE/references/<name>.h5``."""
ACTIVE_REFERENCE_FILE = "ACTIVE"
"""``STATE/references/ACTIVE``: the name ``wavedqm reference use`` chose (config wins)."""
QUALITY_PROFILE_LEVELS = 101
"""Quantiles kept per channel of a file's per-event baselines and noises (levels 0, 1 %, …,
100 %): what the distribution tests (KS, χ²) compare; piecewise-linear CDF between them."""
QUALITY_CHI2_BINS = 20
"""χ² bins: equiprobable under the reference (its 5 % quantiles as edges)."""
QUALITY_MIN_EVENTS = 50
"""A test with fewer valid events in the file (or the reference) says "not enough data"."""
QUALITY_NOT_ENOUGH = -1
QUALITY_OK = 0
QUALITY_WARNING = 1
QUALITY_ERROR = 2
QUALITY_STATUS_NAMES = {-1: "not_enough_data", 0: "ok", 1: "warning", 2: "error"}
"""Status codes of a quality test (the gauge ``wavedqm_channel_quality_status`` holds them)."""
CELL_QUALITY_WARNING = 7
"""Quality mask: worst test of the channel is a warning."""
CELL_QUALITY_ERROR = 8
"""Quality mask: worst test of the channel is an error."""
QUALITY_QUANTITIES = ("baseline", "noise", "clipped", "negative")
"""What a light quality test looks at: per-event baseline / noise distributions (ADC16), or the
fraction of events with a clipped / negative-excursion waveform."""
QUALITY_KINDS = ("range", "ratio", "sigma", "ks", "ks_distance", "chi2", "chi2_ndf")
"""range: the file's median (fraction for clipped/negative); ratio: median / reference median;
sigma: deviation from the reference in σ; ks / chi2: p-values of the comparison of the
distribution with the reference's; ks_distance: KS D; chi2_ndf: χ² / degrees of freedom."""
QUALITY_RATE_KINDS = ("range", "sigma")
"""The kinds that apply to clipped / negative (fractions, not distributions)."""
INF = float("inf")
QUALITY_DEFAULT_TESTS: dict[str, dict[str, object]] = {
    "noise_level": {"quantity": "noise", "kind": "ratio",
                    "warning": (0.8, 1.25), "error": (0.57, 1.75)},
    "baseline_shift": {"quantity": "baseline", "kind": "sigma",
                       "warning": (-3.0, 3.0), "error": (-5.0, 5.0)},
    "baseline_shape": {"quantity": "baseline", "kind": "ks_distance",
                       "warning": (0.0, 0.25), "error": (0.0, 0.5)},
    "clipped_rate": {"quantity": "clipped", "kind": "sigma",
                     "warning": (-INF, 3.0), "error": (-INF, 5.0)},
    "negative_rate": {"quantity": "negative", "kind": "sigma",
                      "warning": (-INF, 3.0), "error": (-INF, 5.0)},
}  # fmt: skip
"""The light quality tests when ``[quality.tests]`` is not given: the value of each must lie
in ``warning`` to be ok, in ``error`` to be a warning, else it is an error. A noise 1.5× the
reference's warns, 2× is an error; the baseline tests ignore a wider spread from more noise."""
QUALITY_CHANNELS_FAILING = (0.05, 0.25)
"""Fraction of the monitored channels with an error in some test: above the first a warning,
above the second an error (the global test ``channels_failing``)."""
