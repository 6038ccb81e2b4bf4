"""Prometheus metrics of the charge processor, on the daemon's registry. Nothing here
computes physics: the methods take the reader's tallies and the diagnostics' numbers.

- ``wavedqm_charge_hits_total``: charge hits read (every cause);
- ``wavedqm_charge_hits_rejected_total{cause}``: hits not accumulated, by cause
  (``outside_grid``, ``disabled``, ``invalid_position``, ``invalid_charge``);
- per run (label ``run``): ``wavedqm_voxel_occupied_ratio`` (active voxels hit at least
  once), ``wavedqm_voxel_dead_region_ratio`` (active voxels never hit),
  ``wavedqm_voxel_mean_hits_per_occupied``, ``wavedqm_voxel_files`` (files in the run's
  accumulator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

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
