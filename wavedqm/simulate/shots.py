"""Simulated shots of a pulsed plasma experiment (after the Shot Explorer's generator, seed
003): four diagnostics, shot-to-shot variation driven by control variables, and the
imperfections the quality flags must catch, each injected on purpose in known shots.

Channels (record of ``samples`` samples every ``dt_s``, the discharge at 25% of the record):

- ``b_dot``: a damped oscillation (frequency set by the coil current), V;
- ``interferometer``: a density pulse (fast rise, slow decay; scales with the gas pressure);
- ``photodiode``: a light pulse (rise ~20 µs, decay ~400 µs; scales with the injector voltage);
- ``xray_proxy``: a burst with spikes.

Imperfections (:data:`IMPERFECTIONS`, at most one per shot; the flags they must raise):
``missing_data`` (20% of one channel's samples NaN), ``saturation`` (the photodiode clipped
at half its peak), ``noise`` (pickup on the B-dot: ``noisy_baseline``), ``drift`` (the
interferometer's baseline recovering from an earlier pulse: ``noisy_baseline``),
``low_signal`` (a weak photodiode pulse), ``timing`` (a late discharge: ``timing_outlier`` on
every channel; only after :data:`wavedqm.constants.SHOT_TIMING_MIN_SHOTS` clean shots). The
normal shot-to-shot timing jitter is ``±JITTER_S`` in the repeating pattern
:data:`JITTER_PATTERN`: balanced for any number of shots, so that no clean shot is a 2σ
outlier of the clean shots before it (worst 1.78σ in 30 shots with up to three of the
earlier ones left out and 1 µs of measurement noise). Files are published like a DAQ
(temporary name, then rename), the sidecar shortly after its CSV; ``shots_truth.json``
(updated after each shot) holds every shot's parameters and expected flags, ``shots.toml``
the ``[shots]`` configuration (metric applicability, low-signal thresholds) it assumes.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm import constants as C

CHANNELS = ("b_dot", "interferometer", "photodiode", "xray_proxy")
IMPERFECTIONS = ("missing_data", "saturation", "noise", "drift", "low_signal", "timing")
EXPECTED_FLAGS: dict[str, dict[str, list[str]]] = {
    "missing_data": {"xray_proxy": ["missing_data"]},
    "saturation": {"photodiode": ["saturation"]},
    "noise": {"b_dot": ["noisy_baseline"]},
    "drift": {"interferometer": ["noisy_baseline"]},
    "low_signal": {"photodiode": ["low_signal"]},
    "timing": {c: ["timing_outlier"] for c in CHANNELS},
}
"""The flags each imperfection must raise (channel -> flags); a clean shot raises none."""
NOMINAL_AMPLITUDE = {"b_dot": 1.0, "interferometer": 2.0, "photodiode": 1.5, "xray_proxy": 0.8}
"""Peak of each channel at nominal control values (V)."""
LOW_SIGNAL_FRACTION = 0.3
"""The configured low-signal threshold: this fraction of the nominal amplitude."""
JITTER_S = 20e-6
TIMING_SHIFT_S = 150e-6
NOISE_FRACTION = 0.01
"""White noise of every channel: this fraction of its nominal amplitude (σ)."""
TRUTH_FILE = "shots_truth.json"
CONFIG_FILE = "shots.toml"
SHOTS_CONFIG = {
    "channel": {
        "b_dot": {"metrics": ["peak", "min", "peak_to_peak", "time_of_peak", "auc",
                              "dominant_freq_hz", "snr_estimate"]},
        "interferometer": {"metrics": ["peak", "min", "peak_to_peak", "time_of_peak", "auc",
                                       "rise_time_10_90", "snr_estimate"]},
        "photodiode": {"metrics": ["peak", "min", "peak_to_peak", "time_of_peak", "auc",
                                   "rise_time_10_90", "snr_estimate"]},
    }
}  # fmt: skip
"""The seed's applicability (rise time for the interferometer and photodiode, dominant
frequency for the B-dot) and the low-signal thresholds (added per channel below)."""
for _name, _amp in NOMINAL_AMPLITUDE.items():
    SHOTS_CONFIG["channel"].setdefault(_name, {})["low_signal_threshold"] = round(
        LOW_SIGNAL_FRACTION * _amp, 6
    )
JITTER_PATTERN = (-1.0, 1.0, -0.6, 0.6, -0.2, 0.2)


@dataclass
class ShotTruth:
    shot_id: str
    file: str
    control_vars: dict[str, float]
    imperfection: str | None
    discharge_s: float
    """Start of the discharge (s)."""
    bdot_frequency_hz: float
    amplitudes: dict[str, float]
    flags: dict[str, list[str]] = field(default_factory=dict)


def schedule(n_shots: int, seed: int) -> dict[int, str]:
    """Which shot gets which imperfection: spread over the run, ``timing`` only after the
    first :data:`~wavedqm.constants.SHOT_TIMING_MIN_SHOTS` + 1 shots (it needs a reference)."""
    rng = np.random.default_rng(seed + 7)
    kinds = list(IMPERFECTIONS)
    rng.shuffle(kinds)
    first_timing = C.SHOT_TIMING_MIN_SHOTS + 1
    slots = [i for i in range(2, n_shots, 3)]
    plan: dict[int, str] = {}
    for kind in sorted(kinds, key=lambda k: k == "timing"):
        free = [i for i in slots if i not in plan and (kind != "timing" or i >= first_timing)]
        if free:
            plan[free[0]] = kind
    return plan


def controls(rng: np.random.Generator) -> dict[str, float]:
    return {
        "gas_pressure_mTorr": round(float(rng.uniform(4.0, 6.5)), 3),
        "injector_voltage_V": round(float(rng.uniform(1000, 1400)), 1),
        "coil_current_kA": round(float(rng.uniform(10.0, 15.0)), 3),
    }


def shot_waveforms(
    index: int, n_samples: int, dt_s: float, rng: np.random.Generator, imperfection: str | None
) -> tuple[np.ndarray, dict[str, np.ndarray], ShotTruth]:
    """One shot's time axis (s), channels (V) and truth (without file name)."""
    cv = controls(rng)
    t = np.arange(n_samples, dtype=np.float64) * dt_s
    jitter = JITTER_S * JITTER_PATTERN[index % len(JITTER_PATTERN)]
    t0 = 0.25 * n_samples * dt_s + jitter + (TIMING_SHIFT_S if imperfection == "timing" else 0)
    u = np.clip(t - t0, 0.0, None)
    on = t >= t0
    span = n_samples * dt_s
    amp = {
        "b_dot": NOMINAL_AMPLITUDE["b_dot"] * cv["injector_voltage_V"] / 1200,
        "interferometer": NOMINAL_AMPLITUDE["interferometer"] * cv["gas_pressure_mTorr"] / 5.2,
        "photodiode": NOMINAL_AMPLITUDE["photodiode"] * (cv["injector_voltage_V"] / 1200) ** 1.5,
        "xray_proxy": NOMINAL_AMPLITUDE["xray_proxy"] * cv["coil_current_kA"] / 12.5,
    }
    if imperfection == "low_signal":
        amp["photodiode"] *= 0.1
    f_b = 50e3 * math.sqrt(cv["coil_current_kA"] / 12.5)
    tau = span / 10
    x = {
        "b_dot": amp["b_dot"] * np.exp(-u / tau) * np.sin(2 * math.pi * f_b * u) * on,
        "interferometer": _pulse(u, span / 80, span / 5) * amp["interferometer"] * on,
        "photodiode": _pulse(u, span / 200, span / 10) * amp["photodiode"] * on,
        "xray_proxy": amp["xray_proxy"] * np.exp(-0.5 * ((t - t0 - span / 40) / (span / 400)) ** 2),
    }
    bump = x["xray_proxy"] > 0.3 * amp["xray_proxy"]
    spikes = bump & (rng.random(n_samples) < 0.05)
    boosted = x["xray_proxy"][spikes] * (1 + rng.uniform(0.0, 0.5, int(spikes.sum())))
    x["xray_proxy"][spikes] = np.minimum(boosted, amp["xray_proxy"])  # spikes below the peak
    for name in CHANNELS:
        x[name] = x[name] + rng.normal(0.0, NOISE_FRACTION * NOMINAL_AMPLITUDE[name], n_samples)
    if imperfection == "missing_data":
        x["xray_proxy"][rng.random(n_samples) < 0.2] = np.nan
    elif imperfection == "saturation":
        x["photodiode"] = np.minimum(x["photodiode"], 0.5 * amp["photodiode"])
    elif imperfection == "noise":
        pickup = 1.0 * NOMINAL_AMPLITUDE["b_dot"] * np.sin(2 * math.pi * 6 * f_b * t)
        x["b_dot"] = x["b_dot"] + pickup
    elif imperfection == "drift":
        x["interferometer"] = x["interferometer"] + amp["interferometer"] * np.exp(-t / (span / 20))
    truth = ShotTruth(
        shot_id="", file="", control_vars=cv, imperfection=imperfection, discharge_s=t0,
        bdot_frequency_hz=f_b, amplitudes=amp,
        flags=EXPECTED_FLAGS.get(imperfection, {}) if imperfection else {},
    )  # fmt: skip
    return t, x, truth


def _pulse(u: np.ndarray, rise_s: float, decay_s: float) -> np.ndarray:
    """(1 − e^(−u/rise)) e^(−u/decay), normalised to a peak of 1."""
    shape = (1 - np.exp(-u / rise_s)) * np.exp(-u / decay_s)
    peak_u = rise_s * math.log1p(decay_s / rise_s)
    return shape / ((1 - math.exp(-peak_u / rise_s)) * math.exp(-peak_u / decay_s))


def write_shot_csv(path: Path, t: np.ndarray, channels: dict[str, np.ndarray]) -> None:
    """``t,<channel>,...`` with NaN as an empty cell (pyarrow's CSV writer)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    columns = {"t": pa.array(t)}
    for name, x in channels.items():
        columns[name] = pa.array(x, mask=np.isnan(x))
    pcsv.write_csv(pa.table(columns), path, pcsv.WriteOptions(quoting_style="none"))


def _publish(path: Path, write: Any) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_truth(out: Path, truths: list[ShotTruth], dt_s: float, n_samples: int) -> Path:
    doc = {"channels": list(CHANNELS), "dt_s": dt_s, "samples": n_samples,
           "config": {"shots": SHOTS_CONFIG}, "shots": [asdict(t) for t in truths]}  # fmt: skip
    return _publish(out / TRUTH_FILE, lambda p: p.write_text(json.dumps(doc, indent=1)))


def shots_toml() -> str:
    lines = ["# [shots] configuration of the simulated shots (wavedqm simulate shots)", ""]
    for name, rules in SHOTS_CONFIG["channel"].items():
        lines.append(f"[shots.channel.{name}]")
        for key, value in rules.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


def simulate_shots(
    out: Path,
    *,
    shots: int,
    interval_s: float = 0.0,
    seed: int = 0,
    n_samples: int = 4000,
    dt_s: float = 1e-6,
    npz: bool = False,
    first: int = 1,
    sidecar_delay_s: float | None = None,
    stop: threading.Event | None = None,
) -> list[ShotTruth]:
    """Publish ``shots`` shots ``shot_<first>.csv`` ... into ``out`` with their sidecars,
    ``interval_s`` apart; returns their truth (also in ``out/shots_truth.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(shots_toml())
    rng = np.random.default_rng(seed)
    plan = schedule(shots, seed)
    delay = min(0.3, interval_s / 2) if sidecar_delay_s is None else sidecar_delay_s
    truths: list[ShotTruth] = []
    for i in range(shots):
        if stop is not None and stop.is_set():
            break
        if i and interval_s > 0:
            time.sleep(interval_s)
        t, x, truth = shot_waveforms(i, n_samples, dt_s, rng, plan.get(i))
        shot_id = f"{first + i:04d}"
        suffix = ".npz" if npz else ".csv"
        path = out / f"shot_{shot_id}{suffix}"
        truth.shot_id, truth.file = shot_id, path.name
        if npz:
            _publish(path, lambda p, t=t, x=x: _write_npz(p, t, x))
        else:
            _publish(path, lambda p, t=t, x=x: write_shot_csv(p, t, x))
        if delay > 0:
            time.sleep(delay)
        meta = {"shot_id": shot_id, "control_vars": truth.control_vars}
        _publish(out / f"shot_{shot_id}.meta.json", lambda p, m=meta: p.write_text(json.dumps(m)))
        truths.append(truth)
        write_truth(out, truths, dt_s, n_samples)
    return truths


def _write_npz(path: Path, t: np.ndarray, channels: dict[str, np.ndarray]) -> None:
    with path.open("wb") as fh:
        np.savez(fh, t=t, **channels)
