"""Prometheus metrics of the charge processor, on the daemon's registry. Nothing here
computes physics: the methods take the reader's tallies and the diagnostics' numbers.

- ``wavedqm_charge_hits_total``: charge hits read (every cause);
- ``wavedqm_charge_hits_rejected_total{cause}``: hits not accumulated, by cause
  (``outside_grid``, ``disabled``, ``invalid_position``, ``invalid_charge``);
- per run (label ``run``): ``wavedqm_voxel_occupied_ratio`` (active voxels hit at least
  once), ``wavedqm_voxel_dead_region_ratio`` (active voxels never hit),
  ``wavedqm_voxel_mean_hits_per_occupied``, ``wavedqm_voxel_files`` (files in the run's
  accumulator);
- quality against the reference run (:class:`VoxelQualityMetrics`, issue 15):
  ``wavedqm_voxels_quality_status{run, test}`` (-1 not enough data, 0 ok, 1 warning, 2 error),
  ``wavedqm_voxels_quality_value{run, test}`` (the test's value, NaN when undefined),
  ``wavedqm_voxels_quality_worst_status{run}`` and
  ``wavedqm_voxels_quality_reference_errors_total`` (the reference's voxel part could not be
  used). Only the run last tested has series; with no reference in use there are none, so
  that a quality alert resolves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from wavedqm.analysis.voxel_quality import VoxelQualityResult

REJECTION_CAUSES = ("outside_grid", "disabled", "invalid_position", "invalid_charge")
"""Every ``cause`` of ``wavedqm_charge_hits_rejected_total`` (series exist from the start)."""


class ChargeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.hits = Counter("wavedqm_charge_hits_total", "Charge hits read from files.", registry=r)
        self.rejected = Counter(
            "wavedqm_charge_hits_rejected_total",
            "Charge hits not accumulated into voxels, by cause.",
            ["cause"],
            registry=r,
        )
        for cause in REJECTION_CAUSES:
            self.rejected.labels(cause=cause)
        self.occupied = Gauge(
            "wavedqm_voxel_occupied_ratio",
            "Fraction of the run's active voxels hit at least once.",
            ["run"],
            registry=r,
        )
        self.dead = Gauge(
            "wavedqm_voxel_dead_region_ratio",
            "Fraction of the run's active voxels never hit (dead regions).",
            ["run"],
            registry=r,
        )
        self.mean_hits = Gauge(
            "wavedqm_voxel_mean_hits_per_occupied",
            "Mean hits per occupied voxel of the run.",
            ["run"],
            registry=r,
        )
        self.files = Gauge(
            "wavedqm_voxel_files", "Files in the run's voxel accumulator.", ["run"], registry=r
        )

    def file_done(self, tallies: Mapping[str, int]) -> None:
        """After a file: its hits (``TALLY_NAMES`` of :mod:`wavedqm.kernels.voxels`)."""
        self.hits.inc(int(tallies.get("hits", 0)))
        for cause in REJECTION_CAUSES:
            n = int(tallies.get(cause, 0))
            if n:
                self.rejected.labels(cause=cause).inc(n)

    def run_updated(
        self, run: str, occupied: float, dead: float, mean_hits: float, n_files: int
    ) -> None:
        def value(x: float) -> float:
            return x if math.isfinite(x) else math.nan

        self.occupied.labels(run=run).set(value(occupied))
        self.dead.labels(run=run).set(value(dead))
        self.mean_hits.labels(run=run).set(value(mean_hits))
        self.files.labels(run=run).set(n_files)


class VoxelQualityMetrics:
    """The voxel quality gauges (module doc), registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.status = Gauge(
            "wavedqm_voxels_quality_status",
            "Status of the voxel quality test of the run against the reference, after its last "
            "file: -1 not enough data, 0 ok, 1 warning, 2 error.",
            ["run", "test"],
            registry=r,
        )
        self.value = Gauge(
            "wavedqm_voxels_quality_value",
            "Value of the voxel quality test of the run (fraction, ratio, p-value, KS "
            "distance or chi2/ndf; NaN when undefined).",
            ["run", "test"],
            registry=r,
        )
        self.worst = Gauge(
            "wavedqm_voxels_quality_worst_status",
            "Worst voxel quality-test status of the run against the reference: -1 not enough "
            "data, 0 ok, 1 warning, 2 error.",
            ["run"],
            registry=r,
        )
        self.reference_errors = Counter(
            "wavedqm_voxels_quality_reference_errors",
            "Times the voxel part of the reference in use could not be read or decoded.",
            registry=r,
        )
        self._series: set[tuple[str, str]] = set()
        self._runs: set[str] = set()

    def run_tested(self, run: str, quality: VoxelQualityResult | None) -> None:
        """The gauges after a file of ``run`` (``quality`` None: no reference in use, every
        series removed)."""
        if quality is None:
            self._drop(set(), set())
            return
        series = {(run, t.name) for t in quality.tests}
        self._drop(series, {run})
        for t in quality.tests:
            self.status.labels(run=run, test=t.name).set(t.status)
            self.value.labels(run=run, test=t.name).set(
                t.value if math.isfinite(t.value) else math.nan
            )
        self.worst.labels(run=run).set(quality.status)
        self._series, self._runs = series, {run}

    def _drop(self, keep: set[tuple[str, str]], keep_runs: set[str]) -> None:
        for key in self._series - keep:
            self.status.remove(*key)
            self.value.remove(*key)
        for run in self._runs - keep_runs:
            self.worst.remove(run)
        self._series = self._series & keep
        self._runs = self._runs & keep_runs
