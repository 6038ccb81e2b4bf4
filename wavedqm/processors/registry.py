"""The processors wavedqm has: one line each. Used by ``watch``, ``demo`` and ``process``.

A line names the processor, the class (``"module:Class"``, imported only when the processor is
switched on) and the formats of the files it wants. Adding a kind of data is one processor
module and one line here (plus its format in :mod:`wavedqm.formats.detect` if it is new).
``[processors] disabled = [...]`` in the config switches processors off: they are neither
imported nor built.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from wavedqm.errors import ConfigError
from wavedqm.formats.detect import FLOW_FORMAT, SHOT_FORMAT, WFM_FORMAT, FileFormat
from wavedqm.processors.base import Processor, ProcessorContext


@dataclass(frozen=True)
class Registration:
    name: str
    target: str
    """``"package.module:Class"``; the class is built as ``Class(context)``."""
    formats: tuple[FileFormat, ...]

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


REGISTRY: list[Registration] = [
    Registration("light", "wavedqm.processors.light:LightProcessor", (FLOW_FORMAT,)),
    Registration("charge", "wavedqm.processors.charge:ChargeProcessor", (FLOW_FORMAT,)),
    Registration("s2", "wavedqm.processors.s2:S2Processor", (WFM_FORMAT,)),
    Registration("shots", "wavedqm.processors.shots:ShotProcessor", (SHOT_FORMAT,)),
]
"""Every processor, in the order they see a file (and their sections appear in summary.json)."""


def registered_names() -> tuple[str, ...]:
    return tuple(r.name for r in REGISTRY)


def enabled(disabled: Sequence[str]) -> list[Registration]:
    """The registrations not switched off; ConfigError naming an unknown processor."""
    names = registered_names()
    unknown = sorted(set(disabled) - set(names))
    if unknown:
        raise ConfigError(
            f"processors.disabled: unknown processor {unknown[0]!r} "
            f"(expected some of: {', '.join(names)})"
        )
    return [r for r in REGISTRY if r.name not in disabled]


def build(registration: Registration, context: ProcessorContext) -> Processor:
    processor = registration.load()(context)
    if not isinstance(processor, Processor):  # pragma: no cover - a programming error
        raise TypeError(f"{registration.target} does not implement Processor")
    return processor


def registered_formats() -> tuple[FileFormat, ...]:
    """Every format some registered processor takes (``wavedqm inspect`` knows them all)."""
    return tuple(dict.fromkeys(f for r in REGISTRY for f in r.formats))
