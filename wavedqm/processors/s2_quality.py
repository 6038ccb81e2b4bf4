"""The S2 processor's quality tests against the reference run: the S2 part of ``wavedqm
reference create`` (:func:`create_s2_section`) and the stage that tests each set after each of
its files (:class:`S2QualityStage`, called by :class:`~wavedqm.processors.s2_publish.S2Publisher`).

The reference part is read again when its file changes (``reference create`` of the same name,
``reference use`` of another), without a restart. A part that cannot be used is logged once per
version of its file (``s2_quality_reference_unusable``) and counted
(``wavedqm_s2_quality_reference_errors_total``); the sets go on without quality tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.ratag import RunConstants, is_set_name
from wavedqm.analysis.ratag_run import FitSettings, SetResult, set_result
from wavedqm.analysis.s2_quality import (
    KIND,
    ReferenceOverlay,
    S2Reference,
    S2SetQuality,
    S2SetReference,
    SetSample,
    build_set_reference,
    decode_reference,
    encode_reference,
    evaluate_set,
    reference_overlay,
)
from wavedqm.analysis.s2_set import SetState
from wavedqm.config import Config, QualityTestConfig
from wavedqm.errors import ConfigError, InputFileError
from wavedqm.exporters.reference_sections import save_section
from wavedqm.exporters.reference_store import ReferenceError
from wavedqm.logs import get_logger
from wavedqm.processors.reference_cache import SectionCache
from wavedqm.processors.s2_passes import analyse_file
from wavedqm.processors.s2_runs import RunContexts, fit_settings

if TYPE_CHECKING:
    from wavedqm.exporters.s2_metrics import S2Metrics
    from wavedqm.processors.reference_create import SectionMade

log = get_logger(__name__)

NO_REFERENCE: dict[str, Any] = {"reference": None, "status": "no_reference"}
"""The ``quality`` section of a set tested against no reference."""
EXPECTED_LAYOUT = "RUN/FieldScan_GateNNNN_AnodeNNNN/file.wfm"


@dataclass(frozen=True)
class Tested:
    """A set's quality after its latest file, and the reference histogram to draw over its
    own (both None without a reference in use)."""

    quality: S2SetQuality | None
    overlay: ReferenceOverlay | None

    def document(self) -> dict[str, Any]:
        """The ``quality`` section of ``s2_results.json``."""
        return dict(NO_REFERENCE) if self.quality is None else self.quality.to_dict()


NOT_TESTED = Tested(None, None)


def sample_of(state: SetState, result: SetResult) -> SetSample:
    """What the tests look at in a set after its latest file."""
    fit = result.ion_fit
    ok = fit.fit_success
    window = result.window_us if result.window_us is not None else (np.nan, np.nan)
    return SetSample(
        run=state.run,
        set_name=state.name,
        areas=state.frames["area"],
        n_frames=result.n_frames,
        mean=fit.mean if ok else np.nan,
        mean_se=fit.ci95 / C.RATAG_CI95_Z if ok else np.nan,
        window_us=(float(window[0]), float(window[1])),
    )


class S2QualityStage:
    """The S2 part of the reference in use and the tests of each set against it."""

    def __init__(
        self,
        state_dir: Path,
        configured: str,
        tests: Mapping[str, QualityTestConfig],
        metrics: S2Metrics | None,
    ) -> None:
        """``configured``: ``quality.reference`` (empty: the one ``reference use`` chose);
        ``tests``: ``quality.s2_tests``."""
        self.tests = dict(tests)
        self.metrics = metrics
        self.cache: SectionCache[S2Reference] = SectionCache(
            state_dir, configured, KIND, decode_reference, self._unusable
        )

    def _unusable(self, name: str, message: str) -> None:
        if self.metrics is not None:
            self.metrics.quality_reference_errors.inc()
        log.error("s2_quality_reference_unusable", reference=name, error=message)

    def evaluate(self, state: SetState, result: SetResult) -> Tested:
        """The tests of one set after its latest file (exports their metrics)."""
        reference = self.cache.get()
        if reference is None:
            if self.metrics is not None:
                self.metrics.quality_cleared()
            return NOT_TESTED
        quality = evaluate_set(reference, sample_of(state, result), self.tests)
        if self.metrics is not None:
            self.metrics.quality_updated(state.run, state.name, quality.statuses(), quality.status)
        failed = [t.name for t in quality.tests if t.status > 0]
        log.info("s2_quality_tested", run=state.run, set=state.name, reference=reference.name,
                 status=C.QUALITY_STATUS_NAMES[quality.status], failed=failed)  # fmt: skip
        overlay = reference_overlay(reference, state.name, result.n_frames)
        if overlay is not None:
            overlay = replace(overlay, verdict=quality.verdict())
        return Tested(quality, overlay)


# --------------------------------------------------------------------------------------------
# wavedqm reference create: the S2 part


def _pooled(key: str, parts: list[tuple[SetState, SetResult, FitSettings]]) -> S2SetReference:
    """One field setting's reference from its sets (several runs: areas pooled and fitted
    again, the windows averaged weighted by frames)."""
    sources = [{"run": s.run, "set": s.name, "files": len(s.files), "frames": r.n_frames}
               for s, r, _ in parts]  # fmt: skip
    if len(parts) == 1:
        state, result, fits = parts[0]
        areas, fit = state.frames["area"], result.ion_fit
        window = result.window_us
    else:
        areas = np.concatenate([s.frames["area"] for s, _, _ in parts])
        fits = parts[0][2]
        fit = fits.ion(areas)
        known = [(r.window_us, r.n_frames) for _, r, _ in parts if r.window_us is not None]
        window = None
        if known:
            w = np.array([k[1] for k in known], np.float64)
            edges = np.array([k[0] for k in known], np.float64)
            window = (float(np.average(edges[:, 0], weights=w)),
                      float(np.average(edges[:, 1], weights=w)))  # fmt: skip
    n_frames = int(sum(r.n_frames for _, r, _ in parts))
    ok = fit.fit_success
    return build_set_reference(
        key, areas, n_frames, fit.mean if ok else np.nan, fit.ci95 if ok else np.nan,
        fits.ion_bin_cuts, window, sources,
    )  # fmt: skip


def create_s2_section(
    cfg: Config, state_dir: Path, name: str, files: list[Path]
) -> SectionMade | None:
    """The S2 part of reference ``name`` from the ``.wfm`` files among ``files``
    (:mod:`~wavedqm.processors.reference_create`'s builder): each set folder's files analysed
    as the S2 processor would (in memory: no state, no output), one reference set per field
    setting. None when there is no ``.wfm`` file; ReferenceError when none is usable."""
    from wavedqm.formats.detect import WFM
    from wavedqm.processors.reference_create import SectionMade, files_of_format
    from wavedqm.processors.s2 import s2_options_from_config

    wfm = files_of_format(files, WFM)
    if not wfm:
        return None
    options, constants, overrides = s2_options_from_config(cfg)
    runs = RunContexts(constants or RunConstants(), dict(overrides or {}), fit_settings(options))
    by_set: dict[Path, list[Path]] = {}
    for path in wfm:
        by_set.setdefault(path.parent, []).append(path)
    skipped: list[tuple[Path, str]] = []
    sources: list[dict[str, Any]] = []
    analysed: dict[str, list[tuple[SetState, SetResult, FitSettings]]] = {}
    for set_dir, paths in sorted(by_set.items()):
        if not is_set_name(set_dir.name):
            why = (
                f"not in a set folder (its folder is {set_dir.name!r}; expected {EXPECTED_LAYOUT})"
            )
            skipped += [(p, why) for p in paths]
            continue
        try:
            ctx = runs.context(set_dir.parent)
        except ConfigError as err:
            skipped += [(p, str(err)) for p in paths]
            continue
        state = SetState(ctx.name, set_dir.name, set_dir)
        for path in sorted(paths):
            try:
                _, physics = runs.physics(ctx, set_dir.name, path)
                n, _ = analyse_file(path, state, physics, options.params,
                                    options.rerun_tolerance_us)  # fmt: skip
            except (InputFileError, OSError) as err:
                skipped.append((path, str(err)))
                continue
            sources.append({"file": str(path.resolve()), "run": ctx.name, "set": set_dir.name,
                            "frames": n})  # fmt: skip
            log.info("reference_file_added", reference=name, file=str(path), frames=n)
        if state.files:
            info, physics = runs.physics(ctx, set_dir.name, set_dir)
            result = set_result(state, info, physics, ctx.fits)
            analysed.setdefault(set_dir.name, []).append((state, result, ctx.fits))
    if not analysed:
        why = "; ".join(f"{p}: {w}" for p, w in skipped[:3])
        raise ReferenceError(
            f"reference {name!r}: none of the {len(wfm)} .wfm files could be analysed "
            f"(expected good FastFrame files laid out as {EXPECTED_LAYOUT}): {why}"
        )
    sets = {key: _pooled(key, parts) for key, parts in sorted(analysed.items())}
    reference = S2Reference(name, time.time(), sources, sets)
    meta, arrays = encode_reference(reference)
    path = save_section(state_dir, name, KIND, meta, arrays)
    frames = int(sum(s.n_frames for s in sets.values()))
    return SectionMade(KIND, path, len(sources), frames, "frames", skipped)
