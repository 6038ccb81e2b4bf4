"""RaTag run constants, set names, and the fields and electron transport of a set.

Pure functions and dataclasses, no I/O (spec: ratag-s2.md; the seeds 000/001 name the JSON
keys). Units: V, V/cm, cm, bar, K, cm⁻³, Td (1 Td = 1e-17 V·cm²), mm/µs, µs.

- :class:`RunConstants` — pressure (bar), temperature (K), EL and drift gaps (cm), W value
  (eV), X-ray energy (keV), drift-speed parameters; the gas density (cm⁻³).
- :func:`is_set_name` / :func:`parse_set_name` — ``FieldScan_Gate0200_Anode2100`` →
  :class:`SetInfo` (gate and anode voltages, V; sampling rate, GS/s).
- :func:`drift_field_v_cm`, :func:`el_field_v_cm`, :func:`gas_density_cm3`,
  :func:`reduced_field_td`, :func:`drift_speed_mm_us`, :func:`drift_time_us` — scalars or
  numpy arrays.
- :func:`set_physics` — drift/EL fields (V/cm), reduced drift field (Td), drift speed
  (mm/µs) and drift time (µs) of a set (:class:`SetPhysics`).
- :func:`json_num` — JSON-safe float (NaN/inf → None), shared by the ``to_dict`` methods of
  the ``ratag_*`` modules.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C


def json_num(x: float) -> float | None:
    """JSON-safe float: NaN/inf → None."""
    x = float(x)
    return x if math.isfinite(x) else None


def json_bounds(interval: tuple[float, float]) -> list[float | None]:
    """An interval for JSON: an open end (±inf) as None."""
    return [json_num(interval[0]), json_num(interval[1])]


# --------------------------------------------------------------------------------------------
# run constants and set names


@dataclass(frozen=True)
class RunConstants:
    """Constants of a run (spec: ratag-s2.md; defaults from ``wavedqm.constants``)."""

    pressure_bar: float = C.RATAG_PRESSURE_BAR
    temperature_k: float = C.RATAG_TEMPERATURE_K
    el_gap_cm: float = C.RATAG_EL_GAP_CM
    drift_gap_cm: float = C.RATAG_DRIFT_GAP_CM
    w_value_ev: float = C.RATAG_W_VALUE_EV
    xray_energy_kev: float = C.RATAG_XRAY_ENERGY_KEV
    drift_speed_params: tuple[float, float, float, float] = C.RATAG_DRIFT_SPEED_PARAMS
    """p0..p3 of :func:`drift_speed_mm_us`."""

    @property
    def gas_density_cm3(self) -> float:
        """Number density of the gas (cm⁻³)."""
        return float(gas_density_cm3(self.pressure_bar, self.temperature_k))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drift_speed_params"] = list(self.drift_speed_params)
        return d


@dataclass(frozen=True)
class SetInfo:
    """What a set's directory name says."""

    name: str
    gate_v: float
    """Gate voltage (V)."""
    anode_v: float
    """Anode (EL) voltage (V)."""
    sampling_gs_s: float | None
    """Sampling rate (GS/s) if the name gives it (``…_2GSsec``)."""


_GATE = re.compile(r"Gate(\d+)")
_ANODE = re.compile(r"(?:Anode|EL)(\d+)")
_RATE = re.compile(r"(\d+)GSsec")


def is_set_name(name: str) -> bool:
    """A run's subdirectory is a set when its name contains ``FieldScan``."""
    return "FieldScan" in name


def parse_set_name(name: str) -> SetInfo:
    """``"FieldScan_Gate0200_Anode2100"`` → ``SetInfo(gate_v=200, anode_v=2100, None)``.

    ``Gate(\\d+)`` is the gate voltage, ``Anode(\\d+)`` or ``EL(\\d+)`` the anode voltage,
    ``(\\d+)GSsec`` the sampling rate (optional). Raises ``ValueError`` naming what is missing.
    """
    gate = _GATE.search(name)
    anode = _ANODE.search(name)
    pairs = (("Gate<volts>", gate), ("Anode<volts> or EL<volts>", anode))
    missing = [what for what, match in pairs if match is None]
    if missing or gate is None or anode is None:
        raise ValueError(
            f"set name {name!r}: no {' and no '.join(missing)} "
            f"(expected e.g. 'FieldScan_Gate0200_Anode2100' or '..._Gate0050_EL1750_2GSsec')"
        )
    rate = _RATE.search(name)
    return SetInfo(
        name=name,
        gate_v=float(gate.group(1)),
        anode_v=float(anode.group(1)),
        sampling_gs_s=float(rate.group(1)) if rate else None,
    )


# --------------------------------------------------------------------------------------------
# fields and transport (scalars or numpy arrays)


def drift_field_v_cm(gate_v: Any, drift_gap_cm: float = C.RATAG_DRIFT_GAP_CM) -> Any:
    """Drift field E_d = V_gate / drift gap (V/cm)."""
    return np.asarray(gate_v, np.float64) / drift_gap_cm


def el_field_v_cm(anode_v: Any, gate_v: Any, el_gap_cm: float = C.RATAG_EL_GAP_CM) -> Any:
    """Electroluminescence field (V_anode − V_gate) / EL gap (V/cm)."""
    return (np.asarray(anode_v, np.float64) - np.asarray(gate_v, np.float64)) / el_gap_cm


def gas_density_cm3(
    pressure_bar: float = C.RATAG_PRESSURE_BAR, temperature_k: float = C.RATAG_TEMPERATURE_K
) -> Any:
    """Ideal-gas number density n = P / (k_B T) (cm⁻³)."""
    pressure_pa = np.asarray(pressure_bar, np.float64) * 1e5
    return pressure_pa / (C.BOLTZMANN_J_PER_K * np.asarray(temperature_k, np.float64)) * 1e-6


def reduced_field_td(field_v_cm: Any, density_cm3: Any) -> Any:
    """Reduced field E / n in Td (1 Td = 1e-17 V·cm²)."""
    return np.asarray(field_v_cm, np.float64) / np.asarray(density_cm3) * C.TD_PER_V_CM2


def drift_speed_mm_us(
    reduced_td: Any, params: tuple[float, float, float, float] = C.RATAG_DRIFT_SPEED_PARAMS
) -> Any:
    """Electron drift speed v = p0·(1 − exp(−p1·rE)) + p2·rE / (1 + p3·rE) (mm/µs, rE in Td)."""
    p0, p1, p2, p3 = params
    r = np.asarray(reduced_td, np.float64)
    return p0 * (1.0 - np.exp(-p1 * r)) + p2 * r / (1.0 + p3 * r)


def drift_time_us(speed_mm_us: Any, drift_gap_cm: float = C.RATAG_DRIFT_GAP_CM) -> Any:
    """Drift time = drift gap (mm) / speed (µs)."""
    return drift_gap_cm * 10.0 / np.asarray(speed_mm_us, np.float64)


@dataclass(frozen=True)
class SetPhysics:
    """Fields and transport of one set (the ``set_metadata`` keys of s2_results.json)."""

    drift_field: float
    """V/cm."""
    el_field: float
    """V/cm."""
    red_drift_field: float
    """Td."""
    speed_drift: float
    """mm/µs."""
    time_drift: float
    """µs."""

    def to_dict(self) -> dict[str, float | None]:
        return {
            "drift_field": json_num(self.drift_field),
            "EL_field": json_num(self.el_field),
            "time_drift": json_num(self.time_drift),
            "speed_drift": json_num(self.speed_drift),
            "red_drift_field": json_num(self.red_drift_field),
        }


def set_physics(info: SetInfo, run: RunConstants | None = None) -> SetPhysics:
    """Fields, reduced drift field, drift speed and drift time of a set.

    Check (spec): 200 V gate → 142.9 V/cm, 0.289 Td, 1.058 mm/µs, 13.2 µs.
    """
    run = run or RunConstants()
    e_drift = float(drift_field_v_cm(info.gate_v, run.drift_gap_cm))
    red = float(reduced_field_td(e_drift, run.gas_density_cm3))
    speed = float(drift_speed_mm_us(red, run.drift_speed_params))
    return SetPhysics(
        drift_field=e_drift,
        el_field=float(el_field_v_cm(info.anode_v, info.gate_v, run.el_gap_cm)),
        red_drift_field=red,
        speed_drift=speed,
        time_drift=float(drift_time_us(speed, run.drift_gap_cm)),
    )
