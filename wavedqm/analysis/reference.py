"""A reference run for the light quality tests: what the experts chose as good, pooled from the
light results of its files (pure: built from :class:`~wavedqm.analysis.light.LightResult`,
stored by :mod:`wavedqm.exporters.reference_store`).

Per channel (ADC × channel) it holds, for the per-event baseline and noise (ADC16), the pooled
quantile profile (:func:`~wavedqm.analysis.quality_stats.pool_profiles`: the mixture of the
files' distributions, each weighted by its valid events) and the median with its 16/84 %
errors read off that profile; the valid events; and, for the clipped and negative-excursion
flags, the summed counts ``k`` (events flagged) and ``n`` (events above the threshold the
fraction is taken over). Where it came from: the files, their events and data times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.light import LightResult
from wavedqm.analysis.quality_stats import pool_profiles, profile_levels, quantile_at
from wavedqm.analysis.stats import Spread

DISTRIBUTIONS = ("baseline", "noise")
RATES = ("clipped", "negative")


@dataclass(eq=False)
class LightReference:
    """One reference (see module doc); arrays are (n_adcs, n_channels) unless said."""

    name: str
    created_at: float
    """Unix time it was made (s)."""
    sources: list[dict[str, Any]]
    """One entry per file: ``file`` (path), ``events``, ``time_start_s``, ``time_end_s``."""
    profiles: dict[str, np.ndarray]
    """``baseline``/``noise`` → (a×c×L) float64 quantiles (ADC16), NaN without events."""
    valid_events: np.ndarray
    """int64: events with a valid waveform, summed over the files."""
    rates: dict[str, tuple[np.ndarray, np.ndarray]]
    """``clipped``/``negative`` → (k, n) int64 summed over the files."""
    confidence_level: float = C.CONFIDENCE_LEVEL
    spreads: dict[str, Spread] = field(init=False)
    """Median and quantile errors of each distribution, from its profile."""

    def __post_init__(self) -> None:
        lo, hi = (1 - self.confidence_level) / 2, (1 + self.confidence_level) / 2
        self.spreads = {}
        for quantity, profile in self.profiles.items():
            median = quantile_at(profile, 0.5)
            self.spreads[quantity] = Spread(
                median=median,
                err_low=median - quantile_at(profile, lo),
                err_high=quantile_at(profile, hi) - median,
            )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.valid_events.shape)  # type: ignore[return-value]

    @property
    def n_events(self) -> int:
        return int(sum(int(s.get("events", 0)) for s in self.sources))

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for ``wavedqm reference show`` and ``summary.json``)."""
        noise = self.spreads["noise"].median
        baseline = self.spreads["baseline"].median
        finite = np.isfinite(noise)
        return {
            "name": self.name,
            "created_at": self.created_at,
            "files": len(self.sources),
            "events": self.n_events,
            "sources": self.sources,
            "channels_with_data": int(np.count_nonzero(finite)),
            "median_noise_adc16": float(np.median(noise[finite])) if finite.any() else None,
            "median_baseline_adc16": (float(np.median(baseline[finite])) if finite.any() else None),
        }


def source_entry(file: str, light: LightResult) -> dict[str, Any]:
    """The ``sources`` entry of one file of a reference."""
    return {
        "file": file,
        "events": int(light.n_events),
        "time_start_s": light.time_start_s,
        "time_end_s": light.time_end_s,
    }


def build_light_reference(
    name: str,
    files: Sequence[tuple[str, LightResult]],
    created_at: float,
    confidence_level: float = C.CONFIDENCE_LEVEL,
) -> LightReference:
    """Pool the light results of ``files`` (``(path, result)``, each with its profiles) into a
    reference. Raises ValueError when there is no file, a result has no profile, or the files'
    channel layouts differ."""
    if not files:
        raise ValueError("a reference needs at least one file with light events")
    shape = files[0][1].active.shape
    for path, light in files:
        if light.active.shape != shape:
            raise ValueError(f"{path}: light layout {light.active.shape} (expected {shape})")
        if not light.profiles or light.valid_events is None:
            raise ValueError(f"{path}: the light result has no quantile profiles")
    weights = [np.asarray(light.valid_events) for _, light in files]
    profiles = {
        q: pool_profiles([np.asarray(light.profiles[q]) for _, light in files], weights)
        for q in DISTRIBUTIONS
    }
    rates = {}
    for flag in RATES:
        k = sum(np.asarray(light.fractions[flag]["all"]["channel"].k) for _, light in files)
        n = sum(np.asarray(light.fractions[flag]["all"]["channel"].n) for _, light in files)
        rates[flag] = (np.asarray(k, np.int64), np.asarray(n, np.int64))
    return LightReference(
        name=name,
        created_at=created_at,
        sources=[source_entry(path, light) for path, light in files],
        profiles=profiles,
        valid_events=np.asarray(sum(weights), np.int64),
        rates=rates,
        confidence_level=confidence_level,
    )


def check_levels(profile: np.ndarray) -> None:
    """Raise ValueError when a stored profile does not have the levels this version uses."""
    if np.shape(profile)[-1] != profile_levels().size:
        raise ValueError(
            f"profiles of {np.shape(profile)[-1]} levels (expected {profile_levels().size})"
        )
