"""How ``wavedqm inspect`` shows what a file holds to a human: one ``key  value`` line per
field, floats to 6 significant digits, epoch times (keys ``time*_s``/``t*_epoch_s``) with their
ISO-8601 UTC form beside them, lists and tables indented below their key. ``--json`` gives the
raw dictionary instead."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

EPOCH_MIN_S = 1e8
"""Times below this (1973) are relative times, not epoch seconds: no ISO form."""


def _is_epoch_key(key: str) -> bool:
    return key.endswith("_s") and ("time" in key or "epoch" in key) and "dt" not in key


def format_value(key: str, value: Any) -> str:
    """One value as text (no nesting)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        text = f"{value:.6g}"
        if _is_epoch_key(key) and abs(value) >= EPOCH_MIN_S:
            iso = datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
            text = f"{value:.3f}  ({iso.replace('+00:00', 'Z')})"
        return text
    if isinstance(value, int) and _is_epoch_key(key) and abs(value) >= EPOCH_MIN_S:
        iso = datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
        return f"{value}  ({iso.replace('+00:00', 'Z')})"
    return str(value)


def human_lines(info: Mapping[str, Any], indent: int = 0) -> list[str]:
    """``info`` as aligned lines; nested mappings and lists of them indented by two."""
    lines: list[str] = []
    flat = [k for k, v in info.items() if not isinstance(v, (Mapping, list, tuple))]
    width = max((len(k) for k in flat), default=0)
    pad = " " * indent
    for key, value in info.items():
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines += human_lines(value, indent + 2)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            lines.append(f"{pad}{key}: {len(value)}")
            for item in value:
                sub = human_lines(item, indent + 4) if isinstance(item, Mapping) else []
                if sub:
                    sub[0] = f"{pad}  - " + sub[0].lstrip()
                lines += sub or [f"{pad}  - {item}"]
        elif isinstance(value, (list, tuple)):
            items = ", ".join(format_value(key, v) for v in value)
            lines.append(f"{pad}{key:<{width}}  [{items}]")
        else:
            lines.append(f"{pad}{key:<{width}}  {format_value(key, value)}")
    return lines
