"""RaTag physics on kernel output: fields, transport, per-set statistics, fits, calibration.

Pure functions and dataclasses, no I/O (spec: ratag-s2.md; the seeds 000/001 name the JSON
keys). Units: V, V/cm, cm⁻³, Td (1 Td = 1e-17 V·cm²), mm/µs, µs, mV·µs.

- :func:`parse_set_name` — ``FieldScan_Gate0200_Anode2100`` → :class:`SetInfo`.
- :func:`set_physics` — drift/EL fields, reduced field, drift speed and time of a set.
- :func:`s1_statistics` — the set's S1 time (mode of the per-frame S1 times) ± std.
- :func:`s2_window_statistics` / :func:`integration_window` — median and 16/84% spread of
  S2 start, end and duration; the S2 integration window.
- :func:`fit_area_histogram` — Gaussian fit of an area histogram (never raises).
- :func:`calibrate`, :func:`recombination` — g_S2, recombination, normalised S2.
- :func:`diffusion_fits` — σ²_obs against t_d, t_d/v_d² and E/p.
- :class:`SetAccumulator` — per-frame results of a set appended file by file, statistics
  recomputed on demand (online use).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from wavedqm import constants as C
from wavedqm.kernels.s2 import AreaResult, FrameFeatures, XrayReason, XrayResult


def _num(x: float) -> float | None:
    """JSON-safe float: NaN/inf → None."""
    x = float(x)
    return x if math.isfinite(x) else None


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
            "drift_field": _num(self.drift_field),
            "EL_field": _num(self.el_field),
            "time_drift": _num(self.time_drift),
            "speed_drift": _num(self.speed_drift),
            "red_drift_field": _num(self.red_drift_field),
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


# --------------------------------------------------------------------------------------------
# per-set timing statistics


@dataclass(frozen=True)
class S1Stats:
    """The set's S1 time: mode of the per-frame S1 times (µs) ± their std (µs)."""

    t_s1: float
    t_s1_std: float
    n_frames: int
    """Frames with an S1 time before the cut."""
    n_used: int
    """Frames left after the time cut and the outlier rejection."""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.t_s1)

    def to_dict(self) -> dict[str, float | None]:
        return {"t_s1": _num(self.t_s1), "t_s1_std": _num(self.t_s1_std)}


def s1_statistics(
    t_s1_us: np.ndarray,
    max_time_us: float = C.RATAG_S1_MAX_TIME_US,
    outlier_sigma: float = C.RATAG_OUTLIER_SIGMA,
    bins: int = C.RATAG_S1_HIST_BINS,
) -> S1Stats:
    """Per set (RaTag): keep the S1 times < ``max_time_us``, drop those ≥ ``outlier_sigma``
    std from their mean, take the centre of the fullest of ``bins`` histogram bins ± the std
    of the kept times. NaN (no exception) when no time is left.

    Not rounded (RaTag rounds to 1 ns). When all kept times are equal the mode is that time.
    """
    t = np.asarray(t_s1_us, np.float64)
    t = t[np.isfinite(t)]
    n_frames = int(t.size)
    t = t[t < max_time_us]
    if t.size == 0:
        return S1Stats(math.nan, math.nan, n_frames, 0)
    std = float(np.std(t))
    if std > 0:
        t = t[np.abs(t - np.mean(t)) < outlier_sigma * std]
    if t.size == 0:
        return S1Stats(math.nan, math.nan, n_frames, 0)
    if t.min() == t.max():
        mode = float(t[0])
    else:
        counts, edges = np.histogram(t, bins=bins)
        i = int(np.argmax(counts))
        mode = float(0.5 * (edges[i] + edges[i + 1]))
    return S1Stats(mode, float(np.std(t)), n_frames, int(t.size))


@dataclass(frozen=True)
class Spread:
    """Median and 16/84% quantiles of one timing quantity (µs) after its range cut."""

    median: float
    p16: float
    p84: float
    n: int
    """Values after the cut."""

    @property
    def std(self) -> float:
        """Half the 16–84% width, (p84 − p16) / 2: RaTag's ``*_std``."""
        return 0.5 * (self.p84 - self.p16)


@dataclass(frozen=True)
class S2WindowStats:
    """S2 start, end and duration of a set (µs); NaN when too few frames pass the cuts."""

    start: Spread
    end: Spread
    duration: Spread
    expected_start_us: float
    """t_s1 + t_drift, the reference of the range cuts."""
    n_frames: int
    """Frames with an S2 (finite start and end, end > start) before the cuts."""

    @property
    def ok(self) -> bool:
        return all(math.isfinite(s.median) for s in (self.start, self.end, self.duration))

    def to_dict(self) -> dict[str, float | None]:
        """The s2_results.json ``set_metadata`` keys: ``*_mean`` is the median, ``*_std``
        half the 16–84% width (as RaTag's percentile method)."""
        out: dict[str, float | None] = {}
        for key, s in (
            ("t_s2_start", self.start),
            ("t_s2_end", self.end),
            ("s2_duration", self.duration),
        ):
            out[f"{key}_mean"] = _num(s.median)
            out[f"{key}_std"] = _num(s.std)
        return out


def _spread(values: np.ndarray, lo: float, hi: float, min_events: int) -> Spread:
    kept = values[(values >= lo) & (values <= hi)]
    if kept.size < max(1, min_events):
        return Spread(math.nan, math.nan, math.nan, int(kept.size))
    p16, p50, p84 = np.percentile(kept, [16.0, 50.0, 84.0])
    return Spread(float(p50), float(p16), float(p84), int(kept.size))


def s2_window_statistics(
    t_s2_start_us: np.ndarray,
    t_s2_end_us: np.ndarray,
    expected_start_us: float,
    start_cut: tuple[float, float] = C.RATAG_S2_START_CUT,
    end_cut: tuple[float, float] = C.RATAG_S2_END_CUT,
    duration_cut_us: tuple[float, float] = C.RATAG_S2_DURATION_CUT_US,
    min_events: int = C.RATAG_S2_MIN_EVENTS,
) -> S2WindowStats:
    """Median and 16/84% spread of S2 start, end and duration over the frames of a set.

    Frames count when both times are finite and end > start. Each quantity has its own range
    cut (ends included): start within ``start_cut`` × expected, end from ``end_cut[0]`` ×
    expected to ``end_cut[1]`` µs, duration within ``duration_cut_us``; ``expected_start_us``
    is t_s1 + t_drift. Fewer than ``min_events`` values after a cut give NaN for it.
    """
    start = np.asarray(t_s2_start_us, np.float64)
    end = np.asarray(t_s2_end_us, np.float64)
    good = np.isfinite(start) & np.isfinite(end) & (end > start)
    start, end = start[good], end[good]
    e = float(expected_start_us)
    s_lo, s_hi = sorted((start_cut[0] * e, start_cut[1] * e))
    return S2WindowStats(
        start=_spread(start, s_lo, s_hi, min_events),
        end=_spread(end, end_cut[0] * e, end_cut[1], min_events),
        duration=_spread(end - start, duration_cut_us[0], duration_cut_us[1], min_events),
        expected_start_us=e,
        n_frames=int(start.size),
    )


def integration_window(
    stats: S2WindowStats,
    sigma_before: float = C.RATAG_WINDOW_SIGMA_BEFORE,
    sigma_after: float = C.RATAG_WINDOW_SIGMA_AFTER,
) -> tuple[float, float] | None:
    """S2 integration window ``[start − 1σ_start, end + 0.5σ_end]`` (µs); None if unknown."""
    lo = stats.start.median - sigma_before * stats.start.std
    hi = stats.end.median + sigma_after * stats.end.std
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi


def set_metadata(
    s1: S1Stats, windows: S2WindowStats, physics: SetPhysics
) -> dict[str, float | None]:
    """The ``set_metadata`` object of s2_results.json, keys in the seed's order."""
    return {**s1.to_dict(), **windows.to_dict(), **physics.to_dict()}


# --------------------------------------------------------------------------------------------
# Gaussian fit of an area histogram


def gaussian(x: Any, amplitude: float, mean: float, sigma: float) -> Any:
    """``amplitude · exp(−(x − mean)² / (2 sigma²))`` (amplitude: peak height, counts/bin)."""
    return amplitude * np.exp(-0.5 * ((np.asarray(x) - mean) / sigma) ** 2)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Gaussian fit of an area histogram (mV·µs). ``fit_success`` False: the numbers are NaN
    (or the fit's unreliable values) and ``message`` says why."""

    mean: float
    sigma: float
    ci95: float
    """1.96 × standard error of the mean (mV·µs)."""
    amplitude: float
    """Peak height of the fitted Gaussian (counts per bin)."""
    fit_success: bool
    n_events: int
    """Areas inside the bin cuts (the histogram's content, excluded first bin included)."""
    bin_cuts: tuple[float, float]
    nbins: int
    exclude_first_bin: bool
    message: str = ""
    bin_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Histogram edges (mV·µs), for plots."""
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def curve(self, x: Any) -> Any:
        """The fitted Gaussian at ``x`` (counts per bin)."""
        return gaussian(x, self.amplitude, self.mean, self.sigma)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _num(self.mean),
            "sigma": _num(self.sigma),
            "ci95": _num(self.ci95),
            "fit_success": bool(self.fit_success),
            "amplitude": _num(self.amplitude),
            "n_events": int(self.n_events),
            "bin_cuts": [float(self.bin_cuts[0]), float(self.bin_cuts[1])],
            "nbins": int(self.nbins),
            "exclude_first_bin": bool(self.exclude_first_bin),
            "message": self.message,
        }


def where_areas_lie(areas: np.ndarray) -> str:
    """``"; areas lie 1.2–9.8 mV·µs (5–95 %), median 4.1"`` for the finite ``areas``, or
    ``""`` when there are none: tells a shift crew where the fit range should be."""
    finite = np.asarray(areas, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return ""
    q05, q50, q95 = np.quantile(finite, (0.05, 0.5, 0.95))
    return f"; areas lie {q05:.3g}–{q95:.3g} mV·µs (5–95 %), median {q50:.3g}"


def fit_area_histogram(
    areas: np.ndarray,
    bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS,
    nbins: int = C.RATAG_FIT_BINS,
    exclude_first_bin: bool = False,
    min_events: int = 3,
) -> FitResult:
    """Gaussian fit of the histogram of ``areas`` (RaTag ``fit_set_s2``), never raising.
    Fewer than ``min_events`` (at least 3) areas inside the cuts: no fit (``fit_success``
    False, NaN values, ``message`` says why).

    The areas strictly inside ``bin_cuts`` (finite) are histogrammed in ``nbins`` bins over
    their own range (``np.histogram(selected, bins=nbins)``, as RaTag); the first bin is left
    out of the fit if ``exclude_first_bin`` (pedestal leak; RaTag's ``exclude_index=1`` for
    ions). Least squares on the bin centres (``scipy.optimize.curve_fit``, unweighted, like
    RaTag's lmfit model), starting from the counts-weighted mean and std. ``ci95`` is 1.96 ×
    the standard error of the mean from the covariance scaled by the residual variance.
    """
    lo, hi = float(bin_cuts[0]), float(bin_cuts[1])
    a = np.asarray(areas, np.float64)
    sel = a[np.isfinite(a) & (a > lo) & (a < hi)]
    n_events = int(sel.size)

    def failed(message: str, edges: np.ndarray | None = None, counts: Any = None) -> FitResult:
        return FitResult(
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            False,
            n_events,
            (lo, hi),
            int(nbins),
            bool(exclude_first_bin),
            message,
            np.zeros(0) if edges is None else edges,
            np.zeros(0, np.int64) if counts is None else counts,
        )

    needed = max(3, int(min_events))
    if n_events < needed:
        return failed(
            f"{n_events} of {a.size} areas inside {lo:g}–{hi:g} mV·µs (a fit needs at least "
            f"{needed}){where_areas_lie(a)}"
        )
    counts, edges = np.histogram(sel, bins=int(nbins))
    centres = 0.5 * (edges[1:] + edges[:-1])
    y, x = counts.astype(np.float64), centres
    if exclude_first_bin:
        y, x = y[1:], x[1:]
    if np.count_nonzero(y) < 3:
        return failed("fewer than 3 non-empty bins to fit", edges, counts)
    m0 = float(np.average(x, weights=y))
    s0 = float(np.sqrt(np.average((x - m0) ** 2, weights=y)))
    s0 = s0 if s0 > 0 else float(edges[1] - edges[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, pcov = curve_fit(gaussian, x, y, p0=(float(y.max()), m0, s0), maxfev=10000)
    except (RuntimeError, ValueError) as e:
        return failed(f"fit did not converge: {e}", edges, counts)
    amp, mean, sigma = (float(v) for v in popt)
    var_mean = float(pcov[1, 1]) if np.all(np.isfinite(pcov)) else math.nan
    ok = (
        all(math.isfinite(v) for v in (amp, mean, sigma))
        and sigma != 0.0
        and math.isfinite(var_mean)
        and var_mean >= 0.0
        and edges[0] <= mean <= edges[-1]
    )
    return FitResult(
        mean=mean,
        sigma=abs(sigma),
        ci95=C.RATAG_CI95_Z * math.sqrt(var_mean) if ok else math.nan,
        amplitude=amp,
        fit_success=ok,
        n_events=n_events,
        bin_cuts=(lo, hi),
        nbins=int(nbins),
        exclude_first_bin=bool(exclude_first_bin),
        message="" if ok else "fit parameters or covariance not finite, or mean off the histogram",
        bin_edges=edges,
        counts=counts,
    )


# --------------------------------------------------------------------------------------------
# calibration and recombination


@dataclass(frozen=True)
class Calibration:
    """X-ray energy calibration of the S2 gain."""

    a_xray: float
    """Mean X-ray S2 area (mV·µs)."""
    a_xray_ci95: float
    n_e_expected: float
    """Electrons from one X-ray: E_xray / W."""
    g_s2: float
    """S2 gain (mV·µs per electron): A_xray / N_e,expected."""

    def to_dict(self) -> dict[str, float | None]:
        return {k: _num(v) for k, v in asdict(self).items()}


def calibrate(
    a_xray_mv_us: float, a_xray_ci95: float = math.nan, run: RunConstants | None = None
) -> Calibration:
    """g_S2 = A_xray / (E_xray / W) from the fitted mean X-ray area (e.g. a
    :class:`FitResult` ``mean``)."""
    run = run or RunConstants()
    n_e = run.xray_energy_kev * 1e3 / run.w_value_ev
    return Calibration(float(a_xray_mv_us), float(a_xray_ci95), n_e, float(a_xray_mv_us) / n_e)


@dataclass(frozen=True, eq=False)
class Recombination:
    """Per set (arrays in the order given): electrons seen, recombination, normalised S2.

    Errors as RaTag: the ion area's ci95 propagated alone (the X-ray error is not included).
    """

    drift_field: np.ndarray
    n_e_measured: np.ndarray
    """A_ion / g_S2."""
    n_e_measured_err: np.ndarray
    r: np.ndarray
    """1 − (A_ion / g_S2) / N_e,expected."""
    r_err: np.ndarray
    normalised_s2: np.ndarray
    """A_ion / A_xray."""
    normalised_s2_err: np.ndarray

    def to_dict(self) -> dict[str, list[float | None]]:
        return {k: [_num(v) for v in getattr(self, k)] for k in self.__dataclass_fields__}


def recombination(
    a_ion_mv_us: Any, a_ion_ci95: Any, drift_field_v_cm: Any, calibration: Calibration
) -> Recombination:
    """Recombination fraction and normalised S2 of each set from its fitted ion area."""
    a = np.asarray(a_ion_mv_us, np.float64)
    da = np.asarray(a_ion_ci95, np.float64)
    g, n_e, a_x = calibration.g_s2, calibration.n_e_expected, calibration.a_xray
    n_meas = a / g
    dn = da / g
    return Recombination(
        drift_field=np.asarray(drift_field_v_cm, np.float64),
        n_e_measured=n_meas,
        n_e_measured_err=dn,
        r=1.0 - n_meas / n_e,
        r_err=dn / n_e,
        normalised_s2=a / a_x,
        normalised_s2_err=da / a_x,
    )


# --------------------------------------------------------------------------------------------
# diffusion


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line y = slope·x + intercept, with standard errors (NaN for 2 points)."""

    x_name: str
    slope: float
    intercept: float
    slope_err: float
    intercept_err: float
    n_points: int
    fit_success: bool

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("slope", "intercept", "slope_err", "intercept_err"):
            d[k] = _num(d[k])
        return d


def linear_fit(x: Any, y: Any, x_name: str = "x") -> LinearFit:
    """Ordinary least squares over the finite points; ``fit_success`` needs ≥ 3 points and
    spread in x (RaTag fits only with more than 2 sets)."""
    xa = np.asarray(x, np.float64)
    ya = np.asarray(y, np.float64)
    good = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[good], ya[good]
    n = int(xa.size)
    nan = math.nan
    if n < 2:
        return LinearFit(x_name, nan, nan, nan, nan, n, False)
    xm, ym = xa.mean(), ya.mean()
    sxx = float(np.sum((xa - xm) ** 2))
    if sxx == 0.0:
        return LinearFit(x_name, nan, nan, nan, nan, n, False)
    slope = float(np.sum((xa - xm) * (ya - ym)) / sxx)
    intercept = float(ym - slope * xm)
    if n > 2:
        s2 = float(np.sum((ya - slope * xa - intercept) ** 2) / (n - 2))
        slope_err = math.sqrt(s2 / sxx)
        intercept_err = math.sqrt(s2 * (1.0 / n + xm * xm / sxx))
    else:
        slope_err = intercept_err = nan
    return LinearFit(x_name, slope, intercept, slope_err, intercept_err, n, n >= 3)


@dataclass(frozen=True, eq=False)
class DiffusionFits:
    """σ²_obs = s2_duration_std² (µs²) of each set against three variables, each fitted by
    a line: drift time t_d (µs; the slope is the headline), t_d / v_d² (µs³/mm²), and the
    drift field per pressure E/p (V·cm⁻¹·bar⁻¹)."""

    sigma2_obs: np.ndarray
    drift_time_us: np.ndarray
    td_over_vd2: np.ndarray
    e_over_p: np.ndarray
    vs_drift_time: LinearFit
    vs_td_over_vd2: LinearFit
    vs_e_over_p: LinearFit

    def to_dict(self) -> dict[str, Any]:
        return {
            "sigma2_obs": [_num(v) for v in self.sigma2_obs],
            "drift_time_us": [_num(v) for v in self.drift_time_us],
            "td_over_vd2": [_num(v) for v in self.td_over_vd2],
            "e_over_p": [_num(v) for v in self.e_over_p],
            "vs_drift_time": self.vs_drift_time.to_dict(),
            "vs_td_over_vd2": self.vs_td_over_vd2.to_dict(),
            "vs_e_over_p": self.vs_e_over_p.to_dict(),
        }


def diffusion_fits(
    duration_std_us: Any,
    drift_time: Any,
    speed_drift_mm_us: Any,
    drift_field: Any,
    pressure_bar: float = C.RATAG_PRESSURE_BAR,
) -> DiffusionFits:
    """Diffusion analysis over the sets of a run (one value per set in each argument)."""
    sig2 = np.asarray(duration_std_us, np.float64) ** 2
    td = np.asarray(drift_time, np.float64)
    x2 = td / np.asarray(speed_drift_mm_us, np.float64) ** 2
    x3 = np.asarray(drift_field, np.float64) / pressure_bar
    return DiffusionFits(
        sigma2_obs=sig2,
        drift_time_us=td,
        td_over_vd2=x2,
        e_over_p=x3,
        vs_drift_time=linear_fit(td, sig2, "drift_time_us"),
        vs_td_over_vd2=linear_fit(x2, sig2, "td_over_vd2"),
        vs_e_over_p=linear_fit(x3, sig2, "e_over_p"),
    )


# --------------------------------------------------------------------------------------------
# online accumulation


class _Column:
    """Append-only 1-D buffer with amortised doubling (no O(n²) concatenation)."""

    def __init__(self, dtype: Any) -> None:
        self._data = np.empty(1024, dtype)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values).reshape(-1)
        need = self._n + values.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = values
        self._n = need

    def view(self) -> np.ndarray:
        """The values so far (read-only view, valid until the next ``extend``)."""
        v = self._data[: self._n]
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        return self._n


class SetAccumulator:
    """Per-frame results of one set, appended as its files arrive; statistics on demand.

    Pass-1 features (:meth:`add_features`) and pass-2 results (:meth:`add_areas`, or
    :meth:`add_s2_areas` / :meth:`add_xray`) are kept in growable buffers (amortised
    doubling); the X-ray reason counts are kept incrementally. The statistics (:meth:`s1`,
    :meth:`s2_windows`, :meth:`ion_fit`, :meth:`xray_fit`) are recomputed from the buffers:
    O(frames), a few ms for 10⁵ frames.

    Online, the S1 time and S2 window a file's pass 2 used are those known when it arrived:
    they settle as the set grows. The caller decides whether to re-run pass 2 of earlier
    files when the window moves (the kernels are fast enough to redo a set) or to keep them.
    """

    def __init__(self) -> None:
        self._t_s1 = _Column(np.float64)
        self._t_start = _Column(np.float64)
        self._t_end = _Column(np.float64)
        self._area = _Column(np.float64)
        self._xray_area = _Column(np.float64)
        self._xray_reason = _Column(np.int8)
        self._reason_counts = np.zeros(len(XrayReason), np.int64)

    # -- adding
    def add_features(self, features: FrameFeatures) -> None:
        """Append pass-1 results of a batch of frames."""
        self._t_s1.extend(features.t_s1_us)
        self._t_start.extend(features.t_s2_start_us)
        self._t_end.extend(features.t_s2_end_us)

    def add_areas(self, result: AreaResult) -> None:
        """Append pass-2 results (S2 areas and X-ray classification) of a batch of frames."""
        self.add_s2_areas(result.s2_area_mv_us)
        self.add_xray(result.xray)

    def add_s2_areas(self, areas_mv_us: np.ndarray) -> None:
        """Append S2 areas (:func:`wavedqm.kernels.s2.s2_areas`) of a batch of frames."""
        self._area.extend(areas_mv_us)

    def add_xray(self, xray: XrayResult) -> None:
        """Append X-ray results (:func:`wavedqm.kernels.s2.xray_classify`) of a batch."""
        reason = np.asarray(xray.reason)
        self._xray_area.extend(xray.area_mv_us)
        self._xray_reason.extend(reason)
        codes = reason[reason >= 0].astype(np.int64)
        self._reason_counts += np.bincount(codes, minlength=len(XrayReason))

    # -- data
    @property
    def n_frames(self) -> int:
        """Frames with pass-1 results."""
        return len(self._t_s1)

    @property
    def t_s1_us(self) -> np.ndarray:
        return self._t_s1.view()

    @property
    def t_s2_start_us(self) -> np.ndarray:
        return self._t_start.view()

    @property
    def t_s2_end_us(self) -> np.ndarray:
        return self._t_end.view()

    @property
    def s2_areas_mv_us(self) -> np.ndarray:
        """One S2 area per frame with pass-2 results (NaN: empty window), as s2_areas.npy."""
        return self._area.view()

    @property
    def xray_reasons(self) -> np.ndarray:
        return self._xray_reason.view()

    @property
    def xray_event_areas_mv_us(self) -> np.ndarray:
        """X-ray area of every classified frame (NaN where the window was unusable)."""
        return self._xray_area.view()

    @property
    def xray_areas_mv_us(self) -> np.ndarray:
        """Areas of the accepted X-rays (as xray_areas.npy)."""
        accepted = self._xray_reason.view() == XrayReason.PASSED_ALL_CUTS
        return self._xray_area.view()[accepted]

    def xray_counts(self) -> dict[str, int]:
        """Frames per X-ray reason label."""
        return {r.label: int(self._reason_counts[r]) for r in XrayReason}

    # -- statistics
    def s1(self, **kwargs: Any) -> S1Stats:
        """:func:`s1_statistics` of the frames so far."""
        return s1_statistics(self.t_s1_us, **kwargs)

    def s2_windows(self, t_s1_us: float, t_drift_us: float, **kwargs: Any) -> S2WindowStats:
        """:func:`s2_window_statistics` of the frames so far, expected start t_s1 + t_drift."""
        return s2_window_statistics(
            self.t_s2_start_us, self.t_s2_end_us, t_s1_us + t_drift_us, **kwargs
        )

    def ion_fit(
        self,
        bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS,
        nbins: int = C.RATAG_FIT_BINS,
        exclude_first_bin: bool = False,
    ) -> FitResult:
        """Gaussian fit of the S2 areas so far."""
        return fit_area_histogram(self.s2_areas_mv_us, bin_cuts, nbins, exclude_first_bin)

    def xray_fit(
        self,
        bin_cuts: tuple[float, float] = C.RATAG_XRAY_BIN_CUTS,
        nbins: int = C.RATAG_FIT_BINS,
        exclude_first_bin: bool = False,
    ) -> FitResult:
        """Gaussian fit of the accepted X-ray areas so far."""
        return fit_area_histogram(self.xray_areas_mv_us, bin_cuts, nbins, exclude_first_bin)
