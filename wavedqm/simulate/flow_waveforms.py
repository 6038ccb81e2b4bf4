"""Light waveforms of a simulated ``.FLOW.hdf5`` file: the simulation parameters (ADC16 counts,
samples, unless stated), the per-channel detector (baselines, noise, pickup, which channels
see light), the random per-waveform parameters of a chunk of events (pulses, clipping,
undershoots, invalid waveforms: :class:`~wavedqm.simulate.flow_faults.ChannelFaults`), and
the numba kernel that fills and quantises them.

Waveforms (ADC16 counts): per-channel baseline in [-28800, -27200], Gaussian noise of std
15-40 taken from a shared pool of standard normals at random offsets, positive scintillation
pulses (fast rise, ~1 µs exponential tail) from sample 100 on in most events of active
channels, quantised as the hardware does (14-bit value = round(v / 4), clipped to
[-8192, 8191], stored x 4). The first ``PEDESTAL_SAMPLES`` samples of every waveform are
rescaled so that their std (ddof=0) is exactly the channel's noise sigma (their mean keeps its
natural spread): the median over events of the pedestal std then equals the truth to well under
1%, whatever the number of events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from wavedqm import constants as C
from wavedqm.config import parse_channel_list
from wavedqm.simulate.flow_faults import ChannelFaults

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
    """The detector's channels: every channel's baseline and noise are drawn first, the same
    whatever the faults (a reference made from a good run of the same detector seed matches
    the healthy channels of a faulty run), then each fault's own parameters."""
    shape = (C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS)
    baseline = rng.uniform(*BASELINE_RANGE, size=shape)
    sigma = rng.uniform(*NOISE_RANGE, size=shape)
    off = faults.mask("baseline_off")
    baseline[off] = rng.uniform(*BASELINE_OFF_RANGE, size=int(off.sum()))
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
