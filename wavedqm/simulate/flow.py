"""Simulated 2x2 light ``.FLOW.hdf5`` files in exactly the ndlar_flow / h5flow layout.

What a file holds (spec: flow-hdf5.md): ``light/events/data`` (id, event, sn, utime_ms, tai_ns,
wvfm_valid, trig_type), ``light/wvfm/data`` (one field ``samples``, int16 ADC16 counts,
(n_adcs, n_channels, n_samples); attribute ``n_samples``), the 1:1 references
``light/events/ref/light/wvfm/{ref,ref_region}`` and ``light/wvfm/ref/light/events/ref_region``,
and, optionally, a small charge section. Tables are resizable (``maxshape=(None,)``), chunked,
grown chunk by chunk as h5flow does; ``compression="gzip"`` means gzip level 4 + shuffle, as in
real files.

Waveforms (ADC16 counts): per-channel baseline in [-28800, -27200], Gaussian noise of std
15-40 taken from a shared pool of standard normals at random offsets, positive scintillation
pulses (fast rise, ~1 µs exponential tail) from sample 100 on in most events of active
channels, quantised as the hardware does (14-bit value = round(v / 4), clipped to
[-8192, 8191], stored x 4). The first ``PEDESTAL_SAMPLES`` samples of every waveform are
rescaled so that their std (ddof=0) is exactly the channel's noise sigma (their mean keeps its
natural spread): the median over events of the pedestal std then equals the truth to well under
1%, whatever the number of events.

Faults (``ChannelFaults``, lists of (adc, channel)):
- dead: baseline + noise only, never a pulse (max - baseline stays far below 300);
- clipped: ~30% of events carry a pulse that saturates at 32764 (≥ 32760 counts as clipped);
- noisy: extra pickup, a sine at 10 or 11.25 MHz with random phase, total std 150-240
  (5-9x a typical channel); its amplitude (≤ 340) never reaches baseline - 500, so a noisy
  channel is not also a "negative" one;
- baseline_off: baseline around -20000 (outside [-30000, -26000]);
- negative: an undershoot of 800-1500 below baseline in ~20% of events;
- invalid: ``wvfm_valid`` = 0 and samples 0 in ~50% of events.
Inactive channels (0-3, 16-19, 32-35, 48-51) hold baseline + noise only. Healthy active
channels never clip, never go below baseline - 500 and always have pulses ≥ 1000.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numba import njit

from wavedqm import constants as C
from wavedqm.config import parse_channel_list
from wavedqm.logs import get_logger
from wavedqm.simulate.charge import track_hits, write_geometry

log = get_logger(__name__)

Pairs = tuple[tuple[int, int], ...]

# --- simulation parameters (ADC16 counts unless stated) ---------------------------------------
BASELINE_RANGE = (-28800.0, -27200.0)
BASELINE_OFF_RANGE = (-20400.0, -19600.0)
NOISE_RANGE = (15.0, 40.0)
NOISY_STD_RANGE = (150.0, 240.0)
"""Total std of a noisy channel (pickup + Gaussian)."""
NOISY_GAUSS_MAX = 20.0
"""Gaussian part of a noisy channel is capped so pickup + 6.5 sigma stays above -500."""
PICKUP_PERIODS_IN_PEDESTAL = (8, 9)
"""Pickup frequencies: whole periods in the pedestal window (10 and 11.25 MHz), so the pickup
shifts no pedestal mean and adds exactly amplitude² / 2 to its variance."""
SELF_AMPLITUDE = (1000.0, 4000.0)
BEAM_AMPLITUDE = (2500.0, 8000.0)
SELF_PULSE_PROB = 0.85
BEAM_PULSE_PROB = 0.95
CLIP_AMPLITUDE = (65000.0, 80000.0)
"""Enough to push any baseline in range past 32764."""
CLIP_FRACTION = 0.3
NEGATIVE_AMPLITUDE = (800.0, 1500.0)
NEGATIVE_FRACTION = 0.2
INVALID_FRACTION = 0.5
PULSE_RISE_SAMPLES = 1.5
PULSE_FALL_SAMPLES = 60.0
"""~1 µs slow scintillation tail at 16 ns/sample."""
PULSE_TEMPLATE_SAMPLES = 600
UNDERSHOOT_WIDTH_SAMPLES = 8.0
FIRST_PULSE_SAMPLE = 100
MIN_SAMPLES = 128
QUANTISATION_VAR = C.ADC14_TO_ADC16**2 / 12.0
"""Variance added by storing round(v / 4) * 4 (ADC16²)."""
NOISE_POOL_SIZE = 1 << 22
EVENT_PERIOD_MS = 10
ADC_SERIALS = tuple(range(101, 101 + C.LIGHT_N_ADCS))
GZIP_LEVEL = 4


def event_dtype(n_adcs: int = C.LIGHT_N_ADCS, n_channels: int = C.LIGHT_N_CHANNELS) -> np.dtype:
    """``light/events/data`` row (spec: flow-hdf5.md)."""
    return np.dtype(
        [
            ("id", "<u8"),
            ("event", "<i4"),
            ("sn", "<i4", (n_adcs,)),
            ("utime_ms", "<u8", (n_adcs,)),
            ("tai_ns", "<u8", (n_adcs,)),
            ("wvfm_valid", "u1", (n_adcs, n_channels)),
            ("trig_type", "u1"),
        ]
    )


def wvfm_dtype(
    n_samples: int, n_adcs: int = C.LIGHT_N_ADCS, n_channels: int = C.LIGHT_N_CHANNELS
) -> np.dtype:
    """``light/wvfm/data`` row: one field ``samples`` (spec: flow-hdf5.md)."""
    return np.dtype([("samples", "<i2", (n_adcs, n_channels, n_samples))])


REF_REGION_DTYPE = np.dtype([("start", "<i4"), ("stop", "<i4")])
CHARGE_EVENT_DTYPE = np.dtype(
    [
        ("id", "<u8"),
        ("nhit", "<u4"),
        ("ADC", "<f8"),
        ("ts_start", "<f8"),
        ("ts_end", "<f8"),
        ("n_ext_trigs", "<u4"),
        ("unix_ts", "<u8"),
        ("unix_ts_usec", "<u4"),
    ]
)
CHARGE_HIT_DTYPE = np.dtype(
    [
        ("id", "<u4"),
        ("x", "<f8"),
        ("y", "<f8"),
        ("z", "<f8"),
        ("t_drift", "<f8"),
        ("ts_pps", "<u8"),
        ("io_group", "<u8"),
        ("io_channel", "<u8"),
        ("chip_id", "<u8"),
        ("channel_id", "<u8"),
        ("Q_raw", "<f8"),
        ("Q", "<f8"),
        ("E", "<f8"),
        ("is_disabled", "?"),
    ]
)


# --- faults and truth -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelFaults:
    """Channels (adc, channel) given each simulated problem; a channel may have several."""

    dead: Pairs = ()
    clipped: Pairs = ()
    noisy: Pairs = ()
    baseline_off: Pairs = ()
    negative: Pairs = ()
    invalid: Pairs = ()

    def __post_init__(self) -> None:
        for name in self.kinds():
            pairs = tuple((int(a), int(c)) for a, c in getattr(self, name))
            for a, c in pairs:
                if not (0 <= a < C.LIGHT_N_ADCS and 0 <= c < C.LIGHT_N_CHANNELS):
                    raise ValueError(
                        f"faults.{name}: ({a}, {c}) is outside ADC 0..{C.LIGHT_N_ADCS - 1}, "
                        f"channel 0..{C.LIGHT_N_CHANNELS - 1}"
                    )
            object.__setattr__(self, name, pairs)

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return ("dead", "clipped", "noisy", "baseline_off", "negative", "invalid")

    def mask(self, kind: str) -> np.ndarray:
        """bool (n_adcs, n_channels): True on the channels given ``kind``."""
        out = np.zeros((C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS), dtype=bool)
        for a, c in getattr(self, kind):
            out[a, c] = True
        return out

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {k: [[a, c] for a, c in sorted(getattr(self, k))] for k in self.kinds()}


@dataclass
class SimulationTruth:
    """What was simulated. ADC16 counts; arrays are (n_adcs, n_channels)."""

    baseline_adc16: np.ndarray
    """Generating baseline of each channel."""
    noise_adc16: np.ndarray
    """Std of the stored (quantised) pedestal samples: sqrt(sigma² + pickup² / 2 + 16/12)."""
    n_events: int
    n_beam: int
    n_self: int
    faults: ChannelFaults
    n_samples: int = 0
    seed: int = 0
    compression: str | None = None
    time_start_s: float = 0.0
    time_end_s: float = 0.0
    pedestal_mean_median_adc16: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Realised median over valid events of the mean of the first PEDESTAL_SAMPLES samples."""
    pedestal_std_median_adc16: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Realised median over valid events of their std (ddof=0)."""
    n_charge_events: int = 0
    n_charge_hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_adc16": np.asarray(self.baseline_adc16).tolist(),
            "noise_adc16": np.asarray(self.noise_adc16).tolist(),
            "n_events": self.n_events,
            "n_beam": self.n_beam,
            "n_self": self.n_self,
            "faults": self.faults.to_dict(),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "compression": self.compression,
            "time_start_s": self.time_start_s,
            "time_end_s": self.time_end_s,
            "pedestal_mean_median_adc16": np.asarray(self.pedestal_mean_median_adc16).tolist(),
            "pedestal_std_median_adc16": np.asarray(self.pedestal_std_median_adc16).tolist(),
            "n_charge_events": self.n_charge_events,
            "n_charge_hits": self.n_charge_hits,
        }


def parse_channel_pairs(spec: str) -> Pairs:
    """``"0:5,3:17"`` -> ``((0, 5), (3, 17))``; empty -> ``()``. ValueError names the bad part."""
    pairs = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        adc, sep, channel = part.partition(":")
        try:
            if not sep:
                raise ValueError
            a, c = int(adc), int(channel)
        except ValueError:
            raise ValueError(
                f"{part!r} in {spec!r} is not ADC:CHANNEL (expected e.g. '0:5,3:17')"
            ) from None
        if not (0 <= a < C.LIGHT_N_ADCS and 0 <= c < C.LIGHT_N_CHANNELS):
            raise ValueError(
                f"{part!r} in {spec!r}: expected ADC 0..{C.LIGHT_N_ADCS - 1} and channel "
                f"0..{C.LIGHT_N_CHANNELS - 1}"
            )
        pairs.append((a, c))
    return tuple(pairs)


# --- waveform kernel --------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _fill_waveforms(
    out: np.ndarray,  # int16 (R, A, Ch, N), written
    pool: np.ndarray,  # float32 standard normals
    offsets: np.ndarray,  # int64 (R, A, Ch)
    baseline: np.ndarray,  # float64 (A, Ch)
    sigma: np.ndarray,  # float64 (A, Ch)
    pickup_amp: np.ndarray,  # float64 (A, Ch), 0: none
    pickup_omega: np.ndarray,  # float64 (A, Ch), rad/sample
    phase: np.ndarray,  # float64 (R, A, Ch)
    amp: np.ndarray,  # float64 (R, A, Ch), 0: no pulse
    t0: np.ndarray,  # int64 (R, A, Ch)
    template: np.ndarray,  # float64, peak 1
    neg_amp: np.ndarray,  # float64 (R, A, Ch), 0: none
    neg_t0: np.ndarray,  # int64 (R, A, Ch)
    neg_template: np.ndarray,  # float64, peak 1
    zero: np.ndarray,  # bool (R, A, Ch): invalid waveform, all samples 0
    n_ped: int,
    ped_mean: np.ndarray,  # float64 (R, A, Ch), written (NaN where zero)
    ped_std: np.ndarray,  # float64 (R, A, Ch), written
) -> None:
    n_rows, n_adcs, n_ch, n = out.shape
    n_tpl = template.shape[0]
    n_neg = neg_template.shape[0]
    q_min = -(C.ADC14_MAX + 1)
    q_max = C.ADC14_MAX
    scale = C.ADC14_TO_ADC16
    for r in range(n_rows):
        for a in range(n_adcs):
            for c in range(n_ch):
                w = out[r, a, c]
                if zero[r, a, c]:
                    w[:] = 0
                    ped_mean[r, a, c] = np.nan
                    ped_std[r, a, c] = np.nan
                    continue
                off = offsets[r, a, c]
                m = 0.0
                for t in range(n_ped):
                    m += pool[off + t]
                m /= n_ped
                v = 0.0
                for t in range(n_ped):
                    d = pool[off + t] - m
                    v += d * d
                s = math.sqrt(v / n_ped)
                sig = sigma[a, c]
                ped_scale = sig / s if s > 0 else sig
                base = baseline[a, c]
                pa = pickup_amp[a, c]
                om = pickup_omega[a, c]
                ph = phase[r, a, c]
                pulse = amp[r, a, c]
                p0 = t0[r, a, c]
                na = neg_amp[r, a, c]
                n0 = neg_t0[r, a, c]
                s1 = 0.0
                s2 = 0.0
                for t in range(n):
                    if t < n_ped:
                        x = base + m * sig + (pool[off + t] - m) * ped_scale
                    else:
                        x = base + pool[off + t] * sig
                    if pa != 0.0:
                        x += pa * math.sin(om * t + ph)
                    if pulse != 0.0 and t >= p0 and t - p0 < n_tpl:
                        x += pulse * template[t - p0]
                    if na != 0.0 and t >= n0 and t - n0 < n_neg:
                        x -= na * neg_template[t - n0]
                    q = math.floor(x / scale + 0.5)
                    if q < q_min:
                        q = q_min
                    elif q > q_max:
                        q = q_max
                    y = q * scale
                    w[t] = y
                    if t < n_ped:
                        s1 += y
                        s2 += y * y
                mean = s1 / n_ped
                ped_mean[r, a, c] = mean
                ped_std[r, a, c] = math.sqrt(max(s2 / n_ped - mean * mean, 0.0))


def _pulse_template(n: int) -> np.ndarray:
    """Difference of exponentials (rise 1.5, fall 60 samples), peak exactly 1 at a sample."""
    t = np.arange(min(n, PULSE_TEMPLATE_SAMPLES), dtype=np.float64)
    p = np.exp(-t / PULSE_FALL_SAMPLES) - np.exp(-t / PULSE_RISE_SAMPLES)
    return p / p.max()


def _undershoot_template() -> np.ndarray:
    width = UNDERSHOOT_WIDTH_SAMPLES
    t = np.arange(int(6 * width) + 1, dtype=np.float64)
    return np.exp(-0.5 * ((t - 3 * width) / width) ** 2)


@dataclass
class _Channels:
    """Per-channel parameters of a simulated detector (A, Ch arrays)."""

    baseline: np.ndarray
    sigma: np.ndarray
    pickup_amp: np.ndarray
    pickup_omega: np.ndarray
    pulsing: np.ndarray
    """Channels that see light: active, not dead."""

    @property
    def noise(self) -> np.ndarray:
        return np.sqrt(self.sigma**2 + self.pickup_amp**2 / 2 + QUANTISATION_VAR)


def _channels(rng: np.random.Generator, faults: ChannelFaults) -> _Channels:
    shape = (C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS)
    baseline = rng.uniform(*BASELINE_RANGE, size=shape)
    off = faults.mask("baseline_off")
    baseline[off] = rng.uniform(*BASELINE_OFF_RANGE, size=int(off.sum()))
    sigma = rng.uniform(*NOISE_RANGE, size=shape)
    pickup_amp = np.zeros(shape)
    pickup_omega = np.zeros(shape)
    noisy = faults.mask("noisy")
    k = int(noisy.sum())
    sigma[noisy] = np.minimum(sigma[noisy], NOISY_GAUSS_MAX)
    total = rng.uniform(*NOISY_STD_RANGE, size=k)
    pickup_amp[noisy] = np.sqrt(2 * (total**2 - sigma[noisy] ** 2))
    periods = rng.choice(np.array(PICKUP_PERIODS_IN_PEDESTAL), size=k)
    pickup_omega[noisy] = 2 * np.pi * periods / C.PEDESTAL_SAMPLES  # rad/sample
    active = np.zeros(shape, dtype=bool)
    active[:, list(parse_channel_list(C.LIGHT_ACTIVE_CHANNELS, C.LIGHT_N_CHANNELS))] = True
    pulsing = active & ~faults.mask("dead")
    return _Channels(baseline, sigma, pickup_amp, pickup_omega, pulsing)


def _event_params(
    rng: np.random.Generator,
    ch: _Channels,
    faults: ChannelFaults,
    trig: np.ndarray,
    n_samples: int,
    pool_size: int,
    n_undershoot: int,
) -> dict[str, np.ndarray]:
    """Random per-waveform parameters of a chunk of events with trigger types ``trig``."""
    rows = trig.shape[0]
    shape = (rows, C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS)
    beam = (trig == C.TRIG_BEAM)[:, None, None]
    u = rng.random(shape)
    has_pulse = ch.pulsing[None] & (u < np.where(beam, BEAM_PULSE_PROB, SELF_PULSE_PROB))
    lo = np.where(beam, BEAM_AMPLITUDE[0], SELF_AMPLITUDE[0])
    hi = np.where(beam, BEAM_AMPLITUDE[1], SELF_AMPLITUDE[1])
    amp = np.where(has_pulse, lo + (hi - lo) * rng.random(shape), 0.0)
    first = max(FIRST_PULSE_SAMPLE, n_samples // 4)
    t0 = first + rng.integers(0, max(1, n_samples // 10), size=shape)
    clip = faults.mask("clipped")[None] & (rng.random(shape) < CLIP_FRACTION)
    amp = np.where(clip, rng.uniform(*CLIP_AMPLITUDE, size=shape), amp)
    negative = faults.mask("negative")[None] & (rng.random(shape) < NEGATIVE_FRACTION)
    neg_amp = np.where(negative, rng.uniform(*NEGATIVE_AMPLITUDE, size=shape), 0.0)
    neg_t0 = rng.integers(
        FIRST_PULSE_SAMPLE, max(FIRST_PULSE_SAMPLE + 1, n_samples - n_undershoot), size=shape
    )
    zero = faults.mask("invalid")[None] & (rng.random(shape) < INVALID_FRACTION)
    return {
        "offsets": rng.integers(0, pool_size - n_samples, size=shape),
        "phase": rng.uniform(0, 2 * np.pi, size=shape),
        "amp": amp,
        "t0": t0.astype(np.int64),
        "neg_amp": neg_amp,
        "neg_t0": neg_t0.astype(np.int64),
        "zero": zero,
    }


# --- writing ----------------------------------------------------------------------------------


def _filters(compression: str | None) -> dict[str, Any]:
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"compression={compression!r} (expected None, 'gzip' or 'lzf')")


def _table(
    f: h5py.File, name: str, dtype: np.dtype, filters: dict[str, Any], chunks: Any = True
) -> h5py.Dataset:
    return f.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=chunks, **filters
    )


def _append(dset: h5py.Dataset, rows: np.ndarray) -> None:
    n = dset.shape[0]
    dset.resize((n + rows.shape[0], *dset.shape[1:]))
    dset[n:] = rows


def _create_ref(
    f: h5py.File, parent: str, child: str, filters: dict[str, Any]
) -> tuple[h5py.Dataset, h5py.Dataset, h5py.Dataset]:
    """h5flow's bidirectional reference: ``parent/ref/child/ref`` (L, 2) u4 and a
    ``ref_region`` (start, stop) per row of each side."""
    path = f"{parent}/ref/{child}"
    child_path = f"{child}/ref/{parent}"
    ref = f.create_dataset(
        f"{path}/ref", shape=(0, 2), maxshape=(None, 2), dtype="u4", chunks=True, **filters
    )
    r0 = _table(f, f"{path}/ref_region", REF_REGION_DTYPE, filters)
    r1 = _table(f, f"{child_path}/ref_region", REF_REGION_DTYPE, filters)
    ref.attrs["dset0"] = f"/{parent}/data"
    ref.attrs["dset1"] = f"/{child}/data"
    ref.attrs["ref_region0"] = f"/{path}/ref_region"
    ref.attrs["ref_region1"] = f"/{child_path}/ref_region"
    r0.attrs["ref"] = f"/{path}/ref"
    r1.attrs["ref"] = f"/{path}/ref"
    return ref, r0, r1


def _regions(start: int, counts: np.ndarray) -> np.ndarray:
    out = np.empty(counts.shape[0], REF_REGION_DTYPE)
    stops = start + np.cumsum(counts)
    out["start"] = stops - counts
    out["stop"] = stops
    return out


def _write_charge(
    f: h5py.File,
    rng: np.random.Generator,
    trig: np.ndarray,
    utime_ms: np.ndarray,
    filters: dict[str, Any],
) -> tuple[int, int]:
    """A charge section with one charge event per light event (spec fields): tracks with a
    dead region, out-of-bounds and disabled hits (:mod:`wavedqm.simulate.charge`), and the
    geometry the voxel grid is made from."""
    n = trig.shape[0]
    sim = track_hits(rng, n)
    nhit = sim.per_event
    total = int(nhit.sum())
    ev = np.zeros(n, CHARGE_EVENT_DTYPE)
    ev["id"] = np.arange(n)
    ev["nhit"] = nhit
    ev["unix_ts"] = utime_ms // 1000
    ev["unix_ts_usec"] = (utime_ms % 1000) * 1000
    ev["ts_start"] = (utime_ms % 1000) * 1e4  # 0.1 µs ticks within the second
    ev["ts_end"] = ev["ts_start"] + 2000.0
    ev["n_ext_trigs"] = trig == C.TRIG_BEAM
    hits = np.zeros(total, CHARGE_HIT_DTYPE)
    hits["id"] = np.arange(total)
    hits["x"], hits["y"], hits["z"] = sim.x, sim.y, sim.z
    hits["is_disabled"] = sim.disabled
    hits["t_drift"] = rng.uniform(0, 2000, size=total)
    hits["ts_pps"] = np.repeat(ev["ts_start"].astype(np.uint64), nhit) + hits["t_drift"].astype(
        np.uint64
    )
    hits["io_group"] = rng.integers(1, 9, size=total)
    hits["io_channel"] = rng.integers(1, 33, size=total)
    hits["chip_id"] = rng.integers(11, 111, size=total)
    hits["channel_id"] = rng.integers(0, 64, size=total)
    hits["Q"] = sim.q
    hits["Q_raw"] = sim.q * 1.02
    hits["E"] = hits["Q"] * 0.0336
    if nhit.size and total:  # reduceat needs a non-empty array
        ev["ADC"] = np.add.reduceat(hits["Q_raw"], np.r_[0, np.cumsum(nhit)[:-1]])
    ev_dset = _table(f, "charge/events/data", CHARGE_EVENT_DTYPE, filters)
    hit_dset = _table(f, "charge/calib_prompt_hits/data", CHARGE_HIT_DTYPE, filters)
    _append(ev_dset, ev)
    _append(hit_dset, hits)
    ref, r0, r1 = _create_ref(f, "charge/events", "charge/calib_prompt_hits", filters)
    _append(ref, np.stack([np.repeat(np.arange(n), nhit), np.arange(total)], 1).astype("u4"))
    _append(r0, _regions(0, nhit))
    _append(r1, _regions(0, np.ones(total, dtype=np.int64)))
    f["charge/events"].attrs["classname"] = "ChargeEventBuilder"
    f["charge/calib_prompt_hits"].attrs["classname"] = "CalibHitBuilder"
    write_geometry(f)
    return n, total


def _median_over_events(values: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (invalid waveforms); NaN where nothing is left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        if values.shape[0] == 0:
            return np.full(values.shape[1:], np.nan)
        return np.nanmedian(values, axis=0)


def write_flow_file(
    path: str | Path,
    *,
    n_events: int = 50,
    n_samples: int = 1000,
    seed: int = 0,
    faults: ChannelFaults | None = None,
    compression: str | None = None,
    beam_fraction: float = 0.5,
    with_charge: bool = False,
    chunk_rows: int = 16,
    start_time_s: float | None = None,
    detector_seed: int | None = None,
) -> SimulationTruth:
    """Write a simulated light (+ optional charge) ``.FLOW.hdf5`` file at ``path``.

    ``seed`` drives the events; ``detector_seed`` (default: ``seed``) the per-channel baselines
    and noise, so files of one run can share a detector. ``compression``: None, ``"gzip"``
    (level 4 + shuffle, like h5flow) or ``"lzf"``. ``start_time_s``: unix time of the first
    event (default: now); events are 10 ms apart. Memory: one chunk of ``chunk_rows`` events.
    """
    faults = faults or ChannelFaults()
    if n_events < 0:
        raise ValueError(f"n_events={n_events} (expected >= 0)")
    if n_samples < MIN_SAMPLES:
        raise ValueError(f"n_samples={n_samples} (expected at least {MIN_SAMPLES})")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows} (expected >= 1)")
    if not 0.0 <= beam_fraction <= 1.0:
        raise ValueError(f"beam_fraction={beam_fraction} (expected between 0 and 1)")
    filters = _filters(compression)
    path = Path(path)
    det = _channels(
        np.random.default_rng([detector_seed if detector_seed is not None else seed, 1]), faults
    )
    rng = np.random.default_rng([seed, 2])
    noise_pool = rng.standard_normal(NOISE_POOL_SIZE + n_samples, dtype=np.float32)
    n_beam = round(beam_fraction * n_events)
    trig = np.zeros(n_events, np.uint8)
    trig[rng.permutation(n_events)[:n_beam]] = C.TRIG_BEAM
    start_ms = round((time.time() if start_time_s is None else start_time_s) * 1000)
    utime_ms = start_ms + EVENT_PERIOD_MS * np.arange(n_events, dtype=np.int64)
    template = _pulse_template(n_samples)
    undershoot = _undershoot_template()
    A, Ch = C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS
    ped_mean = np.empty((n_events, A, Ch))
    ped_std = np.empty((n_events, A, Ch))
    samples = np.empty((chunk_rows, A, Ch, n_samples), np.int16)
    wdt = wvfm_dtype(n_samples)
    edt = event_dtype()
    with h5py.File(path, "w") as f:
        light = f.create_group("light")
        ev_dset = _table(f, "light/events/data", edt, filters)
        wv_dset = _table(f, "light/wvfm/data", wdt, filters, chunks=(chunk_rows,))
        wv_dset.attrs["n_samples"] = n_samples
        ref, r0, r1 = _create_ref(f, "light/events", "light/wvfm", filters)
        attrs = {
            "classname": "LightEventGenerator",
            "class_version": "0.3.0",
            "n_adcs": A,
            "n_channels": Ch,
            "n_samples": n_samples,
            "chunk_size": chunk_rows,
            "adc_sn": np.array(ADC_SERIALS, dtype=np.int32),
            "wvfm_dset_name": "light/wvfm",
            "simulated": True,
        }
        light["events"].attrs.update(attrs)
        light["wvfm"].attrs["classname"] = "LightEventGenerator"
        for a in range(0, n_events, chunk_rows):
            b = min(n_events, a + chunk_rows)
            k = b - a
            p = _event_params(
                rng, det, faults, trig[a:b], n_samples, NOISE_POOL_SIZE, undershoot.shape[0]
            )
            _fill_waveforms(
                samples[:k],
                noise_pool,
                p["offsets"],
                det.baseline,
                det.sigma,
                det.pickup_amp,
                det.pickup_omega,
                p["phase"],
                p["amp"],
                p["t0"],
                template,
                p["neg_amp"],
                p["neg_t0"],
                undershoot,
                p["zero"],
                C.PEDESTAL_SAMPLES,
                ped_mean[a:b],
                ped_std[a:b],
            )
            ev = np.zeros(k, edt)
            ev["id"] = np.arange(a, b)
            ev["event"] = np.arange(a, b)
            ev["sn"] = np.array(ADC_SERIALS)
            ev["utime_ms"] = utime_ms[a:b, None]
            ev["tai_ns"] = ((utime_ms[a:b] % 1000) * 10**6)[:, None] + np.arange(A) * 16
            ev["wvfm_valid"] = ~p["zero"]
            ev["trig_type"] = trig[a:b]
            _append(ev_dset, ev)
            wv_dset.resize((b,))
            wv_dset.write_direct(
                samples[:k].reshape(k, -1).view(wdt).reshape(k), np.s_[0:k], np.s_[a:b]
            )
            rows = np.arange(a, b, dtype=np.uint32)
            _append(ref, np.stack([rows, rows], 1))
            regions = _regions(a, np.ones(k, dtype=np.int64))
            _append(r0, regions)
            _append(r1, regions)
        n_charge_events = n_charge_hits = 0
        if with_charge:
            n_charge_events, n_charge_hits = _write_charge(f, rng, trig, utime_ms, filters)
    mean_med, std_med = _median_over_events(ped_mean), _median_over_events(ped_std)
    truth = SimulationTruth(
        baseline_adc16=det.baseline,
        noise_adc16=det.noise,
        n_events=n_events,
        n_beam=int(n_beam),
        n_self=int(n_events - n_beam),
        faults=faults,
        n_samples=n_samples,
        seed=seed,
        compression=compression,
        time_start_s=start_ms / 1000.0,
        time_end_s=float(utime_ms[-1]) / 1000.0 if n_events else start_ms / 1000.0,
        pedestal_mean_median_adc16=mean_med,
        pedestal_std_median_adc16=std_med,
        n_charge_events=n_charge_events,
        n_charge_hits=n_charge_hits,
    )
    return truth


def publish_flow_file(
    out_dir: str | Path, name: str, **kwargs: Any
) -> tuple[Path, SimulationTruth]:
    """Write ``out_dir/.name.tmp`` then rename it to ``out_dir/name`` (as a careful DAQ does):
    the final name never shows a partial file. Returns (final path, truth)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.tmp"
    final = out_dir / name
    try:
        truth = write_flow_file(tmp, **kwargs)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, truth


def run_file_name(seed: int, index: int) -> str:
    """``mpd_run_sim_rctl_<seed>_p<NNNN>.FLOW.hdf5``."""
    return f"mpd_run_sim_rctl_{seed}_p{index:04d}.FLOW.hdf5"


def simulate_run(
    out_dir: str | Path,
    *,
    files: int,
    events: int,
    interval_s: float,
    faults: ChannelFaults | None = None,
    seed: int,
    compression: str | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> list[tuple[Path, SimulationTruth]]:
    """Publish ``files`` files into ``out_dir``, one every ``interval_s`` seconds, like a DAQ.

    File ``i`` (from 0) is ``run_file_name(seed, i)`` simulated with seed ``seed + i`` on one
    detector (``detector_seed=seed``: same baselines and noise in every file), with event times
    following on. Stops early once ``stop`` is set. Extra ``kwargs`` go to ``write_flow_file``.
    """
    written: list[tuple[Path, SimulationTruth]] = []
    start_s = kwargs.pop("start_time_s", None)
    kwargs.setdefault("detector_seed", seed)
    for i in range(files):
        if stop is not None and stop.is_set():
            break
        began = time.monotonic()
        path, truth = publish_flow_file(
            out_dir,
            run_file_name(seed, i),
            n_events=events,
            seed=seed + i,
            faults=faults,
            compression=compression,
            start_time_s=start_s,
            **kwargs,
        )
        written.append((path, truth))
        log.info("simulated_file_published", file=str(path), events=events)
        if start_s is not None:  # given: event times follow on; else each file starts "now"
            start_s = truth.time_end_s + EVENT_PERIOD_MS / 1000.0
        if i + 1 < files:
            wait = max(0.0, interval_s - (time.monotonic() - began))
            if stop is not None:
                if stop.wait(wait):
                    break
            elif wait:
                time.sleep(wait)
    return written
