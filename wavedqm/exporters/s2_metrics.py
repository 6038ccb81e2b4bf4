"""Prometheus metrics of the online S2 analysis, on the daemon's registry.

Per set (labels ``run``, ``set``): the fitted ion S2 area (mean, sigma, ci95; mV·µs), the
set's S1 time, S2 duration and drift time (µs), the X-ray accepted fraction, X-ray
rejections by reason, frames and files processed (file rate: ``rate()`` of the files
counter); how the set changes file by file (:mod:`wavedqm.analysis.s2_trend`): the shift of
its fitted mean with the newest file in standard errors, its integration window and how far
each edge moved since its first file (µs), its newest file's time (unix s), its usual file
interval (s) and the files of its folder not analysed yet. Per run: the S2 gain g_S2 (mV·µs
per electron) and the recombination of each set.

Quality tests against the reference run (:mod:`wavedqm.analysis.s2_quality`):
``wavedqm_s2_quality_status{run, set, test}`` per test and ``wavedqm_s2_quality_worst_status{run,
set}`` (−1 not enough data, 0 ok, 1 warning, 2 error), from the set's first publication with a
reference in use; every quality series is removed as soon as a set is published with no
reference (so that a quality alert resolves); ``wavedqm_s2_quality_reference_errors_total``
counts a reference part that could not be used.

Gauges hold the latest value of the set (NaN while unknown, e.g. before a fit succeeds); every
series of a set exists from its first publication (gauges NaN, counters 0), so rules see it
before its first change.
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

WINDOW_EDGES: tuple[str, ...] = ("start", "end")
"""``edge`` of ``wavedqm_s2_window_shift_us``."""


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
        self.mean_shift = Gauge(
            "wavedqm_s2_mean_shift_std_errors",
            "Shift of the set's fitted mean S2 area with its newest file(s), in standard "
            "errors: (fitted mean of the new file's areas - fitted mean of the set's earlier "
            "files, both in the current window) / sqrt(se_new^2 + se_earlier^2), se = ci95 / "
            "1.96 from the Gaussian fit's covariance; equal to the jump of the set's mean "
            "between consecutive files over its standard error. NaN without both fits (the "
            "set's first file, a file with too few areas).",
            per_set,
            registry=r,
        )
        self.window_start = Gauge(
            "wavedqm_s2_window_start_us",
            "Start of the set's S2 integration window, S2 start median - 1 sigma (µs); NaN "
            "while unknown.",
            per_set,
            registry=r,
        )
        self.window_end = Gauge(
            "wavedqm_s2_window_end_us",
            "End of the set's S2 integration window, S2 end median + 0.5 sigma (µs); NaN "
            "while unknown.",
            per_set,
            registry=r,
        )
        self.window_shift = Gauge(
            "wavedqm_s2_window_shift_us",
            "How far an edge (start, end) of the set's integration window moved since the "
            "set's first window, the one its first file(s) gave (µs, later positive); NaN "
            "while unknown.",
            [*per_set, "edge"],
            registry=r,
        )
        self.last_file_timestamp = Gauge(
            "wavedqm_s2_last_file_timestamp_seconds",
            "Modification time of the newest file the set has analysed (unix s): when the "
            "scope last wrote a file of the set.",
            per_set,
            registry=r,
        )
        self.file_interval = Gauge(
            "wavedqm_s2_file_interval_seconds",
            "Median interval between the modification times of the set's consecutive files "
            "(s); NaN with fewer than 3 files.",
            per_set,
            registry=r,
        )
        self.files_behind = Gauge(
            "wavedqm_s2_files_behind",
            "Files of the set's folder (*.wfm) not analysed yet, counted when the set was last "
            "published (after each of its files): waiting in the daemon's queue, settling or "
            "still being written; files the S2 analysis refused are not counted, files the "
            "daemon refused before it (empty, too large) are. NaN when the folder could not "
            "be listed.",
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
        self.quality_status = Gauge(
            "wavedqm_s2_quality_status",
            "Status of a quality test of the set against the reference's set of the same "
            "fields, after the set's latest file: -1 not enough data, 0 ok, 1 warning, 2 error.",
            [*per_set, "test"],
            registry=r,
        )
        self.quality_worst = Gauge(
            "wavedqm_s2_quality_worst_status",
            "Worst quality-test status of the set against the reference (-1 not enough data, "
            "0 ok, 1 warning, 2 error).",
            per_set,
            registry=r,
        )
        self.quality_reference_errors = Counter(
            "wavedqm_s2_quality_reference_errors",
            "Times the S2 part of the reference in use could not be read or decoded.",
            registry=r,
        )
        self._known_sets: set[tuple[str, str]] = set()
        self._quality: dict[tuple[str, str], set[str]] = {}
        """Per set, the tests whose status series exist."""

    def _init_set(self, run: str, set_name: str) -> None:
        """Create every series of a set, counters at 0 and gauges NaN (unknown), so rate(),
        increase() and alerts see it from the start."""
        if (run, set_name) in self._known_sets:
            return
        self._known_sets.add((run, set_name))
        labels = {"run": run, "set": set_name}
        for reason in REJECTION_REASONS:
            self.xray_rejected.labels(**labels, reason=reason)
        for counter in (self.frames_processed, self.files_processed, self.fits_failed):
            counter.labels(**labels)
        for gauge in self._set_gauges():
            gauge.labels(**labels).set(math.nan)
        for edge in WINDOW_EDGES:
            self.window_shift.labels(**labels, edge=edge).set(math.nan)

    def _set_gauges(self) -> tuple[Gauge, ...]:
        """The per-set gauges labelled ``run``, ``set`` only."""
        return (
            self.area_mean, self.area_sigma, self.area_ci95, self.fit_ok, self.s1_time,
            self.duration, self.drift_time, self.xray_accepted_ratio, self.mean_shift,
            self.window_start, self.window_end, self.last_file_timestamp, self.file_interval,
            self.files_behind,
        )  # fmt: skip

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

    def trend_updated(
        self,
        run: str,
        set_name: str,
        *,
        mean_shift_std_errors: float | None,
        window_start_us: float | None,
        window_end_us: float | None,
        window_start_shift_us: float | None,
        window_end_shift_us: float | None,
        last_file_s: float | None,
        file_interval_s: float | None,
        files_behind: int | None,
    ) -> None:
        """After a publication of the set: how it changed with its newest file(s)
        (:mod:`wavedqm.analysis.s2_trend`; None or NaN: unknown)."""
        self._init_set(run, set_name)
        labels = {"run": run, "set": set_name}
        self.mean_shift.labels(**labels).set(_value(mean_shift_std_errors))
        self.window_start.labels(**labels).set(_value(window_start_us))
        self.window_end.labels(**labels).set(_value(window_end_us))
        self.window_shift.labels(**labels, edge="start").set(_value(window_start_shift_us))
        self.window_shift.labels(**labels, edge="end").set(_value(window_end_shift_us))
        self.last_file_timestamp.labels(**labels).set(_value(last_file_s))
        self.file_interval.labels(**labels).set(_value(file_interval_s))
        self.files_behind.labels(**labels).set(_value(files_behind))

    def run_updated(
        self, run: str, g_s2: float | None, recombination: Mapping[str, float | None]
    ) -> None:
        """After the run-level calibration: g_S2 and the recombination of each set."""
        self.run_g_s2.labels(run=run).set(_value(g_s2))
        for set_name, r in recombination.items():
            self.run_recombination.labels(run=run, set=set_name).set(_value(r))

    def quality_updated(
        self, run: str, set_name: str, statuses: Mapping[str, int], worst: int
    ) -> None:
        """The set's quality-test statuses (test name -> code) and its worst status."""
        key = (run, set_name)
        for test in self._quality.get(key, set()) - set(statuses):
            self.quality_status.remove(run, set_name, test)
        for test, code in statuses.items():
            self.quality_status.labels(run=run, set=set_name, test=test).set(int(code))
        self.quality_worst.labels(run=run, set=set_name).set(int(worst))
        self._quality[key] = set(statuses)

    def quality_cleared(self) -> None:
        """No reference in use: every set's quality series go."""
        for (run, set_name), tests in self._quality.items():
            for test in tests:
                self.quality_status.remove(run, set_name, test)
            self.quality_worst.remove(run, set_name)
        self._quality = {}
