"""The shot histories in the state folder: every shot's record (metrics, flags, event times,
control variables) and the reduced traces of the latest shots, per series; they survive
restarts and give the timing reference, the streaks, the trends and the overlays.

Layout (``STATE/shots/<series key>/``): ``records/<shot id>.json`` (one
:class:`~wavedqm.analysis.shot_series.ShotRecord` each) and ``traces/<shot id>.npz`` (``t``
and one array of block means per channel: :data:`wavedqm.constants.SHOT_OVERLAY_POINTS`
points), kept for the last ``keep_traces`` shots only. One file per shot, each written
atomically: a crash loses at most the shot being written, which is processed again (it
replaces its own record: same id, same index). A record that cannot be read is set aside
(``.damaged-<UTC time>``) and left out.
"""

from __future__ import annotations

import json
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.shot_series import ShotRecord, Trace
from wavedqm.atomic import atomic_write_json, atomic_write_with, set_aside
from wavedqm.exporters.voxel_store import run_key
from wavedqm.logs import get_logger

log = get_logger(__name__)

RECORDS_DIR = "records"
TRACES_DIR = "traces"
CACHED_SERIES = 4


@dataclass
class Series:
    """One series in memory: its records by shot id and the traces of its latest shots."""

    name: str
    folder: Path
    records: dict[str, ShotRecord] = field(default_factory=dict)
    traces: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    """shot id -> channel -> (t, block means)."""

    def next_index(self, shot_id: str) -> int:
        old = self.records.get(shot_id)
        if old is not None:
            return old.index
        return 1 + max((r.index for r in self.records.values()), default=-1)

    def ordered(self) -> list[ShotRecord]:
        return sorted(self.records.values(), key=lambda r: r.index)

    def channel_traces(self, channel: str, last: int) -> list[Trace]:
        """The traces of ``channel`` of the last ``last`` shots that have one, oldest first."""
        out = []
        for r in self.ordered()[-last:]:
            got = self.traces.get(r.shot_id, {}).get(channel)
            c = r.channels.get(channel)
            if got is not None and c is not None:
                out.append(Trace(r.shot_id, got[0], got[1], not c.flags))
        return out


class ShotStore:
    """The series under ``state_dir/shots/`` (the last :data:`CACHED_SERIES` in memory)."""

    def __init__(self, state_dir: Path, keep_traces: int = C.SHOT_OVERLAY_SHOTS) -> None:
        self.root = Path(state_dir) / C.SHOTS_STATE_DIR
        self.keep_traces = keep_traces
        self._cache: OrderedDict[str, Series] = OrderedDict()

    def series(self, name: str) -> Series:
        got = self._cache.get(name)
        if got is None:
            got = self._load(name)
            self._cache[name] = got
            while len(self._cache) > CACHED_SERIES:
                self._cache.popitem(last=False)
        self._cache.move_to_end(name)
        return got

    def _load(self, name: str) -> Series:
        folder = self.root / run_key(name)
        series = Series(name, folder)
        for path in sorted((folder / RECORDS_DIR).glob("*.json")):
            try:
                record = ShotRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as err:
                moved = set_aside(path)
                log.error("shot_state_set_aside", path=str(path), moved_to=str(moved), why=str(err))
                continue
            series.records[record.shot_id] = record
        for path in sorted((folder / TRACES_DIR).glob("*.npz")):
            shot_id = path.stem
            try:
                with np.load(path, allow_pickle=False) as z:
                    t = z["t"]
                    series.traces[shot_id] = {k: (t, z[k]) for k in z.files if k != "t"}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
                moved = set_aside(path)
                log.error("shot_state_set_aside", path=str(path), moved_to=str(moved), why=str(err))
        if series.records:
            log.info("shot_series_loaded", series=name, shots=len(series.records))
        return series

    def put(
        self, series: Series, record: ShotRecord, traces: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Keep ``record`` and its traces (in memory and on disk, atomically), replacing an
        earlier record of the same shot; drop traces older than the last ``keep_traces``."""
        key = run_key(record.shot_id)
        if traces:
            t = next(iter(traces.values()))[0]
            arrays = {"t": t} | {name: y for name, (_, y) in traces.items()}
            atomic_write_with(
                series.folder / TRACES_DIR / f"{key}.npz", lambda fh: np.savez(fh, **arrays)
            )
            series.traces[record.shot_id] = traces
        atomic_write_json(series.folder / RECORDS_DIR / f"{key}.json", record.to_dict())
        series.records[record.shot_id] = record
        self._prune(series)

    def _prune(self, series: Series) -> None:
        keep = {r.shot_id for r in series.ordered()[-self.keep_traces :]}
        for shot_id in [s for s in series.traces if s not in keep]:
            del series.traces[shot_id]
            (series.folder / TRACES_DIR / f"{run_key(shot_id)}.npz").unlink(missing_ok=True)
