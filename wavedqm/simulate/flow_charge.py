"""The optional charge section of a simulated ``.FLOW.hdf5`` file: one charge event per light
event (``charge/events/data``), its hits (``charge/calib_prompt_hits/data``: positions in cm,
``ts_start`` / ``t_drift`` in 0.1 µs ticks, charge ``Q`` in ke⁻, ``E`` = 0.0336 · ``Q``) from
straight tracks (:mod:`wavedqm.simulate.charge`), the references between them and the
detector geometry."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from wavedqm import constants as C
from wavedqm.simulate.charge import track_hits, write_geometry
from wavedqm.simulate.flow_layout import (
    CHARGE_EVENT_DTYPE,
    CHARGE_HIT_DTYPE,
    _append,
    _create_ref,
    _regions,
    _table,
)


def _write_charge(
    f: h5py.File,
    rng: np.random.Generator,
    trig: np.ndarray,
    utime_ms: np.ndarray,
    filters: dict[str, Any],
) -> tuple[int, int]:
    """A charge section with one charge event per light event (spec fields): tracks with a
    dead region, out-of-bounds and disabled hits (:mod:`wavedqm.simulate.charge`), and the
    geometry the voxel grid is made from."""
    n = trig.shape[0]
    sim = track_hits(rng, n)
    nhit = sim.per_event
    total = int(nhit.sum())
    ev = np.zeros(n, CHARGE_EVENT_DTYPE)
    ev["id"] = np.arange(n)
    ev["nhit"] = nhit
    ev["unix_ts"] = utime_ms // 1000
    ev["unix_ts_usec"] = (utime_ms % 1000) * 1000
    ev["ts_start"] = (utime_ms % 1000) * 1e4  # 0.1 µs ticks within the second
    ev["ts_end"] = ev["ts_start"] + 2000.0
    ev["n_ext_trigs"] = trig == C.TRIG_BEAM
    hits = np.zeros(total, CHARGE_HIT_DTYPE)
    hits["id"] = np.arange(total)
    hits["x"], hits["y"], hits["z"] = sim.x, sim.y, sim.z
    hits["is_disabled"] = sim.disabled
    hits["t_drift"] = rng.uniform(0, 2000, size=total)
    hits["ts_pps"] = np.repeat(ev["ts_start"].astype(np.uint64), nhit) + hits["t_drift"].astype(
        np.uint64
    )
    hits["io_group"] = rng.integers(1, 9, size=total)
    hits["io_channel"] = rng.integers(1, 33, size=total)
    hits["chip_id"] = rng.integers(11, 111, size=total)
    hits["channel_id"] = rng.integers(0, 64, size=total)
    hits["Q"] = sim.q
    hits["Q_raw"] = sim.q * 1.02
    hits["E"] = hits["Q"] * 0.0336
    if nhit.size and total:  # reduceat needs a non-empty array
        ev["ADC"] = np.add.reduceat(hits["Q_raw"], np.r_[0, np.cumsum(nhit)[:-1]])
    ev_dset = _table(f, "charge/events/data", CHARGE_EVENT_DTYPE, filters)
    hit_dset = _table(f, "charge/calib_prompt_hits/data", CHARGE_HIT_DTYPE, filters)
    _append(ev_dset, ev)
    _append(hit_dset, hits)
    ref, r0, r1 = _create_ref(f, "charge/events", "charge/calib_prompt_hits", filters)
    _append(ref, np.stack([np.repeat(np.arange(n), nhit), np.arange(total)], 1).astype("u4"))
    _append(r0, _regions(0, nhit))
    _append(r1, _regions(0, np.ones(total, dtype=np.int64)))
    f["charge/events"].attrs["classname"] = "ChargeEventBuilder"
    f["charge/calib_prompt_hits"].attrs["classname"] = "CalibHitBuilder"
    write_geometry(f)
    return n, total
