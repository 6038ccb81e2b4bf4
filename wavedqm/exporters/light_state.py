"""The light processor's small state files and per-file documents: consecutive dead-file
counts (``STATE/dead_streaks.json``, read back after a restart) and the per-file
``summary.json`` document of a file's light data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wavedqm import __version__
from wavedqm.atomic import atomic_write_json
from wavedqm.formats.detect import FLOW
from wavedqm.logs import get_logger

if TYPE_CHECKING:
    from wavedqm.analysis.jump import JumpEvent
    from wavedqm.analysis.light import LightResult
    from wavedqm.analysis.spectra import SpectraResult
    from wavedqm.formats.flow import FlowInfo

log = get_logger(__name__)

SUMMARY_TOP_KEYS = (
    "dead_channels",
    "known_dead_channels",
    "baseline_flagged",
    "clipped_channels",
    "negative_channels",
    "fractions",
    "time_start_s",
    "time_end_s",
)
"""Keys of the light result that sit at the top of ``summary.json`` (not under ``light``)."""


@dataclass
class DeadStreaks:
    """The consecutive dead-file counts after ``file``, and ``before`` it: a file processed
    again at once (a restart after a crash, a file rewritten while it was processed) starts
    from ``before`` and so replaces its own count instead of adding to it."""

    streaks: np.ndarray | None = None
    file: str = ""
    before: np.ndarray | None = None

    def base_for(self, file: str) -> np.ndarray | None:
        """The counts ``file``'s verdict adds to."""
        return self.before if file and file == self.file else self.streaks


def load_dead_streaks(path: Path) -> DeadStreaks:
    """The counts saved by :func:`save_dead_streaks`; empty when absent or unreadable
    (logged: the streaks start again from zero)."""
    try:
        doc = json.loads(path.read_text())
        before = doc.get("before")
        return DeadStreaks(
            np.array(doc["dead_streaks"]),
            str(doc.get("file", "")),
            None if before is None else np.array(before),
        )
    except FileNotFoundError:
        return DeadStreaks()
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        log.error("dead_streaks_unreadable", path=str(path), error=str(err))
        return DeadStreaks()


def save_dead_streaks(path: Path, state: DeadStreaks) -> Path:
    doc: dict[str, Any] = {
        "dead_streaks": None if state.streaks is None else state.streaks.tolist(),
        "file": state.file,
        "before": None if state.before is None else state.before.tolist(),
    }
    return atomic_write_json(path, doc)


def light_summary_document(
    path: Path,
    info: FlowInfo,
    light: LightResult | None,
    spectra: SpectraResult | None,
    jump: JumpEvent | None,
    seconds: float,
) -> dict[str, Any]:
    """The per-file ``summary.json`` document of a ``.FLOW.hdf5`` file's light data (all
    keys, with empty values when the file holds no light waveforms)."""
    summary: dict[str, Any] = {
        "file": str(path),
        "format": FLOW,
        "wavedqm_version": __version__,
        "processing_seconds": round(seconds, 4),
        "has_light": info.has_light,
        "has_charge": info.has_charge,
        "events": info.n_light_events if light is not None else 0,
        "events_by_trigger": {"beam": 0, "self": 0},
        "time_start_s": info.time_start_s,
        "time_end_s": info.time_end_s,
        "light": None,
        "dead_channels": [],
        "known_dead_channels": [],
        "baseline_flagged": [],
        "clipped_channels": [],
        "negative_channels": [],
        "fractions": None,
    }
    if light is None:
        return summary
    light_dict = light.to_dict()
    summary["events"] = light_dict["n_events"]
    summary["events_by_trigger"] = light_dict["events_by_trigger"]
    for key in SUMMARY_TOP_KEYS:
        summary[key] = light_dict.pop(key)
    summary["light"] = light_dict
    summary["spectra"] = None if spectra is None else spectra.to_dict()
    if jump is not None:
        summary["largest_jump"] = {
            "event": jump.event,
            "adc": jump.adc,
            "channel": jump.channel,
            "sample": jump.sample,
            "jump_adc16": jump.jump_adc16,
        }
    return summary
