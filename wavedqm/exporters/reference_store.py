"""References in the state folder: ``STATE/references/<name>.npz`` and the chosen one.

Each reference is one ``.npz`` (written atomically: temp file + rename) holding the arrays of a
:class:`~wavedqm.analysis.reference.LightReference` and its description as JSON (name, time,
source files). ``STATE/references/ACTIVE`` holds the name ``wavedqm reference use`` chose; the
configuration's ``quality.reference`` wins over it. A reference that cannot be read raises
:class:`ReferenceError` naming the file and what was wrong (the daemon logs it, counts it and
goes on without quality tests); it is never overwritten or deleted.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.reference import DISTRIBUTIONS, RATES, LightReference, check_levels
from wavedqm.atomic import atomic_write_text, atomic_write_with

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SUFFIX = ".npz"
FORMAT_VERSION = 1


class ReferenceError(Exception):
    """A reference that does not exist, cannot be read or does not fit."""


def references_dir(state_dir: Path) -> Path:
    return Path(state_dir) / C.REFERENCES_DIR


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ReferenceError(
            f"reference name {name!r}: expected letters, digits, '.', '_' or '-' (not starting "
            "with '.', '_' or '-')"
        )
    return name


def reference_path(state_dir: Path, name: str) -> Path:
    return references_dir(state_dir) / f"{check_name(name)}{SUFFIX}"


def save_reference(state_dir: Path, ref: LightReference) -> Path:
    """Write ``ref`` atomically (replacing a reference of the same name)."""
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "light",
        "name": ref.name,
        "created_at": ref.created_at,
        "confidence_level": ref.confidence_level,
        "sources": ref.sources,
    }
    arrays = {"meta": np.asarray(json.dumps(meta)), "valid_events": ref.valid_events}
    for q in DISTRIBUTIONS:
        arrays[f"profile_{q}"] = np.asarray(ref.profiles[q], np.float64)
    for flag in RATES:
        k, n = ref.rates[flag]
        arrays[f"{flag}_k"], arrays[f"{flag}_n"] = np.asarray(k), np.asarray(n)
    path = reference_path(state_dir, ref.name)
    return atomic_write_with(path, lambda fh: np.savez(fh, **arrays))


def load_reference(state_dir: Path, name: str) -> LightReference:
    """Read the reference ``name``; ReferenceError if absent or unreadable."""
    path = reference_path(state_dir, name)
    if not path.is_file():
        known = ", ".join(list_references(state_dir)) or "none"
        raise ReferenceError(f"reference {name!r} not found: no {path} (references: {known})")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            profiles = {q: np.asarray(z[f"profile_{q}"], np.float64) for q in DISTRIBUTIONS}
            valid = np.asarray(z["valid_events"], np.int64)
            rates = {
                f: (np.asarray(z[f"{f}_k"], np.int64), np.asarray(z[f"{f}_n"], np.int64))
                for f in RATES
            }
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise ReferenceError(
            f"{path}: cannot read the reference ({type(err).__name__}: {err}); expected an "
            "npz written by `wavedqm reference create`"
        ) from None
    if meta.get("format_version") != FORMAT_VERSION or meta.get("kind") != "light":
        raise ReferenceError(
            f"{path}: format {meta.get('format_version')!r} kind {meta.get('kind')!r} "
            f"(expected format {FORMAT_VERSION}, kind 'light')"
        )
    try:
        for q in DISTRIBUTIONS:
            check_levels(profiles[q])
            if profiles[q].shape[:-1] != valid.shape:
                raise ValueError(f"{q} profiles {profiles[q].shape} vs {valid.shape} channels")
        for f in RATES:
            if rates[f][0].shape != valid.shape or rates[f][1].shape != valid.shape:
                raise ValueError(f"{f} counts of shape {rates[f][0].shape}")
    except ValueError as err:
        raise ReferenceError(f"{path}: {err}") from None
    return LightReference(
        name=str(meta["name"]),
        created_at=float(meta["created_at"]),
        sources=list(meta["sources"]),
        profiles=profiles,
        valid_events=valid,
        rates=rates,
        confidence_level=float(meta["confidence_level"]),
    )


def list_references(state_dir: Path) -> list[str]:
    """Every reference name: with a light part (``NAME.npz``) or a section of another kind
    (``<kind>/NAME.npz``, :mod:`~wavedqm.exporters.reference_sections`)."""
    folder = references_dir(state_dir)
    if not folder.is_dir():
        return []
    files = [*folder.glob(f"*{SUFFIX}"), *folder.glob(f"*/*{SUFFIX}")]
    return sorted({p.stem for p in files if NAME.fullmatch(p.stem)})


def has_light(state_dir: Path, name: str) -> bool:
    return reference_path(state_dir, name).is_file()


def use_reference(state_dir: Path, name: str) -> Path:
    """Make ``name`` the active reference (it must exist; its light part must be readable)."""
    if has_light(state_dir, name):
        load_reference(state_dir, name)
    elif check_name(name) not in list_references(state_dir):
        known = ", ".join(list_references(state_dir)) or "none"
        raise ReferenceError(f"reference {name!r} not found in {references_dir(state_dir)} "
                             f"(references: {known})")  # fmt: skip
    return atomic_write_text(references_dir(state_dir) / C.ACTIVE_REFERENCE_FILE, name + "\n")


def active_reference_name(state_dir: Path, configured: str = "") -> str:
    """The reference in use: the configured one, else the one ``use`` chose, else ``""``."""
    if configured:
        return configured
    marker = references_dir(state_dir) / C.ACTIVE_REFERENCE_FILE
    try:
        return marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def reference_stamp(state_dir: Path, name: str) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of the reference's file (None if absent): tells a cache it
    changed (``reference create`` of the same name again)."""
    try:
        st = reference_path(state_dir, name).stat()
    except (FileNotFoundError, ReferenceError):
        return None
    return (st.st_mtime_ns, st.st_size)
