"""Configuration: TOML file (stdlib ``tomllib``) over the defaults in ``wavedqm.constants``.

Every section is a frozen dataclass. ``load_config`` refuses an unknown key or a value of the
wrong type with the key, the value and what was expected; command-line flags are applied on top
with ``Config.with_overrides``. The sections' dataclasses are in
:mod:`wavedqm.config_sections` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavedqm import constants as C
from wavedqm.config_sections import (
    SHOT_RULE_KEYS as SHOT_RULE_KEYS,
)
from wavedqm.config_sections import (
    ChargeConfig as ChargeConfig,
)
from wavedqm.config_sections import (
    HistoryConfig as HistoryConfig,
)
from wavedqm.config_sections import (
    LightConfig as LightConfig,
)
from wavedqm.config_sections import (
    MetricsConfig as MetricsConfig,
)
from wavedqm.config_sections import (
    OutputConfig as OutputConfig,
)
from wavedqm.config_sections import (
    ProcessorsConfig as ProcessorsConfig,
)
from wavedqm.config_sections import (
    QualityConfig as QualityConfig,
)
from wavedqm.config_sections import (
    QualityTestConfig as QualityTestConfig,
)
from wavedqm.config_sections import (
    ReaderConfig as ReaderConfig,
)
from wavedqm.config_sections import (
    S2Config as S2Config,
)
from wavedqm.config_sections import (
    ShotChannelConfig as ShotChannelConfig,
)
from wavedqm.config_sections import (
    ShotsConfig as ShotsConfig,
)
from wavedqm.config_sections import (
    WatchConfig as WatchConfig,
)
from wavedqm.config_sections import (
    default_state_dir as default_state_dir,
)
from wavedqm.config_sections import (
    kind_quality_module,
)
from wavedqm.config_sections import (
    parse_channel_list as parse_channel_list,
)
from wavedqm.errors import ConfigError


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
    quality: QualityConfig = field(default_factory=QualityConfig)

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


def _validate_quality(obj: QualityConfig) -> None:
    if obj.reference and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", obj.reference):
        raise ConfigError(
            f"quality.reference: {obj.reference!r} (expected a reference name: letters, "
            "digits, '.', '_', '-')"
        )
    lo, hi = obj.channels_failing
    if not 0 <= lo <= hi:
        raise ConfigError(
            f"quality.channels_failing: {[lo, hi]} (expected [warning, error], 0 <= warning "
            "<= error)"
        )
    for name, test in obj.tests.items():
        where = f"quality.tests.{name}"
        if test.quantity not in C.QUALITY_QUANTITIES:
            raise ConfigError(
                f"{where}.quantity: {test.quantity!r} (expected one of: "
                f"{', '.join(C.QUALITY_QUANTITIES)})"
            )
        rate = test.quantity in ("clipped", "negative")
        kinds = C.QUALITY_RATE_KINDS if rate else C.QUALITY_KINDS
        if test.kind not in kinds:
            raise ConfigError(
                f"{where}.kind: {test.kind!r} (expected for {test.quantity} one of: "
                f"{', '.join(kinds)})"
            )
        _validate_thresholds(where, test)
    for field_name, kind in (
        ("s2_tests", "s2"),
        ("shot_tests", "shots"),
        ("voxel_tests", "voxels"),
    ):
        kinds_by_quantity = kind_quality_module(kind).KINDS_BY_QUANTITY
        for name, test in getattr(obj, field_name).items():
            _validate_kind_test(f"quality.{field_name}.{name}", test, kinds_by_quantity)


def _validate_kind_test(
    where: str, test: QualityTestConfig, kinds_by_quantity: dict[str, tuple[str, ...]]
) -> None:
    """One test of s2 / shots / voxels: a known quantity, a kind that applies to it, nested
    intervals, ``min_events`` ≥ 1."""
    if test.quantity not in kinds_by_quantity:
        raise ConfigError(
            f"{where}.quantity: {test.quantity!r} (expected one of: {', '.join(kinds_by_quantity)})"
        )
    kinds = kinds_by_quantity[test.quantity]
    if test.kind not in kinds:
        raise ConfigError(
            f"{where}.kind: {test.kind!r} (expected for {test.quantity} one of: {', '.join(kinds)})"
        )
    _validate_thresholds(where, test)


def _validate_thresholds(where: str, test: QualityTestConfig) -> None:
    """Nested intervals (ok inside ``warning`` inside ``error``) and ``min_events`` ≥ 1."""
    (wl, wh), (el, eh) = test.warning, test.error
    if not (el <= wl <= wh <= eh):
        raise ConfigError(
            f"{where}: warning {[wl, wh]} must lie inside error {[el, eh]} "
            "(ok inside warning, warning inside error, error outside)"
        )
    if test.min_events < 1:
        raise ConfigError(f"{where}.min_events: {test.min_events} (expected at least 1)")


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
    if isinstance(obj, QualityConfig):
        _validate_quality(obj)
    if isinstance(obj, MetricsConfig):
        parse_listen(obj.listen)
    if isinstance(obj, OutputConfig) and obj.drawing_processes < 0:
        raise ConfigError(f"output.drawing_processes: {obj.drawing_processes} (expected 0 or more)")
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
