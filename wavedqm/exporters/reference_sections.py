"""The non-light sections of a reference run: ``STATE/references/<kind>/<name>.npz``.

A reference NAME is made by one ``wavedqm reference create NAME FROM...`` from good files of
any kind: its light part is ``STATE/references/NAME.npz``
(:mod:`~wavedqm.exporters.reference_store`), and each other kind that had files among FROM
(``s2`` sets, ``shots``, ``voxels`` of the charge runs) a section here. A section is one
``.npz`` written atomically (temp file + rename): a JSON ``meta`` (format version, kind, name,
time, sources and whatever the kind describes itself with) and the kind's named arrays. The
kinds' own modules turn them into their dataclasses; this module only stores, lists and checks
the envelope. A section that cannot be read raises :class:`ReferenceError` naming the file and
what was wrong; it is never overwritten or deleted.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm.atomic import atomic_write_with
from wavedqm.exporters.reference_store import (
    NAME,
    SUFFIX,
    ReferenceError,
    check_name,
    references_dir,
)

SECTION_KINDS = ("s2", "shots", "voxels")
"""The kinds a reference can hold besides light, in the order ``reference show`` lists them."""
SECTION_FORMAT_VERSION = 1


def section_path(state_dir: Path, name: str, kind: str) -> Path:
    if kind not in SECTION_KINDS:
        raise ReferenceError(f"reference kind {kind!r}: expected one of {SECTION_KINDS}")
    return references_dir(state_dir) / kind / f"{check_name(name)}{SUFFIX}"


def save_section(
    state_dir: Path,
    name: str,
    kind: str,
    meta: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
) -> Path:
    """Write the ``kind`` section of reference ``name`` atomically (replacing one of the same
    name). ``meta`` must be JSON-serialisable; ``arrays`` must not be object arrays."""
    if "meta" in arrays:
        raise ValueError("'meta' is the section's description, not an array name")
    envelope = {"format_version": SECTION_FORMAT_VERSION, "kind": kind, "name": name, **meta}
    stored = {"meta": np.asarray(json.dumps(envelope))}
    stored.update({k: np.asarray(v) for k, v in arrays.items()})
    path = section_path(state_dir, name, kind)
    return atomic_write_with(path, lambda fh: np.savez(fh, **stored))


def has_section(state_dir: Path, name: str, kind: str) -> bool:
    return section_path(state_dir, name, kind).is_file()


def load_section(
    state_dir: Path, name: str, kind: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """``(meta, arrays)`` of the ``kind`` section of ``name``; None when the reference has no
    such section; ReferenceError when the file cannot be read or is not a section of ``kind``."""
    path = section_path(state_dir, name, kind)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: np.asarray(z[k]) for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise ReferenceError(
            f"{path}: cannot read the {kind} reference ({type(err).__name__}: {err}); expected "
            "an npz written by `wavedqm reference create`"
        ) from None
    if (
        not isinstance(meta, dict)
        or meta.get("format_version") != SECTION_FORMAT_VERSION
        or (meta.get("kind") != kind)
    ):
        found = (
            meta if not isinstance(meta, dict) else (meta.get("format_version"), meta.get("kind"))
        )
        raise ReferenceError(
            f"{path}: format/kind {found!r} (expected format {SECTION_FORMAT_VERSION}, kind "
            f"{kind!r})"
        )
    return meta, arrays


def section_stamp(state_dir: Path, name: str, kind: str) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of the section's file (None if absent): tells a cache it changed."""
    try:
        st = section_path(state_dir, name, kind).stat()
    except (FileNotFoundError, ReferenceError):
        return None
    return (st.st_mtime_ns, st.st_size)


def section_names(state_dir: Path) -> dict[str, list[str]]:
    """Kind -> names of the references holding a section of that kind."""
    found: dict[str, list[str]] = {}
    for kind in SECTION_KINDS:
        folder = references_dir(state_dir) / kind
        if folder.is_dir():
            names = sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if NAME.fullmatch(p.stem))
            if names:
                found[kind] = names
    return found
