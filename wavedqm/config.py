"""Configuration: TOML file (stdlib ``tomllib``) over the defaults in ``wavedqm.constants``.

Every section is a frozen dataclass. ``load_config`` refuses an unknown key or a value of the
wrong type with the key, the value and what was expected; command-line flags are applied on top
with ``Config.with_overrides``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable
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
    """Starts of a file's processing that never ended (crash, kill) before the file is
    failed as ``stalled`` rather than tried again."""


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


def _validate_shots(obj: ShotsConfig) -> None:
    lists = [("shots.metrics", obj.metrics), ("shots.trend_metrics", obj.trend_metrics)]
    lists += [(f"shots.channel.{c}.metrics", v.metrics or ()) for c, v in obj.channel.items()]
    for where, names in lists:
        unknown = sorted(set(names) - set(C.SHOT_METRICS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown metric {unknown[0]!r}{_did_you_mean(unknown[0], C.SHOT_METRICS)}"
                f" (expected some of: {', '.join(C.SHOT_METRICS)})"
            )
    if obj.alert_streak < 1 or obj.overlay_shots < 1:
        raise ConfigError("shots.alert_streak and shots.overlay_shots: expected at least 1")
    if obj.folder_pattern:
        try:
            re.compile(obj.folder_pattern)
        except re.error as err:
            raise ConfigError(f"shots.folder_pattern: {obj.folder_pattern!r}: {err}") from None


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


@dataclass(frozen=True)
class Config:
    light: LightConfig = field(default_factory=LightConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    s2: S2Config = field(default_factory=S2Config)
    processors: ProcessorsConfig = field(default_factory=ProcessorsConfig)
    charge: ChargeConfig = field(default_factory=ChargeConfig)
    shots: ShotsConfig = field(default_factory=ShotsConfig)

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """A copy with ``section={key: value}`` applied; ``None`` values are ignored."""
        changes = {}
        for name, values in sections.items():
            current = getattr(self, name)
            given = {k: v for k, v in values.items() if v is not None}
            if given:
                raw = dataclasses.asdict(current) | given
                changes[name] = _build(type(current), raw, name)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None  # an optional key left unset (only from with_overrides: TOML has no null)
        errors = []
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} is not {_type_name(tp)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: {value!r} is not a list (expected {_type_name(tp)})")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(
                f"{key}: {value!r} has {len(value)} items (expected {len(args)}: {_type_name(tp)})"
            )
        return tuple(
            _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: {value!r} is not a table (expected [{key}.<name>])")
        return {str(k): _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: {value!r} is not a table (expected [{key}])")
        return _build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: {value!r} is not a boolean (expected true or false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: {value!r} is not an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: {value!r} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: {value!r} is not a string")
        return value
    raise ConfigError(f"{key}: unsupported type {tp!r}")  # pragma: no cover


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """``": did you mean 'pedestal_samples'?"`` for the closest known name, if one is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def _build(cls: type, raw: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{unknown[0]}{_did_you_mean(unknown[0], names)} "
            f"(expected one of: {', '.join(sorted(names))})"
        )
    values = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in raw.items()}
    obj = cls(**values)
    _validate(obj, section)
    return obj


def _validate_charge(obj: ChargeConfig) -> None:
    if min(obj.voxel_size_cm) <= 0:
        raise ConfigError(f"charge.voxel_size_cm: {list(obj.voxel_size_cm)} (expected > 0)")
    if bool(obj.origin_cm) != bool(obj.shape) or (
        obj.origin_cm and (len(obj.origin_cm) != 3 or len(obj.shape) != 3)
    ):
        raise ConfigError(
            f"charge.origin_cm {list(obj.origin_cm)} / charge.shape {list(obj.shape)}: "
            "expected both (three values each) or neither"
        )
    if obj.shape and min(obj.shape) < 1:
        raise ConfigError(f"charge.shape: {list(obj.shape)} (expected positive sizes)")
    if obj.run_pattern:
        try:
            re.compile(obj.run_pattern)
        except re.error as err:
            raise ConfigError(f"charge.run_pattern: {obj.run_pattern!r}: {err}") from None


def _validate(obj: Any, section: str) -> None:
    """Range checks that types alone cannot express."""
    if isinstance(obj, LightConfig):
        obj.active_channel_list()
        if obj.pedestal_samples < 2:
            raise ConfigError(
                f"light.pedestal_samples: {obj.pedestal_samples} (expected at least 2)"
            )
        lo, hi = obj.baseline_range_adc16
        if lo >= hi:
            raise ConfigError(
                f"light.baseline_range_adc16: {[lo, hi]} (expected [low, high] with low < high)"
            )
        if not 0 < obj.confidence_level < 1:
            raise ConfigError(
                f"light.confidence_level: {obj.confidence_level} (expected between 0 and 1)"
            )
        for pair in obj.tpc_adc_pairs:
            if any(not 0 <= a < obj.n_adcs for a in pair):
                raise ConfigError(
                    f"light.tpc_adc_pairs: {pair} names an ADC outside 0..{obj.n_adcs - 1}"
                )
    if isinstance(obj, HistoryConfig):
        value = obj.previous_files
        if isinstance(value, str) and value not in ("all", "none"):
            raise ConfigError(
                f"history.previous_files: {value!r} (expected a number, 'all' or 'none')"
            )
        if isinstance(value, int) and value < 0:
            raise ConfigError(f"history.previous_files: {value} (expected >= 0)")
    if isinstance(obj, ChargeConfig):
        _validate_charge(obj)
    if isinstance(obj, ShotsConfig):
        _validate_shots(obj)
    if isinstance(obj, MetricsConfig):
        parse_listen(obj.listen)
    if isinstance(obj, OutputConfig) and obj.drawing_processes < 0:
        raise ConfigError(
            f"output.drawing_processes: {obj.drawing_processes} (expected 0 or more)"
        )
    if isinstance(obj, OutputConfig) and not obj.retry_seconds > 0:
        raise ConfigError(f"output.retry_seconds: {obj.retry_seconds} (expected > 0)")
    if isinstance(obj, OutputConfig) and obj.max_pending_drawings < 1:
        raise ConfigError(
            f"output.max_pending_drawings: {obj.max_pending_drawings} (expected at least 1)"
        )
    if isinstance(obj, ReaderConfig) and obj.chunk_bytes < 2**20:
        raise ConfigError(f"reader.chunk_bytes: {obj.chunk_bytes} (expected at least 1048576)")
    if isinstance(obj, WatchConfig) and obj.settle_seconds < 0:
        raise ConfigError(f"watch.settle_seconds: {obj.settle_seconds} (expected >= 0)")
    if isinstance(obj, WatchConfig) and not obj.max_processing_seconds > 0:
        raise ConfigError(
            f"watch.max_processing_seconds: {obj.max_processing_seconds} (expected > 0)"
        )
    if isinstance(obj, WatchConfig) and obj.max_attempts < 1:
        raise ConfigError(f"watch.max_attempts: {obj.max_attempts} (expected at least 1)")
    if isinstance(obj, WatchConfig) and obj.max_stalls < 1:
        raise ConfigError(f"watch.max_stalls: {obj.max_stalls} (expected at least 1)")
    if isinstance(obj, WatchConfig) and obj.signalled_settle_seconds < 0:
        raise ConfigError(
            f"watch.signalled_settle_seconds: {obj.signalled_settle_seconds} (expected >= 0)"
        )


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9108"`` -> (host, port); port 0 picks a free port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"metrics.listen: {listen!r} (expected HOST:PORT, e.g. 127.0.0.1:9108)")
    return host.strip("[]") or "127.0.0.1", int(port)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a Config from a parsed TOML document, refusing unknown sections and keys."""
    hints = typing.get_type_hints(Config)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(
            f"unknown section [{unknown[0]}]{_did_you_mean(unknown[0], hints)} "
            f"(expected one of: {', '.join(sorted(hints))})"
        )
    sections = {}
    for name, cls in hints.items():
        given = raw.get(name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{name}: {given!r} is not a table (expected [{name}])")
        sections[name] = _build(cls, given, name)
    return Config(**sections)


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file (``None``: all defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        return config_from_dict(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
