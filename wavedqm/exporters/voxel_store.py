"""The run voxel accumulators in the state folder: they live across the files of a run and
survive restarts.

Layout (``STATE/voxels/<run key>/``): ``run.npz`` (the run's accumulator: grid, the touched
voxels' count, ΣQ as hi + lo, M2; the hit tallies and ΣQ totals; the names of the files it
holds) and ``files/<file name>.npz`` (each file's own contribution, same fields). Every write
is atomic (temp file + rename): the file's contribution first, then the run. A file processed
again (rewritten by its writer, or after a crash between the two writes) *replaces* its
contribution: the caller rebuilds the run from the contributions (exact for count and ΣQ,
M2 within rounding: Chan's merge; :mod:`wavedqm.processors.charge_runs`). This module only
stores and loads arrays. A ``run.npz`` that cannot be read is set aside
(``run.npz.damaged-<UTC time>``), never overwritten, and the run is rebuilt from the
contributions; a contribution that cannot be read is set aside the same way and left out.
A contribution on another grid (the configuration changed) is left out of the run.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.voxels import Grid
from wavedqm.atomic import atomic_write_with, set_aside
from wavedqm.logs import get_logger

log = get_logger(__name__)

RUN_FILE = "run.npz"
FILES_DIR = "files"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_key(run: str) -> str:
    """A folder name for ``run`` (path separators and odd characters become ``_``)."""
    return _UNSAFE.sub("_", run).strip("._") or "run"


N_TALLIES = 6
"""Hit tallies stored (:data:`wavedqm.kernels.voxels.TALLY_NAMES`)."""
N_TOTALS = 4
"""ΣQ totals stored (all valid hits hi/lo, in-grid hits hi/lo; ke⁻)."""


@dataclass(eq=False)
class StoredVoxels:
    """A run's or a file's voxels as stored: the touched voxels' flat ``index`` (C order of
    the grid's shape) and ``values`` (k, 4: count, ΣQ hi, ΣQ lo, M2), the hit ``tallies``
    and ΣQ ``totals``, and the ``files`` they hold."""

    grid: Grid
    index: np.ndarray
    values: np.ndarray
    tallies: np.ndarray
    totals: np.ndarray
    files: list[str]


def _save(path: Path, v: StoredVoxels) -> Path:
    arrays = {
        "origin_cm": np.asarray(v.grid.origin_cm, np.float64),
        "voxel_size_cm": np.asarray(v.grid.voxel_size_cm, np.float64),
        "shape": np.asarray(v.grid.shape, np.int64),
        "index": np.asarray(v.index, np.int64),
        "values": np.asarray(v.values, np.float64),
        "tallies": np.asarray(v.tallies, np.int64),
        "totals": np.asarray(v.totals, np.float64),
        "files": np.asarray(list(v.files), dtype=np.str_),
    }
    return atomic_write_with(path, lambda fh: np.savez(fh, **arrays))


def _load(path: Path) -> StoredVoxels:
    with np.load(path, allow_pickle=False) as z:
        grid = Grid(
            tuple(map(float, z["origin_cm"])),  # type: ignore[arg-type]
            tuple(map(float, z["voxel_size_cm"])),  # type: ignore[arg-type]
            tuple(map(int, z["shape"])),  # type: ignore[arg-type]
        )
        v = StoredVoxels(
            grid,
            np.asarray(z["index"], np.int64),
            np.asarray(z["values"], np.float64),
            np.asarray(z["tallies"], np.int64),
            np.asarray(z["totals"], np.float64),
            [str(f) for f in z["files"]],
        )
    k = v.index.shape[0]
    if (
        len(grid.shape) != 3
        or v.index.ndim != 1
        or v.values.shape != (k, 4)
        or v.tallies.shape != (N_TALLIES,)
        or v.totals.shape != (N_TOTALS,)
        or (k and not 0 <= v.index.min() <= v.index.max() < grid.n_voxels)
    ):
        raise ValueError("arrays of the wrong shape")
    return v


_UNREADABLE = (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError)


def _set_aside(path: Path, why: str) -> Path:
    target = set_aside(path)
    log.error("voxel_state_set_aside", path=str(path), moved_to=str(target), why=why)
    return target


class VoxelStore:
    """The run accumulators under ``state_dir/voxels/``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / C.VOXELS_DIR

    def run_dir(self, run: str) -> Path:
        return self.root / run_key(run)

    def _contribution_path(self, run: str, name: str) -> Path:
        return self.run_dir(run) / FILES_DIR / f"{run_key(name)}.npz"

    def load_run(self, run: str, grid: Grid) -> StoredVoxels | None:
        """The run's stored accumulator, None when there is none on ``grid`` (new run,
        damaged file — set aside —, or another grid)."""
        path = self.run_dir(run) / RUN_FILE
        if not path.is_file():
            return None
        try:
            stored = _load(path)
        except _UNREADABLE as err:
            _set_aside(path, f"unreadable: {err}")
            return None
        difference = stored.grid.difference(grid)
        if difference is not None:
            log.warning("voxel_grid_changed", run=run, difference=difference)
            return None
        return stored

    def contributions(self, run: str, grid: Grid, skip: str | None = None) -> list[StoredVoxels]:
        """Every readable file contribution of the run on ``grid`` but ``skip``'s."""
        folder = self.run_dir(run) / FILES_DIR
        out = []
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            try:
                stored = _load(path)
            except _UNREADABLE as err:
                _set_aside(path, f"unreadable: {err}")
                continue
            if stored.files[:1] == [skip] or stored.grid.difference(grid) is not None:
                continue
            out.append(stored)
        return out

    def save_contribution(self, run: str, contribution: StoredVoxels) -> Path:
        return _save(self._contribution_path(run, contribution.files[0]), contribution)

    def save_run(self, run: str, stored: StoredVoxels) -> Path:
        return _save(self.run_dir(run) / RUN_FILE, stored)
