"""Simulated 2x2 light ``.FLOW.hdf5`` files in exactly the ndlar_flow / h5flow layout.

What a file holds (spec: flow-hdf5.md): ``light/events/data`` (id, event, sn, utime_ms, tai_ns,
wvfm_valid, trig_type), ``light/wvfm/data`` (one field ``samples``, int16 ADC16 counts,
(n_adcs, n_channels, n_samples); attribute ``n_samples``), the 1:1 references
``light/events/ref/light/wvfm/{ref,ref_region}`` and ``light/wvfm/ref/light/events/ref_region``,
and, optionally, a small charge section. Tables are resizable (``maxshape=(None,)``), chunked,
grown chunk by chunk as h5flow does; ``compression="gzip"`` means gzip level 4 + shuffle, as in
real files.

Modules: :mod:`~wavedqm.simulate.flow_faults` (the channel faults and what each does, the
truth of a file), :mod:`~wavedqm.simulate.flow_waveforms` (the light waveforms: detector,
per-event parameters, the numba kernel), :mod:`~wavedqm.simulate.flow_layout` (row dtypes,
tables and references of the h5flow layout), :mod:`~wavedqm.simulate.flow_charge` (the
charge section); this one writes and publishes files and runs (:func:`write_flow_file`,
:func:`publish_flow_file`, :func:`simulate_run`) and re-exports the names of the others.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.logs import get_logger
from wavedqm.simulate.flow_charge import _write_charge
from wavedqm.simulate.flow_faults import (
    ChannelFaults,
    Pairs,
    SimulationTruth,
    parse_channel_pairs,
)
from wavedqm.simulate.flow_layout import (
    CHARGE_EVENT_DTYPE,
    CHARGE_HIT_DTYPE,
    GZIP_LEVEL,
    REF_REGION_DTYPE,
    _append,
    _create_ref,
    _filters,
    _regions,
    _table,
    event_dtype,
    wvfm_dtype,
)
from wavedqm.simulate.flow_waveforms import (
    ADC_SERIALS,
    BASELINE_OFF_RANGE,
    BASELINE_RANGE,
    BEAM_AMPLITUDE,
    BEAM_PULSE_PROB,
    CLIP_AMPLITUDE,
    CLIP_FRACTION,
    EVENT_PERIOD_MS,
    FIRST_PULSE_SAMPLE,
    INVALID_FRACTION,
    MIN_SAMPLES,
    NEGATIVE_AMPLITUDE,
    NEGATIVE_FRACTION,
    NOISE_POOL_SIZE,
    NOISE_RANGE,
    NOISY_GAUSS_MAX,
    NOISY_STD_RANGE,
    PICKUP_PERIODS_IN_PEDESTAL,
    PULSE_FALL_SAMPLES,
    PULSE_RISE_SAMPLES,
    PULSE_TEMPLATE_SAMPLES,
    QUANTISATION_VAR,
    SELF_AMPLITUDE,
    SELF_PULSE_PROB,
    UNDERSHOOT_WIDTH_SAMPLES,
    _channels,
    _event_params,
    _fill_waveforms,
    _pulse_template,
    _undershoot_template,
)
from wavedqm.simulate.flow_waveforms import _Channels as _Channels

__all__ = [
    "ADC_SERIALS",
    "BASELINE_OFF_RANGE",
    "BASELINE_RANGE",
    "BEAM_AMPLITUDE",
    "BEAM_PULSE_PROB",
    "CHARGE_EVENT_DTYPE",
    "CHARGE_HIT_DTYPE",
    "CLIP_AMPLITUDE",
    "CLIP_FRACTION",
    "EVENT_PERIOD_MS",
    "FIRST_PULSE_SAMPLE",
    "GZIP_LEVEL",
    "INVALID_FRACTION",
    "MIN_SAMPLES",
    "NEGATIVE_AMPLITUDE",
    "NEGATIVE_FRACTION",
    "NOISE_POOL_SIZE",
    "NOISE_RANGE",
    "NOISY_GAUSS_MAX",
    "NOISY_STD_RANGE",
    "PICKUP_PERIODS_IN_PEDESTAL",
    "PULSE_FALL_SAMPLES",
    "PULSE_RISE_SAMPLES",
    "PULSE_TEMPLATE_SAMPLES",
    "QUANTISATION_VAR",
    "REF_REGION_DTYPE",
    "SELF_AMPLITUDE",
    "SELF_PULSE_PROB",
    "UNDERSHOOT_WIDTH_SAMPLES",
    "ChannelFaults",
    "Pairs",
    "SimulationTruth",
    "event_dtype",
    "parse_channel_pairs",
    "publish_flow_file",
    "run_file_name",
    "simulate_run",
    "write_flow_file",
    "wvfm_dtype",
]

log = get_logger(__name__)


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
    noise_scale: dict[tuple[int, int], float] | None = None,
) -> SimulationTruth:
    """Write a simulated light (+ optional charge) ``.FLOW.hdf5`` file at ``path``.

    ``seed`` drives the events; ``detector_seed`` (default: ``seed``) the per-channel baselines
    and noise, so files of one run can share a detector. ``compression``: None, ``"gzip"``
    (level 4 + shuffle, like h5flow) or ``"lzf"``. ``start_time_s``: unix time of the first
    event (default: now); events are 10 ms apart. Memory: one chunk of ``chunk_rows`` events.
    ``noise_scale``: ``{(adc, channel): factor}``, the Gaussian noise of those channels times
    the factor (a channel whose noise grows, for the quality tests).
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
    for (adc, channel), factor in (noise_scale or {}).items():
        det.sigma[adc, channel] *= factor
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
