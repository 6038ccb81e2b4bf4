"""``wavedqm reference show``: every part of one reference, JSON-ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wavedqm.exporters.reference_sections import SECTION_KINDS, load_section
from wavedqm.exporters.reference_store import (
    ReferenceError,
    has_light,
    list_references,
    load_reference,
)

HIDDEN_META = {"format_version", "kind", "name"}
"""Envelope keys ``show`` does not repeat per part."""


def describe_reference(state_dir: Path, name: str) -> dict[str, Any]:
    """``{"name", "light": light description or None, "parts": {kind: section meta}}``;
    ReferenceError if the reference does not exist or a part cannot be read."""
    if name not in list_references(state_dir):
        known = ", ".join(list_references(state_dir)) or "none"
        raise ReferenceError(f"reference {name!r} not found (references: {known})")
    light = load_reference(state_dir, name).describe() if has_light(state_dir, name) else None
    parts: dict[str, Any] = {}
    for kind in SECTION_KINDS:
        loaded = load_section(state_dir, name, kind)
        if loaded is not None:
            parts[kind] = {k: v for k, v in loaded[0].items() if k not in HIDDEN_META}
    return {"name": name, "light": light, "parts": parts}
