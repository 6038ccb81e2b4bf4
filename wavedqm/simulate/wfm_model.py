"""The signal model of the simulated field scan (:mod:`wavedqm.simulate.wfm`): digitiser and
pulse constants (µs, mV, mV·µs, V/cm), the frame kinds, and per set its means
(:class:`SetModel`, from its voltages and the run constants) and its folder / file names.

**Frame** (``record_length`` samples ``t = t0 + i·dt`` µs; defaults dt = 0.008 µs (125 MS/s),
t0 = −20 µs, 6250 samples: −20 … +30 µs). The PMT gives negative pulses: a positive-going
signal ``s(t)`` (mV) is stored as ``volts = (baseline_mv − s − noise) / 1000`` and
quantised ``raw = rint((volts − voffset) / vscale)`` (the kernels invert it back with
``FrameScale(polarity=−1)``). The first ``RATAG_N_PEDESTAL_AREA`` (2000) samples — 16 µs — are
signal-free, so both pedestals of the kernels are clean. Every frame holds:

- **S1**: a Gaussian of σ = dt/2 and amplitude U(3, 5) mV peaking half a sample after
  ``s1_time_us`` (−1 µs), i.e. at −0.996 µs, jitter 0.5 ns (the trigger reference). Its last
  sample above 1 mV is within a sample of the peak (at most σ·√(2 ln 5) = 0.0072 µs after
  it), nearly always the same sample, and what is left of the S1 after that sample is too
  small to look like a signal in the X-ray drift window.
- **ion S2** starting at ``t_s1 + t_drift`` (drift time from :mod:`wavedqm.analysis.ratag`):
  a box of width ``W_f`` convolved with a Gaussian of σ_edge (the "Gaussian-smoothed box",
  area = height × width exactly), area ``A_f``, height ``A_f / W_f``:

  - mean area ``A_ion(E) = ION_A0 · E / (E + ION_E0) · E_EL / EL_REFERENCE`` (mV·µs):
    recombination falls with the drift field E (A0 = 45 mV·µs, E0 = 100 V/cm); the EL gain
    is linear in the EL field E_EL = (V_anode − V_gate) / EL gap (reference 2375 V/cm);
    sigma = 15 % of the mean. 200/400/800 V gates → 26.5 / 33.3 / 38.3 mV·µs.
  - mean width ``W = t_EL + ION_CLOUD + ION_WIDTH_PER_DRIFT · t_drift`` (µs): ``t_EL`` the
    electrons' transit of the EL gap at the EL field (4.14 µs at 2375 V/cm, 2 bar), 2 µs of
    cloud length, plus 0.1 µs per µs of drift (7.2–7.5 µs); per frame ``W_f ~ N(W, σ_W)``
    with ``σ_W² = WIDTH_SIGMA0² + WIDTH_DIFFUSION · t_drift`` (0.02 µs, 2e-4 µs²/µs:
    0.050–0.055 µs; the spread σ_W² grows linearly with the drift time, as RaTag's diffusion
    analysis assumes); σ_edge = 0.02 µs · √(t_drift / 10 µs).
  - Areas and widths are Gaussian draws truncated at ±4 sigma (mean unchanged).
- **Gaussian noise** of ``noise_mv`` (0.2 mV) on every sample.

RaTag's S2 area (window ``[start − 1σ, end + 0.5σ]`` cut out, smoothed, zeroed below 0.8 mV)
measures these ion S2s 0.15–0.25 % low (the edges below threshold and at the window ends,
the longest S2s cut by the window): ≤ 0.3 standard error of the mean for 400 frames. The
measured duration spread is wider than σ_W (sampling, X-ray frames, see below).

**Event kinds** (:class:`FrameKind`; per file, ``round(fraction × frames)`` frames of each
kind at random positions, the rest ``ION``), each built for one X-ray reason of
:class:`~wavedqm.kernels.s2.XrayReason` with the default :class:`~wavedqm.kernels.s2.S2Params`:

- ``XRAY`` (10 %): an X-ray S2 in the drift region — a smoothed box of width ``t_EL``, area
  ``~ N(A_X, 8 %)``, ``A_X = XRAY_A0 · E_EL / EL_REFERENCE`` (54 mV·µs: X-ray electrons
  do not recombine, so recombination r = 1 − A_ion / A_X falls from 0.51 to 0.29 over the
  default scan), starting uniformly between S1 + 0.65 µs and ion S2 start − 1.15 µs − t_EL:
  passes every cut (> 0.5 µs after S1, > 1.0 µs before S2, area ≫ 0.2 mV·µs).
- ``PRE_S1_PILEUP`` (2 %): a 2 µs pulse ending 0.5 µs before S1 whose sum of samples is
  1.5 × ``xray_max_area_s1`` → ``s1_area_too_large``.
- ``S2_PILEUP`` (2 %): the ion S2 replaced by a huge one (sum of samples 1.5 ×
  ``xray_max_area_s2``) → ``s2_area_too_large``; not an ion event.
- ``XRAY_NEAR_S1`` (1.5 %): an X-ray starting 0.1–0.3 µs after S1 → ``too_close_to_s1``.
- ``XRAY_NEAR_S2`` (1.5 %): an X-ray ending 0.25–0.6 µs before the ion S2 →
  ``too_close_to_s2``.
- ``XRAY_SMALL`` (1.5 %): a narrow pulse (σ 0.02 µs, 0.09–0.12 mV·µs) in the drift region,
  above threshold after smoothing but below ``xray_min_area_mv_us`` → ``area_too_small``.
- ``ION``: S1 + ion S2 only → ``no_signal`` (nothing in the drift window).

Every kind but ``S2_PILEUP`` carries a nominal ion S2 (``n_ion``). As in real data, an
X-ray still going at the S2 search start (t_s1 + 0.3·t_drift) — most of them, they last
4.1 µs — is taken for its frame's pass-1 S2 start: about 13 % of the frames then have an early S2
start and a long duration, which widens the set's duration spread (``s2_duration_std``) a
little; an X-ray before t = 0 above 1 mV is taken for its frame's S1 (then ≥ −0.5 µs, dropped
by the set's S1 cut).

**Raw range.** int16 (default): 0.02 mV/count, baseline at count +30000, so pulses down to
−1255 mV fit; int8: 0.1 mV/count, baseline at +100, pulses down to −22.8 mV: the pile-up
kinds cannot be represented (they would clip below their cut) and are not generated. A
nominal signal that could clip raises ``ValueError``.

**Fit ranges.** A box S2 that passes RaTag's duration cut (≥ 5 µs above 0.8 mV) has ≥ 4
mV·µs, so the ion areas lie above ``RATAG_ION_BIN_CUTS`` (0–4 mV·µs) and the X-rays above
``RATAG_XRAY_BIN_CUTS`` (0.6–20): fit them with wider bin cuts, e.g. (0, 2 × mean).

"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from pathlib import Path

from wavedqm.analysis import ratag
from wavedqm.kernels.s2 import XrayReason

# --- digitiser and frame (µs, mV) ------------------------------------------------------------
DT_US = 0.008
"""Sample period (µs): 125 MS/s."""
T0_US = -20.0
"""Time of the first sample from the trigger (µs)."""
RECORD_LENGTH = 6250
"""Samples per frame: −20 … +30 µs."""
NOISE_MV = 0.2
BASELINE_MV = 1.5
"""DC level of the channel (mV, before inversion): removed by the pedestal subtraction."""
CHANNEL = "CH3"
"""PMT channel in the file names."""
CHUNK_FRAMES = 128
"""Frames simulated at a time (float64 work arrays of CHUNK_FRAMES × record_length)."""
FRAME_RATE_HZ = 20.0
"""Trigger rate: frame timestamps follow on at this rate."""
RAW_DEFAULTS: dict[str, tuple[float, int]] = {"int16": (2e-5, 30000), "int8": (1e-4, 100)}
"""Per raw dtype: (V per count, count of the baseline)."""

# --- S1 ---------------------------------------------------------------------------------------
S1_TIME_US = -1.0
"""The S1 peaks half a sample after this (µs)."""
S1_AMPLITUDE_MV = (3.0, 5.0)
S1_JITTER_US = 0.0005

# --- ion S2 -----------------------------------------------------------------------------------
ION_A0_MV_US = 45.0
"""Mean ion S2 area at infinite drift field and the reference EL field (mV·µs)."""
ION_E0_V_CM = 100.0
"""Drift field at which half of the ionisation escapes recombination (V/cm)."""
ION_RESOLUTION = 0.15
"""sigma / mean of the ion S2 area."""
EL_REFERENCE_V_CM = 2375.0
"""EL field at which the areas are ION_A0 / XRAY_A0 (the default sets' EL field)."""
ION_CLOUD_US = 2.0
"""Length of the ion's electron cloud, in µs of drift, added to the EL transit."""
ION_WIDTH_PER_DRIFT = 0.1
"""S2 width added per µs of drift time (µs/µs)."""
WIDTH_SIGMA0_US = 0.02
WIDTH_DIFFUSION_US = 2e-4
"""σ_W² = WIDTH_SIGMA0² + WIDTH_DIFFUSION · t_drift (µs², t_drift in µs)."""
EDGE_SIGMA_US = 0.02
"""Gaussian smoothing of the S2 edges at 10 µs of drift; ∝ √t_drift (µs)."""

# --- X-rays and bad events -------------------------------------------------------------------
XRAY_A0_MV_US = 54.0
"""Mean X-ray S2 area at the reference EL field (mV·µs)."""
XRAY_RESOLUTION = 0.08
XRAY_S1_MARGIN_US = 0.15
"""Accepted X-rays start this much later than the 0.5 µs cut after S1 (µs)."""
XRAY_S2_MARGIN_US = 0.15
"""... and end this much earlier than the 1.0 µs cut before the ion S2 (µs)."""
NEAR_S1_US = (0.1, 0.3)
"""XRAY_NEAR_S1: start after S1 (µs)."""
NEAR_S2_US = (0.25, 0.6)
"""XRAY_NEAR_S2: end before the ion S2 start (µs)."""
SMALL_AREA_MV_US = (0.09, 0.12)
SMALL_SIGMA_US = 0.02
PILEUP_FACTOR = 1.5
"""Pile-up pulses carry this multiple of the cut's sum of samples."""
PRE_S1_PILEUP_US = (2.5, 0.5)
"""PRE_S1_PILEUP pulse: from this long before S1 to this long before S1 (µs)."""
TRUNCATE_SIGMA = 4.0
"""Areas and widths are Gaussian draws truncated at ± this many sigma."""
CLEAN_MARGIN_US = 0.3
"""No pulse may come closer than this to the end of the pedestal samples (µs)."""


class FrameKind(enum.IntEnum):
    """What a simulated frame holds; stored as int8 per frame."""

    ION = 0
    XRAY = 1
    PRE_S1_PILEUP = 2
    S2_PILEUP = 3
    XRAY_NEAR_S1 = 4
    XRAY_NEAR_S2 = 5
    XRAY_SMALL = 6

    @property
    def expected_reason(self) -> XrayReason:
        """The X-ray reason the kernels give such a frame (default cuts): the cut a bad kind
        is built to fail, ``passed_all_cuts`` for XRAY, ``no_signal`` for ION."""
        return _EXPECTED_REASON[self]

    @property
    def label(self) -> str:
        return self.name.lower()


_EXPECTED_REASON: dict[FrameKind, XrayReason] = {
    FrameKind.ION: XrayReason.NO_SIGNAL,
    FrameKind.XRAY: XrayReason.PASSED_ALL_CUTS,
    FrameKind.PRE_S1_PILEUP: XrayReason.S1_AREA_TOO_LARGE,
    FrameKind.S2_PILEUP: XrayReason.S2_AREA_TOO_LARGE,
    FrameKind.XRAY_NEAR_S1: XrayReason.TOO_CLOSE_TO_S1,
    FrameKind.XRAY_NEAR_S2: XrayReason.TOO_CLOSE_TO_S2,
    FrameKind.XRAY_SMALL: XrayReason.AREA_TOO_SMALL,
}
BAD_KINDS = (
    FrameKind.PRE_S1_PILEUP,
    FrameKind.S2_PILEUP,
    FrameKind.XRAY_NEAR_S1,
    FrameKind.XRAY_NEAR_S2,
    FrameKind.XRAY_SMALL,
)
"""Kinds built to fail one cut."""
XRAY_KINDS = (
    FrameKind.XRAY,
    FrameKind.XRAY_NEAR_S1,
    FrameKind.XRAY_NEAR_S2,
    FrameKind.XRAY_SMALL,
)
"""Kinds with a pulse in the drift region."""
PILEUP_KINDS = (FrameKind.PRE_S1_PILEUP, FrameKind.S2_PILEUP)
DEFAULT_FRACTIONS: dict[FrameKind, float] = {
    FrameKind.XRAY: 0.10,
    FrameKind.PRE_S1_PILEUP: 0.02,
    FrameKind.S2_PILEUP: 0.02,
    FrameKind.XRAY_NEAR_S1: 0.015,
    FrameKind.XRAY_NEAR_S2: 0.015,
    FrameKind.XRAY_SMALL: 0.015,
}
"""Fraction of each file's frames per kind (the rest are ``ION``)."""


# --------------------------------------------------------------------------------------------
# the model of a set


@dataclass(frozen=True)
class SetModel:
    """Means of one set's signals (µs, mV·µs, V/cm), from its voltages and the run constants."""

    gate_v: float
    anode_v: float
    drift_field_v_cm: float
    el_field_v_cm: float
    drift_time_us: float
    el_transit_us: float
    """Transit time of the EL gap at the EL field (µs): the width of a point-like S2."""
    s2_mean_mv_us: float
    s2_sigma_mv_us: float
    s2_width_us: float
    s2_width_sigma_us: float
    s2_edge_sigma_us: float
    xray_mean_mv_us: float
    xray_sigma_mv_us: float


def el_transit_us(el_field_v_cm: float, run: ratag.RunConstants | None = None) -> float:
    """Time (µs) electrons take to cross the EL gap at ``el_field_v_cm`` (same speed law)."""
    run = run or ratag.RunConstants()
    red = ratag.reduced_field_td(el_field_v_cm, run.gas_density_cm3)
    speed = float(ratag.drift_speed_mm_us(red, run.drift_speed_params))
    return run.el_gap_cm * 10.0 / speed


def set_model(gate_v: float, anode_v: float, run: ratag.RunConstants | None = None) -> SetModel:
    """The signal model of a set (see the module doc for every formula)."""
    run = run or ratag.RunConstants()
    if not (gate_v > 0 and anode_v > gate_v):
        raise ValueError(
            f"gate {gate_v} V, anode {anode_v} V: the drift and EL fields must both be > 0 "
            f"(anode above gate above 0 V)"
        )
    phys = ratag.set_physics(ratag.SetInfo(set_name(gate_v, anode_v), gate_v, anode_v, None), run)
    e, e_el, t_d = phys.drift_field, phys.el_field, phys.time_drift
    gain = e_el / EL_REFERENCE_V_CM
    mean = ION_A0_MV_US * e / (e + ION_E0_V_CM) * gain
    t_el = el_transit_us(e_el, run)
    xray = XRAY_A0_MV_US * gain
    return SetModel(
        gate_v=float(gate_v),
        anode_v=float(anode_v),
        drift_field_v_cm=e,
        el_field_v_cm=e_el,
        drift_time_us=t_d,
        el_transit_us=t_el,
        s2_mean_mv_us=mean,
        s2_sigma_mv_us=ION_RESOLUTION * mean,
        s2_width_us=t_el + ION_CLOUD_US + ION_WIDTH_PER_DRIFT * t_d,
        s2_width_sigma_us=math.sqrt(WIDTH_SIGMA0_US**2 + WIDTH_DIFFUSION_US * t_d),
        s2_edge_sigma_us=EDGE_SIGMA_US * math.sqrt(t_d / 10.0),
        xray_mean_mv_us=xray,
        xray_sigma_mv_us=XRAY_RESOLUTION * xray,
    )


def set_name(gate_v: float, anode_v: float) -> str:
    """``FieldScan_Gate0200_Anode2100`` (volts rounded to integers)."""
    return f"FieldScan_Gate{round(gate_v):04d}_Anode{round(anode_v):04d}"


def file_name(run_id: str, date: str, gate_v: float, anode_v: float, batch: int) -> str:
    """``RUN1_20261121_Gate0200_Anode2100_Batch001_CH3.wfm``."""
    return (
        f"{run_id}_{date}_Gate{round(gate_v):04d}_Anode{round(anode_v):04d}"
        f"_Batch{batch:03d}_{CHANNEL}.wfm"
    )


def run_id_from_dir(run_dir: str | Path) -> str:
    """``RUN34`` from a run folder ``RUN34_EL25k`` (a leading ``RUN<digits>``), else the
    folder name itself."""
    name = Path(run_dir).resolve().name
    m = re.match(r"RUN\d+", name, re.IGNORECASE)
    return m.group(0) if m else name
