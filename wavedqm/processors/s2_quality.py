"""Reference part and quality tests of this kind. Placeholder: no reference part yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def create_s2_section(cfg: Any, state_dir: Path, name: str, files: list[Path]) -> None:
    """No part of this kind yet."""
    return None
