"""Per-set S2 state in the state folder: ``STATE/s2/<run>/<set>.npz``, saved atomically after
each file and read back after a restart.

The archive holds the per-frame arrays of :data:`wavedqm.analysis.s2_set.FIELDS`, a ``meta``
JSON string (run, set, set folder, wavedqm version, the files done with their size, mtime,
frames and pass-2 inputs) and a ``version``. A state that cannot be read is set aside
(``<set>.npz.bad-<unix time>``), never overwritten silently: the set starts again from its next
file, and ``wavedqm process SET_DIR`` rebuilds it from all its files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from wavedqm import __version__
from wavedqm.analysis.s2_set import FIELDS, FileEntry, Frames, SetState
from wavedqm.atomic import atomic_open
from wavedqm.logs import get_logger

log = get_logger(__name__)

STATE_SUBDIR = "s2"
STATE_VERSION = 1


def state_path(state_root: Path, run: str, set_name: str) -> Path:
    """``STATE/s2/<run>/<set>.npz`` (``state_root`` is ``STATE/s2``)."""
    return Path(state_root) / run / f"{set_name}.npz"


def load_set_state(path: Path, run: str, set_name: str, set_dir: Path | None) -> SetState:
    """The saved state of a set, or a fresh one when there is none or it is damaged (set
    aside, logged). ``set_dir``: the set's data folder, if known (else the saved one)."""
    fresh = SetState(run, set_name, set_dir or Path(set_name))
    if not path.is_file():
        return fresh
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != STATE_VERSION:
                raise ValueError(f"state version {int(z['version'])} (expected {STATE_VERSION})")
            meta = json.loads(str(z["meta"]))
            arrays = {name: np.array(z[name]) for name, _, _ in FIELDS}
        files = [
            FileEntry(**{**f, "key": None if f["key"] is None else tuple(f["key"])})
            for f in meta["files"]
        ]
        n = sum(f.n_frames for f in files)
        if any(a.shape != (n,) for a in arrays.values()):
            raise ValueError(f"arrays do not hold the {n} frames of the files listed")
        state = SetState(run, set_name, Path(meta["set_dir"]), files, Frames(arrays))
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


def save_set_state(path: Path, state: SetState) -> Path:
    """Write the set's state atomically."""
    meta = {
        "run": state.run,
        "set": state.name,
        "set_dir": str(state.set_dir),
        "wavedqm_version": __version__,
        "files": [asdict(f) for f in state.files],
    }
    arrays = {name: state.frames[name] for name, _, _ in FIELDS}
    with atomic_open(path) as fh:
        np.savez(fh, version=np.array(STATE_VERSION), meta=np.array(json.dumps(meta)), **arrays)
    return path
