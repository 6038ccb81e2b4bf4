"""The two kernel passes over one ``.wfm`` file of a set, and the re-runs of pass 2 over the
set's earlier files when its window moved (:mod:`wavedqm.processors.s2_engine`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.analysis.ratag import SetPhysics
from wavedqm.analysis.ratag_run import set_stats
from wavedqm.analysis.s2_set import FileEntry, Pass2Key, SetState, key_distance
from wavedqm.errors import InputFileError
from wavedqm.formats.wfm import open_wfm
from wavedqm.kernels.s2 import AreaResult, FrameScale, S2Params, area_pass, frame_features
from wavedqm.logs import get_logger

log = get_logger(__name__)


def frame_scale(header: Any) -> FrameScale:
    """Volts per count, offset (V), sample period and first sample time (µs) of a header."""
    return FrameScale(
        scale_v=float(header.vscale),
        offset_v=float(header.voffset),
        dt_us=float(header.dt_s) * 1e6,
        t0_us=float(header.t0_s) * 1e6,
    )


def run_pass2(
    state: SetState, i: int, raw: np.ndarray, scale: FrameScale, key: Pass2Key, params: S2Params
) -> None:
    """Pass 2 of file ``i`` of the set with inputs ``key``: its areas and X-ray reasons in
    the set's arrays; its rejections are counted once, at its first classification."""
    result: AreaResult = area_pass(raw, scale, (key[0], key[1]), key[2], key[3], params)
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


def rerun_stale(
    state: SetState, key: Pass2Key | None, skip: int, tolerance_us: float, params: S2Params
) -> list[str]:
    """Re-run pass 2 of every file (but ``skip``) whose inputs differ from ``key`` by more
    than ``tolerance_us``; a file that vanished or changed keeps its results (logged)."""
    if key is None:
        return []
    rerun = []
    for i, entry in enumerate(state.files):
        if i == skip:
            continue
        if entry.key is not None and key_distance(entry.key, key) <= tolerance_us:
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
                run_pass2(state, i, w.raw, frame_scale(w.header), key, params)
            rerun.append(entry.name)
        except (OSError, InputFileError, ValueError) as err:
            log.warning(
                "s2_rerun_skipped",
                file=str(path),
                error=str(err),
                hint="its areas keep the window they were computed with",
            )
    return rerun


def analyse_file(
    path: Path, state: SetState, physics: SetPhysics, params: S2Params, tolerance_us: float
) -> tuple[int, list[str]]:
    """Pass 1 of the new file, set statistics, pass 2 of it and of the stale files.
    Returns (frames of the file, files re-run). A file already in the set is replaced."""
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
            scale = frame_scale(h)
            raw = w.raw
            features = frame_features(raw, scale, physics.time_drift, params)
            state.frames.append(features)
            state.files.append(
                FileEntry(
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
            stats = set_stats(state, physics)
            if stats.key is not None:
                run_pass2(state, i, raw, scale, stats.key, params)
            del raw
    except BaseException as err:
        if appended:  # leave the set as it was before this file
            state.frames.delete(state.file_slice(i))
            del state.files[i]
        if isinstance(err, ValueError):  # frames the kernels cannot read (too short, ...)
            raise InputFileError(path, "wrong_layout", str(err)) from err
        raise
    rerun = rerun_stale(state, stats.key, i, tolerance_us, params)
    state.pending_frames += features.n_frames
    state.pending_files += 1
    state.pending_names.append(path.name)
    state.result = None
    return features.n_frames, rerun
