"""Quality tests of one file's light channels against a reference run (pure, no I/O).

Each configured test (``[quality.tests.<name>]``: a quantity, a kind, ``warning`` and
``error`` intervals, ``min_events``) gives every channel a value and a status: ok (value in
``warning``), warning (in ``error``), error (outside), or not enough data (the file or the
reference has fewer than ``min_events`` valid events for the channel, or the value is
undefined). The values (see ``constants.QUALITY_KINDS``):

- ``range``: the file's median (ADC16) of the baseline / noise, or the flagged fraction of
  clipped / negative;
- ``ratio``: the file's median over the reference's;
- ``sigma``: baseline / noise: the shift of the median in σ, σ the quadrature sum of the 16/84 %
  errors facing each other (as the old tool's shift test,
  :func:`~wavedqm.analysis.stats.shift_in_sigmas`); clipped / negative: the pooled
  two-proportion z (:func:`~wavedqm.analysis.quality_stats.rate_sigmas`);
- ``ks`` / ``ks_distance``: KS p-value / distance of the per-event distributions;
- ``chi2`` / ``chi2_ndf``: χ² p-value / χ² per degree of freedom on bins equiprobable under the
  reference.

The global test ``channels_failing`` is the fraction of the tested channels (monitored, with
enough data for some test) with an error in some test. A channel's *worst* status is the
highest of its tests (not enough data only when every test said so). Known-noisy channels
(status bit 4) are tested and shown like any other; ``alert_masked`` tells the exporter to
keep them out of alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import has_status_bit
from wavedqm.analysis.light import LightResult
from wavedqm.analysis.quality_stats import (
    chi2_profiles,
    grade,
    ks_distance,
    ks_pvalue,
    rate_sigmas,
)
from wavedqm.analysis.ratag_fields import json_bounds, json_num
from wavedqm.analysis.reference import LightReference
from wavedqm.analysis.stats import shift_in_sigmas
from wavedqm.config import QualityConfig, QualityTestConfig

CHANNELS_FAILING = "channels_failing"
"""The name of the global test."""


@dataclass(frozen=True, eq=False)
class TestOutcome:
    """One test over every channel."""

    name: str
    quantity: str
    kind: str
    warning: tuple[float, float]
    error: tuple[float, float]
    value: np.ndarray
    """float64 (a×c), in the kind's units (NaN: not enough data)."""
    status: np.ndarray
    """int8 (a×c): ``constants.QUALITY_*`` codes."""

    def counts(self, monitored: np.ndarray) -> dict[str, int]:
        """Monitored channels per status name."""
        return {
            name: int(np.count_nonzero(monitored & (self.status == code)))
            for code, name in C.QUALITY_STATUS_NAMES.items()
        }


@dataclass(frozen=True, eq=False)
class QualityResult:
    """Every test of one file against one reference."""

    reference: str
    reference_files: int
    tests: list[TestOutcome]
    monitored: np.ndarray
    """bool (a×c): the channels tested (the light result's monitored ones)."""
    worst: np.ndarray
    """int8 (a×c): the highest status of the channel's tests (−1 for unmonitored channels)."""
    alert_masked: np.ndarray
    """bool (a×c): known noisy (status bit 4): on the pages, kept out of alerts."""
    channels_failing: float
    """Fraction of the tested channels (monitored, some test with enough data) whose worst
    status is an error; NaN when no channel could be tested."""
    channels_failing_status: int
    channels_failing_thresholds: tuple[float, float]

    @property
    def status(self) -> int:
        """The file's overall status: the worst of every channel and the global test."""
        codes = self.worst[self.monitored]
        worst = int(codes.max()) if codes.size else C.QUALITY_NOT_ENOUGH
        return max(worst, self.channels_failing_status)

    def failed(self) -> list[dict[str, Any]]:
        """Each (test, channel) with a warning or an error, errors first."""
        rows = []
        for test in self.tests:
            bad = self.monitored & (test.status >= C.QUALITY_WARNING)
            for adc, channel in zip(*np.nonzero(bad), strict=True):
                code = int(test.status[adc, channel])
                rows.append({
                    "test": test.name,
                    "quantity": test.quantity,
                    "kind": test.kind,
                    "adc": int(adc),
                    "channel": int(channel),
                    "status": C.QUALITY_STATUS_NAMES[code],
                    "value": json_num(test.value[adc, channel]),
                    "warning": json_bounds(test.warning),
                    "error": json_bounds(test.error),
                    "alert_masked": bool(self.alert_masked[adc, channel]),
                })  # fmt: skip
        rows.sort(key=lambda r: (r["status"] != "error", r["test"], r["adc"], r["channel"]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The ``quality`` section of ``summary.json``."""
        warn, err = self.channels_failing_thresholds
        return {
            "reference": self.reference,
            "reference_files": self.reference_files,
            "status": C.QUALITY_STATUS_NAMES[self.status],
            "tests": {
                t.name: {
                    "quantity": t.quantity,
                    "kind": t.kind,
                    "warning": json_bounds(t.warning),
                    "error": json_bounds(t.error),
                    "channels": t.counts(self.monitored),
                }
                for t in self.tests
            },
            CHANNELS_FAILING: {
                "value": json_num(self.channels_failing),
                "warning": [0.0, warn],
                "error": [0.0, err],
                "status": C.QUALITY_STATUS_NAMES[self.channels_failing_status],
            },
            "worst_by_channel": {
                name: int(np.count_nonzero(self.monitored & (self.worst == code)))
                for code, name in C.QUALITY_STATUS_NAMES.items()
            },
            "failed": self.failed(),
        }


def _value(test: QualityTestConfig, light: LightResult, ref: LightReference) -> np.ndarray:
    """The test's value per channel, NaN where there is not enough data."""
    q, kind = test.quantity, test.kind
    if q in ("clipped", "negative"):
        frac = light.fractions[q]["all"]["channel"]
        k, n = np.asarray(frac.k, np.float64), np.asarray(frac.n, np.float64)
        k_ref, n_ref = (np.asarray(a, np.float64) for a in ref.rates[q])
        enough = (n >= test.min_events) & (n_ref >= test.min_events)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = k / n if kind == "range" else rate_sigmas(k, n, k_ref, n_ref)
        return np.where(enough, value, np.nan)
    n_file = np.asarray(light.valid_events)
    n_ref = ref.valid_events
    enough = (n_file >= test.min_events) & (n_ref >= test.min_events)
    current = light.selections["all"].baseline if q == "baseline" else light.noise
    reference = ref.spreads[q]
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "range":
            value = np.asarray(current.median, np.float64)
        elif kind == "ratio":
            value = current.median / reference.median
        elif kind == "sigma":
            value = shift_in_sigmas(current, reference)
        elif kind in ("ks", "ks_distance"):
            d = ks_distance(light.profiles[q], ref.profiles[q])
            value = d if kind == "ks_distance" else ks_pvalue(d, n_file, n_ref)
        else:
            chi2, ndf, p = chi2_profiles(light.profiles[q], n_file, ref.profiles[q], n_ref)
            value = p if kind == "chi2" else chi2 / ndf
    return np.where(enough, value, np.nan)


def evaluate_light(
    light: LightResult, reference: LightReference, cfg: QualityConfig
) -> QualityResult:
    """Run every configured test of ``light`` against ``reference``. Raises ValueError when the
    reference's channel layout is not the file's."""
    if reference.shape != light.active.shape:
        raise ValueError(
            f"reference {reference.name!r} has {reference.shape[0]} ADCs x "
            f"{reference.shape[1]} channels (the file has {light.active.shape[0]} x "
            f"{light.active.shape[1]})"
        )
    monitored = np.asarray(light.monitored, bool)
    tests = []
    for name, test in cfg.tests.items():
        value = _value(test, light, reference)
        status = grade(value, test.warning, test.error)
        status[~monitored] = C.QUALITY_NOT_ENOUGH
        tests.append(TestOutcome(name, test.quantity, test.kind, test.warning, test.error,
                                 value, status))  # fmt: skip
    worst = _worst(tests, monitored)
    tested = monitored & (worst != C.QUALITY_NOT_ENOUGH)
    n_tested = int(tested.sum())
    failing = (
        float(np.count_nonzero(tested & (worst == C.QUALITY_ERROR)) / n_tested)
        if n_tested
        else float("nan")
    )
    warn, err = cfg.channels_failing
    return QualityResult(
        reference=reference.name,
        reference_files=len(reference.sources),
        tests=tests,
        monitored=monitored,
        worst=worst,
        alert_masked=has_status_bit(light.known_status, C.STATUS_KNOWN_NOISY),
        channels_failing=failing,
        channels_failing_status=int(grade(np.array(failing), (0.0, warn), (0.0, err))),
        channels_failing_thresholds=(warn, err),
    )


def _worst(tests: list[TestOutcome], monitored: np.ndarray) -> np.ndarray:
    if not tests:
        worst = np.full(monitored.shape, C.QUALITY_NOT_ENOUGH, np.int8)
    else:
        worst = np.max(np.stack([t.status for t in tests]), axis=0).astype(np.int8)
    worst[~monitored] = C.QUALITY_NOT_ENOUGH
    return worst


def status_counts(results: Mapping[str, TestOutcome], monitored: np.ndarray
                  ) -> dict[tuple[str, str], int]:  # fmt: skip
    """``(test, status name) → monitored channels`` over ``results`` (for the metrics)."""
    return {
        (name, status): count
        for name, test in results.items()
        for status, count in test.counts(monitored).items()
    }
