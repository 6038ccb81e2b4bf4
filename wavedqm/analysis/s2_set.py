"""The in-memory state of one S2 set: its files as done and its per-frame arrays.

A set (``RUN/FieldScan_.../``) grows file by file: pass 1 appends each new file's frames
(S1 time, S2 start/end, µs); pass 2 fills their S2 areas (mV·µs), X-ray areas and X-ray reason
codes, and may be re-run later over an earlier file when the set's window moved. Persistence
is :mod:`wavedqm.exporters.s2_state`; the statistics over a state are
:mod:`wavedqm.analysis.ratag_run`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wavedqm.kernels.s2 import XRAY_REASON_LABELS, FrameFeatures, XrayReason

if TYPE_CHECKING:
    from wavedqm.analysis.ratag_run import SetResult

FIELDS: tuple[tuple[str, Any, float], ...] = (
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


class Frames:
    """The per-frame arrays of a set, growable (amortised doubling) and writable in place
    (pass 2 of an earlier file is replaced when it is re-run)."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        n = len(arrays["t_s1"]) if arrays else 0
        cap = max(1024, n)
        self._data = {name: np.full(cap, fill, dtype) for name, dtype, fill in FIELDS}
        if arrays:
            for name, _, _ in FIELDS:
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
            for name, dtype, fill in FIELDS:
                grown = np.full(new_cap, fill, dtype)
                grown[: self.n] = self._data[name][: self.n]
                self._data[name] = grown
        sl = slice(self.n, need)
        self._data["t_s1"][sl] = features.t_s1_us
        self._data["t_start"][sl] = features.t_s2_start_us
        self._data["t_end"][sl] = features.t_s2_end_us
        for name, _, fill in FIELDS[3:]:
            self._data[name][sl] = fill
        self.n = need
        return sl

    def delete(self, sl: slice) -> None:
        for name, _, fill in FIELDS:
            d = self._data[name]
            rest = d[sl.stop : self.n].copy()
            d[sl.start : sl.start + rest.size] = rest
            d[sl.start + rest.size : self.n] = fill
        self.n -= sl.stop - sl.start


@dataclass
class FileEntry:
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
class SetState:
    run: str
    name: str
    set_dir: Path
    files: list[FileEntry] = field(default_factory=list)
    frames: Frames = field(default_factory=Frames)
    # since the last publication (metrics)
    pending_frames: int = 0
    pending_files: int = 0
    pending_names: list[str] = field(default_factory=list)
    """Names of the files analysed since the last publication (the "new" files of
    :func:`wavedqm.analysis.s2_trend.mean_shift`)."""
    pending_rejections: dict[str, int] = field(default_factory=dict)
    result: SetResult | None = None
    """Latest published result (None: not computed since loading or the last change)."""

    def index(self, name: str) -> int | None:
        for i, f in enumerate(self.files):
            if f.name == name:
                return i
        return None

    def pending_indices(self) -> list[int]:
        """Indices in :attr:`files` of the files analysed since the last publication."""
        found = (self.index(name) for name in dict.fromkeys(self.pending_names))
        return sorted(i for i in found if i is not None)

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


def key_distance(a: Pass2Key, b: Pass2Key) -> float:
    """Largest difference between two pass-2 inputs (µs)."""
    return max(abs(x - y) for x, y in zip(a, b, strict=True))
