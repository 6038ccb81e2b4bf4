"""Quality tests of the S2 sets against a reference run (pure, no I/O).

The reference's S2 part holds, per *field setting* (the set folder's name without its run, e.g.
``FieldScan_Gate0200_Anode2100``: a reference made from run A applies to run B's set of the same
fields), what the good set looked like (:class:`S2SetReference`): the distribution of its S2
areas (mV·µs; every frame with a finite area) as a histogram on fixed edges (with an underflow
and an overflow bin) and as a quantile profile (:mod:`~wavedqm.analysis.quality_stats`), its
frames, its Gaussian-fit mean with its standard error, and its integration window (µs).

Each configured test (``[quality.s2_tests.<name>]``) gives a set, after each of its files, a
value and a status (ok inside ``warning``, warning inside ``error``, error outside; not enough
data when the set or its reference set has fewer than ``min_events`` frames, the value is
undefined, or the reference has no set of these fields). Quantities and kinds:

- ``area``: ``range`` the median S2 area (mV·µs); ``ratio`` the fitted mean over the
  reference's; ``sigma`` the mean's shift in combined standard errors,
  (mean − mean_ref) / √(se² + se_ref²), se = ci95 / 1.96 of each fit; ``ks`` / ``ks_distance``
  the Kolmogorov–Smirnov p-value / distance of the set's areas (their empirical CDF) against
  the reference profile's CDF; ``chi2`` / ``chi2_ndf`` the χ² p-value / χ² per degree of freedom
  of the set's histogram on the reference's edges against the reference's
  (:func:`~wavedqm.analysis.quality_stats.chi2_homogeneity`, under/overflow bins included);
- ``window_start`` / ``window_end``: ``range`` the edge of the set's integration window (µs);
  ``difference`` the edge minus the reference's (µs, later positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.quality_stats import (
    cdf,
    chi2_homogeneity,
    grade,
    ks_pvalue,
    profile_levels,
)
from wavedqm.analysis.ratag_fields import json_bounds, json_num

KIND = "s2"
"""The reference section's kind (``STATE/references/s2/<name>.npz``)."""
AREA, WINDOW_START, WINDOW_END = "area", "window_start", "window_end"
AREA_KINDS = ("range", "ratio", "sigma", "ks", "ks_distance", "chi2", "chi2_ndf")
WINDOW_KINDS = ("range", "difference")
KINDS_BY_QUANTITY: dict[str, tuple[str, ...]] = {
    AREA: AREA_KINDS,
    WINDOW_START: WINDOW_KINDS,
    WINDOW_END: WINDOW_KINDS,
}
"""Quantity -> the test kinds that apply to it."""
DEFAULT_TESTS: dict[str, dict[str, object]] = {
    "area_mean_ratio": {"quantity": AREA, "kind": "ratio", "warning": (0.97, 1.03),
                        "error": (0.92, 1.08), "min_events": 100},
    "area_mean_shift": {"quantity": AREA, "kind": "sigma", "warning": (-4.0, 4.0),
                        "error": (-6.0, 6.0), "min_events": 100},
    "area_shape": {"quantity": AREA, "kind": "ks", "warning": (1e-3, 1.0),
                   "error": (1e-6, 1.0), "min_events": 100},
    "window_start_shift": {"quantity": WINDOW_START, "kind": "difference",
                           "warning": (-0.25, 0.25), "error": (-0.5, 0.5), "min_events": 100},
    "window_end_shift": {"quantity": WINDOW_END, "kind": "difference",
                         "warning": (-0.25, 0.25), "error": (-0.5, 0.5), "min_events": 100},
}  # fmt: skip
"""The S2 tests when ``[quality.s2_tests]`` is not given (name -> QualityTestConfig keywords).

Why these (simulated sets of 400 frames, ``wavedqm simulate wfm``, against references of as
many: the ion S2 has a 15 % resolution, so each fitted mean is known to ~0.8 %):

- a clean set passes every test: ratio 0.98–1.01, shift within ±1.5 standard errors, KS
  p > 0.05, window edges within ±0.01 µs;
- a 10 % gain drop fails each area test: ratio 0.88–0.91 (error below 0.92), shift −7 to −10
  standard errors (error beyond ±6), KS p < 1e-10 (error below 1e-6);
- a 4.5 % drop warns: ratio 0.94–0.96 (inside 0.92–0.97), shift ~−4.4, KS p ~1e-4 (in
  one set of five the shift or KS test errs); from a 6 % drop on, most sets err;
- the ratio bounds hold a large set to a physically relevant size of change when its
  standard errors become tiny (the shift test then flags any significant one);
- KS warns below p = 1e-3: one clean set in a thousand;
- the window follows the S2 timing: ±0.25 µs (warning), ±0.5 µs (error) is a 2–4 % change of
  the drift time of a 12 µs set (a drift speed or S1 time change), far beyond what a few
  hundred frames give by chance;
- 100 frames (half a simulated FastFrame file) before any test counts.
"""
REFERENCE_BINS = 30
"""Bins of a reference set's histogram between its fixed edges."""
EDGE_MARGIN = 0.1
"""The edges span the reference's areas inside the fit range, widened by this fraction of that
span on each side (within the fit range)."""


@dataclass(frozen=True, eq=False)
class S2SetReference:
    """The good set of one field setting (units mV·µs for areas, µs for times)."""

    key: str
    """The set folder's name (its field setting), e.g. ``FieldScan_Gate0200_Anode2100``."""
    n_frames: int
    edges: np.ndarray
    """float64 (B+1,): fixed histogram edges (mV·µs)."""
    counts: np.ndarray
    """int64 (B+2,): finite areas below ``edges[0]``, in each bin, at or above ``edges[-1]``."""
    profile: np.ndarray
    """float64 (L,): quantiles of the finite areas at :func:`profile_levels` (NaN: none)."""
    mean: float
    """Gaussian-fit mean of the ion S2 areas (NaN without a fit)."""
    mean_se: float
    """Its standard error (ci95 / 1.96)."""
    median: float
    window_us: tuple[float, float]
    """Integration window (µs; NaN while unknown)."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    """Where it came from: ``run``, ``set``, ``files``, ``frames`` per set pooled."""

    @property
    def n_areas(self) -> int:
        return int(self.counts.sum())

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "frames": self.n_frames,
            "areas": self.n_areas,
            "mean_mv_us": json_num(self.mean),
            "mean_se_mv_us": json_num(self.mean_se),
            "median_mv_us": json_num(self.median),
            "window_us": [json_num(self.window_us[0]), json_num(self.window_us[1])],
            "edges_mv_us": [json_num(self.edges[0]), json_num(self.edges[-1])],
            "sources": self.sources,
        }


@dataclass(frozen=True, eq=False)
class S2Reference:
    """The S2 part of one reference: its good sets by field setting."""

    name: str
    created_at: float
    """Unix time it was made (s)."""
    sources: list[dict[str, Any]]
    """One entry per input file: ``file``, ``run``, ``set``, ``frames``."""
    sets: dict[str, S2SetReference]

    def describe(self) -> dict[str, Any]:
        """The small ``summary`` of ``reference show``."""
        return {
            "sets": len(self.sets),
            "frames": int(sum(s.n_frames for s in self.sets.values())),
            "mean_mv_us": {k: json_num(s.mean) for k, s in self.sets.items()},
            "window_us": {k: [json_num(w) for w in s.window_us] for k, s in self.sets.items()},
        }


def reference_edges(areas: np.ndarray, fit_range: tuple[float, float]) -> np.ndarray:
    """:data:`REFERENCE_BINS` equal bins over the finite ``areas`` strictly inside
    ``fit_range`` (mV·µs), widened by :data:`EDGE_MARGIN` of their span on each side within the
    range; all finite areas when none is inside; ``[0, 1]`` without any area."""
    a = np.asarray(areas, np.float64)
    a = a[np.isfinite(a)]
    inside = a[(a > fit_range[0]) & (a < fit_range[1])]
    sel = inside if inside.size else a
    if sel.size == 0:
        return np.linspace(0.0, 1.0, REFERENCE_BINS + 1)
    lo, hi = float(sel.min()), float(sel.max())
    margin = EDGE_MARGIN * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - margin, hi + margin
    if inside.size:
        lo, hi = max(lo, float(fit_range[0])), min(hi, float(fit_range[1]))
    return np.linspace(lo, hi, REFERENCE_BINS + 1)


def histogram_with_overflow(areas: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """int64 (B+2,): finite ``areas`` below ``edges[0]``, per bin (``np.histogram``'s: the last
    bin closed), above ``edges[-1]``."""
    a = np.asarray(areas, np.float64)
    a = a[np.isfinite(a)]
    inner, _ = np.histogram(a, bins=edges)
    below = int(np.count_nonzero(a < edges[0]))
    above = int(np.count_nonzero(a > edges[-1]))
    return np.concatenate([[below], inner, [above]]).astype(np.int64)


def area_profile(areas: np.ndarray, n_levels: int = C.QUALITY_PROFILE_LEVELS) -> np.ndarray:
    """Quantiles of the finite ``areas`` at the profile levels (NaN without an area)."""
    a = np.asarray(areas, np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return np.full(n_levels, np.nan)
    return np.quantile(a, profile_levels(n_levels))


def build_set_reference(
    key: str,
    areas: np.ndarray,
    n_frames: int,
    fit_mean: float,
    fit_ci95: float,
    fit_range: tuple[float, float],
    window_us: tuple[float, float] | None,
    sources: Sequence[Mapping[str, Any]] = (),
) -> S2SetReference:
    """The reference of one field setting from its (pooled) per-frame areas (mV·µs), the fit of
    its ion areas and its integration window (µs; None: unknown)."""
    a = np.asarray(areas, np.float64)
    edges = reference_edges(a, fit_range)
    finite = a[np.isfinite(a)]
    return S2SetReference(
        key=key,
        n_frames=int(n_frames),
        edges=edges,
        counts=histogram_with_overflow(a, edges),
        profile=area_profile(a),
        mean=float(fit_mean),
        mean_se=float(fit_ci95) / C.RATAG_CI95_Z,
        median=float(np.median(finite)) if finite.size else float("nan"),
        window_us=(float("nan"), float("nan")) if window_us is None else tuple(window_us),  # type: ignore[arg-type]
        sources=[dict(s) for s in sources],
    )


# --------------------------------------------------------------------------------------------
# stored form: meta (JSON) + arrays (reference_sections)


def encode_reference(ref: S2Reference) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` for :func:`~wavedqm.exporters.reference_sections.save_section`: set
    ``i``'s scalars in ``meta["sets"][i]``, its arrays as ``set<i>.edges`` / ``.counts`` /
    ``.profile``."""
    sets_meta, arrays = [], {}
    for i, s in enumerate(ref.sets.values()):
        sets_meta.append({
            "key": s.key, "frames": s.n_frames, "mean": json_num(s.mean),
            "mean_se": json_num(s.mean_se), "median": json_num(s.median),
            "window_us": [json_num(s.window_us[0]), json_num(s.window_us[1])],
            "sources": s.sources,
        })  # fmt: skip
        arrays[f"set{i}.edges"] = np.asarray(s.edges, np.float64)
        arrays[f"set{i}.counts"] = np.asarray(s.counts, np.int64)
        arrays[f"set{i}.profile"] = np.asarray(s.profile, np.float64)
    meta = {
        "created_at": ref.created_at,
        "sources": ref.sources,
        "sets": sets_meta,
        "summary": ref.describe(),
    }
    return meta, arrays


def _float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def decode_reference(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> S2Reference:
    """The stored S2 part back; ValueError (or KeyError) when the arrays do not fit the meta."""
    sets: dict[str, S2SetReference] = {}
    n_levels = profile_levels().size
    for i, m in enumerate(meta["sets"]):
        edges = np.asarray(arrays[f"set{i}.edges"], np.float64)
        counts = np.asarray(arrays[f"set{i}.counts"])
        profile = np.asarray(arrays[f"set{i}.profile"], np.float64)
        where = f"set {m.get('key')!r}"
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError(f"{where}: edges of shape {edges.shape} (expected increasing, ≥ 2)")
        if counts.shape != (edges.size + 1,) or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(
                f"{where}: counts {counts.dtype}{counts.shape} (expected integers of shape "
                f"({edges.size + 1},): underflow, {edges.size - 1} bins, overflow)"
            )
        if profile.shape != (n_levels,):
            raise ValueError(f"{where}: profile of shape {profile.shape} (expected ({n_levels},))")
        window = m["window_us"]
        sets[str(m["key"])] = S2SetReference(
            key=str(m["key"]),
            n_frames=int(m["frames"]),
            edges=edges,
            counts=counts.astype(np.int64),
            profile=profile,
            mean=_float(m["mean"]),
            mean_se=_float(m["mean_se"]),
            median=_float(m["median"]),
            window_us=(_float(window[0]), _float(window[1])),
            sources=list(m.get("sources", [])),
        )
    return S2Reference(
        name=str(meta.get("name", "")),
        created_at=float(meta.get("created_at", 0.0)),
        sources=list(meta.get("sources", [])),
        sets=sets,
    )


# --------------------------------------------------------------------------------------------
# the tests of one set


@dataclass(frozen=True, eq=False)
class SetSample:
    """What a set's tests look at, after its latest file."""

    run: str
    set_name: str
    areas: np.ndarray
    """Every frame's S2 area (mV·µs; NaN: none)."""
    n_frames: int
    mean: float
    """Gaussian-fit mean of the ion areas (NaN without a good fit)."""
    mean_se: float
    window_us: tuple[float, float]
    """Integration window (µs; NaN while unknown)."""


@dataclass(frozen=True)
class S2TestOutcome:
    """One test of one set."""

    name: str
    quantity: str
    kind: str
    warning: tuple[float, float]
    error: tuple[float, float]
    value: float
    """In the kind's units (mV·µs, ratio, standard errors, p-value, D, χ²/ndf, µs); NaN:
    not enough data."""
    status: int
    reason: str = ""
    """Why there is not enough data (empty otherwise)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "kind": self.kind,
            "value": json_num(self.value),
            "warning": json_bounds(self.warning),
            "error": json_bounds(self.error),
            "status": C.QUALITY_STATUS_NAMES[self.status],
            **({"reason": self.reason} if self.reason else {}),
        }


@dataclass(frozen=True)
class S2SetQuality:
    """Every test of one set against the reference's set of the same fields."""

    reference: str
    run: str
    set_name: str
    reference_frames: int
    """Frames of the reference's set (0: it has none of these fields)."""
    tests: list[S2TestOutcome]
    reason: str = ""
    """Why the set could not be tested at all (no counterpart in the reference)."""

    @property
    def status(self) -> int:
        """The worst status of the tests (not enough data only when every test says so)."""
        return max((t.status for t in self.tests), default=C.QUALITY_NOT_ENOUGH)

    def statuses(self) -> dict[str, int]:
        return {t.name: t.status for t in self.tests}

    def verdict(self) -> str:
        """One line: the status and the failed tests with their values, errors first."""
        failed = sorted((t for t in self.tests if t.status >= C.QUALITY_WARNING),
                        key=lambda t: (-t.status, t.name))  # fmt: skip
        text = C.QUALITY_STATUS_NAMES[self.status].replace("_", " ")
        return text + (
            ": " + ", ".join(f"{t.name} {t.value:.3g}" for t in failed) if failed else ""
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``quality`` section of the set's ``s2_results.json``."""
        return {
            "reference": self.reference,
            "reference_set": self.set_name if self.reference_frames else None,
            "reference_frames": self.reference_frames,
            "status": C.QUALITY_STATUS_NAMES[self.status],
            **({"reason": self.reason} if self.reason else {}),
            "tests": {t.name: t.to_dict() for t in self.tests},
            "failed": [
                {"test": t.name, **t.to_dict()}
                for t in sorted(self.tests, key=lambda t: (-t.status, t.name))
                if t.status >= C.QUALITY_WARNING
            ],
        }


def ks_distance_to_profile(areas: np.ndarray, profile: np.ndarray) -> float:
    """KS distance sup |F_n − G| of the finite ``areas``' empirical CDF F_n against the
    piecewise-linear CDF G of a quantile profile (exact: at each sorted area x_i both
    |i/n − G(x_i)| and |(i−1)/n − G(x_i⁻)|); NaN without areas or profile."""
    x = np.sort(np.asarray(areas, np.float64)[np.isfinite(areas)])
    q = np.asarray(profile, np.float64)
    if x.size == 0 or np.isnan(q).any():
        return float("nan")
    levels = profile_levels(q.size)
    n = x.size
    i = np.arange(1, n + 1, dtype=np.float64)
    right = cdf(x, q, levels, right=True)
    left = cdf(x, q, levels, right=False)
    return float(max(np.max(np.abs(i / n - right)), np.max(np.abs((i - 1) / n - left))))


def _area_value(kind: str, sample: SetSample, ref: S2SetReference) -> tuple[float, str]:
    """The value of an ``area`` test (NaN and why when undefined)."""
    finite = np.asarray(sample.areas, np.float64)
    finite = finite[np.isfinite(finite)]
    if kind == "range":
        if not finite.size:
            return float("nan"), "the set has no S2 area yet"
        return float(np.median(finite)), ""
    if kind in ("ratio", "sigma"):
        if not np.isfinite(sample.mean):
            return float("nan"), "no Gaussian fit of the set's S2 areas"
        if not np.isfinite(ref.mean):
            return float("nan"), "the reference set has no Gaussian fit"
        if kind == "ratio":
            return sample.mean / ref.mean, ""
        se = float(np.hypot(sample.mean_se, ref.mean_se))
        if not (np.isfinite(se) and se > 0):
            return float("nan"), "no standard error of the means"
        return (sample.mean - ref.mean) / se, ""
    if not finite.size or not ref.n_areas:
        return float("nan"), "no S2 area in the set or in the reference set"
    if kind in ("ks", "ks_distance"):
        d = ks_distance_to_profile(finite, ref.profile)
        if kind == "ks_distance":
            return d, ""
        return float(ks_pvalue(np.asarray(d), np.asarray(finite.size), np.asarray(ref.n_areas))), ""
    chi2, ndf, p = chi2_homogeneity(histogram_with_overflow(finite, ref.edges), ref.counts)
    if not np.isfinite(chi2):
        return float("nan"), "fewer than two bins with entries"
    return (float(p), "") if kind == "chi2" else (float(chi2 / ndf), "")


def _window_value(
    kind: str, edge: int, sample: SetSample, ref: S2SetReference
) -> tuple[float, str]:
    value = float(sample.window_us[edge])
    if not np.isfinite(value):
        return float("nan"), "the set's integration window is not known yet"
    if kind == "range":
        return value, ""
    if not np.isfinite(ref.window_us[edge]):
        return float("nan"), "the reference set has no integration window"
    return value - float(ref.window_us[edge]), ""


def value_of(test: Any, sample: SetSample, ref: S2SetReference) -> tuple[float, str]:
    """The value of one configured test (a QualityTestConfig) and, when it is NaN, why."""
    if sample.n_frames < test.min_events:
        return float("nan"), f"the set has {sample.n_frames} frames (min_events {test.min_events})"
    if ref.n_frames < test.min_events:
        return float("nan"), (
            f"the reference set has {ref.n_frames} frames (min_events {test.min_events})"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        if test.quantity == AREA:
            return _area_value(test.kind, sample, ref)
        return _window_value(test.kind, 0 if test.quantity == WINDOW_START else 1, sample, ref)


def evaluate_set(reference: S2Reference, sample: SetSample, tests: Mapping[str, Any]
                 ) -> S2SetQuality:  # fmt: skip
    """Every test of ``tests`` (name -> QualityTestConfig) on one set against the reference's
    set of the same fields; a set with no counterpart gets not enough data with the reason."""
    ref = reference.sets.get(sample.set_name)
    outcomes = []
    if ref is None:
        known = ", ".join(sorted(reference.sets)) or "none"
        why = (f"the reference {reference.name!r} has no set {sample.set_name} "
               f"(its sets: {known})")  # fmt: skip
        for name, t in tests.items():
            outcomes.append(S2TestOutcome(name, t.quantity, t.kind, t.warning, t.error,
                                          float("nan"), C.QUALITY_NOT_ENOUGH, why))  # fmt: skip
        return S2SetQuality(reference.name, sample.run, sample.set_name, 0, outcomes, why)
    for name, t in tests.items():
        value, why = value_of(t, sample, ref)
        status = int(grade(np.asarray(value), t.warning, t.error))
        why = why if status == C.QUALITY_NOT_ENOUGH else ""
        outcomes.append(S2TestOutcome(name, t.quantity, t.kind, t.warning, t.error, value,
                                      status, why))  # fmt: skip
    return S2SetQuality(reference.name, sample.run, sample.set_name, ref.n_frames, outcomes)


@dataclass(frozen=True, eq=False)
class ReferenceOverlay:
    """The reference set's histogram drawn over a set's: counts per reference bin scaled to the
    set's frames (``counts × n_frames / reference frames``)."""

    reference: str
    edges: np.ndarray
    """float64 (B+1,) mV·µs."""
    counts: np.ndarray
    """float64 (B,): expected counts per reference bin for the set's frames."""
    reference_frames: int
    verdict: str = ""
    """The set's quality against it in one line (:meth:`S2SetQuality.verdict`)."""


def reference_overlay(reference: S2Reference, set_name: str, n_frames: int
                      ) -> ReferenceOverlay | None:  # fmt: skip
    """The overlay of ``set_name`` (None when the reference has no such set or no frame)."""
    ref = reference.sets.get(set_name)
    if ref is None or ref.n_frames <= 0:
        return None
    scale = float(n_frames) / float(ref.n_frames)
    counts = np.asarray(ref.counts[1:-1], np.float64) * scale
    return ReferenceOverlay(reference.name, ref.edges, counts, ref.n_frames)
