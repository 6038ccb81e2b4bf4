"""S2 result files of a set and of a run, exactly as seed 000 lays them out, and their loader.

Per set, in ``OUT/<run>/<set>/`` (never in the data folder):

- ``s2_areas.npy``: one S2 area per frame (float64 mV·µs, NaN for an empty window);
- ``s2_results.json``: ``method``, ``params`` (:func:`s2_params_document`), ``mean``,
  ``sigma``, ``ci95`` (mV·µs; 1.96 × standard error of the mean), ``fit_success``,
  ``set_metadata`` (:func:`~wavedqm.analysis.ratag.set_metadata`): ``t_s1``/``_std``,
  ``t_s2_start_mean``/``_std``, ``t_s2_end_mean``/``_std``, ``s2_duration_mean``/``_std``,
  ``time_drift`` µs; ``drift_field``, ``EL_field`` V/cm; ``speed_drift`` mm/µs;
  ``red_drift_field`` Td; then ``quality`` (tests against the reference run,
  :mod:`wavedqm.analysis.s2_quality`);
- ``xray_areas.npy``: areas of the accepted X-ray events (float64 mV·µs);
- ``xray_results.json``: ``set_id``, ``params`` (:func:`xray_params_document`),
  ``n_events``, ``n_accepted``, ``n_rejected`` (counts of frames), ``events``
  (``[{wf_id, accepted, reason, area (mV·µs)}, ...]``, one line per event).

Per run, in ``OUT/<run>/plots/``: ``{run_id}_xray_areas_combined.npy`` (mV·µs),
``{run_id}_xray_metadata.json`` (``run_id``, ``n_areas`` count, ``sets``, ``mean``, ``std``
mV·µs) and ``{run_id}_calibration.json`` (:func:`calibration_document`).

Every file is written atomically (:mod:`wavedqm.atomic`); NaN and infinities become ``null``
in JSON. :func:`load_s2area` reads a set back: the JSON + NPY pair, or the old NPY-only form
(seed 001: fit fields ``None``). Nothing here computes physics.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.analysis.ratag import FitResult, RunConstants
from wavedqm.atomic import atomic_open, atomic_write_json
from wavedqm.xray_reasons import XRAY_REASON_LABELS, XrayReason

if TYPE_CHECKING:
    from wavedqm.analysis.ratag_run import RunResult, SetResult
    from wavedqm.kernels.s2 import S2Params

S2_AREAS_FILE = "s2_areas.npy"
S2_RESULTS_FILE = "s2_results.json"
XRAY_AREAS_FILE = "xray_areas.npy"
XRAY_RESULTS_FILE = "xray_results.json"
PLOTS_DIR = "plots"
"""Run-level files and every plot: ``OUT/<run>/plots/``."""
S2_METHOD = "wavedqm_s2_moving_average_trapezoid"
"""``method`` of s2_results.json: pedestal-subtracted window, moving average, values below
``bs_threshold`` zeroed, trapezoid integral (:func:`wavedqm.kernels.s2.area_pass`)."""
NOT_CLASSIFIED = "not_classified"
"""``reason`` of an event whose frame was not classified (no set S1/S2 times yet)."""
OLD_FORM_METHOD = "loaded_from_npy"
"""``method`` of an :class:`S2Areas` read from the old NPY-only form (as RaTag)."""


def run_xray_areas_file(run_id: str) -> str:
    return f"{run_id}_xray_areas_combined.npy"


def run_xray_metadata_file(run_id: str) -> str:
    return f"{run_id}_xray_metadata.json"


def run_calibration_file(run_id: str) -> str:
    return f"{run_id}_calibration.json"


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf → None, numpy scalars/arrays → Python, tuples → lists."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def write_npy(path: Path, values: np.ndarray) -> Path:
    """``np.save`` of a float64 1-D array, atomically."""
    arr = np.ascontiguousarray(np.asarray(values, np.float64).reshape(-1))
    with atomic_open(path) as fh:
        np.save(fh, arr, allow_pickle=False)
    return Path(path)


# --------------------------------------------------------------------------------------------
# per set: S2 areas


def s2_results_document(
    fit: FitResult,
    params: Mapping[str, Any],
    set_metadata: Mapping[str, Any],
    method: str = S2_METHOD,
) -> dict[str, Any]:
    """The s2_results.json object: the seed's seven keys in its order."""
    return {
        "method": method,
        "params": jsonable(dict(params)),
        "mean": _num(fit.mean),
        "sigma": _num(fit.sigma),
        "ci95": _num(fit.ci95),
        "fit_success": bool(fit.fit_success),
        "set_metadata": jsonable(dict(set_metadata)),
    }


def write_s2_results(
    set_out_dir: Path,
    areas: np.ndarray,
    fit: FitResult,
    params: Mapping[str, Any],
    set_metadata: Mapping[str, Any],
    *,
    method: str = S2_METHOD,
    quality: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """``s2_areas.npy`` (every frame's area, mV·µs) and ``s2_results.json`` (fit, ``params``
    as :func:`s2_params_document`, ``set_metadata``: units in the module's docstring; then
    ``quality``, the set's tests against the reference, when given), atomic."""
    set_out_dir = Path(set_out_dir)
    npy = write_npy(set_out_dir / S2_AREAS_FILE, areas)
    doc = s2_results_document(fit, params, set_metadata, method)
    if quality is not None:
        doc["quality"] = jsonable(dict(quality))
    js = atomic_write_json(set_out_dir / S2_RESULTS_FILE, doc)
    return {"s2_areas": npy, "s2_results": js}


# --------------------------------------------------------------------------------------------
# per set: X-rays


@dataclass(frozen=True, eq=False)
class XrayEventLog:
    """Every classified frame of a set, file by file (what xray_results.json lists). Event
    ``i`` of file ``k`` is ``wf_id = f"{file_ids[k]}_ff{i}"`` (RaTag's FastFrame id);
    ``reason`` holds :class:`~wavedqm.kernels.s2.XrayReason` codes (−1: not classified) and
    ``area`` the drift-window areas (mV·µs, NaN where unusable), both over all files in order."""

    file_ids: Sequence[str]
    frames_per_file: Sequence[int]
    reason: np.ndarray
    area: np.ndarray

    def __post_init__(self) -> None:
        n = int(sum(int(k) for k in self.frames_per_file))
        if len(self.file_ids) != len(self.frames_per_file):
            raise ValueError(
                f"{len(self.file_ids)} file ids for {len(self.frames_per_file)} frame counts"
            )
        if np.shape(self.reason) != (n,) or np.shape(self.area) != (n,):
            raise ValueError(
                f"reason {np.shape(self.reason)} and area {np.shape(self.area)} "
                f"(expected ({n},): one value per frame of the files)"
            )

    @property
    def n_events(self) -> int:
        return int(np.shape(self.reason)[0])

    @property
    def accepted(self) -> np.ndarray:
        return np.asarray(self.reason) == XrayReason.PASSED_ALL_CUTS

    @property
    def accepted_areas(self) -> np.ndarray:
        """Areas of the accepted events (mV·µs), as xray_areas.npy."""
        return np.asarray(self.area, np.float64)[self.accepted]

    def wf_ids(self) -> list[str]:
        return [
            f"{fid}_ff{i}"
            for fid, n in zip(self.file_ids, self.frames_per_file, strict=True)
            for i in range(int(n))
        ]

    @classmethod
    def from_events(cls, events: Sequence[tuple[str, int, float]]) -> XrayEventLog:
        """From ``(file_id, reason_code, area)`` per event, files contiguous (tests, tools)."""
        ids: list[str] = []
        counts: list[int] = []
        for fid, _, _ in events:
            if ids and ids[-1] == fid:
                counts[-1] += 1
            else:
                ids.append(fid)
                counts.append(1)
        reason = np.array([e[1] for e in events], np.int8)
        area = np.array([e[2] for e in events], np.float64)
        return cls(ids, counts, reason, area)


_REASON_JSON = {
    **{
        code: (code == XrayReason.PASSED_ALL_CUTS, label)
        for code, label in enumerate(XRAY_REASON_LABELS)
    },
    -1: (False, NOT_CLASSIFIED),
}


def _event_lines(log: XrayEventLog) -> Any:
    """One compact JSON object per event, no per-event ``json.dumps`` (1e6 events/s)."""
    reason = np.asarray(log.reason).astype(np.int64)
    area = np.asarray(log.area, np.float64)
    fixed = {
        int(code): f'"accepted": {"true" if ok else "false"}, "reason": {json.dumps(label)}'
        for code, (ok, label) in _REASON_JSON.items()
    }
    pos = 0
    for fid, n in zip(log.file_ids, log.frames_per_file, strict=True):
        n = int(n)
        prefix = json.dumps(f"{fid}_ff")[:-1]  # opening quote and escaped id, no closing quote
        codes = reason[pos : pos + n].tolist()
        areas = area[pos : pos + n].tolist()
        pos += n
        yield [
            f'{{"wf_id": {prefix}{i}", {fixed.get(c) or fixed[-1]}, "area": '
            f"{repr(a + 0.0) if math.isfinite(a) else 'null'}}}"
            for i, (c, a) in enumerate(zip(codes, areas, strict=True))
        ]


def _write_xray_json(fh: BinaryIO, header: Mapping[str, Any], log: XrayEventLog) -> None:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n", write_through=False)
    text.write("{\n")
    for key, value in header.items():
        text.write(f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)},\n")
    text.write(' "events": [')
    first = True
    for lines in _event_lines(log):
        if not lines:
            continue
        text.write(("\n  " if first else ",\n  ") + ",\n  ".join(lines))
        first = False
    text.write("\n ]\n}\n" if not first else "]\n}\n")
    text.flush()
    text.detach()


def write_xray_results(
    set_out_dir: Path,
    set_id: str,
    params: Mapping[str, Any],
    events: XrayEventLog,
) -> dict[str, Path]:
    """``xray_areas.npy`` (accepted areas, mV·µs) and ``xray_results.json`` (per-event log
    with reasons; ``n_rejected`` counts the classified events that failed a cut), atomic."""
    set_out_dir = Path(set_out_dir)
    npy = write_npy(set_out_dir / XRAY_AREAS_FILE, events.accepted_areas)
    reason = np.asarray(events.reason)
    n_accepted = int(np.count_nonzero(reason == XrayReason.PASSED_ALL_CUTS))
    n_classified = int(np.count_nonzero(reason >= 0))
    header = {
        "set_id": str(set_id),
        "params": jsonable(dict(params)),
        "n_events": events.n_events,
        "n_accepted": n_accepted,
        "n_rejected": n_classified - n_accepted,
    }
    path = set_out_dir / XRAY_RESULTS_FILE
    with atomic_open(path) as fh:
        _write_xray_json(fh, header, events)
    return {"xray_areas": npy, "xray_results": path}


# --------------------------------------------------------------------------------------------
# per run


def write_run_xray(
    plots_dir: Path,
    run_id: str,
    areas: np.ndarray,
    sets: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """``{run_id}_xray_areas_combined.npy`` (the accepted X-ray areas of every set, mV·µs)
    and ``{run_id}_xray_metadata.json`` (``run_id``, ``n_areas`` count, ``sets``, ``mean``,
    ``std`` mV·µs: plain mean and population std as RaTag; ``null`` without areas). ``extra``
    keys are appended after the seed's keys."""
    plots_dir = Path(plots_dir)
    a = np.asarray(areas, np.float64).reshape(-1)
    npy = write_npy(plots_dir / run_xray_areas_file(run_id), a)
    doc: dict[str, Any] = {
        "run_id": str(run_id),
        "n_areas": int(a.size),
        "sets": [str(s) for s in sets],
        "mean": _num(float(np.mean(a))) if a.size else None,
        "std": _num(float(np.std(a))) if a.size else None,
    }
    if extra:
        doc.update(jsonable(dict(extra)))
    js = atomic_write_json(plots_dir / run_xray_metadata_file(run_id), doc)
    return {"xray_areas_combined": npy, "xray_metadata": js}


def write_run_calibration(plots_dir: Path, run_id: str, document: Mapping[str, Any]) -> Path:
    """``{run_id}_calibration.json`` (:func:`calibration_document`; not in seed 000: an
    addition beside its files)."""
    return atomic_write_json(Path(plots_dir) / run_calibration_file(run_id), jsonable(document))


# --------------------------------------------------------------------------------------------
# loading back


@dataclass
class S2Areas:
    """A set's S2 areas and fit, as read back from ``OUT/<run>/<set>/`` (RaTag's S2Areas).
    ``params`` holds the JSON ``params`` with ``set_metadata`` added under that key, so
    ``s2.params["set_metadata"]["t_s2_start_mean"]`` works as in the seed's notebooks."""

    areas: np.ndarray
    """float64 mV·µs, one per frame."""
    mean: float | None = None
    sigma: float | None = None
    ci95: float | None = None
    """``mean``, ``sigma``, ``ci95``: mV·µs (None in the old form)."""
    fit_success: bool | None = None
    method: str = OLD_FORM_METHOD
    params: dict[str, Any] = field(default_factory=dict)
    set_id: str = ""
    """The set folder's name."""

    @property
    def set_metadata(self) -> dict[str, Any]:
        return dict(self.params.get("set_metadata") or {})


def load_s2area(set_out_dir: str | Path) -> S2Areas:
    """Read a set's ``s2_areas.npy`` and, when present, ``s2_results.json``. The old NPY-only
    form gives ``mean``/``sigma``/``ci95``/``fit_success`` None and ``method =
    "loaded_from_npy"``. ``FileNotFoundError`` without ``s2_areas.npy``; ``ValueError`` for
    an unreadable JSON."""
    set_out_dir = Path(set_out_dir)
    areas = np.load(set_out_dir / S2_AREAS_FILE, allow_pickle=False)
    results_path = set_out_dir / S2_RESULTS_FILE
    if not results_path.is_file():
        return S2Areas(areas, params={"set_metadata": {}}, set_id=set_out_dir.name)
    try:
        doc = json.loads(results_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{results_path}: not readable JSON ({err})") from err
    if not isinstance(doc, dict):
        raise ValueError(f"{results_path}: not a JSON object")
    params = dict(doc.get("params") or {})
    params.setdefault("set_metadata", dict(doc.get("set_metadata") or {}))

    def num(key: str) -> float | None:
        v = doc.get(key)
        return None if v is None else float(v)

    fit_success = doc.get("fit_success")
    return S2Areas(
        areas=areas,
        mean=num("mean"),
        sigma=num("sigma"),
        ci95=num("ci95"),
        fit_success=None if fit_success is None else bool(fit_success),
        method=str(doc.get("method", OLD_FORM_METHOD)),
        params=params,
        set_id=set_out_dir.name,
    )


# --------------------------------------------------------------------------------------------
# the documents' layouts


def s2_params_document(
    result: SetResult,
    params: S2Params,
    dt_us: float,
    rerun_tolerance_us: float,
    constants: RunConstants,
) -> dict[str, Any]:
    """``params`` of s2_results.json: ``t_window`` [start, end] µs, ``n_pedestal`` and
    ``ma_window`` samples, ``bs_threshold`` mV, ``dt`` µs, ``polarity`` ±1, ``n_frames``,
    ``n_files`` counts, ``window_sigma`` [before, after] σ, ``rerun_tolerance_us`` µs;
    ``fit``: ``bin_cuts`` mV·µs, ``nbins``, ``n_events`` counts, ``amplitude`` counts per bin;
    ``timing``: ``n_pedestal_timing`` samples, ``s1_threshold_mv``, ``s2_threshold_mv``,
    ``s2_clip_mv`` mV, ``s2_search_drift_fraction`` (of t_drift), ``s1_frames_used``,
    ``s2_frames`` counts; ``gate_v``, ``anode_v`` V; ``run_constants`` (bar, K, cm, eV, keV)."""
    fit = result.ion_fit
    return {
        "t_window": None if result.window_us is None else list(result.window_us),
        "n_pedestal": params.n_pedestal_area,
        "ma_window": params.ma_window,
        "bs_threshold": params.bs_threshold_mv,
        "dt": dt_us,
        "polarity": C.RATAG_POLARITY,
        "n_frames": result.n_frames,
        "n_files": result.n_files,
        "window_sigma": [C.RATAG_WINDOW_SIGMA_BEFORE, C.RATAG_WINDOW_SIGMA_AFTER],
        "rerun_tolerance_us": rerun_tolerance_us,
        "fit": {
            k: v
            for k, v in fit.to_dict().items()
            if k in ("bin_cuts", "nbins", "exclude_first_bin", "n_events", "amplitude", "message")
        },
        "timing": {
            "n_pedestal_timing": params.n_pedestal_timing,
            "s1_threshold_mv": params.s1_threshold_mv,
            "s2_threshold_mv": params.s2_threshold_mv,
            "s2_clip_mv": params.s2_clip_mv,
            "s2_search_drift_fraction": params.s2_search_drift_fraction,
            "s1_frames_used": result.s1.n_used,
            "s2_frames": result.windows.n_frames,
        },
        "gate_v": result.info.gate_v,
        "anode_v": result.info.anode_v,
        "run_constants": constants.to_dict(),
        "wavedqm_version": __version__,
    }


def xray_params_document(result: SetResult, params: S2Params, dt_us: float) -> dict[str, Any]:
    """``params`` of xray_results.json: ``t_s1``, ``t_s2_start`` µs; the cuts ``bs_threshold``
    mV, ``max_area_s1``, ``max_area_s2`` mV (sums of samples, not × dt), ``min_s1_sep``,
    ``min_s2_sep`` µs, ``min_xray_area`` mV·µs; ``ma_window``, ``n_pedestal`` samples; ``dt``
    µs; ``reasons`` counts; ``fit`` (mean, sigma, ci95 mV·µs; the rest as s2_results')."""
    return {
        "t_s1": result.s1.t_s1,
        "t_s2_start": result.windows.start.median,
        "bs_threshold": params.xray_bs_threshold_mv,
        "max_area_s1": params.xray_max_area_s1,
        "max_area_s2": params.xray_max_area_s2,
        "min_s1_sep": params.xray_min_s1_sep_us,
        "min_s2_sep": params.xray_min_s2_sep_us,
        "min_xray_area": params.xray_min_area_mv_us,
        "ma_window": params.ma_window,
        "n_pedestal": params.n_pedestal_area,
        "dt": dt_us,
        "reasons": result.xray_counts,
        "fit": result.xray_fit.to_dict(),
    }


RECOMBINATION_KEYS = (
    "n_e_measured",
    "n_e_measured_err",
    "r",
    "r_err",
    "normalised_s2",
    "normalised_s2_err",
)
"""Per-set columns of the recombination in ``{run_id}_calibration.json``."""


def calibration_document(rr: RunResult, constants: RunConstants) -> dict[str, Any]:
    """``{run_id}_calibration.json``: ``xray_fit`` (mV·µs); ``calibration``: ``a_xray``,
    ``a_xray_ci95`` mV·µs, ``n_e_expected`` electrons, ``g_s2`` mV·µs per electron; ``sets``:
    ``drift_field`` V/cm, ``ion_mean``, ``ion_ci95`` mV·µs, ``n_e_measured(_err)`` electrons,
    ``r(_err)`` and ``normalised_s2(_err)`` dimensionless; ``diffusion``: ``sigma2_obs`` µs²,
    ``drift_time_us`` µs, ``td_over_vd2`` µs³/mm², ``e_over_p`` V·cm⁻¹·bar⁻¹, per fit
    ``slope`` (µs² per x unit) ± ``slope_err``, ``intercept`` ± ``intercept_err`` µs²."""
    per_set = []
    rec = rr.recombination
    for i, name in enumerate(rr.sets):
        row: dict[str, Any] = {
            "set": name,
            "drift_field": rr.drift_field[i],
            "ion_mean": rr.ion_mean[i],
            "ion_ci95": rr.ion_ci95[i],
        }
        if rec is not None:
            for key in RECOMBINATION_KEYS:
                row[key] = getattr(rec, key)[i]
        per_set.append(row)
    return {
        "run_id": rr.run,
        "run_constants": constants.to_dict(),
        "xray_fit": rr.xray_fit.to_dict(),
        "calibration": None if rr.calibration is None else rr.calibration.to_dict(),
        "sets": per_set,
        "diffusion": rr.diffusion.to_dict(),
        "wavedqm_version": __version__,
    }
