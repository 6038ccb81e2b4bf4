"""The files a series of shots gives, under ``OUT/<series>/`` (atomic writes):
``<shot id>.json`` per shot and ``shot_metrics.csv`` for the whole series (one row per shot ×
channel: ``shot_id``, ``channel``, the eight metrics, ``flags`` joined by ``;``, then the
control variables); the shot JSON has a ``quality`` section (the tests against the
reference run; ``{"reference": null, "status": "no_reference"}`` without one). Metrics that do
not apply to a channel, or are undefined, are empty cells in the CSV and ``null`` in the
JSON."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wavedqm import constants as C
from wavedqm.analysis.shot_series import ShotRecord, control_names, ordered
from wavedqm.analysis.shots import TimingReference
from wavedqm.atomic import atomic_write_json, atomic_write_text
from wavedqm.exporters.voxel_store import run_key

METRICS_CSV = "shot_metrics.csv"
FLAG_SEPARATOR = ";"


def shot_json_path(out_dir: Path, shot_id: str) -> Path:
    return Path(out_dir) / f"{run_key(shot_id)}.json"


def shot_document(
    record: ShotRecord,
    series: str,
    references: dict[str, TimingReference | None],
    quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``<shot id>.json`` document: the record, its flags by channel, what each channel's
    timing was judged against, and the ``quality`` section (the tests against the reference
    run, :func:`wavedqm.processors.shots_quality.quality_document`) when given."""
    doc = record.to_dict()
    doc["series"] = series
    doc["flags"] = record.flags()
    doc["timing_reference"] = {
        name: None if ref is None else {"median_s": ref.median_s, "std_s": ref.std_s,
                                         "shots": ref.shots}
        for name, ref in references.items()
    }  # fmt: skip
    if quality is not None:
        doc["quality"] = quality
    return doc


def write_shot_json(out_dir: Path, document: dict[str, Any]) -> Path:
    return atomic_write_json(shot_json_path(out_dir, document["shot_id"]), document)


def _cell(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else repr(float(v))


def metrics_csv_text(records: Sequence[ShotRecord]) -> str:
    """``shot_metrics.csv`` of ``records`` (in shot order)."""
    controls = control_names(records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["shot_id", "channel", *C.SHOT_METRICS, "flags", *controls])
    for r in ordered(records):
        for name, c in r.channels.items():
            w.writerow(
                [r.shot_id, name]
                + [_cell(c.metrics.get(m)) for m in C.SHOT_METRICS]
                + [FLAG_SEPARATOR.join(c.flags)]
                + [_cell(r.control_vars.get(k)) for k in controls]
            )
    return buf.getvalue()


def write_metrics_csv(out_dir: Path, records: Sequence[ShotRecord]) -> Path:
    return atomic_write_text(Path(out_dir) / METRICS_CSV, metrics_csv_text(records))
