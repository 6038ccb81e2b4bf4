"""History of processed files and rollups over the previous N files (spec: light-dqm.md,
"Comparison with previous files").

Each processed file gives one :class:`FileRecord` (per-channel baseline/noise medians and
errors for all/beam/self events, clipped/negative numerators and denominators by granularity
and selection, optional power in spectral regions of interest, data start/end time), appended
to the history store in the state folder (``STATE/history.h5``). A
:class:`Rollup` summarises the last N stored files (config: all, none, last N); its all-events
baseline (:func:`baseline_previous`) is what the 3σ shift test (baseline status 2) of
:meth:`~wavedqm.analysis.light.LightAccumulator.result` compares the current file against.

Rollup rules (spec: "mean of medians, errors added in quadrature; fractions: sum numerators and
denominators, recompute the interval"):

- median: the mean over files of the files' medians, NaN-aware (a file where the channel had no
  valid waveform is left out of that channel's mean, not poisoning it);
- ``err_low`` / ``err_high``: ``sqrt(Σ err²)`` over the same files, **not divided by the number
  of files**. That is what the old tool did (``read_from_json``: ``np.mean`` of the centres,
  ``np.sqrt(np.sum(err**2))`` of the errors) and the spec's wording, so status 2 keeps the
  meaning it had. The errors are 16/84% spreads over events (not errors of a median), and the
  band grows as √N: with a long "all" history the 3σ shift test gets less sensitive, a
  "last N" setting keeps it sharp. (Dividing by N, the error of a mean, would instead shrink
  the band to nothing.) :func:`combine_spreads` is the one place that decides;
- fractions: :meth:`Fraction.from_counts` of the summed ``k`` and ``n`` (Clopper–Pearson
  interval recomputed at the requested confidence level);
- spectra regions of interest: mean over the files that have them (V²).

The records are stored, and rolled up from disk in bounded blocks, by
:class:`wavedqm.exporters.history_store.HistoryStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.fractions import GRANULARITIES, Fraction
from wavedqm.analysis.light import FLAGS, SELECTIONS, LightResult
from wavedqm.analysis.stats import Spread

QUANTITIES = ("baseline", "noise")
"""The per-channel quantities a record holds (ADC16)."""


@dataclass(frozen=True, eq=False)
class Counts:
    """Numerator and denominator of one flag fraction, shape of the granularity (int64)."""

    k: np.ndarray
    """Events flagged."""
    n: np.ndarray
    """Events in the denominator."""

    def fraction(self, cl: float = C.CONFIDENCE_LEVEL) -> Fraction:
        return Fraction.from_counts(self.k, self.n, cl)


@dataclass(eq=False)
class FileRecord:
    """One processed file's per-channel results, as stored in the history (one row)."""

    file: str
    """File name (no folder)."""
    processed_at: float
    """Unix time the file was processed (s)."""
    time_start_s: float | None
    """Unix time of the earliest event (s); None without events."""
    time_end_s: float | None
    n_events: int
    events_by_trigger: dict[str, int]
    """Events with trig_type 1 ("beam") and 0 ("self")."""
    baseline: dict[str, Spread]
    """Per selection "all"|"beam"|"self": median baseline with 16/84% errors, (a×c) ADC16, NaN
    where the channel had no valid waveform."""
    noise: dict[str, Spread]
    """Same for the noise (ADC16)."""
    counts: dict[str, dict[str, dict[str, Counts]]]
    """``counts[flag][selection][granularity]``: flag "clipped"|"negative", granularity
    "channel" (a×c), "epcb" (n_epcb,), "tpc" (n_tpc,), "total" (0-d)."""
    spectra_roi: np.ndarray | None = None
    """Power summed per region of interest (V²), last axis = region; None if not computed."""
    roi_centres_mhz: np.ndarray | None = None
    """Centres of the regions of interest (MHz), length ``spectra_roi.shape[-1]``."""

    @classmethod
    def from_light(
        cls,
        file: str | Path,
        light: LightResult,
        processed_at: float,
        spectra_roi: np.ndarray | None = None,
        roi_centres_mhz: np.ndarray | None = None,
    ) -> FileRecord:
        """The record of one file from its :class:`LightResult` (arrays copied)."""
        return cls(
            file=Path(file).name,
            processed_at=float(processed_at),
            time_start_s=light.time_start_s,
            time_end_s=light.time_end_s,
            n_events=int(light.n_events),
            events_by_trigger={t: int(light.events_by_trigger.get(t, 0)) for t in C.TRIGGERS},
            baseline={s: _copy_spread(light.selections[s].baseline) for s in SELECTIONS},
            noise={s: _copy_spread(light.selections[s].noise) for s in SELECTIONS},
            counts={
                flag: {
                    sel: {
                        g: Counts(
                            k=np.array(light.fractions[flag][sel][g].k, np.int64),
                            n=np.array(light.fractions[flag][sel][g].n, np.int64),
                        )
                        for g in GRANULARITIES
                    }
                    for sel in SELECTIONS
                }
                for flag in FLAGS
            },
            spectra_roi=None if spectra_roi is None else np.array(spectra_roi, np.float64),
            roi_centres_mhz=(
                None if roi_centres_mhz is None else np.array(roi_centres_mhz, np.float64)
            ),
        )

    @property
    def grid_shape(self) -> tuple[int, int]:
        shape = self.baseline["all"].median.shape
        if len(shape) != 2:
            raise ValueError(f"baseline median: shape {shape} (expected (n_adcs, n_channels))")
        return (int(shape[0]), int(shape[1]))


def _copy_spread(s: Spread) -> Spread:
    return Spread(
        median=np.array(s.median, np.float64),
        err_low=np.array(s.err_low, np.float64),
        err_high=np.array(s.err_high, np.float64),
    )


@dataclass(frozen=True, eq=False)
class Rollup:
    """Summary of the previous files (see the module docstring for the rules)."""

    n_files: int
    files: list[str]
    """File names, oldest first."""
    time_start_s: float | None
    """Earliest data start of those files (unix s); None if none had events."""
    time_end_s: float | None
    n_events: int
    events_by_trigger: dict[str, int]
    baseline: dict[str, Spread]
    """Per selection: mean of the medians, errors added in quadrature (ADC16)."""
    noise: dict[str, Spread]
    fractions: dict[str, dict[str, dict[str, Fraction]]]
    """``fractions[flag][selection][granularity]`` from summed counts."""
    spectra_roi: np.ndarray | None = None
    """Mean over the files with spectra (V²); None if none had them."""
    roi_centres_mhz: np.ndarray | None = None
    n_files_with_spectra: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nested lists, NaN as None."""
        return {
            "n_files": self.n_files,
            "files": list(self.files),
            "time_start_s": self.time_start_s,
            "time_end_s": self.time_end_s,
            "n_events": self.n_events,
            "events_by_trigger": dict(self.events_by_trigger),
            **{
                f"{q}_adc16": {
                    sel: {
                        "median": _json(s.median),
                        "err_low": _json(s.err_low),
                        "err_high": _json(s.err_high),
                    }
                    for sel, s in getattr(self, q).items()
                }
                for q in QUANTITIES
            },
            "fractions": {
                flag: {
                    sel: {g: f.to_dict() for g, f in by_gran.items()}
                    for sel, by_gran in by_sel.items()
                }
                for flag, by_sel in self.fractions.items()
            },
            "spectra_roi_v2": None if self.spectra_roi is None else _json(self.spectra_roi),
            "roi_centres_mhz": (
                None if self.roi_centres_mhz is None else _json(self.roi_centres_mhz)
            ),
            "n_files_with_spectra": self.n_files_with_spectra,
        }


def baseline_previous(rollup: Rollup | None) -> Spread | None:
    """The all-events baseline of the rollup: ``previous`` for
    :meth:`~wavedqm.analysis.light.LightAccumulator.result` (status 2); None without history."""
    return None if rollup is None else rollup.baseline["all"]


def _json(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    obj = a.astype(object)
    obj[np.isnan(a)] = None
    return obj.tolist()


def combine_spreads(medians: np.ndarray, err_low: np.ndarray, err_high: np.ndarray) -> Spread:
    """Rollup of per-file spreads stacked along axis 0: NaN-aware mean of the medians, errors
    added in quadrature (``sqrt(Σ err²)``, not divided by the number of files, as the old
    tool). Files whose median is NaN for a cell are left out of that cell entirely; a cell NaN
    in every file stays NaN."""
    acc = SpreadSum(np.shape(medians)[1:])
    acc.add(np.asarray(medians), np.asarray(err_low), np.asarray(err_high))
    return acc.result()


class SpreadSum:
    """Running sums for :func:`combine_spreads` (so that rows can be read in blocks)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.total = np.zeros(shape, np.float64)
        self.count = np.zeros(shape, np.int64)
        self.sq_low = np.zeros(shape, np.float64)
        self.sq_high = np.zeros(shape, np.float64)

    def add(self, med: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        use = np.isfinite(med)
        self.total += np.where(use, med, 0.0).sum(axis=0)
        self.count += use.sum(axis=0)
        # a finite median with a NaN error (should not happen) makes that error NaN: visible
        self.sq_low += np.where(use, np.square(lo), 0.0).sum(axis=0)
        self.sq_high += np.where(use, np.square(hi), 0.0).sum(axis=0)

    def result(self) -> Spread:
        has = self.count > 0
        median = np.full(self.total.shape, np.nan)
        np.divide(self.total, self.count, out=median, where=has)
        err_low = np.where(has, np.sqrt(self.sq_low), np.nan)
        err_high = np.where(has, np.sqrt(self.sq_high), np.nan)
        return Spread(median=median, err_low=err_low, err_high=err_high)


__all__ = [
    "QUANTITIES",
    "Counts",
    "FileRecord",
    "Rollup",
    "SpreadSum",
    "baseline_previous",
    "combine_spreads",
]
