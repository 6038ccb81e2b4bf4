"""Simulated xenon-TPC field scan: ``FieldScan`` sets of FastFrame Tektronix WFM#003 files.

A run folder holds one set folder per (gate, anode) voltage pair, named
``FieldScan_Gate0200_Anode2100``; a set holds FastFrame files named like
``RUN1_20261121_Gate0200_Anode2100_Batch001_CH3.wfm`` (the PMT channel), each published as a
DAQ does: written under ``.<name>.tmp`` (no ``.wfm`` ending) then renamed (spec: ratag-s2.md,
tektronix-wfm.md). Everything the kernels (:mod:`wavedqm.kernels.s2`) should find is known:
:class:`SetTruth` per set, ``simulation_truth.json`` per run.

Modules: :mod:`~wavedqm.simulate.wfm_model` (the signal model, its constants and formulas, the
frame kinds, set and file names), :mod:`~wavedqm.simulate.wfm_frames` (the frames of a set and
their digitisation), :mod:`~wavedqm.simulate.wfm_truth` (:class:`SetTruth`),
:mod:`~wavedqm.simulate.wfm_run` (``simulation_truth.json``, the default sets, ``run.toml``);
this one writes the files and runs (:func:`write_set`, :func:`simulate_field_scan`) and
re-exports the names of the others.

Vectorised numpy per file: each pulse family is evaluated for all its frames at once over the
samples it can reach; one file of 200 × 6250 samples takes ~0.05 s.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.analysis import ratag
from wavedqm.atomic import atomic_write_json
from wavedqm.formats.wfm_writer import write_wfm
from wavedqm.logs import get_logger
from wavedqm.simulate.wfm_frames import _add_gaussians as _add_gaussians
from wavedqm.simulate.wfm_frames import _add_pulses as _add_pulses
from wavedqm.simulate.wfm_frames import (
    _digitise,
    _frames,
    _geometry,
    _kinds,
    _range_mv,
    _raw_scale,
)
from wavedqm.simulate.wfm_frames import _Geometry as _Geometry
from wavedqm.simulate.wfm_frames import _normal as _normal
from wavedqm.simulate.wfm_model import _EXPECTED_REASON as _EXPECTED_REASON
from wavedqm.simulate.wfm_model import (
    BAD_KINDS,
    BASELINE_MV,
    CHANNEL,
    CHUNK_FRAMES,
    CLEAN_MARGIN_US,
    DEFAULT_FRACTIONS,
    DT_US,
    EDGE_SIGMA_US,
    EL_REFERENCE_V_CM,
    FRAME_RATE_HZ,
    ION_A0_MV_US,
    ION_CLOUD_US,
    ION_E0_V_CM,
    ION_RESOLUTION,
    ION_WIDTH_PER_DRIFT,
    NEAR_S1_US,
    NEAR_S2_US,
    NOISE_MV,
    PILEUP_FACTOR,
    PILEUP_KINDS,
    PRE_S1_PILEUP_US,
    RAW_DEFAULTS,
    RECORD_LENGTH,
    S1_AMPLITUDE_MV,
    S1_JITTER_US,
    S1_TIME_US,
    SMALL_AREA_MV_US,
    SMALL_SIGMA_US,
    T0_US,
    TRUNCATE_SIGMA,
    WIDTH_DIFFUSION_US,
    WIDTH_SIGMA0_US,
    XRAY_A0_MV_US,
    XRAY_KINDS,
    XRAY_RESOLUTION,
    XRAY_S1_MARGIN_US,
    XRAY_S2_MARGIN_US,
    FrameKind,
    SetModel,
    el_transit_us,
    file_name,
    run_id_from_dir,
    set_model,
    set_name,
)
from wavedqm.simulate.wfm_run import DEFAULT_SETS, TRUTH_FILE, write_run_config
from wavedqm.simulate.wfm_truth import _PER_FRAME, SetTruth, _truth
from wavedqm.simulate.wfm_truth import _json_list as _json_list

__all__ = [
    "BAD_KINDS",
    "BASELINE_MV",
    "CHANNEL",
    "CHUNK_FRAMES",
    "CLEAN_MARGIN_US",
    "DEFAULT_FRACTIONS",
    "DEFAULT_SETS",
    "DT_US",
    "EDGE_SIGMA_US",
    "EL_REFERENCE_V_CM",
    "FRAME_RATE_HZ",
    "ION_A0_MV_US",
    "ION_CLOUD_US",
    "ION_E0_V_CM",
    "ION_RESOLUTION",
    "ION_WIDTH_PER_DRIFT",
    "NEAR_S1_US",
    "NEAR_S2_US",
    "NOISE_MV",
    "PILEUP_FACTOR",
    "PILEUP_KINDS",
    "PRE_S1_PILEUP_US",
    "RAW_DEFAULTS",
    "RECORD_LENGTH",
    "S1_AMPLITUDE_MV",
    "S1_JITTER_US",
    "S1_TIME_US",
    "SMALL_AREA_MV_US",
    "SMALL_SIGMA_US",
    "T0_US",
    "TRUNCATE_SIGMA",
    "TRUTH_FILE",
    "WIDTH_DIFFUSION_US",
    "WIDTH_SIGMA0_US",
    "XRAY_A0_MV_US",
    "XRAY_KINDS",
    "XRAY_RESOLUTION",
    "XRAY_S1_MARGIN_US",
    "XRAY_S2_MARGIN_US",
    "FrameKind",
    "SetModel",
    "SetTruth",
    "el_transit_us",
    "file_name",
    "run_id_from_dir",
    "set_model",
    "set_name",
    "simulate_field_scan",
    "write_run_config",
    "write_set",
    "write_wfm",
]

log = get_logger(__name__)


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
    written). ``ValueError`` when the record cannot hold the set (see
    :mod:`~wavedqm.simulate.wfm_model`).
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
