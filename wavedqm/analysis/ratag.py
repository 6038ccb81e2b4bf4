"""RaTag physics on kernel output: fields, transport, per-set statistics, fits, calibration.

The public entry point of the RaTag S2 analysis: it re-exports the names of the modules that
hold them. Pure functions and dataclasses, no I/O (spec: ratag-s2.md; the seeds 000/001 name
the JSON keys). Units: V, V/cm, cm, cm⁻³, Td (1 Td = 1e-17 V·cm²), mm/µs, µs, mV·µs.

- :mod:`~wavedqm.analysis.ratag_fields` — :class:`RunConstants`; :func:`parse_set_name`
  (``FieldScan_Gate0200_Anode2100`` → :class:`SetInfo`); :func:`set_physics`: drift/EL fields
  (V/cm), reduced field (Td), drift speed (mm/µs) and time (µs) of a set.
- :mod:`~wavedqm.analysis.ratag_timing` — :func:`s1_statistics`: the set's S1 time (mode of
  the per-frame S1 times) ± std (µs); :func:`s2_window_statistics` /
  :func:`integration_window`: median and 16/84% spread of S2 start, end and duration, the S2
  integration window (µs); :func:`set_metadata`.
- :mod:`~wavedqm.analysis.ratag_fit` — :func:`fit_area_histogram`: Gaussian fit of an area
  histogram (mV·µs; never raises).
- :mod:`~wavedqm.analysis.ratag_calibration` — :func:`calibrate`, :func:`recombination`:
  g_S2 (mV·µs per electron), recombination, normalised S2; :func:`diffusion_fits`: σ²_obs
  (µs²) against t_d, t_d/v_d² and E/p.
- :mod:`~wavedqm.analysis.ratag_accumulator` — :class:`SetAccumulator`: per-frame results of
  a set appended file by file, statistics recomputed on demand (online use).
"""

from __future__ import annotations

from wavedqm.analysis.ratag_accumulator import SetAccumulator
from wavedqm.analysis.ratag_calibration import (
    Calibration,
    DiffusionFits,
    LinearFit,
    Recombination,
    calibrate,
    diffusion_fits,
    linear_fit,
    recombination,
)
from wavedqm.analysis.ratag_fields import (
    RunConstants,
    SetInfo,
    SetPhysics,
    drift_field_v_cm,
    drift_speed_mm_us,
    drift_time_us,
    el_field_v_cm,
    gas_density_cm3,
    is_set_name,
    parse_set_name,
    reduced_field_td,
    set_physics,
)
from wavedqm.analysis.ratag_fit import FitResult, fit_area_histogram, gaussian, where_areas_lie
from wavedqm.analysis.ratag_timing import (
    S1Stats,
    S2WindowStats,
    WindowSpread,
    integration_window,
    s1_statistics,
    s2_window_statistics,
    set_metadata,
)

__all__ = [
    "Calibration",
    "DiffusionFits",
    "FitResult",
    "LinearFit",
    "Recombination",
    "RunConstants",
    "S1Stats",
    "S2WindowStats",
    "SetAccumulator",
    "SetInfo",
    "SetPhysics",
    "WindowSpread",
    "calibrate",
    "diffusion_fits",
    "drift_field_v_cm",
    "drift_speed_mm_us",
    "drift_time_us",
    "el_field_v_cm",
    "fit_area_histogram",
    "gas_density_cm3",
    "gaussian",
    "integration_window",
    "is_set_name",
    "linear_fit",
    "parse_set_name",
    "recombination",
    "reduced_field_td",
    "s1_statistics",
    "s2_window_statistics",
    "set_metadata",
    "set_physics",
    "where_areas_lie",
]
