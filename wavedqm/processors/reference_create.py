"""``wavedqm reference create NAME FROM...``: one reference from good files of every kind.

FROM are files or folders (searched recursively). Each file's format is detected as the
router does; every kind's builder takes the files of its format and stores its part of the
reference: light (``.FLOW.hdf5`` light waveforms: per-channel baseline/noise profiles, clipped
and negative counts), s2 (``.wfm`` sets: per set the area histogram and the window), shots (shot
CSVs: per channel the metric distributions), voxels (``.FLOW.hdf5`` charge hits: the occupancy
of the grid). A kind with no file among FROM is left out of the reference; a part of the same
name made before and not made again is removed (the reference is replaced as a whole). The
input files are only read; no other state is touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wavedqm.config import Config
from wavedqm.errors import InputFileError
from wavedqm.exporters.reference_sections import SECTION_KINDS, section_path
from wavedqm.exporters.reference_store import ReferenceError, check_name, reference_path
from wavedqm.formats.detect import BUILTIN_FORMATS, detect
from wavedqm.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class SectionMade:
    """One part of a reference, as written."""

    kind: str
    path: Path
    files: int
    """Input files it was made from."""
    entries: int
    """Events (light), frames (s2), shots (shots) or hits (voxels) it holds."""
    unit: str
    """What ``entries`` counts ("events", "frames", "shots", "hits")."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """``(file, why)``: files of the kind that could not be used."""


Builder = Callable[[Config, Path, str, list[Path]], SectionMade | None]
"""``builder(cfg, state_dir, name, files)``: the files are every file of FROM with its format
(the builder keeps those of its kind); None when none is of its kind; ReferenceError when some
are but none is usable."""

BUILDERS: dict[str, tuple[str, str]] = {
    "light": ("light", "wavedqm.processors.light_quality:create_light_section"),
    "s2": ("s2", "wavedqm.processors.s2_quality:create_s2_section"),
    "shots": ("shots", "wavedqm.processors.shots_quality:create_shots_section"),
    "voxels": ("charge", "wavedqm.processors.charge_quality:create_voxel_section"),
}
"""Reference kind -> (the processor whose files it takes, ``"module:function"`` building it)."""


def source_files(sources: Iterable[Path]) -> list[Path]:
    """Files as given, folders searched recursively (hidden entries skipped), in name order."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = (p for p in source.rglob("*") if p.is_file())
            files.extend(sorted(p for p in found if not _hidden(p.relative_to(source))))
        else:
            files.append(source)
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def files_of_format(files: Iterable[Path], format_name: str) -> list[Path]:
    """The files whose detected format is ``format_name`` (unreadable or unknown ones left out:
    a folder holds sidecars and notes besides data)."""
    kept = []
    for path in files:
        try:
            if detect(path, BUILTIN_FORMATS).name == format_name:
                kept.append(path)
        except (InputFileError, OSError):
            continue
    return kept


def _builder(target: str) -> Builder:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def create_reference(
    cfg: Config, state_dir: Path, name: str, sources: Iterable[Path]
) -> tuple[list[SectionMade], list[tuple[str, str]]]:
    """Every part of reference ``name`` from ``sources``.

    Returns ``(made, not_made)``: ``not_made`` are ``(kind, why)`` for kinds whose files were
    all unusable. Raises ReferenceError when no part could be made."""
    check_name(name)
    files = source_files(sources)
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise ReferenceError(f"reference {name!r}: {missing[0]} is not a file or folder")
    disabled = set(cfg.processors.disabled)
    made: list[SectionMade] = []
    not_made: list[tuple[str, str]] = []
    for kind, (processor, target) in BUILDERS.items():
        if processor in disabled:
            continue
        try:
            section = _builder(target)(cfg, Path(state_dir), name, files)
        except ReferenceError as err:
            not_made.append((kind, str(err)))
            continue
        if section is not None:
            made.append(section)
            log.info("reference_part_written", reference=name, kind=kind, path=str(section.path),
                     files=section.files, entries=section.entries)  # fmt: skip
    if not made:
        why = "; ".join(f"{kind}: {text}" for kind, text in not_made)
        raise ReferenceError(
            f"reference {name!r}: no part could be made from {len(files)} files "
            f"(expected good .FLOW.hdf5, .wfm or shot CSV files){': ' + why if why else ''}"
        )
    _remove_stale_parts(Path(state_dir), name, {s.kind for s in made})
    return made, not_made


def _remove_stale_parts(state_dir: Path, name: str, kinds_made: set[str]) -> None:
    """The reference is replaced as a whole: parts of ``name`` not made this time go."""
    stale = [] if "light" in kinds_made else [reference_path(state_dir, name)]
    stale += [section_path(state_dir, name, k) for k in SECTION_KINDS if k not in kinds_made]
    for path in stale:
        if path.is_file():
            path.unlink()
            log.info("reference_part_replaced", reference=name, removed=str(path))
