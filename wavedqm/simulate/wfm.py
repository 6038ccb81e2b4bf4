"""Simulated xenon-TPC field scan: ``FieldScan`` sets of FastFrame Tektronix WFM#003 files.

A run folder holds one set folder per (gate, anode) voltage pair, named
``FieldScan_Gate0200_Anode2100``; a set holds FastFrame files named like
``RUN1_20261121_Gate0200_Anode2100_Batch001_CH3.wfm`` (the PMT channel), each published as a
DAQ does: written under ``.<name>.tmp`` (no ``.wfm`` ending) then renamed (spec: ratag-s2.md,
tektronix-wfm.md). Everything the kernels (:mod:`wavedqm.kernels.s2`) should find is known:
:class:`SetTruth` per set, ``simulation_truth.json`` per run.

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

Vectorised numpy per file: each pulse family is evaluated for all its frames at once over the
samples it can reach; one file of 200 × 6250 samples takes ~0.05 s.
"""

from __future__ import annotations

import enum
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erf

from wavedqm import constants as C
from wavedqm.analysis import ratag
from wavedqm.atomic import atomic_write_json, atomic_write_text
from wavedqm.formats.run_config import RUN_CONFIG_FILE
from wavedqm.formats.wfm_writer import write_wfm
from wavedqm.kernels.s2 import XrayReason
from wavedqm.logs import get_logger

log = get_logger(__name__)

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


# --------------------------------------------------------------------------------------------
# truth


def _json_list(values: np.ndarray, digits: int = 6) -> list[float | None]:
    return [round(float(v), digits) if math.isfinite(v) else None for v in values]


@dataclass(frozen=True, eq=False)
class SetTruth:
    """What one simulated set holds (µs, mV, mV·µs, V, V/cm). Per-frame arrays run over the
    set's frames in file order (file 1 frame 0 first)."""

    set_name: str
    gate_v: float
    anode_v: float
    drift_field_v_cm: float
    el_field_v_cm: float
    drift_time_us: float
    """t_drift of :func:`wavedqm.analysis.ratag.set_physics` (run constants)."""
    t_s1_us: float
    """Mean time of the S1 peak (µs); each frame's last sample above 1 mV is within a sample
    of it (0.0072 µs later at most)."""
    t_s2_start_us: float
    """Start of the ion S2 box: t_s1 + t_drift (µs)."""
    s2_mean_mv_us: float
    """True mean area of the ion S2 (mV·µs): ION_A0 · E/(E + ION_E0) · E_EL/EL_REFERENCE."""
    s2_sigma_mv_us: float
    s2_width_us: float
    """Mean width of the ion S2 box (µs)."""
    s2_width_sigma_us: float
    s2_edge_sigma_us: float
    xray_mean_mv_us: float
    xray_sigma_mv_us: float
    xray_width_us: float
    n_frames: int
    n_ion: int
    """Frames with a nominal ion S2 (every kind but S2_PILEUP)."""
    n_xray: int
    """Frames with a pulse in the drift region (XRAY, XRAY_NEAR_S1/S2, XRAY_SMALL)."""
    n_xray_accepted_expected: int
    """XRAY frames: built to pass every cut."""
    n_bad: int
    """Frames built to fail one cut (the kinds of BAD_KINDS)."""
    bad_reasons: dict[str, int]
    """Bad frames per XrayReason label they must get."""
    kind_counts: dict[str, int]
    files: list[Path]
    dt_us: float
    t0_us: float
    record_length: int
    raw_dtype: str
    vscale_v: float
    voffset_v: float
    noise_mv: float
    seed: int
    frame_kind: np.ndarray = field(repr=False)
    """int8 :class:`FrameKind` per frame."""
    expected_reason: np.ndarray = field(repr=False)
    """int8 :class:`XrayReason` each frame is built to get (:attr:`FrameKind.expected_reason`)."""
    t_s1_frame_us: np.ndarray = field(repr=False)
    """Time of each frame's S1 peak (µs)."""
    s2_area_mv_us: np.ndarray = field(repr=False)
    """True area of each frame's S2 box (mV·µs; the pile-up S2 for S2_PILEUP)."""
    s2_width_frame_us: np.ndarray = field(repr=False)
    """Width of each frame's S2 box (µs); it starts at t_s1_frame + drift time."""
    xray_area_mv_us: np.ndarray = field(repr=False)
    """True area of each frame's drift-region pulse (mV·µs); NaN without one."""
    xray_start_us: np.ndarray = field(repr=False)
    """Start of each frame's drift-region box, xray_width_us long (µs; the centre of the
    Gaussian for XRAY_SMALL); NaN without one."""

    @property
    def ion_mask(self) -> np.ndarray:
        """bool per frame: a nominal ion S2 (area drawn from N(s2_mean, s2_sigma))."""
        return self.frame_kind != FrameKind.S2_PILEUP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: NaN → None), per-frame arrays as lists."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "files":
                value = [str(p) for p in value]
            elif isinstance(value, np.ndarray):
                value = (
                    value.astype(int).tolist() if value.dtype.kind in "iu" else _json_list(value)
                )
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[name] = value
        out["frame_kind_labels"] = {k.label: int(k) for k in FrameKind}
        return out


# --------------------------------------------------------------------------------------------
# frames


def _add_pulses(
    sig: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    height: np.ndarray,
    sigma: float,
) -> None:
    """Add to ``sig[rows]`` boxes of ``height`` (mV) on ``[start, end]`` (µs) convolved with a
    Gaussian of ``sigma`` µs: area ``height · (end − start)``. Evaluated only over the samples
    any of them can reach (± 7 σ)."""
    if rows.size == 0:
        return
    lo = int(np.searchsorted(t, start.min() - 7 * sigma))
    hi = int(np.searchsorted(t, end.max() + 7 * sigma, side="right"))
    if hi <= lo:
        return
    tt = t[lo:hi][None, :]
    s = math.sqrt(2.0) * sigma
    shape = 0.5 * (erf((tt - start[:, None]) / s) - erf((tt - end[:, None]) / s))
    sig[rows, lo:hi] += height[:, None] * shape


def _add_gaussians(
    sig: np.ndarray,
    t: np.ndarray,
    rows: np.ndarray,
    centre: np.ndarray,
    height: np.ndarray,
    sigma: float,
) -> None:
    """Add Gaussians of ``height`` (mV) at ``centre`` (µs) of width ``sigma`` to ``sig[rows]``."""
    if rows.size == 0:
        return
    lo = int(np.searchsorted(t, centre.min() - 7 * sigma))
    hi = int(np.searchsorted(t, centre.max() + 7 * sigma, side="right"))
    tt = t[lo:hi][None, :]
    sig[rows, lo:hi] += height[:, None] * np.exp(-0.5 * ((tt - centre[:, None]) / sigma) ** 2)


def _normal(
    rng: np.random.Generator, mean: float, sigma: float, n: int, k: float = TRUNCATE_SIGMA
) -> np.ndarray:
    """``n`` draws of N(mean, sigma) truncated at ± ``k`` sigma (out-of-range draws redrawn):
    symmetric, so the mean is unchanged (the std shrinks by 0.05 % for k = 4)."""
    x = rng.normal(mean, sigma, n)
    while True:
        out = np.flatnonzero(np.abs(x - mean) > k * sigma)
        if out.size == 0:
            return x
        x[out] = rng.normal(mean, sigma, out.size)


def _kinds(rng: np.random.Generator, n: int, fractions: Mapping[FrameKind, float]) -> np.ndarray:
    """``round(fraction × n)`` frames of each kind at random positions, the rest ION."""
    counts = {k: round(f * n) for k, f in fractions.items() if k != FrameKind.ION}
    if sum(counts.values()) > n:
        raise ValueError(f"kind fractions {dict(fractions)} add up to more than 1")
    kind = np.zeros(n, np.int8)
    order = rng.permutation(n)
    pos = 0
    for k in sorted(counts):
        kind[order[pos : pos + counts[k]]] = k
        pos += counts[k]
    return kind


def _frames(
    rng: np.random.Generator, kind: np.ndarray, model: SetModel, geo: _Geometry
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(signal_mv, per_frame)`` of frames of the given kinds: the positive-going signal
    (mV, ``(n, record_length)``) and the per-frame arrays of :class:`SetTruth`
    (``frame_kind``, ``t_s1_frame_us``, …)."""
    t = geo.t
    n = kind.size
    sig = np.zeros((n, t.size))
    all_rows = np.arange(n)
    # S1
    t_s1 = geo.s1_peak_us + rng.normal(0.0, S1_JITTER_US, n)
    _add_gaussians(sig, t, all_rows, t_s1, rng.uniform(*S1_AMPLITUDE_MV, n), geo.s1_sigma_us)
    # ion S2 (every frame; S2_PILEUP frames get a huge one instead)
    width = _normal(rng, model.s2_width_us, model.s2_width_sigma_us, n)
    area = _normal(rng, model.s2_mean_mv_us, model.s2_sigma_mv_us, n)
    pile = kind == FrameKind.S2_PILEUP
    height = area / width
    height[pile] = geo.s2_pileup_mv
    area[pile] = geo.s2_pileup_mv * width[pile]
    start = t_s1 + model.drift_time_us
    _add_pulses(sig, t, all_rows, start, start + width, height, model.s2_edge_sigma_us)
    # pulses in the drift region
    xray_area = np.full(n, np.nan)
    xray_start = np.full(n, np.nan)
    w_x = model.el_transit_us
    for k in XRAY_KINDS:
        rows = np.flatnonzero(kind == k)
        m = rows.size
        if m == 0:
            continue
        s1, s2 = t_s1[rows], start[rows]
        if k == FrameKind.XRAY_SMALL:
            a = rng.uniform(*SMALL_AREA_MV_US, m)
            lo, hi = geo.xray_range_us
            centre = s1 + rng.uniform(lo, hi + w_x, m)
            _add_gaussians(
                sig, t, rows, centre, a / (SMALL_SIGMA_US * math.sqrt(2 * math.pi)), SMALL_SIGMA_US
            )
            xray_area[rows] = a
            xray_start[rows] = centre
            continue
        a = _normal(rng, model.xray_mean_mv_us, model.xray_sigma_mv_us, m)
        if k == FrameKind.XRAY:
            x0 = s1 + rng.uniform(*geo.xray_range_us, m)
        elif k == FrameKind.XRAY_NEAR_S1:
            x0 = s1 + rng.uniform(*NEAR_S1_US, m)
        else:  # XRAY_NEAR_S2
            x0 = s2 - rng.uniform(*NEAR_S2_US, m) - w_x
        _add_pulses(sig, t, rows, x0, x0 + w_x, a / w_x, model.s2_edge_sigma_us)
        xray_area[rows] = a
        xray_start[rows] = x0
    # pile-up before S1
    rows = np.flatnonzero(kind == FrameKind.PRE_S1_PILEUP)
    if rows.size:
        before, after = PRE_S1_PILEUP_US
        _add_pulses(
            sig,
            t,
            rows,
            t_s1[rows] - before,
            t_s1[rows] - after,
            np.full(rows.size, geo.pre_s1_pileup_mv),
            model.s2_edge_sigma_us,
        )
    return sig, {
        "frame_kind": kind,
        "t_s1_frame_us": t_s1,
        "s2_area_mv_us": area,
        "s2_width_frame_us": width,
        "xray_area_mv_us": xray_area,
        "xray_start_us": xray_start,
    }


@dataclass(frozen=True, eq=False)
class _Geometry:
    """Time axis and derived placements of one set (µs, mV)."""

    t: np.ndarray
    s1_peak_us: float
    s1_sigma_us: float
    xray_range_us: tuple[float, float]
    """Start of an accepted X-ray after S1 (µs)."""
    pre_s1_pileup_mv: float
    s2_pileup_mv: float


def _geometry(
    model: SetModel, *, dt_us: float, t0_us: float, record_length: int, s1_time_us: float
) -> _Geometry:
    """Check that every pulse fits the record and the pedestals stay clean; placements."""
    if not (math.isfinite(dt_us) and dt_us > 0):
        raise ValueError(f"dt_us={dt_us} (expected a sample period > 0 µs)")
    t = t0_us + dt_us * np.arange(record_length, dtype=np.float64)
    s1_peak = s1_time_us + 0.5 * dt_us
    before, _ = PRE_S1_PILEUP_US
    clean_end = t0_us + C.RATAG_N_PEDESTAL_AREA * dt_us
    first_pulse = s1_peak - before - CLEAN_MARGIN_US
    if clean_end > first_pulse:
        raise ValueError(
            f"t0_us={t0_us}: the {C.RATAG_N_PEDESTAL_AREA} pedestal samples end at "
            f"{clean_end:.3f} µs, after the first pulse may start ({first_pulse:.3f} µs); "
            f"start the record earlier"
        )
    if s1_peak + 0.05 >= 0.0:
        raise ValueError(f"s1_time_us={s1_time_us}: the S1 must come before t = 0")
    edge = 7 * model.s2_edge_sigma_us
    longest = model.s2_width_us + TRUNCATE_SIGMA * model.s2_width_sigma_us
    s2_end = s1_peak + model.drift_time_us + longest + edge
    if s2_end + 1.0 > t[-1]:
        raise ValueError(
            f"gate {model.gate_v:g} V: the ion S2 ends near {s2_end:.2f} µs, beyond the record "
            f"({t[-1]:.2f} µs + 1 µs margin needed); raise record_length"
        )
    lo = C.RATAG_XRAY_MIN_S1_SEP_US + XRAY_S1_MARGIN_US
    hi = model.drift_time_us - C.RATAG_XRAY_MIN_S2_SEP_US - XRAY_S2_MARGIN_US
    hi -= model.el_transit_us
    if hi <= lo:
        raise ValueError(
            f"gate {model.gate_v:g} V: drift time {model.drift_time_us:.2f} µs leaves no room "
            f"for an accepted X-ray of {model.el_transit_us:.2f} µs"
        )
    width = PRE_S1_PILEUP_US[0] - PRE_S1_PILEUP_US[1]
    pre = PILEUP_FACTOR * C.RATAG_XRAY_MAX_AREA_S1 * dt_us / width
    shortest = model.s2_width_us - TRUNCATE_SIGMA * model.s2_width_sigma_us
    s2p = PILEUP_FACTOR * C.RATAG_XRAY_MAX_AREA_S2 * dt_us / shortest
    return _Geometry(t, s1_peak, 0.5 * dt_us, (lo, hi), pre, s2p)


def _raw_scale(
    raw_dtype: Any, vscale_v: float | None, voffset_v: float | None, baseline_mv: float
) -> tuple[np.dtype, float, float]:
    dtype = np.dtype(raw_dtype)
    if dtype.name not in RAW_DEFAULTS:
        raise ValueError(f"raw_dtype {dtype} (expected int8 or int16)")
    scale, base_count = RAW_DEFAULTS[dtype.name]
    vscale = scale if vscale_v is None else float(vscale_v)
    if not (math.isfinite(vscale) and vscale > 0):
        raise ValueError(f"vscale_v={vscale_v} (expected V per count > 0)")
    voffset = baseline_mv / 1e3 - base_count * vscale if voffset_v is None else float(voffset_v)
    return dtype, vscale, voffset


def _range_mv(dtype: np.dtype, vscale: float, voffset: float, baseline_mv: float) -> float:
    """Largest negative pulse (mV) the raw range holds below the baseline."""
    lowest_v = np.iinfo(dtype).min * vscale + voffset
    return (baseline_mv / 1e3 - lowest_v) * 1e3


def _digitise(
    sig: np.ndarray,
    rng: np.random.Generator,
    noise_mv: float,
    baseline_mv: float,
    dtype: np.dtype,
    vscale: float,
    voffset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(raw, clipped)``: rint((volts − voffset) / vscale) of the inverted signal + noise,
    clipped to the dtype as a scope does; ``clipped`` per frame."""
    noise = rng.standard_normal(sig.shape, dtype=np.float32)
    mv = baseline_mv - sig - noise_mv * noise
    codes = np.rint((mv * 1e-3 - voffset) / vscale)
    info = np.iinfo(dtype)
    clipped = ((codes < info.min) | (codes > info.max)).any(axis=1)
    return np.clip(codes, info.min, info.max).astype(dtype), clipped


# --------------------------------------------------------------------------------------------
# writing


def _publish(final: Path, raw: np.ndarray, **kwargs: Any) -> Path:
    """Write ``raw`` as ``.<name>.tmp`` beside ``final`` then rename it (as a DAQ does): the
    final name never shows a partial file. The temporary file goes on error."""
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        write_wfm(tmp, raw, **kwargs)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def write_set(
    set_dir: str | Path,
    *,
    gate_v: float,
    anode_v: float,
    files: int = 2,
    frames_per_file: int = 200,
    seed: int = 0,
    run_id: str = "RUN1",
    dt_us: float = DT_US,
    t0_us: float = T0_US,
    record_length: int = RECORD_LENGTH,
    raw_dtype: Any = np.int16,
    vscale_v: float | None = None,
    voffset_v: float | None = None,
    noise_mv: float = NOISE_MV,
    baseline_mv: float = BASELINE_MV,
    s1_time_us: float = S1_TIME_US,
    fractions: Mapping[FrameKind, float] | None = None,
    start_time_s: float | None = None,
    publish: bool = True,
    interval_s: float = 0.0,
    stop: threading.Event | None = None,
    run: ratag.RunConstants | None = None,
) -> SetTruth:
    """Write one set: ``files`` FastFrame WFM#003 files of ``frames_per_file`` frames into
    ``set_dir`` (created; the caller names it, e.g. :func:`set_name`).

    File ``b`` (from 1) is :func:`file_name` ``(run_id, date, gate, anode, b)``, simulated
    with ``np.random.default_rng([seed, b])``; ``date`` (YYYYMMDD, UTC) and the frame
    timestamps (``FRAME_RATE_HZ`` apart) follow ``start_time_s`` (unix s, default now).
    ``raw_dtype`` int16 (default) or int8; ``vscale_v`` (V/count) and ``voffset_v`` (V)
    default per dtype (``RAW_DEFAULTS``: baseline count, V per count). ``noise_mv``: Gaussian
    noise std (mV). ``fractions``: frames per kind (default ``DEFAULT_FRACTIONS``; pile-up
    kinds are dropped when the raw range cannot hold them). ``publish``: write under
    ``.<name>.tmp`` then rename (False: write in place). Waits ``interval_s`` between files;
    stops before the next file once ``stop`` is set (the truth then covers the files
    written). ``ValueError`` when the record cannot hold the set (see the module doc).
    """
    if files < 0 or frames_per_file < 1:
        raise ValueError(f"files={files}, frames_per_file={frames_per_file} (expected ≥ 0, ≥ 1)")
    if not (math.isfinite(noise_mv) and noise_mv >= 0):
        raise ValueError(f"noise_mv={noise_mv} (expected ≥ 0 mV)")
    set_dir = Path(set_dir)
    model = set_model(gate_v, anode_v, run)
    geo = _geometry(
        model, dt_us=dt_us, t0_us=t0_us, record_length=record_length, s1_time_us=s1_time_us
    )
    dtype, vscale, voffset = _raw_scale(raw_dtype, vscale_v, voffset_v, baseline_mv)
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    reach = _range_mv(dtype, vscale, voffset, baseline_mv) - 6 * noise_mv
    for k, need in (
        (FrameKind.PRE_S1_PILEUP, geo.pre_s1_pileup_mv),
        (FrameKind.S2_PILEUP, geo.s2_pileup_mv),
    ):
        if fractions.get(k, 0.0) and need > reach:
            log.info("pileup_kind_dropped", kind=k.label, needs_mv=need, range_mv=reach)
            fractions[k] = 0.0
    nominal = max(
        (model.s2_mean_mv_us + TRUNCATE_SIGMA * model.s2_sigma_mv_us)
        / (model.s2_width_us - TRUNCATE_SIGMA * model.s2_width_sigma_us),
        (model.xray_mean_mv_us + TRUNCATE_SIGMA * model.xray_sigma_mv_us) / model.el_transit_us,
        S1_AMPLITUDE_MV[1],
    )
    if nominal > reach:
        raise ValueError(
            f"{dtype} with {vscale * 1e3:g} mV/count holds pulses down to {reach:.1f} mV below "
            f"the baseline (noise margin included); the set's signals reach {nominal:.1f} mV"
        )
    start_s = time.time() if start_time_s is None else float(start_time_s)
    date = time.strftime("%Y%m%d", time.gmtime(start_s))
    set_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    parts: list[dict[str, np.ndarray]] = []
    for b in range(1, files + 1):
        if stop is not None and stop.is_set():
            break
        began = time.monotonic()
        rng = np.random.default_rng([seed, b])
        kinds = _kinds(rng, frames_per_file, fractions)
        raw = np.empty((frames_per_file, record_length), dtype)
        chunks: list[dict[str, np.ndarray]] = []
        for a in range(0, frames_per_file, CHUNK_FRAMES):  # bounded memory
            z = min(frames_per_file, a + CHUNK_FRAMES)
            sig, per_frame = _frames(rng, kinds[a:z], model, geo)
            raw[a:z], clipped = _digitise(sig, rng, noise_mv, baseline_mv, dtype, vscale, voffset)
            if (clipped & ~np.isin(kinds[a:z], PILEUP_KINDS)).any():  # pragma: no cover
                raise ValueError(f"a nominal frame clipped in {dtype}: raise vscale_v")
            chunks.append(per_frame)
        index = (b - 1) * frames_per_file + np.arange(frames_per_file)
        t_frames = start_s + index / FRAME_RATE_HZ
        gmt = np.floor(t_frames)
        final = set_dir / file_name(run_id, date, gate_v, anode_v, b)
        kwargs: dict[str, Any] = {
            "dt_s": dt_us * 1e-6,
            "t0_s": t0_us * 1e-6,
            "vscale": vscale,
            "voffset": voffset,
            "version": ":WFM#003",
            "gmt_seconds": gmt.astype(np.int64),
            "frac_seconds": t_frames - gmt,
            "label": CHANNEL,
        }
        if publish:
            _publish(final, raw, **kwargs)
        else:
            write_wfm(final, raw, **kwargs)
        written.append(final)
        parts.append({k: np.concatenate([c[k] for c in chunks]) for k in _PER_FRAME})
        log.info("simulated_wfm_published", file=str(final), frames=frames_per_file)
        if b < files:
            wait = max(0.0, interval_s - (time.monotonic() - began))
            if stop is not None:
                if stop.wait(wait):
                    break
            elif wait:
                time.sleep(wait)
    setup = {
        "dt_us": float(dt_us),
        "t0_us": float(t0_us),
        "record_length": int(record_length),
        "raw_dtype": dtype.name,
        "vscale_v": vscale,
        "voffset_v": voffset,
        "noise_mv": float(noise_mv),
        "seed": int(seed),
    }
    return _truth(model, geo, parts, written, setup)


def _truth(
    model: SetModel,
    geo: _Geometry,
    parts: list[dict[str, np.ndarray]],
    written: list[Path],
    setup: dict[str, Any],
) -> SetTruth:
    """The set's truth from its model and the per-frame arrays of each file; ``setup``: the
    digitiser fields of :class:`SetTruth`."""
    per_frame = {
        name: np.concatenate([p[name] for p in parts])
        if parts
        else np.zeros(0, np.int8 if name == "frame_kind" else np.float64)
        for name in _PER_FRAME
    }
    kind = per_frame["frame_kind"]
    expected = np.array([k.expected_reason for k in FrameKind], np.int8)[kind.astype(np.intp)]
    counts = np.bincount(kind.astype(np.intp), minlength=len(FrameKind))
    bad_reasons = {k.expected_reason.label: int(counts[k]) for k in BAD_KINDS}
    return SetTruth(
        set_name=set_name(model.gate_v, model.anode_v),
        gate_v=model.gate_v,
        anode_v=model.anode_v,
        drift_field_v_cm=model.drift_field_v_cm,
        el_field_v_cm=model.el_field_v_cm,
        drift_time_us=model.drift_time_us,
        t_s1_us=geo.s1_peak_us,
        t_s2_start_us=geo.s1_peak_us + model.drift_time_us,
        s2_mean_mv_us=model.s2_mean_mv_us,
        s2_sigma_mv_us=model.s2_sigma_mv_us,
        s2_width_us=model.s2_width_us,
        s2_width_sigma_us=model.s2_width_sigma_us,
        s2_edge_sigma_us=model.s2_edge_sigma_us,
        xray_mean_mv_us=model.xray_mean_mv_us,
        xray_sigma_mv_us=model.xray_sigma_mv_us,
        xray_width_us=model.el_transit_us,
        n_frames=int(kind.size),
        n_ion=int(np.count_nonzero(kind != FrameKind.S2_PILEUP)),
        n_xray=int(sum(counts[k] for k in XRAY_KINDS)),
        n_xray_accepted_expected=int(counts[FrameKind.XRAY]),
        n_bad=int(sum(counts[k] for k in BAD_KINDS)),
        bad_reasons=bad_reasons,
        kind_counts={k.label: int(counts[k]) for k in FrameKind},
        files=list(written),
        **setup,
        expected_reason=expected,
        **per_frame,
    )


_PER_FRAME = (
    "frame_kind",
    "t_s1_frame_us",
    "s2_area_mv_us",
    "s2_width_frame_us",
    "xray_area_mv_us",
    "xray_start_us",
)


TRUTH_FILE = "simulation_truth.json"
DEFAULT_SETS: tuple[tuple[float, float], ...] = ((200, 2100), (400, 2300), (800, 2700))
"""(gate, anode) voltages of the default field scan: drift fields 143/286/571 V/cm at one
EL field (2375 V/cm)."""


def simulate_field_scan(
    run_dir: str | Path,
    *,
    sets: tuple[tuple[float, float], ...] = DEFAULT_SETS,
    files_per_set: int = 2,
    frames_per_file: int = 200,
    interval_s: float = 0.0,
    seed: int = 0,
    run_id: str | None = None,
    stop: threading.Event | None = None,
    **set_kwargs: Any,
) -> list[SetTruth]:
    """Write a field-scan run into ``run_dir``: one :func:`set_name` folder per (gate, anode)
    pair, sets one after another (set ``i`` with seed ``seed + i``), ``interval_s`` between
    files (across sets too). ``run_id`` defaults to :func:`run_id_from_dir`. After each set,
    ``run_dir/simulation_truth.json`` is rewritten atomically with the truths so far
    (``run_id``, ``run_constants``, ``sets``: :meth:`SetTruth.to_dict`); ``run_dir/run.toml``
    (:func:`write_run_config`) first. Stops once ``stop``
    is set (the last set may be partial). Extra ``set_kwargs`` go to :func:`write_set`.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rid = run_id or run_id_from_dir(run_dir)
    run = set_kwargs.get("run") or ratag.RunConstants()
    write_run_config(run_dir, sets, run)
    truths: list[SetTruth] = []
    for i, (gate, anode) in enumerate(sets):
        if stop is not None and stop.is_set():
            break
        if i and interval_s > 0:
            if stop is not None:
                if stop.wait(interval_s):
                    break
            else:
                time.sleep(interval_s)
        truth = write_set(
            run_dir / set_name(gate, anode),
            gate_v=gate,
            anode_v=anode,
            files=files_per_set,
            frames_per_file=frames_per_file,
            seed=seed + i,
            run_id=rid,
            interval_s=interval_s,
            stop=stop,
            **set_kwargs,
        )
        truths.append(truth)
        atomic_write_json(
            run_dir / TRUTH_FILE,
            {
                "run_id": rid,
                "run_constants": run.to_dict(),
                "sets": [t.to_dict() for t in truths],
            },
        )
    return truths


def write_run_config(
    run_dir: str | Path,
    sets: tuple[tuple[float, float], ...],
    run: ratag.RunConstants | None = None,
) -> Path:
    """``RUN/run.toml`` (:mod:`wavedqm.formats.run_config`) with a ``[fit]`` table whose ranges
    hold the simulated ion and X-ray areas of every set (mean + 6σ of the set models). The
    spec's defaults (ions 0–4, X-rays 0.6–20 mV·µs) cannot: an S2 that passes RaTag's duration
    cut (≥ 5 µs above 0.8 mV) has at least 4 mV·µs. Written before the first file, so that the
    daemon reads it for the run's first file already."""
    models = [set_model(gate, anode, run) for gate, anode in sets]
    ion_top = max(m.s2_mean_mv_us + 6 * m.s2_sigma_mv_us for m in models)
    xray_top = max(m.xray_mean_mv_us + 6 * m.xray_sigma_mv_us for m in models)
    text = (
        "# written by `wavedqm simulate wfm`: fit ranges that hold the simulated areas\n"
        "[fit]\n"
        f"ion_bin_cuts = [0.0, {ion_top:.1f}]\n"
        f"xray_bin_cuts = [5.0, {xray_top:.1f}]\n"
    )
    return atomic_write_text(Path(run_dir) / RUN_CONFIG_FILE, text)
