"""The section of one kind of the reference in use, cached and read again when its file
changes (``wavedqm reference create`` of the same name again, or ``reference use`` of
another), without a restart. Used by the s2, shots and charge processors (the light processor's
:class:`~wavedqm.processors.light_quality.QualityStage` does the same for its part).

A section that cannot be used is reported once per version of its file through ``on_error``
(the processor logs and counts it) and the files go on without quality tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from wavedqm.exporters.reference_sections import load_section, section_stamp
from wavedqm.exporters.reference_store import ReferenceError, active_reference_name
from wavedqm.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

Decoder = Callable[[dict[str, Any], dict[str, np.ndarray]], T]
"""``(meta, arrays) -> the kind's reference``; raises ValueError when the arrays do not fit."""


@dataclass
class _Cached(Generic[T]):
    name: str
    stamp: tuple[int, int] | None
    value: T | None


class SectionCache(Generic[T]):
    """``get()``: the ``kind`` section of the reference in use, decoded (None: no reference in
    use, it has no ``kind`` section, or the section cannot be used)."""

    def __init__(
        self,
        state_dir: Path,
        configured: str,
        kind: str,
        decode: Decoder[T],
        on_error: Callable[[str, str], None],
    ) -> None:
        """``configured``: ``quality.reference`` (empty: the one ``reference use`` chose);
        ``on_error(reference name, message)`` when the section cannot be used."""
        self.state_dir = Path(state_dir)
        self.configured = configured
        self.kind = kind
        self.decode = decode
        self.on_error = on_error
        self._cached: _Cached[T] | None = None

    def name(self) -> str:
        """The reference in use (``""``: none)."""
        return active_reference_name(self.state_dir, self.configured)

    def get(self) -> T | None:
        name = self.name()
        if not name:
            return None
        stamp = section_stamp(self.state_dir, name, self.kind)
        cached = self._cached
        if cached is not None and cached.name == name and cached.stamp == stamp:
            return cached.value
        value: T | None = None
        try:
            loaded = load_section(self.state_dir, name, self.kind)
            if loaded is not None:
                value = self.decode(*loaded)
                log.info("quality_reference_loaded", reference=name, kind=self.kind)
        except (ReferenceError, ValueError, KeyError) as err:
            self.on_error(name, str(err))
        self._cached = _Cached(name, stamp, value)
        return value
