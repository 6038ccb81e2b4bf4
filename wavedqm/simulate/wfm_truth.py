"""What one simulated set holds (:class:`SetTruth`; µs, mV, mV·µs, V, V/cm): its model means,
its frame counts per kind and X-ray reason, its digitiser setup and per-frame arrays, built
from the set's model, geometry and the per-frame arrays of each file written; JSON-ready
(``simulation_truth.json``, :mod:`wavedqm.simulate.wfm_run`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.simulate.wfm_frames import _Geometry
from wavedqm.simulate.wfm_model import (
    BAD_KINDS,
    XRAY_KINDS,
    FrameKind,
    SetModel,
    set_name,
)

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
