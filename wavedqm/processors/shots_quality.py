"""The shot processor's quality tests against the reference run, and the shots part of
``wavedqm reference create``.

:class:`ShotQualityStage` holds the shots part of the reference in use (read again when its
file changes, :class:`~wavedqm.processors.reference_cache.SectionCache`), tests each shot's
channels (:func:`~wavedqm.analysis.shot_quality.evaluate_shot`) and exports the metrics. A part
that cannot be used is logged (``shots_quality_reference_unusable``) and counted
(``wavedqm_shots_quality_reference_errors_total``) once per version of its file, and the shots
go on without quality tests.

:func:`create_shots_section` analyses the good shot files as the processor would (metrics,
flags, timing judged against the earlier clean shots of the same series, in name order),
in memory: no ledger, no shot history, no outputs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from wavedqm.analysis.shot_quality import (
    KIND,
    ShotQualityResult,
    ShotReference,
    build_shot_reference,
    decode_reference,
    encode_reference,
    evaluate_shot,
)
from wavedqm.analysis.shot_series import ShotRecord, clean_event_times
from wavedqm.analysis.shots import ChannelRules, judge_timing, shot_channels
from wavedqm.config import Config
from wavedqm.errors import InputFileError
from wavedqm.exporters.reference_store import ReferenceError
from wavedqm.exporters.shot_quality_metrics import ShotQualityMetrics
from wavedqm.logs import get_logger
from wavedqm.processors.reference_cache import SectionCache

if TYPE_CHECKING:
    from wavedqm.processors.reference_create import SectionMade

log = get_logger(__name__)

NO_REFERENCE: dict[str, Any] = {"reference": None, "status": "no_reference"}
"""The ``quality`` section of a shot tested against no reference."""


class ShotQualityStage:
    """The reference in use and the quality metrics (one per shot processor)."""

    def __init__(self, cfg: Config, state_dir: Path, registry: CollectorRegistry) -> None:
        self.tests = cfg.quality.shot_tests
        self.metrics = ShotQualityMetrics(registry)
        self.cache: SectionCache[ShotReference] = SectionCache(
            state_dir, cfg.quality.reference, KIND, decode_reference, self._unusable
        )

    def _unusable(self, name: str, message: str) -> None:
        self.metrics.reference_errors.inc()
        log.error("shots_quality_reference_unusable", reference=name, error=message)

    def reference(self) -> ShotReference | None:
        """The shots part of the reference in use (None: none, or it cannot be used)."""
        return self.cache.get()

    def evaluate(self, record: ShotRecord) -> ShotQualityResult | None:
        """The tests of one shot (None without a usable reference); exports the metrics."""
        reference = self.reference()
        quality = None
        if reference is not None:
            quality = evaluate_shot(record.channels, reference, self.tests)
        self.metrics.shot_done(quality)
        return quality


def quality_document(quality: ShotQualityResult | None) -> dict[str, Any]:
    """The ``quality`` section of the shot's JSON."""
    return dict(NO_REFERENCE) if quality is None else quality.to_dict()


def analyse_shots(
    cfg: Config, paths: Sequence[Path]
) -> tuple[list[tuple[dict[str, Any], ShotRecord]], list[tuple[Path, str]]]:
    """Every readable shot of ``paths`` measured and flagged as the processor would (timing
    against the earlier clean shots of its series, in the order given): ``(source entry,
    record)`` each, and the ``(file, why)`` of the files that could not be read."""
    from wavedqm.formats.shots import read_shot
    from wavedqm.processors.charge_runs import run_of

    done: list[tuple[dict[str, Any], ShotRecord]] = []
    skipped: list[tuple[Path, str]] = []
    by_series: dict[str, list[ShotRecord]] = {}
    for path in paths:
        try:
            shot = read_shot(Path(path))
        except (InputFileError, OSError) as err:
            skipped.append((Path(path), str(err)))
            continue
        rules = {n: ChannelRules(**cfg.shots.rules_for(n)) for n in shot.channels}
        results = shot_channels(shot.t, shot.channels, rules, shot.dt_s)
        series = run_of(Path(path).absolute(), cfg.shots.folder_pattern)
        earlier = by_series.setdefault(series, [])
        index = len(earlier)
        for name, result in results.items():
            previous = clean_event_times(earlier, name, before=index)
            judge_timing(result, previous, shot.dt_s, rules[name], cfg.shots.timing_min_shots)
        record = ShotRecord(
            shot.shot_id, index, Path(path).name, time.time(), shot.n_samples, shot.dt_s,
            float(shot.t[0]), float(shot.t[-1]), dict(shot.control_vars), results,
        )  # fmt: skip
        earlier.append(record)
        entry = {"file": str(Path(path).resolve()), "series": series, "shot_id": shot.shot_id}
        done.append((entry, record))
    return done, skipped


def create_shots_section(
    cfg: Config, state_dir: Path, name: str, files: list[Path]
) -> SectionMade | None:
    """The shots part of reference ``name`` from the shot files among ``files``
    (:mod:`~wavedqm.processors.reference_create`'s builder); None when there are none;
    ReferenceError when none of them gives a good channel."""
    from wavedqm.exporters.reference_sections import save_section
    from wavedqm.formats.detect import SHOT
    from wavedqm.processors.reference_create import SectionMade, files_of_format

    shot_files = files_of_format(files, SHOT)
    if not shot_files:
        return None
    shots, skipped = analyse_shots(cfg, shot_files)
    if not shots:
        why = "; ".join(f"{p.name}: {w}" for p, w in skipped[:3])
        raise ReferenceError(
            f"reference {name!r}: none of the {len(shot_files)} shot files could be read "
            f"({why}); expected shot CSV/NPZ files (a header t,<channel>,...)"
        )
    try:
        reference = build_shot_reference(name, shots, time.time())
    except ValueError as err:
        raise ReferenceError(
            f"reference {name!r}: {err}; expected good shots (files "
            f"{', '.join(Path(e['file']).name for e, _ in shots[:3])}...)"
        ) from None
    meta, arrays = encode_reference(reference)
    path = save_section(state_dir, name, KIND, meta, arrays)
    for entry, record in shots:
        log.info("reference_shot_added", reference=name, file=entry["file"],
                 good_channels=[c for c, r in record.channels.items() if not r.flags])  # fmt: skip
    return SectionMade(KIND, path, len(shots), reference.n_shots, "shots", skipped)
