"""The sections of the configuration (``[light]``, ``[watch]``, ``[reader]``, ``[output]``,
``[history]``, ``[s2]``, ``[charge]``, ``[shots]``, ``[processors]``, ``[metrics]``): one frozen
dataclass each, defaults from :mod:`wavedqm.constants`. Loading, type coercion and the
checks of values are in :mod:`wavedqm.config`, which re-exports every name here.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavedqm import constants as C
from wavedqm.errors import ConfigError


def parse_channel_list(spec: str | list[int], n_channels: int) -> tuple[int, ...]:
    """``"4-15,20-31"`` or ``[4, 5, ...]`` -> sorted channel numbers, each in [0, n_channels)."""
    if isinstance(spec, list):
        channels = {int(c) for c in spec}
    else:
        channels = set()
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                first, last = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise ConfigError(
                    f"light.active_channels: {spec!r}: {part!r} is not a channel or range "
                    f"(expected e.g. '4-15,20-31')"
                ) from None
            channels.update(range(first, last + 1))
    bad = sorted(c for c in channels if not 0 <= c < n_channels)
    if bad:
        raise ConfigError(f"light.active_channels: channels {bad} are outside 0..{n_channels - 1}")
    return tuple(sorted(channels))


@dataclass(frozen=True)
class LightConfig:
    """Light-DQM constants; ADC16 counts unless the name says otherwise."""

    pedestal_samples: int = C.PEDESTAL_SAMPLES
    ptp_threshold_adc16: float = float(C.PTP_THRESHOLD_ADC16)
    flatline_threshold_adc16: float = float(C.FLATLINE_THRESHOLD_ADC16)
    clip_level_adc16: int = C.LIGHT_CLIP_LEVEL_ADC16
    baseline_range_adc16: tuple[float, float] = C.BASELINE_RANGE_ADC16
    baseline_spread_limit_adc16: float = C.BASELINE_SPREAD_LIMIT_ADC16
    confidence_level: float = C.CONFIDENCE_LEVEL
    n_adcs: int = C.LIGHT_N_ADCS
    n_channels: int = C.LIGHT_N_CHANNELS
    active_channels: str = C.LIGHT_ACTIVE_CHANNELS
    epcb_size: int = C.LIGHT_EPCB_SIZE
    tpc_adc_pairs: tuple[tuple[int, int], ...] = C.LIGHT_TPC_ADC_PAIRS
    tpc_split_channel: int = C.LIGHT_TPC_SPLIT_CHANNEL
    sample_period_us: float = C.LIGHT_SAMPLE_PERIOD_US
    adc_range_v: float = C.LIGHT_ADC_RANGE_V
    channel_status_csv: str = ""
    """Known problems (8 rows x 64 values); empty: every active channel is 'good'."""
    max_events: int = 0
    """Analyse at most this many events per file (0: all of them)."""
    spectra_events: int = C.SPECTRA_MAX_EVENTS
    """Events per file (spread evenly over it) whose power spectra are kept (0: none)."""

    def active_channel_list(self) -> tuple[int, ...]:
        return parse_channel_list(self.active_channels, self.n_channels)


@dataclass(frozen=True)
class WatchConfig:
    """Which files the daemon picks up and when a file counts as complete."""

    paths: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    """File-name globs to pick up; empty: the patterns of every enabled processor's formats
    (``*.FLOW.hdf5``, ``*.wfm``, ...: ``wavedqm.processors.router.watch_patterns``)."""
    settle_seconds: float = C.SETTLE_SECONDS
    signalled_settle_seconds: float = C.SIGNALLED_SETTLE_SECONDS
    """Settle time after a rename-in or close-after-write event (inotify only; s)."""
    min_file_age_seconds: float = C.MIN_FILE_AGE_SECONDS
    max_file_size_bytes: int = C.MAX_FILE_SIZE_BYTES
    poll: bool = False
    poll_interval_seconds: float = C.POLL_INTERVAL_SECONDS
    queue_max_files: int = C.QUEUE_MAX_FILES
    recursive: bool = True
    max_processing_seconds: float = C.MAX_PROCESSING_SECONDS
    """Longest one file may take (s): past it the daemon is stalled (``/healthz`` 503, the
    systemd watchdog withheld, so systemd restarts it)."""
    max_stalls: int = C.MAX_FILE_STALLS
    """Stalls of one file (then restarts) before it is failed as ``stalled``."""
    max_attempts: int = C.MAX_FILE_ATTEMPTS
    """Starts of a file's processing that ended with no trace (kill -9, OOM killer) after
    which it waits behind the other waiting files; never failed for them."""


@dataclass(frozen=True)
class ReaderConfig:
    chunk_bytes: int = C.READ_CHUNK_BYTES
    """Bytes of raw samples per batch (bounds memory)."""
    max_allocation_bytes: int = C.MAX_ALLOCATION_BYTES
    """Largest allocation a file's header may size (bytes): a file needing more (huge
    declared waveforms, a huge voxel grid) fails as ``too_large`` before anything is read."""


def default_state_dir() -> str:
    """``$XDG_STATE_HOME/wavedqm``, else ``~/.local/state/wavedqm``: one per user, wherever
    the command is run from (the service passes ``--state /var/lib/wavedqm/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / C.STATE_SUBDIR)


@dataclass(frozen=True)
class OutputConfig:
    dir: str = C.OUTPUT_DIR
    state_dir: str = field(default_factory=default_state_dir)
    """Ledger, history, run accumulators (``--state``)."""
    status_csv: str = ""
    """Where to write the channel-status CSV of the latest file (empty: not written)."""
    reports: bool = True
    """Write a PDF report per file (``OUT/<file>/report.pdf``, latest in ``OUT/reports/``)."""
    max_pending_drawings: int = C.MAX_PENDING_DRAWINGS
    """The daemon keeps at most this many drawings (PNGs, reports) waiting; beyond, the
    superseded then the oldest are dropped (``wavedqm_drawings_dropped_total``): memory stays
    bounded under a burst. ``wavedqm process`` draws everything."""
    drawing_processes: int = C.DRAWING_PROCESSES
    """Helper processes that draw the figures and PDF reports (0: on the plotting thread)."""
    retry_seconds: float = C.OUTPUT_RETRY_SECONDS
    """First wait before a file whose outputs or state could not be written (disk full,
    read-only) is processed again (s); doubled at each failure up to
    ``OUTPUT_RETRY_MAX_SECONDS``. Such a file is never recorded as failed."""


@dataclass(frozen=True)
class HistoryConfig:
    """Comparison with previous files (history store in the state folder)."""

    previous_files: int | str = C.HISTORY_PREVIOUS_FILES
    """How many previous files the rollup covers: a number, "all" or "none"."""

    def previous_count(self) -> int | None:
        """``None`` for all stored files, 0 for none, else N."""
        if self.previous_files == "all":
            return None
        if self.previous_files == "none":
            return 0
        return int(self.previous_files)


@dataclass(frozen=True)
class S2Config:
    """Online S2 analysis of Tektronix ``.wfm`` field scans (spec: ratag-s2.md)."""

    run_config: str = ""
    """TOML with the run's gas/geometry constants and set voltages (a ``run.toml`` inside a
    run folder is read too, and wins for that run)."""
    ion_bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS
    """Area range (mV·µs) of the ion S2 Gaussian fit."""
    xray_bin_cuts: tuple[float, float] = C.RATAG_XRAY_BIN_CUTS
    """Area range (mV·µs) of the X-ray Gaussian fit."""
    fit_bins: int = C.RATAG_FIT_BINS
    min_fit_events: int = C.RATAG_MIN_FIT_EVENTS
    """Refit the Gaussian once a set has at least this many areas."""
    rerun_tolerance_us: float = C.RATAG_RERUN_TOLERANCE_US
    """Re-run an earlier file's areas when the set's window moved by more than this (µs)."""
    plots: bool = True


@dataclass(frozen=True)
class ChargeConfig:
    """Charge hits of ``.FLOW.hdf5`` files accumulated into a 3D voxel grid per run."""

    voxel_size_cm: tuple[float, float, float] = C.VOXEL_SIZE_CM
    """Voxel size (cm) of the grid made from the file's ``det_bounds``, or of ``origin_cm``."""
    origin_cm: tuple[float, ...] = ()
    """With ``shape``: a fixed grid from the config (cm), instead of the file's det_bounds."""
    shape: tuple[int, ...] = ()
    """Voxels along x, y, z of the fixed grid."""
    run_pattern: str = ""
    """Regular expression on the file name whose group ``run`` (or first group) names the
    run a file belongs to; empty: the file's folder is its run."""
    low_hits_threshold: int = C.VOXEL_LOW_HITS
    """Voxels with fewer hits are counted in the low-statistics fraction."""
    plots: bool = True


@dataclass(frozen=True)
class ShotChannelConfig:
    """``[shots.channel.<name>]``: what differs for one channel from the ``[shots]`` defaults
    (every key optional; the meaning of each is the ``[shots]`` key of the same name)."""

    metrics: tuple[str, ...] | None = None
    baseline_window_s: tuple[float, float] | None = None
    signal_window_s: tuple[float, float] | None = None
    low_signal_threshold: float | None = None
    missing_fraction: float | None = None
    saturation_run: int | None = None
    saturation_fraction: float | None = None
    saturation_tolerance: float | None = None
    noisy_baseline_ratio: float | None = None
    timing_sigma: float | None = None


SHOT_RULE_KEYS = tuple(f.name for f in dataclasses.fields(ShotChannelConfig))
"""The keys of ``[shots]`` that a ``[shots.channel.<name>]`` table may override."""


@dataclass(frozen=True)
class ShotsConfig:
    """Shot files of pulsed experiments: metrics, quality flags, trends (seed 003)."""

    metrics: tuple[str, ...] = C.SHOT_METRICS
    """Metrics computed for every channel (``[shots.channel.<name>] metrics`` per channel)."""
    baseline_window_s: tuple[float, float] | None = None
    """Baseline region [start, stop) in s; unset: the first 10% of the record."""
    signal_window_s: tuple[float, float] | None = None
    """Signal region [start, stop) in s of snr_estimate; unset: after the baseline region."""
    low_signal_threshold: float = 0.0
    """low_signal when max |x| is below this (channel units); 0: never (set it per channel)."""
    missing_fraction: float = C.SHOT_MISSING_FRACTION
    saturation_run: int = C.SHOT_SATURATION_RUN
    saturation_fraction: float = C.SHOT_SATURATION_FRACTION
    saturation_tolerance: float = C.SHOT_SATURATION_TOLERANCE
    noisy_baseline_ratio: float = C.SHOT_NOISY_BASELINE_RATIO
    timing_sigma: float = C.SHOT_TIMING_SIGMA
    timing_min_shots: int = C.SHOT_TIMING_MIN_SHOTS
    """Earlier clean shots needed before timing_outlier is judged."""
    sidecar_wait_seconds: float = C.SHOT_SIDECAR_WAIT_SECONDS
    """How long a complete shot waits for its .meta.json before going on without it (s)."""
    folder_pattern: str = ""
    """Regular expression on the file name whose group ``run`` (or first group) names the
    series a shot belongs to; empty: the shot's folder."""
    overlay_shots: int = C.SHOT_OVERLAY_SHOTS
    trend_metrics: tuple[str, ...] = C.SHOT_TREND_METRICS
    alert_streak: int = C.SHOT_ALERT_STREAK
    """Exported as ``wavedqm_shot_flag_streak_limit``: a channel flagged in this many shots
    in a row fires WavedqmShotChannelFlagged."""
    plots: bool = True
    channel: dict[str, ShotChannelConfig] = field(default_factory=dict)
    """Per-channel overrides: ``[shots.channel.photodiode] low_signal_threshold = 0.2``."""

    def rules_for(self, name: str) -> dict[str, Any]:
        """The rule values of channel ``name``: the defaults with its overrides on top."""
        rules = {k: getattr(self, k) for k in SHOT_RULE_KEYS}
        given = self.channel.get(name)
        if given is not None:
            rules |= {k: v for k in SHOT_RULE_KEYS if (v := getattr(given, k)) is not None}
        return rules


@dataclass(frozen=True)
class QualityTestConfig:
    """``[quality.tests.<name>]``: one quality test of the light channels against the reference
    (``constants.QUALITY_KINDS`` says what each kind's value is)."""

    quantity: str = ""
    """``baseline`` | ``noise`` (ADC16 distributions) | ``clipped`` | ``negative`` (fractions)."""
    kind: str = ""
    warning: tuple[float, float] = (-C.INF, C.INF)
    """Ok inside this interval (value units: ADC16, ratio, σ, p-value, D, χ²/ndf)."""
    error: tuple[float, float] = (-C.INF, C.INF)
    """A warning inside this one (it holds ``warning``), an error outside."""
    min_events: int = C.QUALITY_MIN_EVENTS
    """Fewer valid events in the file or the reference: "not enough data"."""


def _default_quality_tests() -> dict[str, QualityTestConfig]:
    return {name: QualityTestConfig(**spec) for name, spec in C.QUALITY_DEFAULT_TESTS.items()}  # type: ignore[arg-type]


KIND_QUALITY_MODULES = {
    "s2": "wavedqm.analysis.s2_quality",
    "shots": "wavedqm.analysis.shot_quality",
    "voxels": "wavedqm.analysis.voxel_quality",
}
"""Where each non-light kind's quality tests live: each module has ``DEFAULT_TESTS`` (name ->
QualityTestConfig keyword arguments) and ``KINDS_BY_QUANTITY`` (quantity -> the test kinds that
apply to it), so that its constants stay in one place (imported when a config is built)."""


def kind_quality_module(kind: str) -> Any:
    import importlib

    return importlib.import_module(KIND_QUALITY_MODULES[kind])


def _kind_tests(kind: str) -> dict[str, QualityTestConfig]:
    defaults = kind_quality_module(kind).DEFAULT_TESTS
    return {name: QualityTestConfig(**spec) for name, spec in defaults.items()}


@dataclass(frozen=True)
class QualityConfig:
    """Quality tests of each light file against a reference run (``wavedqm reference``)."""

    reference: str = ""
    """The reference's name (``STATE/references/<name>.npz``, and ``<kind>/<name>.npz`` for
    s2, shots, voxels); empty: the one ``wavedqm reference use`` chose; none chosen: no quality
    tests."""
    tests: dict[str, QualityTestConfig] = field(default_factory=_default_quality_tests)
    """The tests (a ``[quality.tests.<name>]`` table replaces the whole default set)."""
    channels_failing: tuple[float, float] = C.QUALITY_CHANNELS_FAILING
    """Fraction of monitored channels with an error: warning above the first, error above."""
    s2_tests: dict[str, QualityTestConfig] = field(default_factory=lambda: _kind_tests("s2"))
    """``[quality.s2_tests.<name>]``: tests of each S2 set against the reference's set of the
    same fields (quantities and kinds: ``wavedqm.analysis.s2_quality``)."""
    shot_tests: dict[str, QualityTestConfig] = field(default_factory=lambda: _kind_tests("shots"))
    """``[quality.shot_tests.<name>]``: tests of each shot's metrics per channel against the
    reference shots (``wavedqm.analysis.shot_quality``)."""
    voxel_tests: dict[str, QualityTestConfig] = field(default_factory=lambda: _kind_tests("voxels"))
    """``[quality.voxel_tests.<name>]``: tests of each charge run's voxel occupancy against the
    reference's (``wavedqm.analysis.voxel_quality``)."""


@dataclass(frozen=True)
class ProcessorsConfig:
    """Which processors run (``wavedqm.processors.registry``): all registered ones but these."""

    disabled: tuple[str, ...] = ()
    """Names of processors switched off (e.g. ``["s2"]``): not imported, not built."""


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = C.LISTEN_ADDRESS
    pushgateway: str = ""
    job: str = "wavedqm"
    data_taking_expected: bool = True
    """Exported as ``wavedqm_data_taking_expected``: WavedqmNoRecentFiles only fires when 1."""
    max_file_gap_seconds: float = C.MAX_FILE_GAP_SECONDS
    """Exported as ``wavedqm_max_file_gap_seconds``: no file for longer is an alert (s)."""
