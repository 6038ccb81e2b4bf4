"""A RaTag run's own config: ``RUN/run.toml`` (gas and geometry constants, set voltages, fit
ranges) — the one per-run file, read in every mode (``watch``, ``process``, ``demo``).

Top-level keys (each optional; missing ones come from the defaults): ``pressure_bar``,
``temperature_k``, ``el_gap_cm``, ``drift_gap_cm``, ``w_value_ev``, ``xray_energy_kev``;
``[sets.<set name>]`` tables with ``gate_v`` and ``anode_v`` (V) for sets whose folder names do
not carry their voltages; a ``[fit]`` table with ``ion_bin_cuts`` / ``xray_bin_cuts`` (mV·µs
ranges of the Gaussian fits), ``fit_bins``, ``min_fit_events`` for this run (over the
``[s2]`` section of the wavedqm config). Read by the S2 processor for every run folder, and from
``s2.run_config`` for every run.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wavedqm.analysis.ratag import RunConstants
from wavedqm.errors import ConfigError

RUN_CONFIG_FILE = "run.toml"
"""A run folder's own run config, read by itself."""
RUN_CONFIG_KEYS = (
    "pressure_bar",
    "temperature_k",
    "el_gap_cm",
    "drift_gap_cm",
    "w_value_ev",
    "xray_energy_kev",
)
SET_CONFIG_KEYS = ("gate_v", "anode_v")
FIT_RANGE_KEYS = ("ion_bin_cuts", "xray_bin_cuts")
FIT_COUNT_KEYS = ("fit_bins", "min_fit_events")
FIT_KEYS = {"fit_bins": "nbins", "min_fit_events": "min_fit_events"} | {
    k: k for k in FIT_RANGE_KEYS
}
"""``[fit]`` key -> field of :class:`wavedqm.analysis.ratag_run.FitSettings`."""


@dataclass(frozen=True)
class RunConfig:
    """What a run config says."""

    constants: RunConstants
    sets: SetOverrides = field(default_factory=dict)
    fits: dict[str, Any] = field(default_factory=dict)
    """``FitSettings`` field -> value, for the keys the ``[fit]`` table sets."""


SetOverrides = dict[str, tuple[float, float]]
"""Set name → (gate V, anode V)."""


def _number(path: Path, key: str, value: Any, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: {key} = {value!r} is not a number")
    x = float(value)
    if not math.isfinite(x) or (positive and x <= 0):
        raise ConfigError(
            f"{path}: {key} = {value!r} (expected a finite number{' > 0' if positive else ''})"
        )
    return x


def _fits(path: Path, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: fit = {table!r} (expected a [fit] table)")
    bad = sorted(set(table) - set(FIT_KEYS))
    if bad:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(f'fit.{k}' for k in bad)} "
            f"(expected some of: {', '.join(f'fit.{k}' for k in FIT_KEYS)})"
        )
    fits: dict[str, Any] = {}
    for key in FIT_RANGE_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, list) or len(value) != 2:
                raise ConfigError(f"{path}: fit.{key} = {value!r} (expected [low, high] mV·µs)")
            lo, hi = (_number(path, f"fit.{key}", v, positive=False) for v in value)
            if not lo < hi:
                raise ConfigError(f"{path}: fit.{key} = {value!r} (expected low < high)")
            fits[key] = (lo, hi)
    for key in FIT_COUNT_KEYS:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{path}: fit.{key} = {value!r} (expected an integer >= 1)")
            fits[FIT_KEYS[key]] = value
    return fits


def load_run_config(path: str | Path, base: RunConstants | None = None) -> RunConfig:
    """Read a run config TOML: top-level ``pressure_bar``, ``temperature_k``, ``el_gap_cm``,
    ``drift_gap_cm``, ``w_value_ev``, ``xray_energy_kev`` (each optional; missing ones come
    from ``base``), ``[sets.<set name>]`` tables with ``gate_v`` and ``anode_v`` (V), a
    ``[fit]`` table. Unknown keys, wrong types and non-physical values raise ``ConfigError``
    naming them."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the run config ({err})") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from err
    unknown = sorted(set(raw) - set(RUN_CONFIG_KEYS) - {"sets", "fit"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)} (expected {', '.join(RUN_CONFIG_KEYS)}"
            ", [sets.<set name>] tables with gate_v, anode_v, and a [fit] table)"
        )
    values = {k: _number(path, k, raw[k]) for k in RUN_CONFIG_KEYS if k in raw}
    constants = replace(base or RunConstants(), **values)
    sets = raw.get("sets", {})
    if not isinstance(sets, dict):
        raise ConfigError(f"{path}: sets = {sets!r} (expected [sets.<set name>] tables)")
    overrides: SetOverrides = {}
    for name, table in sets.items():
        where = f"sets.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where} = {table!r} (expected a table: gate_v, anode_v)")
        bad = sorted(set(table) - set(SET_CONFIG_KEYS))
        if bad:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(f'{where}.{k}' for k in bad)} "
                f"(expected {where}.gate_v and {where}.anode_v)"
            )
        missing = [k for k in SET_CONFIG_KEYS if k not in table]
        if missing:
            raise ConfigError(
                f"{path}: {where} has no {' and no '.join(missing)} (both voltages are needed)"
            )
        gate = _number(path, f"{where}.gate_v", table["gate_v"])
        anode = _number(path, f"{where}.anode_v", table["anode_v"], positive=False)
        overrides[str(name)] = (gate, anode)
    return RunConfig(constants, overrides, _fits(path, raw.get("fit", {})))
