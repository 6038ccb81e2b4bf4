"""The light processor's quality tests against the reference run: which reference is in use,
the tests of each file, their metrics, the quality mask, and ``wavedqm reference create``'s
pass over the chosen good files.

The reference in use is read again when its file changes (``wavedqm reference create`` of the
same name, or ``reference use`` of another), without a restart. A reference that cannot be
used is logged once per version of its file and counted
(``wavedqm_quality_reference_errors_total``), and the files go on without quality tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap, has_status_bit
from wavedqm.analysis.light import LightResult
from wavedqm.analysis.masks import quality_cells
from wavedqm.analysis.quality import QualityResult, evaluate_light
from wavedqm.analysis.reference import LightReference, build_light_reference
from wavedqm.config import Config
from wavedqm.constants import IMAGES_DIR
from wavedqm.errors import InputFileError
from wavedqm.exporters.masks import write_mask_png
from wavedqm.exporters.quality_metrics import QualityMetrics
from wavedqm.exporters.quality_pages import quality_mask_figure
from wavedqm.exporters.reference_store import (
    ReferenceError,
    active_reference_name,
    load_reference,
    reference_stamp,
    save_reference,
)
from wavedqm.logs import get_logger

if TYPE_CHECKING:
    from wavedqm.processors.reference_create import SectionMade

log = get_logger(__name__)

QUALITY_IMAGE = "quality"
"""The quality mask PNG of every file tested (``quality.png``, latest copy under images/)."""
NO_REFERENCE = {"reference": None, "status": "no_reference"}
"""The ``quality`` section of a file tested against no reference."""


@dataclass
class _Cached:
    name: str
    stamp: tuple[int, int] | None
    reference: LightReference | None


class QualityStage:
    """Holds the reference in use and the quality metrics (one per light processor)."""

    def __init__(self, cfg: Config, state_dir: Path, metrics: QualityMetrics) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self.metrics = metrics
        self._cached: _Cached | None = None

    def reference(self) -> LightReference | None:
        """The reference in use (None: none chosen, or it cannot be used)."""
        name = active_reference_name(self.state_dir, self.cfg.quality.reference)
        if not name:
            return None
        stamp = reference_stamp(self.state_dir, name)
        cached = self._cached
        if cached is not None and cached.name == name and cached.stamp == stamp:
            return cached.reference
        reference = None
        try:
            reference = load_reference(self.state_dir, name)
            log.info("quality_reference_loaded", reference=name, files=len(reference.sources))
        except ReferenceError as err:
            self.metrics.reference_errors.inc()
            log.error("quality_reference_unusable", reference=name, error=str(err))
        self._cached = _Cached(name, stamp, reference)
        return reference

    def evaluate(self, path: Path, light: LightResult) -> QualityResult | None:
        """The tests of one file (None without a usable reference); exports the metrics."""
        quality = None
        reference = self.reference()
        if reference is not None:
            try:
                quality = evaluate_light(light, reference, self.cfg.quality)
            except ValueError as err:
                self.metrics.reference_errors.inc()
                log.error("quality_reference_does_not_fit", file=str(path), error=str(err))
        self.metrics.file_done(quality, masked_channels(light))
        return quality


def quality_document(quality: QualityResult | None) -> dict[str, object]:
    """The ``quality`` section of ``summary.json``."""
    return dict(NO_REFERENCE) if quality is None else quality.to_dict()


def write_quality_mask(
    out_root: Path,
    tpc_split_channel: int,
    path: Path,
    outdir: Path,
    light: LightResult,
    quality: QualityResult,
) -> dict[str, Path]:
    """The file's quality mask PNG and its latest copy under ``OUT/images/`` (a drawing job)."""
    fig = quality_mask_figure(
        quality_cells(quality.worst, quality.monitored),
        quality,
        time_start_s=light.time_start_s,
        time_end_s=light.time_end_s,
        source=path.name,
        tpc_split_channel=tpc_split_channel,
    )
    latest = out_root / IMAGES_DIR / f"{QUALITY_IMAGE}.png"
    return {QUALITY_IMAGE: write_mask_png(outdir / f"{QUALITY_IMAGE}.png", fig, latest=latest)}


def reference_files(sources: Iterable[Path]) -> list[Path]:
    """The light files named by ``sources``: files as given, folders searched (recursively)
    for ``*.FLOW.hdf5`` / ``*.hdf5`` / ``*.h5`` files, in name order."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = {p for pattern in ("*.hdf5", "*.h5") for p in source.rglob(pattern)}
            files.extend(sorted(p for p in found if p.is_file()))
        else:
            files.append(source)
    return files


def create_reference(
    cfg: Config, state_dir: Path, name: str, sources: Iterable[Path]
) -> tuple[LightReference, Path, list[tuple[Path, str]]]:
    """Analyse the light data of every file of ``sources`` (as ``wavedqm process`` would,
    without touching any state but the reference) and store their pooled reference.

    Returns ``(reference, path written, skipped)``: skipped are ``(file, why)`` (no light
    events, or a bad file). Raises ReferenceError when no file gives light events."""
    from wavedqm.processors.light import analyse_light_file, known_status_of

    channel_map = ChannelMap.from_config(cfg.light)
    known = known_status_of(cfg, channel_map)
    results: list[tuple[str, LightResult]] = []
    skipped: list[tuple[Path, str]] = []
    files = reference_files(sources)
    for path in files:
        try:
            analysis = analyse_light_file(cfg, channel_map, known, path)
        except (InputFileError, OSError) as err:
            skipped.append((path, str(err)))
            continue
        if analysis.light is None or analysis.light.n_events == 0:
            skipped.append((path, "no light events"))
            continue
        results.append((str(path.resolve()), analysis.light))
        log.info("reference_file_added", reference=name, file=str(path),
                 events=analysis.light.n_events)  # fmt: skip
    if not results:
        raise ReferenceError(
            f"reference {name!r}: none of the {len(files)} files given has light events "
            f"(expected .FLOW.hdf5 files with light waveforms)"
        )
    reference = build_light_reference(
        name, results, time.time(), confidence_level=cfg.light.confidence_level
    )
    return reference, save_reference(state_dir, reference), skipped


def create_light_section(
    cfg: Config, state_dir: Path, name: str, files: list[Path]
) -> SectionMade | None:
    """The light part of reference ``name`` from the ``.FLOW.hdf5`` files among ``files``
    (:mod:`~wavedqm.processors.reference_create`'s builder); None when there are none."""
    from wavedqm.formats.detect import FLOW
    from wavedqm.processors.reference_create import SectionMade, files_of_format

    flow_files = files_of_format(files, FLOW)
    if not flow_files:
        return None
    reference, path, skipped = create_reference(cfg, state_dir, name, flow_files)
    return SectionMade("light", path, len(reference.sources), reference.n_events, "events",
                       skipped)  # fmt: skip


def masked_channels(light: LightResult) -> np.ndarray:
    """bool (a×c): the monitored known-noisy channels (kept out of alerts)."""
    return has_status_bit(light.known_status, C.STATUS_KNOWN_NOISY) & light.monitored
