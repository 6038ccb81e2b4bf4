"""Prometheus metrics of the online S2 analysis, on the daemon's registry.

Per set (labels ``run``, ``set``): the fitted ion S2 area (mean, sigma, ci95; mV·µs), the
set's S1 time, S2 duration and drift time (µs), the X-ray accepted fraction, X-ray
rejections by reason, frames and files processed (file rate: ``rate()`` of the files
counter). Per run: the S2 gain g_S2 (mV·µs per electron) and the recombination of each set.

Gauges hold the latest value of the set (NaN while unknown, e.g. before a fit succeeds).
Counters count work once: a frame's X-ray rejection is counted when the frame is first
classified (re-running pass 2 over a set when its window moves does not count it again).
Nothing here computes physics: the methods take the analysis' numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from wavedqm.xray_reasons import XRAY_REASON_LABELS, XrayReason

REJECTION_REASONS: tuple[str, ...] = tuple(
    label for label in XRAY_REASON_LABELS if label != XrayReason.PASSED_ALL_CUTS.label
)
"""Every ``reason`` of ``wavedqm_xray_rejected_total`` (pre-initialised at 0 per set)."""


def _value(x: float | None) -> float:
    if x is None:
        return math.nan
    return float(x)


class S2Metrics:
    """S2 metrics registered on ``registry`` (the daemon passes ``DqmMetrics().registry``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        per_set = ["run", "set"]
        self.area_mean = Gauge(
            "wavedqm_s2_area_mean_mv_us",
            "Gaussian-fit mean of the set's ion S2 areas (mV·µs); NaN without a good fit.",
            per_set,
            registry=r,
        )
        self.area_sigma = Gauge(
            "wavedqm_s2_area_sigma_mv_us",
            "Gaussian-fit sigma of the set's ion S2 areas (mV·µs).",
            per_set,
            registry=r,
        )
        self.area_ci95 = Gauge(
            "wavedqm_s2_area_ci95_mv_us",
            "95% confidence half-width of the fitted mean S2 area (mV·µs).",
            per_set,
            registry=r,
        )
        self.fit_ok = Gauge(
            "wavedqm_s2_fit_ok",
            "1 when the set's ion S2 areas have a good Gaussian fit, 0 when not (too few areas "
            "inside the fit range, or the fit failed).",
            per_set,
            registry=r,
        )
        self.fits_failed = Counter(
            "wavedqm_s2_fits_failed_total",
            "Publications of a set (one per file) that gave no S2 fit although the set held "
            "enough frames for one.",
            per_set,
            registry=r,
        )
        self.s1_time = Gauge(
            "wavedqm_s2_s1_time_us",
            "The set's S1 time: mode of the per-frame S1 times (µs).",
            per_set,
            registry=r,
        )
        self.duration = Gauge(
            "wavedqm_s2_duration_us",
            "Median S2 duration of the set after its range cut (µs).",
            per_set,
            registry=r,
        )
        self.drift_time = Gauge(
            "wavedqm_s2_drift_time_us",
            "Expected electron drift time of the set from its drift field (µs).",
            per_set,
            registry=r,
        )
        self.xray_accepted_ratio = Gauge(
            "wavedqm_xray_accepted_ratio",
            "Fraction of the set's classified frames accepted as X-ray events.",
            per_set,
            registry=r,
        )
        self.xray_rejected = Counter(
            "wavedqm_xray_rejected",
            "Frames rejected by the X-ray classification, by the first cut failed.",
            [*per_set, "reason"],
            registry=r,
        )
        self.frames_processed = Counter(
            "wavedqm_s2_frames_processed",
            "Frames (waveforms) of the set analysed.",
            per_set,
            registry=r,
        )
        self.files_processed = Counter(
            "wavedqm_s2_files_processed",
            "Files of the set analysed (file rate: rate() of this counter).",
            per_set,
            registry=r,
        )
        self.run_g_s2 = Gauge(
            "wavedqm_run_g_s2",
            "S2 gain of the run from the combined X-ray fit (mV·µs per electron).",
            ["run"],
            registry=r,
        )
        self.run_recombination = Gauge(
            "wavedqm_run_recombination",
            "Recombination fraction of each set of the run (at the set's drift field).",
            ["run", "set"],
            registry=r,
        )
        self._known_sets: set[tuple[str, str]] = set()

    def _init_set(self, run: str, set_name: str) -> None:
        """Create every series of a set at 0, so rate() and alerts see it from the start."""
        if (run, set_name) in self._known_sets:
            return
        self._known_sets.add((run, set_name))
        for reason in REJECTION_REASONS:
            self.xray_rejected.labels(run=run, set=set_name, reason=reason)
        self.frames_processed.labels(run=run, set=set_name)
        self.files_processed.labels(run=run, set=set_name)

    def set_updated(
        self,
        run: str,
        set_name: str,
        *,
        mean: float | None,
        sigma: float | None,
        ci95: float | None,
        s1_time_us: float | None,
        duration_us: float | None,
        drift_time_us: float | None,
        xray_accepted_ratio: float | None,
        new_rejections: Mapping[str, int],
        new_frames: int,
        new_files: int,
        fit_failed: bool = False,
    ) -> None:
        """After a file of the set: latest set values and the work done for this file.
        ``fit_failed``: no fit although the set had enough frames for one (counted).
        ``new_rejections``: frames classified for the first time, by rejection reason
        (``passed_all_cuts`` is ignored)."""
        self._init_set(run, set_name)
        labels = {"run": run, "set": set_name}
        self.area_mean.labels(**labels).set(_value(mean))
        self.area_sigma.labels(**labels).set(_value(sigma))
        self.area_ci95.labels(**labels).set(_value(ci95))
        self.fit_ok.labels(**labels).set(0.0 if mean is None else 1.0)
        if fit_failed:
            self.fits_failed.labels(**labels).inc()
        self.s1_time.labels(**labels).set(_value(s1_time_us))
        self.duration.labels(**labels).set(_value(duration_us))
        self.drift_time.labels(**labels).set(_value(drift_time_us))
        self.xray_accepted_ratio.labels(**labels).set(_value(xray_accepted_ratio))
        for reason, n in new_rejections.items():
            if reason in REJECTION_REASONS and n > 0:
                self.xray_rejected.labels(**labels, reason=reason).inc(int(n))
        if new_frames > 0:
            self.frames_processed.labels(**labels).inc(int(new_frames))
        if new_files > 0:
            self.files_processed.labels(**labels).inc(int(new_files))

    def run_updated(
        self, run: str, g_s2: float | None, recombination: Mapping[str, float | None]
    ) -> None:
        """After the run-level calibration: g_S2 and the recombination of each set."""
        self.run_g_s2.labels(run=run).set(_value(g_s2))
        for set_name, r in recombination.items():
            self.run_recombination.labels(run=run, set=set_name).set(_value(r))
