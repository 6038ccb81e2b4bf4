"""The run voxel accumulators the charge processor keeps: which run a file belongs to, and
adding a file's accumulator to its run's (replacing the file's earlier contribution), with
the state persisted by :class:`wavedqm.exporters.voxel_store.VoxelStore` after each file.

Only the last :data:`CACHED_RUNS` runs stay in memory (a dense accumulator is 32 B per voxel);
an older run is loaded back from the state folder when a late file of it comes."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from wavedqm.analysis.voxels import Grid
from wavedqm.exporters.voxel_store import StoredVoxels, VoxelStore
from wavedqm.kernels.voxels import SparseVoxels, VoxelAccumulator

CACHED_RUNS = 2


def run_of(path: Path, pattern: str = "") -> str:
    """The run of a file: the named group ``run`` (or the first group, or the whole match) of
    ``pattern`` searched in the file name; without a pattern, or when it does not match, the
    name of the file's folder."""
    path = Path(path)
    if pattern:
        m = re.search(pattern, path.name)
        if m:
            if "run" in m.groupdict():
                return m.group("run")
            return m.group(1) if m.groups() else m.group(0)
    return path.parent.name or "run"


def new_accumulator(grid: Grid) -> VoxelAccumulator:
    return VoxelAccumulator(grid.origin_cm, grid.voxel_size_cm, grid.shape)


def stored(acc: VoxelAccumulator, grid: Grid, files: list[str]) -> StoredVoxels:
    sparse = acc.sparse()
    return StoredVoxels(
        grid, sparse.index, sparse.values, acc.tallies.copy(), acc.totals.copy(), list(files)
    )


def accumulator(s: StoredVoxels) -> VoxelAccumulator:
    acc = new_accumulator(s.grid)
    acc.merge_sparse(SparseVoxels(s.index, s.values))
    acc.tallies[:] = s.tallies
    acc.totals[:] = s.totals
    return acc


@dataclass(eq=False)
class RunState:
    run: str
    grid: Grid
    acc: VoxelAccumulator
    files: list[str] = field(default_factory=list)


class ChargeRuns:
    """Run accumulators over the state folder's store."""

    def __init__(self, store: VoxelStore) -> None:
        self.store = store
        self._runs: OrderedDict[str, RunState] = OrderedDict()

    def _rebuild(self, run: str, grid: Grid, skip: str | None) -> RunState:
        state = RunState(run, grid, new_accumulator(grid))
        for c in self.store.contributions(run, grid, skip):
            state.acc.merge(accumulator(c))
            state.files.append(c.files[0])
        return state

    def state(self, run: str, grid: Grid) -> RunState:
        cached = self._runs.get(run)
        if cached is not None and cached.grid.difference(grid) is None:
            self._runs.move_to_end(run)
            return cached
        s = self.store.load_run(run, grid)
        state = (
            RunState(run, grid, accumulator(s), list(s.files))
            if s is not None
            else self._rebuild(run, grid, None)
        )
        self._runs[run] = state
        while len(self._runs) > CACHED_RUNS:
            self._runs.popitem(last=False)
        return state

    def add(self, run: str, grid: Grid, name: str, file_acc: VoxelAccumulator) -> RunState:
        """Store the file's accumulator and add it to its run (its earlier contribution, if
        any, replaced); the run is saved. Returns the run's state."""
        state = self.state(run, grid)
        self.store.save_contribution(run, stored(file_acc, grid, [name]))
        if name in state.files:
            state = self._rebuild(run, grid, skip=name)
            self._runs[run] = state
        state.acc.merge(file_acc)
        state.files.append(name)
        self.store.save_run(run, stored(state.acc, grid, state.files))
        return state
