"""Online S2 analysis of RaTag runs: one ``.wfm`` file at a time, per set and per run.

Layout: ``RUN/FieldScan_GateNNNN_AnodeNNNN/file.wfm`` — a file's parent folder is its set
(:func:`wavedqm.analysis.ratag.is_set_name`), the set's parent its run. Voltages come from the
set name, or from ``[sets.<name>]`` of the run config (``RUN/run.toml`` is read by itself);
the run constants (pressure, temperature, gaps, W, X-ray energy) from the run config over the
pipeline's :class:`~wavedqm.analysis.ratag.RunConstants`.

Per file (:meth:`S2Pipeline.process_file`):

1. the file is memory-mapped (:func:`~wavedqm.formats.wfm.open_wfm`) and **pass 1**
   (:func:`~wavedqm.kernels.s2.frame_features`) gives every frame's S1 time and S2
   start/end; they are appended to the set's per-frame arrays;
2. the set's S1 time and S2 window statistics are recomputed over all its frames so far, and
   with them the pass-2 inputs: the integration window ``[start − 1σ, end + 0.5σ]``, the set's
   S1 time and S2 start (the X-ray drift region);
3. **pass 2** (:func:`~wavedqm.kernels.s2.area_pass`: S2 areas and X-ray classification) runs
   on the new file with those inputs. **The window moves as the set grows**: every file
   remembers the inputs its pass 2 used; when they differ from the current ones by more than
   ``rerun_tolerance_us`` (any of the four times, default 0.05 µs) that file's pass 2 is run
   again (its data file is reopened). A set processed file by file thus ends with every file's
   areas computed with inputs within the tolerance of the final ones — identical to processing
   the whole set at once when the tolerance is 0. The statistics settle as ``1/√n``: re-runs
   happen over the first files of a set, rarely later;
4. the set's Gaussian fit is redone (when ``min_fit_events`` areas lie inside the cuts) and
   the four per-set files are written atomically in ``OUT/<run>/<set>/`` (never in the data
   folder); the run is recombined: X-ray areas of every set, their fit, g_S2, recombination
   and normalised S2 per set, diffusion fits, and the run files in ``OUT/<run>/plots/``;
5. metrics; then the per-set and run plots on one plotting thread (off the path to the
   results; a plot superseded by a newer one of the same set or run before it is drawn is
   skipped).

Pass 1 searches each frame's S2 from the frame's own S1 time (RaTag uses the set's): the
per-frame results never depend on the order of the files, so pass 1 is never re-run.

Per-set state survives a restart: the per-frame pass-1 and pass-2 arrays, the files done
(name, size, mtime, frames, pass-2 inputs) are saved atomically after each file in
``STATE/s2/<run>/<set>.npz`` and reloaded lazily, when a set (or its run) is next touched.
A file seen again with the same size and mtime is not reprocessed (its outputs are written
again); one with a new size or mtime replaces its earlier frames.

Batch use (``wavedqm process``): :meth:`S2Pipeline.process_set` and
:meth:`S2Pipeline.process_run` take the files in name order and write the outputs once per
set (not after each file), the run files after each set.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import tomllib
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.analysis.ratag import (
    Calibration,
    DiffusionFits,
    FitResult,
    Recombination,
    RunConstants,
    S1Stats,
    S2WindowStats,
    SetInfo,
    SetPhysics,
    calibrate,
    diffusion_fits,
    fit_area_histogram,
    integration_window,
    is_set_name,
    parse_set_name,
    recombination,
    s1_statistics,
    s2_window_statistics,
    set_metadata,
    set_physics,
)
from wavedqm.atomic import atomic_open
from wavedqm.config import Config
from wavedqm.errors import ConfigError, InputFileError
from wavedqm.exporters import s2_plots
from wavedqm.exporters.prometheus import DqmMetrics
from wavedqm.exporters.s2_files import (
    PLOTS_DIR,
    XrayEventLog,
    jsonable,
    write_run_calibration,
    write_run_xray,
    write_s2_results,
    write_xray_results,
)
from wavedqm.exporters.s2_metrics import S2Metrics
from wavedqm.formats.wfm import open_wfm
from wavedqm.kernels.s2 import (
    XRAY_REASON_LABELS,
    AreaResult,
    FrameFeatures,
    FrameScale,
    S2Params,
    XrayReason,
    area_pass,
    frame_features,
)
from wavedqm.logs import get_logger

log = get_logger(__name__)

RUN_CONFIG_FILE = "run.toml"
"""A run folder's own run config, read by itself."""
RUN_CONFIG_KEYS = (
    "pressure_bar",
    "temperature_k",
    "el_gap_cm",
    "drift_gap_cm",
    "w_value_ev",
    "xray_energy_kev",
)
SET_CONFIG_KEYS = ("gate_v", "anode_v")
STATE_SUBDIR = "s2"
STATE_VERSION = 1
DEFAULT_RERUN_TOLERANCE_US = C.RATAG_RERUN_TOLERANCE_US
"""Pass 2 of a file is redone when the set's window or S1/S2 times moved more than this (µs)."""
DEFAULT_MIN_FIT_EVENTS = C.RATAG_MIN_FIT_EVENTS
"""Areas inside the bin cuts before a Gaussian fit is tried."""
VALIDATION_WAVEFORMS = 10
WFM_SUFFIX = ".wfm"
EXPECTED_LAYOUT = "RUN/FieldScan_GateNNNN_AnodeNNNN/file.wfm"


# --------------------------------------------------------------------------------------------
# options and run config


@dataclass(frozen=True)
class S2Options:
    """Analysis choices of the S2 pipeline (defaults: spec ratag-s2.md)."""

    params: S2Params = field(default_factory=S2Params)
    """Thresholds of the two kernel passes."""
    rerun_tolerance_us: float = DEFAULT_RERUN_TOLERANCE_US
    """Re-run a file's pass 2 when its inputs differ from the set's by more than this (µs);
    0: whenever they change (file-by-file equals at-once exactly)."""
    ion_bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS
    xray_bin_cuts: tuple[float, float] = C.RATAG_XRAY_BIN_CUTS
    nbins: int = C.RATAG_FIT_BINS
    ion_exclude_first_bin: bool = False
    xray_exclude_first_bin: bool = False
    min_fit_events: int = DEFAULT_MIN_FIT_EVENTS
    validation_waveforms: int = VALIDATION_WAVEFORMS
    plots: bool = True
    """Draw the PNGs (on the plotting thread)."""
    max_sets_in_memory: int = 64
    """Set states kept in memory; the least recently used of other runs are dropped (they
    reload from the state folder when needed)."""


SetOverrides = dict[str, tuple[float, float]]
"""Set name → (gate V, anode V)."""


def _number(path: Path, key: str, value: Any, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: {key} = {value!r} is not a number")
    x = float(value)
    if not math.isfinite(x) or (positive and x <= 0):
        raise ConfigError(
            f"{path}: {key} = {value!r} (expected a finite number{' > 0' if positive else ''})"
        )
    return x


def load_run_config(
    path: str | Path, base: RunConstants | None = None
) -> tuple[RunConstants, SetOverrides]:
    """Read a run config TOML: top-level ``pressure_bar``, ``temperature_k``, ``el_gap_cm``,
    ``drift_gap_cm``, ``w_value_ev``, ``xray_energy_kev`` (each optional; missing ones come
    from ``base``), and ``[sets.<set name>]`` tables with ``gate_v`` and ``anode_v`` (V).
    Unknown keys, wrong types and non-physical values raise ``ConfigError`` naming them."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the run config ({err})") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from err
    unknown = sorted(set(raw) - set(RUN_CONFIG_KEYS) - {"sets"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)} (expected {', '.join(RUN_CONFIG_KEYS)}"
            " and [sets.<set name>] tables with gate_v, anode_v)"
        )
    values = {k: _number(path, k, raw[k]) for k in RUN_CONFIG_KEYS if k in raw}
    constants = replace(base or RunConstants(), **values)
    sets = raw.get("sets", {})
    if not isinstance(sets, dict):
        raise ConfigError(f"{path}: sets = {sets!r} (expected [sets.<set name>] tables)")
    overrides: SetOverrides = {}
    for name, table in sets.items():
        where = f"sets.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where} = {table!r} (expected a table: gate_v, anode_v)")
        bad = sorted(set(table) - set(SET_CONFIG_KEYS))
        if bad:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(f'{where}.{k}' for k in bad)} "
                f"(expected {where}.gate_v and {where}.anode_v)"
            )
        missing = [k for k in SET_CONFIG_KEYS if k not in table]
        if missing:
            raise ConfigError(
                f"{path}: {where} has no {' and no '.join(missing)} (both voltages are needed)"
            )
        gate = _number(path, f"{where}.gate_v", table["gate_v"])
        anode = _number(path, f"{where}.anode_v", table["anode_v"], positive=False)
        overrides[str(name)] = (gate, anode)
    return constants, overrides


# --------------------------------------------------------------------------------------------
# per-set state


_FIELDS: tuple[tuple[str, Any, float], ...] = (
    ("t_s1", np.float64, math.nan),
    ("t_start", np.float64, math.nan),
    ("t_end", np.float64, math.nan),
    ("area", np.float64, math.nan),
    ("xray_area", np.float64, math.nan),
    ("reason", np.int8, -1),
)
"""Per-frame arrays of a set: pass 1 (µs), pass 2 (mV·µs, X-ray reason codes; −1 not yet)."""

Pass2Key = tuple[float, float, float, float]
"""Inputs of a pass 2: integration window lo, hi; set S1 time; set S2 start (µs)."""


class _Frames:
    """The per-frame arrays of a set, growable (amortised doubling) and writable in place
    (pass 2 of an earlier file is replaced when it is re-run)."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        n = len(arrays["t_s1"]) if arrays else 0
        cap = max(1024, n)
        self._data = {name: np.full(cap, fill, dtype) for name, dtype, fill in _FIELDS}
        if arrays:
            for name, _, _ in _FIELDS:
                self._data[name][:n] = arrays[name]
        self.n = n

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][: self.n]

    def append(self, features: FrameFeatures) -> slice:
        k = features.n_frames
        need = self.n + k
        cap = self._data["t_s1"].size
        if need > cap:
            new_cap = max(need, 2 * cap)
            for name, dtype, fill in _FIELDS:
                grown = np.full(new_cap, fill, dtype)
                grown[: self.n] = self._data[name][: self.n]
                self._data[name] = grown
        sl = slice(self.n, need)
        self._data["t_s1"][sl] = features.t_s1_us
        self._data["t_start"][sl] = features.t_s2_start_us
        self._data["t_end"][sl] = features.t_s2_end_us
        for name, _, fill in _FIELDS[3:]:
            self._data[name][sl] = fill
        self.n = need
        return sl

    def delete(self, sl: slice) -> None:
        for name, _, fill in _FIELDS:
            d = self._data[name]
            rest = d[sl.stop : self.n].copy()
            d[sl.start : sl.start + rest.size] = rest
            d[sl.start + rest.size : self.n] = fill
        self.n -= sl.stop - sl.start


@dataclass
class _FileEntry:
    """One file of a set, as done."""

    name: str
    size: int
    mtime_ns: int
    n_frames: int
    dt_us: float
    t0_us: float
    n_samples: int
    key: Pass2Key | None = None
    """Inputs its pass 2 used (None: not run yet: the set had no S1/S2 statistics)."""
    counted: bool = False
    """Its X-ray rejections were counted in the metrics (once, at its first classification)."""


@dataclass
class _Stats:
    s1: S1Stats
    windows: S2WindowStats
    window: tuple[float, float] | None
    key: Pass2Key | None


@dataclass
class _SetState:
    run: str
    name: str
    set_dir: Path
    files: list[_FileEntry] = field(default_factory=list)
    frames: _Frames = field(default_factory=_Frames)
    # since the last publication (metrics)
    pending_frames: int = 0
    pending_files: int = 0
    pending_rejections: dict[str, int] = field(default_factory=dict)
    result: SetResult | None = None
    """Latest published result (None: not computed since loading or the last change)."""

    def index(self, name: str) -> int | None:
        for i, f in enumerate(self.files):
            if f.name == name:
                return i
        return None

    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([f.n_frames for f in self.files])]).astype(int)

    def file_slice(self, i: int) -> slice:
        start = int(sum(f.n_frames for f in self.files[:i]))
        return slice(start, start + self.files[i].n_frames)

    def count_rejections(self, reason: np.ndarray) -> None:
        codes = reason[reason > 0].astype(np.int64)
        counts = np.bincount(codes, minlength=len(XrayReason))
        for code in range(1, len(XrayReason)):
            if counts[code]:
                label = XRAY_REASON_LABELS[code]
                self.pending_rejections[label] = self.pending_rejections.get(label, 0) + int(
                    counts[code]
                )


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, eq=False)
class SetResult:
    """A set's statistics after its latest file (what its files and metrics show)."""

    run: str
    set_name: str
    info: SetInfo
    physics: SetPhysics
    s1: S1Stats
    windows: S2WindowStats
    window_us: tuple[float, float] | None
    """Integration window (µs); None while unknown."""
    ion_fit: FitResult
    xray_fit: FitResult
    """Fit of this set's accepted X-ray areas (the run combines every set's)."""
    xray_counts: dict[str, int]
    """Classified frames by reason label."""
    n_frames: int
    n_files: int
    metadata: dict[str, float | None]
    """The 13 set_metadata keys of s2_results.json."""

    @property
    def n_classified(self) -> int:
        return int(sum(self.xray_counts.values()))

    @property
    def n_accepted(self) -> int:
        return int(self.xray_counts.get(XrayReason.PASSED_ALL_CUTS.label, 0))

    @property
    def xray_accepted_ratio(self) -> float:
        n = self.n_classified
        return self.n_accepted / n if n else math.nan


@dataclass(frozen=True, eq=False)
class RunResult:
    """A run's combination of its sets (sets in name order)."""

    run: str
    sets: list[str]
    xray_areas: np.ndarray
    """Accepted X-ray areas of every set (mV·µs)."""
    xray_fit: FitResult
    calibration: Calibration | None
    """None while the combined X-ray fit has not succeeded."""
    drift_field: np.ndarray
    """Per set (V/cm)."""
    ion_mean: np.ndarray
    """Per set, fitted mean ion S2 area (mV·µs; NaN without a good fit)."""
    ion_ci95: np.ndarray
    recombination: Recombination | None
    """Per set (all sets, NaN where the ion fit failed); None without calibration."""
    diffusion: DiffusionFits

    def recombination_by_set(self) -> dict[str, float | None]:
        if self.recombination is None:
            return {}
        return {
            s: (float(r) if math.isfinite(r) else None)
            for s, r in zip(self.sets, self.recombination.r, strict=True)
        }


@dataclass
class SetOutcome:
    """What processing one file gave."""

    path: Path
    run: str
    set_name: str
    n_frames: int
    """Frames of this file."""
    skipped: bool
    """The file was already done (same size and mtime): nothing was recomputed."""
    rerun_files: list[str]
    """Earlier files of the set whose pass 2 was re-run because the window moved."""
    processing_seconds: float
    latency_seconds: float | None = None
    """From the file being complete to its results being out (s)."""
    result: SetResult | None = None
    """The set after this file (None in batch mode before the set is published)."""
    run_result: RunResult | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    plots: list[Future[dict[str, Path]]] = field(default_factory=list)
    """Per-set and run plots being drawn (``wait_plots()`` waits for them)."""

    def wait_plots(self, timeout: float | None = None) -> dict[str, Path]:
        written: dict[str, Path] = {}
        for fut in self.plots:
            written |= fut.result(timeout)
        return written


@dataclass(frozen=True)
class FileFailure:
    path: Path
    reason: str
    message: str


@dataclass
class BatchOutcome:
    """What :meth:`S2Pipeline.process_set` / :meth:`~S2Pipeline.process_run` gave."""

    outcomes: list[SetOutcome] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    set_results: dict[str, SetResult] = field(default_factory=dict)
    run_result: RunResult | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    plots: list[Future[dict[str, Path]]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def wait_plots(self, timeout: float | None = None) -> dict[str, Path]:
        written: dict[str, Path] = {}
        for fut in self.plots:
            written |= fut.result(timeout)
        return written


# --------------------------------------------------------------------------------------------
# plotting thread


class _Plotter:
    """One thread draws the PNGs in submission order; a job superseded by a newer one with
    the same key (same set, same run) before it starts is skipped."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wavedqm-s2-plots")
        self._latest: dict[str, int] = {}
        self._lock = Lock()

    def submit(self, key: str, fn: Callable[[], dict[str, Path]]) -> Future[dict[str, Path]]:
        with self._lock:
            gen = self._latest.get(key, 0) + 1
            self._latest[key] = gen
        return self._pool.submit(self._run, key, gen, fn)

    def _run(self, key: str, gen: int, fn: Callable[[], dict[str, Path]]) -> dict[str, Path]:
        with self._lock:
            if self._latest.get(key) != gen:
                return {}
        try:
            return fn()
        except Exception:  # never lose the plotting thread to one bad figure
            log.exception("s2_plots_failed", key=key)
            return {}

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class _Pick:
    path: Path
    frame: int
    label: str


def read_trace(
    path: Path, frame: int, n_pedestal: int, polarity: int, label: str
) -> s2_plots.Trace:
    """One frame of a ``.wfm`` file as the analysis sees it: mV after polarity inversion,
    pedestal (mean of the first ``n_pedestal`` samples) subtracted, against µs."""
    with open_wfm(path) as w:
        volts = w.volts(int(frame))
        t_us = w.time_axis_s() * 1e6
    mv = polarity * volts * 1e3
    mv -= mv[: max(1, min(n_pedestal, mv.size))].mean()
    return s2_plots.Trace(label, t_us, mv)


# --------------------------------------------------------------------------------------------
# the pipeline


@dataclass
class _RunContext:
    name: str
    run_dir: Path
    constants: RunConstants
    overrides: SetOverrides
    config_mtime_ns: int | None


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _scale(header: Any) -> FrameScale:
    return FrameScale(
        scale_v=float(header.vscale),
        offset_v=float(header.voffset),
        dt_us=float(header.dt_s) * 1e6,
        t0_us=float(header.t0_s) * 1e6,
    )


def _key_distance(a: Pass2Key, b: Pass2Key) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


class S2Pipeline:
    """Online S2 analysis of RaTag sets and runs (module doc). ``close()`` waits for the plots.

    ``metrics``: :class:`~wavedqm.exporters.s2_metrics.S2Metrics` on the daemon's registry, or
    None. ``out_root``: outputs go to ``out_root/<run>/<set>/`` and ``out_root/<run>/plots/``.
    ``state_dir``: per-set state in ``state_dir/s2/<run>/<set>.npz``. ``run_constants`` /
    ``set_overrides``: defaults for every run (e.g. from ``--run-config`` via
    :func:`load_run_config`); a run folder's ``run.toml`` overrides them for that run.
    """

    def __init__(
        self,
        cfg: Config,
        metrics: S2Metrics | None,
        out_root: Path,
        state_dir: Path,
        run_constants: RunConstants | None = None,
        *,
        set_overrides: SetOverrides | None = None,
        options: S2Options | None = None,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.out_root = Path(out_root)
        self.state_root = Path(state_dir) / STATE_SUBDIR
        self.run_constants = run_constants or RunConstants()
        self.set_overrides = dict(set_overrides or {})
        self.options = options or S2Options()
        self._runs: dict[str, _RunContext] = {}
        self._sets: OrderedDict[tuple[str, str], _SetState] = OrderedDict()
        self._plotter = _Plotter() if self.options.plots else None

    def close(self) -> None:
        if self._plotter is not None:
            self._plotter.close()

    def __enter__(self) -> S2Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths ----------------------------------------------------------------------------------

    def set_out_dir(self, run: str, set_name: str) -> Path:
        return self.out_root / run / set_name

    def plots_dir(self, run: str) -> Path:
        return self.out_root / run / PLOTS_DIR

    def state_path(self, run: str, set_name: str) -> Path:
        return self.state_root / run / f"{set_name}.npz"

    # -- run config and physics ----------------------------------------------------------------

    def _run_context(self, run_dir: Path) -> _RunContext:
        """The run's constants and voltage overrides (``RUN/run.toml`` over the pipeline's),
        re-read when run.toml changes."""
        name = run_dir.name
        toml = run_dir / RUN_CONFIG_FILE
        try:
            mtime: int | None = toml.stat().st_mtime_ns
        except OSError:
            mtime = None
        ctx = self._runs.get(name)
        if ctx is not None and ctx.run_dir == run_dir and ctx.config_mtime_ns == mtime:
            return ctx
        constants, overrides = self.run_constants, dict(self.set_overrides)
        if mtime is not None:
            constants, run_overrides = load_run_config(toml, base=self.run_constants)
            overrides |= run_overrides
            log.info("s2_run_config", run=name, path=str(toml), constants=constants.to_dict())
        ctx = _RunContext(name, run_dir, constants, overrides, mtime)
        self._runs[name] = ctx
        return ctx

    def _set_info(self, ctx: _RunContext, set_name: str, path: Path) -> SetInfo:
        if set_name in ctx.overrides:
            gate, anode = ctx.overrides[set_name]
            rate = None
            with contextlib.suppress(ValueError):
                rate = parse_set_name(set_name).sampling_gs_s
            return SetInfo(set_name, gate, anode, rate)
        try:
            return parse_set_name(set_name)
        except ValueError as err:
            raise InputFileError(
                path,
                "wrong_layout",
                str(err),
                f"Gate<V> and Anode<V>/EL<V> in the set name, or [sets.{set_name}] gate_v and "
                f"anode_v in {ctx.run_dir / RUN_CONFIG_FILE}",
            ) from err

    def _physics(self, ctx: _RunContext, set_name: str, path: Path) -> tuple[SetInfo, SetPhysics]:
        info = self._set_info(ctx, set_name, path)
        physics = set_physics(info, ctx.constants)
        if not (math.isfinite(physics.time_drift) and physics.time_drift > 0):
            raise InputFileError(
                path,
                "wrong_layout",
                f"set {set_name}: gate {info.gate_v:g} V gives drift time {physics.time_drift}",
                "a gate voltage > 0 V (a drift field)",
            )
        return info, physics

    # -- state ----------------------------------------------------------------------------------

    def _set_state(self, run: str, set_dir: Path) -> _SetState:
        key = (run, set_dir.name)
        state = self._sets.get(key)
        if state is None:
            state = self._load_state(run, set_dir.name, set_dir)
            self._sets[key] = state
        self._sets.move_to_end(key)
        return state

    def _evict(self, keep_run: str) -> None:
        excess = len(self._sets) - max(1, self.options.max_sets_in_memory)
        for key in list(self._sets):
            if excess <= 0:
                break
            if key[0] != keep_run:
                del self._sets[key]
                excess -= 1

    def _load_state(self, run: str, set_name: str, set_dir: Path | None) -> _SetState:
        path = self.state_path(run, set_name)
        fresh = _SetState(run, set_name, set_dir or Path(set_name))
        if not path.is_file():
            return fresh
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) != STATE_VERSION:
                    raise ValueError(
                        f"state version {int(z['version'])} (expected {STATE_VERSION})"
                    )
                meta = json.loads(str(z["meta"]))
                arrays = {name: np.array(z[name]) for name, _, _ in _FIELDS}
            files = [
                _FileEntry(**{**f, "key": None if f["key"] is None else tuple(f["key"])})
                for f in meta["files"]
            ]
            n = sum(f.n_frames for f in files)
            if any(a.shape != (n,) for a in arrays.values()):
                raise ValueError(f"arrays do not hold the {n} frames of the files listed")
            state = _SetState(run, set_name, Path(meta["set_dir"]), files, _Frames(arrays))
        except (OSError, ValueError, KeyError, TypeError) as err:
            aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
            log.error(
                "s2_state_unreadable",
                path=str(path),
                error=str(err),
                set_aside=str(aside),
                hint="the set starts again from its next file; "
                "`wavedqm process SET_DIR` rebuilds it from all its files",
            )
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            return fresh
        if set_dir is not None:
            state.set_dir = set_dir
        log.info("s2_state_loaded", run=run, set=set_name, files=len(files), frames=n)
        return state

    def _save_state(self, state: _SetState) -> Path:
        path = self.state_path(state.run, state.name)
        meta = {
            "run": state.run,
            "set": state.name,
            "set_dir": str(state.set_dir),
            "wavedqm_version": __version__,
            "files": [asdict(f) for f in state.files],
        }
        arrays = {name: state.frames[name] for name, _, _ in _FIELDS}
        with atomic_open(path) as fh:
            np.savez(fh, version=np.array(STATE_VERSION), meta=np.array(json.dumps(meta)), **arrays)
        return path

    def _run_states(self, ctx: _RunContext) -> list[_SetState]:
        """Every set of the run with a state (in memory or in the state folder), by name."""
        names = {s for (r, s) in self._sets if r == ctx.name}
        folder = self.state_root / ctx.name
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.npz")}
        states = []
        for name in sorted(names):
            state = self._sets.get((ctx.name, name))
            if state is None:
                state = self._load_state(ctx.name, name, None)
                if not state.files:
                    continue
                self._sets[(ctx.name, name)] = state
            if state.files:
                states.append(state)
        return states

    # -- statistics -----------------------------------------------------------------------------

    def _stats(self, state: _SetState, physics: SetPhysics) -> _Stats:
        fr = state.frames
        s1 = s1_statistics(fr["t_s1"])
        expected = s1.t_s1 + physics.time_drift
        windows = s2_window_statistics(fr["t_start"], fr["t_end"], expected)
        window = integration_window(windows) if s1.ok else None
        key: Pass2Key | None = None
        if window is not None and math.isfinite(windows.start.median):
            key = (window[0], window[1], s1.t_s1, windows.start.median)
        return _Stats(s1, windows, window, key)

    def _fit(self, areas: np.ndarray, cuts: tuple[float, float], exclude_first: bool) -> FitResult:
        return fit_area_histogram(
            areas, cuts, self.options.nbins, exclude_first, self.options.min_fit_events
        )

    def _set_result(self, state: _SetState, ctx: _RunContext) -> SetResult:
        info, physics = self._physics(ctx, state.name, state.set_dir)
        stats = self._stats(state, physics)
        fr = state.frames
        reason = fr["reason"]
        counts = np.bincount(reason[reason >= 0].astype(np.int64), minlength=len(XrayReason))
        xray_counts = {r.label: int(counts[r]) for r in XrayReason}
        o = self.options
        accepted = fr["xray_area"][reason == XrayReason.PASSED_ALL_CUTS]
        return SetResult(
            run=state.run,
            set_name=state.name,
            info=info,
            physics=physics,
            s1=stats.s1,
            windows=stats.windows,
            window_us=stats.window,
            ion_fit=self._fit(fr["area"], o.ion_bin_cuts, o.ion_exclude_first_bin),
            xray_fit=self._fit(accepted, o.xray_bin_cuts, o.xray_exclude_first_bin),
            xray_counts=xray_counts,
            n_frames=fr.n,
            n_files=len(state.files),
            metadata=set_metadata(stats.s1, stats.windows, physics),
        )

    # -- the two passes -------------------------------------------------------------------------

    def _pass2(
        self, state: _SetState, i: int, raw: np.ndarray, scale: FrameScale, key: Pass2Key
    ) -> None:
        result: AreaResult = area_pass(
            raw, scale, (key[0], key[1]), key[2], key[3], self.options.params
        )
        sl = state.file_slice(i)
        fr = state.frames
        fr["area"][sl] = result.s2_area_mv_us
        fr["xray_area"][sl] = result.xray.area_mv_us
        fr["reason"][sl] = result.xray.reason
        entry = state.files[i]
        entry.key = key
        if not entry.counted:
            state.count_rejections(result.xray.reason)
            entry.counted = True

    def _rerun_stale(self, state: _SetState, key: Pass2Key | None, skip: int) -> list[str]:
        """Re-run pass 2 of every file (but ``skip``) whose inputs differ from ``key`` by more
        than the tolerance; a file that vanished or changed keeps its results (logged)."""
        if key is None:
            return []
        tol = self.options.rerun_tolerance_us
        rerun = []
        for i, entry in enumerate(state.files):
            if i == skip:
                continue
            if entry.key is not None and _key_distance(entry.key, key) <= tol:
                continue
            path = state.set_dir / entry.name
            try:
                st = path.stat()
                if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                    raise InputFileError(path, "read_error", "changed since it was processed")
                with open_wfm(path) as w:
                    if w.raw.shape[0] != entry.n_frames:
                        raise InputFileError(
                            path, "read_error", f"{w.raw.shape[0]} frames, {entry.n_frames} before"
                        )
                    self._pass2(state, i, w.raw, _scale(w.header), key)
                rerun.append(entry.name)
            except (OSError, InputFileError, ValueError) as err:
                log.warning(
                    "s2_rerun_skipped",
                    file=str(path),
                    error=str(err),
                    hint="its areas keep the window they were computed with",
                )
        return rerun

    def _analyse(self, path: Path, state: _SetState, physics: SetPhysics) -> tuple[int, list[str]]:
        """Pass 1 of the new file, set statistics, pass 2 of it and of the stale files.
        Returns (frames of the file, files re-run)."""
        st = path.stat()
        old = state.index(path.name)
        if old is not None:
            log.info("s2_file_replaced", file=str(path), frames=state.files[old].n_frames)
            state.frames.delete(state.file_slice(old))
            del state.files[old]
        i = len(state.files)
        appended = False
        try:
            with open_wfm(path) as w:
                h = w.header
                scale = _scale(h)
                raw = w.raw
                features = frame_features(raw, scale, physics.time_drift, self.options.params)
                state.frames.append(features)
                state.files.append(
                    _FileEntry(
                        path.name,
                        st.st_size,
                        st.st_mtime_ns,
                        features.n_frames,
                        scale.dt_us,
                        scale.t0_us,
                        int(h.record_length),
                    )
                )
                appended = True
                stats = self._stats(state, physics)
                if stats.key is not None:
                    self._pass2(state, i, raw, scale, stats.key)
                del raw
        except BaseException as err:
            if appended:  # leave the set as it was before this file
                state.frames.delete(state.file_slice(i))
                del state.files[i]
            if isinstance(err, ValueError):  # frames the kernels cannot read (too short, ...)
                raise InputFileError(path, "wrong_layout", str(err)) from err
            raise
        rerun = self._rerun_stale(state, stats.key, skip=i)
        state.pending_frames += features.n_frames
        state.pending_files += 1
        state.result = None
        return features.n_frames, rerun

    # -- public entry points --------------------------------------------------------------------

    def locate(self, path: Path) -> tuple[Path, Path]:
        """``(run_dir, set_dir)`` of a ``.wfm`` path; ``InputFileError(wrong_layout)`` when
        its folder is not a set."""
        path = Path(path)
        set_dir = path.parent
        if not is_set_name(set_dir.name):
            raise InputFileError(
                path,
                "wrong_layout",
                f"the file is in folder {set_dir.name!r}, not in a set folder "
                "(a set folder's name contains 'FieldScan')",
                EXPECTED_LAYOUT,
            )
        return set_dir.parent, set_dir

    def _check_out_root(self, run_dir: Path) -> None:
        if _within(self.out_root, run_dir):
            raise ConfigError(
                f"output folder {self.out_root} is inside the data folder {run_dir}: "
                "choose an output folder outside the run (outputs never go into the data)"
            )

    def process_file(self, path: Path, completed_at: float | None = None) -> SetOutcome:
        """Analyse one ``.wfm`` file of a set and publish the set and run (module doc).

        Raises ``InputFileError`` for a bad file or a file outside a set folder
        (``wrong_layout``), ``ConfigError`` for a bad ``run.toml`` or an output folder inside
        the data. Failures are counted by the caller."""
        path = Path(path)
        started = time.perf_counter()
        run_dir, set_dir = self.locate(path)
        self._check_out_root(run_dir)
        outcome = self._process(path, run_dir, set_dir, save=True)
        state = self._set_state(run_dir.name, set_dir)
        ctx = self._run_context(run_dir)
        result, outputs, plots = self._publish_set(state, ctx)
        run_result, run_outputs, run_plots = self._publish_run(ctx)
        outcome.result, outcome.run_result = result, run_result
        outcome.outputs = outputs | run_outputs
        outcome.plots = plots + run_plots
        outcome.processing_seconds = time.perf_counter() - started
        if completed_at is not None:
            outcome.latency_seconds = time.time() - completed_at
        log.info(
            "s2_file_done",
            file=str(path),
            run=outcome.run,
            set=outcome.set_name,
            frames=outcome.n_frames,
            set_frames=result.n_frames,
            skipped=outcome.skipped,
            rerun_files=len(outcome.rerun_files),
            s2_mean_mv_us=jsonable(result.ion_fit.mean),
            seconds=round(outcome.processing_seconds, 3),
        )
        self._evict(run_dir.name)
        return outcome

    def _process(self, path: Path, run_dir: Path, set_dir: Path, *, save: bool) -> SetOutcome:
        """Analyse one file (skipped if done with the same size and mtime) and, if ``save``,
        save the set's state; nothing is published."""
        started = time.perf_counter()
        ctx = self._run_context(run_dir)
        _, physics = self._physics(ctx, set_dir.name, path)
        state = self._set_state(run_dir.name, set_dir)
        try:
            st = path.stat()
        except OSError as err:
            raise InputFileError(path, "missing", f"cannot stat the file ({err})") from err
        i = state.index(path.name)
        if i is not None:
            entry = state.files[i]
            if (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
                log.info("s2_file_already_done", file=str(path))
                return SetOutcome(
                    path, run_dir.name, set_dir.name, entry.n_frames, True, [],
                    time.perf_counter() - started,
                )  # fmt: skip
        n_frames, rerun = self._analyse(path, state, physics)
        if save:
            self._save_state(state)
        return SetOutcome(
            path, run_dir.name, set_dir.name, n_frames, False, rerun,
            time.perf_counter() - started,
        )  # fmt: skip

    @staticmethod
    def _wfm_files(set_dir: Path) -> list[Path]:
        return sorted(
            p
            for p in set_dir.iterdir()
            if p.suffix.lower() == WFM_SUFFIX and not p.name.startswith(".") and p.is_file()
        )

    def process_set(self, set_dir: Path, *, resume: bool = False) -> BatchOutcome:
        """Every ``.wfm`` file of a set folder in name order, then the set's and the run's
        outputs once. ``resume=False`` (default) starts the set afresh (its saved state is
        replaced); ``resume=True`` skips the files already done. Bad files are listed in
        ``failures`` and the others still processed."""
        set_dir = Path(set_dir)
        started = time.perf_counter()
        if not is_set_name(set_dir.name):
            raise InputFileError(
                set_dir,
                "wrong_layout",
                f"folder {set_dir.name!r} is not a set (its name has no 'FieldScan')",
                "RUN/FieldScan_GateNNNN_AnodeNNNN/",
            )
        if not set_dir.is_dir():
            raise InputFileError(set_dir, "missing", "no such folder", "a set folder")
        batch = BatchOutcome()
        self._batch_set(set_dir, batch, resume)
        ctx = self._run_context(set_dir.parent)
        batch.run_result, run_outputs, run_plots = self._publish_run(ctx)
        batch.outputs |= run_outputs
        batch.plots += run_plots
        batch.seconds = time.perf_counter() - started
        return batch

    def _batch_set(self, set_dir: Path, batch: BatchOutcome, resume: bool) -> None:
        run_dir = set_dir.parent
        self._check_out_root(run_dir)
        run = run_dir.name
        if not resume:
            self._sets[(run, set_dir.name)] = _SetState(run, set_dir.name, set_dir)
        files = self._wfm_files(set_dir)
        if not files:
            log.warning("s2_set_empty", set_dir=str(set_dir))
        for path in files:
            try:
                batch.outcomes.append(self._process(path, run_dir, set_dir, save=False))
            except InputFileError as err:
                log.error("s2_file_failed", file=str(path), reason=err.reason, error=str(err))
                batch.failures.append(FileFailure(path, err.reason, str(err)))
        state = self._set_state(run, set_dir)
        if not state.files:
            if not resume:  # nothing left of the set: forget its old state
                self.state_path(run, set_dir.name).unlink(missing_ok=True)
                self._sets.pop((run, set_dir.name), None)
            return
        self._save_state(state)
        ctx = self._run_context(run_dir)
        result, outputs, plots = self._publish_set(state, ctx)
        batch.set_results[state.name] = result
        batch.outputs |= {f"{state.name}/{k}": v for k, v in outputs.items()}
        batch.plots += plots

    def process_run(self, run_dir: Path, *, resume: bool = False) -> BatchOutcome:
        """Every set folder of a run (name order), each as :meth:`process_set`; the run files
        and plots are regenerated after each set."""
        run_dir = Path(run_dir)
        started = time.perf_counter()
        if not run_dir.is_dir():
            raise InputFileError(run_dir, "missing", "no such folder", "a run folder")
        set_dirs = sorted(p for p in run_dir.iterdir() if p.is_dir() and is_set_name(p.name))
        if not set_dirs:
            raise InputFileError(
                run_dir,
                "no_data",
                "no set folder in the run (no subfolder name contains 'FieldScan')",
                EXPECTED_LAYOUT,
            )
        batch = BatchOutcome()
        ctx = self._run_context(run_dir)
        for set_dir in set_dirs:
            self._batch_set(set_dir, batch, resume)
            batch.run_result, run_outputs, run_plots = self._publish_run(ctx)
            batch.outputs |= run_outputs
            batch.plots += run_plots
        batch.seconds = time.perf_counter() - started
        return batch

    # -- publication ----------------------------------------------------------------------------

    def _s2_params(self, state: _SetState, ctx: _RunContext, result: SetResult) -> dict[str, Any]:
        p = self.options.params
        fit = result.ion_fit
        dt = state.files[0].dt_us if state.files else math.nan
        return {
            "t_window": None if result.window_us is None else list(result.window_us),
            "n_pedestal": p.n_pedestal_area,
            "ma_window": p.ma_window,
            "bs_threshold": p.bs_threshold_mv,
            "dt": dt,
            "polarity": C.RATAG_POLARITY,
            "n_frames": result.n_frames,
            "n_files": result.n_files,
            "window_sigma": [C.RATAG_WINDOW_SIGMA_BEFORE, C.RATAG_WINDOW_SIGMA_AFTER],
            "rerun_tolerance_us": self.options.rerun_tolerance_us,
            "fit": {
                k: v
                for k, v in fit.to_dict().items()
                if k
                in ("bin_cuts", "nbins", "exclude_first_bin", "n_events", "amplitude", "message")
            },
            "timing": {
                "n_pedestal_timing": p.n_pedestal_timing,
                "s1_threshold_mv": p.s1_threshold_mv,
                "s2_threshold_mv": p.s2_threshold_mv,
                "s2_clip_mv": p.s2_clip_mv,
                "s2_search_drift_fraction": p.s2_search_drift_fraction,
                "s1_frames_used": result.s1.n_used,
                "s2_frames": result.windows.n_frames,
            },
            "gate_v": result.info.gate_v,
            "anode_v": result.info.anode_v,
            "run_constants": ctx.constants.to_dict(),
            "wavedqm_version": __version__,
        }

    def _xray_params(self, state: _SetState, result: SetResult) -> dict[str, Any]:
        p = self.options.params
        return {
            "t_s1": result.s1.t_s1,
            "t_s2_start": result.windows.start.median,
            "bs_threshold": p.xray_bs_threshold_mv,
            "max_area_s1": p.xray_max_area_s1,
            "max_area_s2": p.xray_max_area_s2,
            "min_s1_sep": p.xray_min_s1_sep_us,
            "min_s2_sep": p.xray_min_s2_sep_us,
            "min_xray_area": p.xray_min_area_mv_us,
            "ma_window": p.ma_window,
            "n_pedestal": p.n_pedestal_area,
            "dt": state.files[0].dt_us if state.files else math.nan,
            "reasons": result.xray_counts,
            "fit": result.xray_fit.to_dict(),
        }

    def _publish_set(
        self, state: _SetState, ctx: _RunContext
    ) -> tuple[SetResult, dict[str, Path], list[Future[dict[str, Path]]]]:
        """The four per-set files, the set's metrics, its plots (on the plotting thread)."""
        result = self._set_result(state, ctx)
        state.result = result
        out = self.set_out_dir(state.run, state.name)
        fr = state.frames
        outputs = write_s2_results(
            out, fr["area"], result.ion_fit, self._s2_params(state, ctx, result), result.metadata
        )
        log_ = XrayEventLog(
            [Path(f.name).stem for f in state.files],
            [f.n_frames for f in state.files],
            fr["reason"],
            fr["xray_area"],
        )
        outputs |= write_xray_results(out, state.name, self._xray_params(state, result), log_)
        if self.metrics is not None:
            self.metrics.set_updated(
                state.run,
                state.name,
                mean=result.ion_fit.mean if result.ion_fit.fit_success else None,
                sigma=result.ion_fit.sigma if result.ion_fit.fit_success else None,
                ci95=result.ion_fit.ci95 if result.ion_fit.fit_success else None,
                s1_time_us=result.s1.t_s1,
                duration_us=result.windows.duration.median,
                drift_time_us=result.physics.time_drift,
                xray_accepted_ratio=result.xray_accepted_ratio,
                new_rejections=dict(state.pending_rejections),
                new_frames=state.pending_frames,
                new_files=state.pending_files,
            )
        state.pending_frames = state.pending_files = 0
        state.pending_rejections = {}
        plots = []
        if self._plotter is not None:
            plots.append(
                self._plotter.submit(
                    f"set:{state.run}/{state.name}", self._set_plot_job(state, result)
                )
            )
        return result, outputs, plots

    def _picks(self, state: _SetState) -> list[_Pick]:
        """Up to ``validation_waveforms`` frames of the set, chosen at random (seeded by the
        set name and its frame count: the same picks for the same data)."""
        n = state.frames.n
        k = min(self.options.validation_waveforms, n)
        if k <= 0:
            return []
        rng = np.random.default_rng([zlib.crc32(state.name.encode()), n])
        chosen = np.sort(rng.choice(n, size=k, replace=False))
        offsets = state.offsets()
        picks = []
        for g in chosen:
            i = int(np.searchsorted(offsets, g, side="right") - 1)
            entry = state.files[i]
            frame = int(g - offsets[i])
            picks.append(_Pick(state.set_dir / entry.name, frame, f"{entry.name} — frame {frame}"))
        return picks

    def _set_plot_job(self, state: _SetState, result: SetResult) -> Callable[[], dict[str, Path]]:
        areas = state.frames["area"].copy()
        picks = self._picks(state)
        plots_dir = self.plots_dir(state.run)
        p = self.options.params
        nbins = self.options.nbins

        def job() -> dict[str, Path]:
            written = {}
            fig = s2_plots.s2_histogram_figure(
                result.set_name, result.ion_fit, areas, n_frames=result.n_frames, nbins=nbins
            )
            path = plots_dir / s2_plots.s2_histogram_name(result.set_name)
            written[f"{result.set_name}/s2_histogram"] = s2_plots.write_png(path, fig)
            traces = []
            for pick in picks:
                try:
                    traces.append(
                        read_trace(
                            pick.path, pick.frame, p.n_pedestal_timing, C.RATAG_POLARITY, pick.label
                        )
                    )
                except (OSError, InputFileError, IndexError) as err:
                    log.warning("s2_trace_unreadable", file=str(pick.path), error=str(err))
            fig = s2_plots.waveform_validation_figure(result.set_name, traces, result.metadata)
            path = plots_dir / s2_plots.waveform_validation_name(result.set_name)
            written[f"{result.set_name}/waveform_validation"] = s2_plots.write_png(path, fig)
            return written

        return job

    def _run_result(self, ctx: _RunContext, states: list[_SetState]) -> RunResult:
        results = []
        for state in states:
            if state.result is None:
                state.result = self._set_result(state, ctx)
            results.append(state.result)
        accepted = [
            s.frames["xray_area"][s.frames["reason"] == XrayReason.PASSED_ALL_CUTS] for s in states
        ]
        xray = np.concatenate(accepted) if accepted else np.zeros(0)
        o = self.options
        xfit = self._fit(xray, o.xray_bin_cuts, o.xray_exclude_first_bin)
        calibration = calibrate(xfit.mean, xfit.ci95, ctx.constants) if xfit.fit_success else None
        drift = np.array([r.physics.drift_field for r in results], np.float64)
        good = [r.ion_fit.fit_success for r in results]
        mean = np.array(
            [r.ion_fit.mean if ok else math.nan for r, ok in zip(results, good, strict=True)]
        )
        ci95 = np.array(
            [r.ion_fit.ci95 if ok else math.nan for r, ok in zip(results, good, strict=True)]
        )
        recomb = None
        if calibration is not None:
            recomb = recombination(mean, ci95, drift, calibration)
        diffusion = diffusion_fits(
            [r.windows.duration.std for r in results],
            [r.physics.time_drift for r in results],
            [r.physics.speed_drift for r in results],
            drift,
            ctx.constants.pressure_bar,
        )
        return RunResult(
            run=ctx.name,
            sets=[r.set_name for r in results],
            xray_areas=xray,
            xray_fit=xfit,
            calibration=calibration,
            drift_field=drift,
            ion_mean=mean,
            ion_ci95=ci95,
            recombination=recomb,
            diffusion=diffusion,
        )

    def _publish_run(
        self, ctx: _RunContext
    ) -> tuple[RunResult | None, dict[str, Path], list[Future[dict[str, Path]]]]:
        states = self._run_states(ctx)
        if not states:
            return None, {}, []
        rr = self._run_result(ctx, states)
        plots_dir = self.plots_dir(ctx.name)
        outputs = write_run_xray(plots_dir, ctx.name, rr.xray_areas, rr.sets)
        outputs["calibration"] = write_run_calibration(
            plots_dir, ctx.name, self._calibration_document(ctx, rr)
        )
        if self.metrics is not None:
            self.metrics.run_updated(
                ctx.name,
                None if rr.calibration is None else rr.calibration.g_s2,
                rr.recombination_by_set(),
            )
        plots = []
        if self._plotter is not None:
            plots.append(self._plotter.submit(f"run:{ctx.name}", self._run_plot_job(rr)))
        return rr, outputs, plots

    def _calibration_document(self, ctx: _RunContext, rr: RunResult) -> dict[str, Any]:
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
                for key in (
                    "n_e_measured",
                    "n_e_measured_err",
                    "r",
                    "r_err",
                    "normalised_s2",
                    "normalised_s2_err",
                ):
                    row[key] = getattr(rec, key)[i]
            per_set.append(row)
        return {
            "run_id": ctx.name,
            "run_constants": ctx.constants.to_dict(),
            "xray_fit": rr.xray_fit.to_dict(),
            "calibration": None if rr.calibration is None else rr.calibration.to_dict(),
            "sets": per_set,
            "diffusion": rr.diffusion.to_dict(),
            "wavedqm_version": __version__,
        }

    def _run_plot_job(self, rr: RunResult) -> Callable[[], dict[str, Path]]:
        plots_dir = self.plots_dir(rr.run)
        names = s2_plots.run_plot_names(rr.run)
        nbins = self.options.nbins

        def job() -> dict[str, Path]:
            rec = rr.recombination
            nan = np.full(len(rr.sets), math.nan)
            figures = {
                "xray_histogram": s2_plots.xray_histogram_figure(
                    rr.run, rr.xray_fit, rr.xray_areas, nbins
                ),
                "s2_vs_drift": s2_plots.s2_vs_drift_figure(
                    rr.run, rr.drift_field, rr.ion_mean, rr.ion_ci95, rr.sets
                ),
                "s2_vs_drift_normalized": s2_plots.s2_vs_drift_figure(
                    rr.run,
                    rr.drift_field,
                    nan if rec is None else rec.normalised_s2,
                    nan if rec is None else rec.normalised_s2_err,
                    rr.sets,
                    normalized=True,
                ),
                "diffusion_analysis": s2_plots.diffusion_figure(rr.run, rr.diffusion),
            }
            return {
                f"run/{kind}": s2_plots.write_png(plots_dir / names[kind], fig)
                for kind, fig in figures.items()
            }

        return job


def s2_pipeline_from_config(cfg: Config, metrics: S2Metrics | None) -> S2Pipeline:
    """The S2 pipeline as ``cfg`` (sections ``s2`` and ``output``) describes it."""
    s2 = cfg.s2
    constants, overrides = (None, None)
    if s2.run_config:
        constants, overrides = load_run_config(Path(s2.run_config))
    options = S2Options(
        rerun_tolerance_us=s2.rerun_tolerance_us,
        ion_bin_cuts=s2.ion_bin_cuts,
        xray_bin_cuts=s2.xray_bin_cuts,
        nbins=s2.fit_bins,
        min_fit_events=s2.min_fit_events,
        plots=s2.plots,
    )
    return S2Pipeline(
        cfg,
        metrics,
        Path(cfg.output.dir),
        Path(cfg.output.state_dir),
        constants,
        set_overrides=overrides,
        options=options,
    )


WFM_SUFFIX = ".wfm"


def process_wfm(
    s2: S2Pipeline, metrics: DqmMetrics | None, path: Path, completed_at: float | None
) -> SetOutcome:
    """One ``.wfm`` through the S2 pipeline, counted in the daemon-wide file metrics too (a
    bad run config is a failed file with reason ``config``)."""
    try:
        outcome = s2.process_file(path, completed_at)
    except ConfigError as err:
        raise InputFileError(path, "config", str(err)) from None
    if metrics is not None and not outcome.skipped:
        finished = time.time()
        metrics.file_processed(
            n_events=outcome.n_frames,
            processing_seconds=outcome.processing_seconds,
            latency_seconds=None if completed_at is None else finished - completed_at,
            finished_at=finished,
            light=None,
        )
    return outcome
