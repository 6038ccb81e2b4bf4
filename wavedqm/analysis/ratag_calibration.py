"""Combination of a RaTag run's sets: X-ray calibration, recombination, diffusion.

Pure functions and dataclasses, no I/O (spec: ratag-s2.md). Units: areas mV·µs, S2 gain
mV·µs per electron, drift field V/cm, pressure bar, E/p V·cm⁻¹·bar⁻¹, drift time µs, drift
speed mm/µs, σ² µs².

- :func:`calibrate` — g_S2 = A_xray / (E_xray / W) (:class:`Calibration`).
- :func:`recombination` — electrons seen, recombination fraction and normalised S2 of each
  set from its fitted ion area (:class:`Recombination`).
- :func:`linear_fit` — ordinary least-squares line with standard errors, their covariance
  and the line's 1σ band (:class:`LinearFit`).
- :func:`diffusion_fits` — σ²_obs (µs²) against t_d, t_d/v_d² and E/p (:class:`DiffusionFits`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag_fields import RunConstants, json_num

# --------------------------------------------------------------------------------------------
# calibration and recombination


@dataclass(frozen=True)
class Calibration:
    """X-ray energy calibration of the S2 gain."""

    a_xray: float
    """Mean X-ray S2 area (mV·µs)."""
    a_xray_ci95: float
    """1.96 × standard error of ``a_xray`` (mV·µs)."""
    n_e_expected: float
    """Electrons from one X-ray: E_xray / W."""
    g_s2: float
    """S2 gain (mV·µs per electron): A_xray / N_e,expected."""

    def to_dict(self) -> dict[str, float | None]:
        return {k: json_num(v) for k, v in asdict(self).items()}


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
    """V/cm."""
    n_e_measured: np.ndarray
    """A_ion / g_S2 (electrons; ``_err`` likewise)."""
    n_e_measured_err: np.ndarray
    r: np.ndarray
    """1 − (A_ion / g_S2) / N_e,expected (dimensionless; ``_err`` likewise)."""
    r_err: np.ndarray
    normalised_s2: np.ndarray
    """A_ion / A_xray (dimensionless; ``_err`` likewise)."""
    normalised_s2_err: np.ndarray

    def to_dict(self) -> dict[str, list[float | None]]:
        return {k: [json_num(v) for v in getattr(self, k)] for k in self.__dataclass_fields__}


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
    """Least-squares line y = slope·x + intercept, with standard errors and their covariance
    (NaN for 2 points). Units: y's per x's (slope), y's (intercept)."""

    x_name: str
    slope: float
    intercept: float
    slope_err: float
    intercept_err: float
    n_points: int
    fit_success: bool
    slope_intercept_cov: float = math.nan
    """cov(slope, intercept) = −x̄·s²/Sxx (not in ``to_dict``: derivable from the points)."""

    def band(self, x: Any) -> Any:
        """1σ of the fitted line at ``x``: √(x²·σ_slope² + σ_intercept² + 2x·cov), i.e.
        s·√(1/n + (x − x̄)²/Sxx); NaN without errors."""
        xa = np.asarray(x, np.float64)
        var = (
            xa * xa * self.slope_err**2
            + self.intercept_err**2
            + 2.0 * xa * self.slope_intercept_cov
        )
        return np.sqrt(np.maximum(var, 0.0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["slope_intercept_cov"]
        for k in ("slope", "intercept", "slope_err", "intercept_err"):
            d[k] = json_num(d[k])
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
        cov = float(-xm * s2 / sxx)
    else:
        slope_err = intercept_err = cov = nan
    return LinearFit(x_name, slope, intercept, slope_err, intercept_err, n, n >= 3, cov)


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
            "sigma2_obs": [json_num(v) for v in self.sigma2_obs],
            "drift_time_us": [json_num(v) for v in self.drift_time_us],
            "td_over_vd2": [json_num(v) for v in self.td_over_vd2],
            "e_over_p": [json_num(v) for v in self.e_over_p],
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
