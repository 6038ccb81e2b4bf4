"""Gaussian fit of a RaTag area histogram (ion S2 areas or accepted X-ray areas, mV·µs).

Pure functions and a dataclass, no I/O (spec: ratag-s2.md; RaTag ``fit_set_s2``).

- :func:`gaussian` — the model (amplitude in counts per bin, mean and sigma in mV·µs).
- :func:`fit_area_histogram` — least-squares fit of the histogram of the areas inside the
  bin cuts (mV·µs), never raising (:class:`FitResult`: mean, sigma, ci95 in mV·µs; the
  histogram for plots; ``message`` says why a fit failed).
- :func:`where_areas_lie` — 5/50/95% quantiles of the areas (mV·µs) for failure messages.
- :func:`histogram_bins` — the bin count of every drawn S2 histogram, from its entries;
  :func:`display_histogram` — that histogram of the areas inside the fit range;
  :func:`area_counts` — how many areas are inside the fit range, and why the others are not
  (:class:`AreaCounts`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from wavedqm import constants as C
from wavedqm.analysis.ratag_fields import json_num

# --------------------------------------------------------------------------------------------
# Gaussian fit of an area histogram


def gaussian(x: Any, amplitude: float, mean: float, sigma: float) -> Any:
    """``amplitude · exp(−(x − mean)² / (2 sigma²))`` (amplitude: peak height, counts/bin)."""
    return amplitude * np.exp(-0.5 * ((np.asarray(x) - mean) / sigma) ** 2)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Gaussian fit of an area histogram (mV·µs). ``fit_success`` False: the numbers are NaN
    (or the fit's unreliable values) and ``message`` says why."""

    mean: float
    sigma: float
    ci95: float
    """1.96 × standard error of the mean (mV·µs)."""
    amplitude: float
    """Peak height of the fitted Gaussian (counts per bin)."""
    fit_success: bool
    n_events: int
    """Areas inside the bin cuts (the histogram's content, excluded first bin included)."""
    bin_cuts: tuple[float, float]
    """The fit range (mV·µs, both edges excluded)."""
    nbins: int
    """Bins of the fitted histogram (counts)."""
    exclude_first_bin: bool
    message: str = ""
    bin_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Histogram edges (mV·µs), for plots."""
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def bin_width(self) -> float:
        """Width of the fit's histogram bins (mV·µs; NaN without a histogram)."""
        e = self.bin_edges
        return float(e[-1] - e[0]) / (e.size - 1) if e.size >= 2 else math.nan

    def curve(self, x: Any, bin_width: float | None = None) -> Any:
        """The fitted Gaussian at ``x`` in counts per fit bin, or per bin of ``bin_width``
        (mV·µs) when given: the same density, drawn over a histogram binned otherwise."""
        y = gaussian(x, self.amplitude, self.mean, self.sigma)
        return y if bin_width is None else y * (float(bin_width) / self.bin_width)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": json_num(self.mean),
            "sigma": json_num(self.sigma),
            "ci95": json_num(self.ci95),
            "fit_success": bool(self.fit_success),
            "amplitude": json_num(self.amplitude),
            "n_events": int(self.n_events),
            "bin_cuts": [float(self.bin_cuts[0]), float(self.bin_cuts[1])],
            "nbins": int(self.nbins),
            "exclude_first_bin": bool(self.exclude_first_bin),
            "message": self.message,
        }


def where_areas_lie(areas: np.ndarray) -> str:
    """``"; areas lie 1.2–9.8 mV·µs (5–95 %), median 4.1"`` for the finite ``areas``, or
    ``""`` when there are none: tells a shift crew where the fit range should be."""
    finite = np.asarray(areas, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return ""
    q05, q50, q95 = np.quantile(finite, (0.05, 0.5, 0.95))
    return f"; areas lie {q05:.3g}–{q95:.3g} mV·µs (5–95 %), median {q50:.3g}"


def fit_area_histogram(
    areas: np.ndarray,
    bin_cuts: tuple[float, float] = C.RATAG_ION_BIN_CUTS,
    nbins: int = C.RATAG_FIT_BINS,
    exclude_first_bin: bool = False,
    min_events: int = 3,
) -> FitResult:
    """Gaussian fit of the histogram of ``areas`` (RaTag ``fit_set_s2``), never raising.
    Fewer than ``min_events`` (at least 3) areas inside the cuts: no fit (``fit_success``
    False, NaN values, ``message`` says why).

    The areas strictly inside ``bin_cuts`` (finite) are histogrammed in ``nbins`` bins over
    their own range (``np.histogram(selected, bins=nbins)``, as RaTag); the first bin is left
    out of the fit if ``exclude_first_bin`` (pedestal leak; RaTag's ``exclude_index=1`` for
    ions). Least squares on the bin centres (``scipy.optimize.curve_fit``, unweighted, like
    RaTag's lmfit model), starting from the counts-weighted mean and std. ``ci95`` is 1.96 ×
    the standard error of the mean from the covariance scaled by the residual variance.
    """
    lo, hi = float(bin_cuts[0]), float(bin_cuts[1])
    a = np.asarray(areas, np.float64)
    sel = a[np.isfinite(a) & (a > lo) & (a < hi)]
    n_events = int(sel.size)

    def failed(message: str, edges: np.ndarray | None = None, counts: Any = None) -> FitResult:
        return FitResult(
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            False,
            n_events,
            (lo, hi),
            int(nbins),
            bool(exclude_first_bin),
            message,
            np.zeros(0) if edges is None else edges,
            np.zeros(0, np.int64) if counts is None else counts,
        )

    needed = max(3, int(min_events))
    if n_events < needed:
        return failed(
            f"{n_events} of {a.size} areas inside {lo:g}–{hi:g} mV·µs (a fit needs at least "
            f"{needed}){where_areas_lie(a)}"
        )
    counts, edges = np.histogram(sel, bins=int(nbins))
    centres = 0.5 * (edges[1:] + edges[:-1])
    y, x = counts.astype(np.float64), centres
    if exclude_first_bin:
        y, x = y[1:], x[1:]
    if np.count_nonzero(y) < 3:
        return failed("fewer than 3 non-empty bins to fit", edges, counts)
    m0 = float(np.average(x, weights=y))
    s0 = float(np.sqrt(np.average((x - m0) ** 2, weights=y)))
    s0 = s0 if s0 > 0 else float(edges[1] - edges[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, pcov = curve_fit(gaussian, x, y, p0=(float(y.max()), m0, s0), maxfev=10000)
    except (RuntimeError, ValueError) as e:
        return failed(f"fit did not converge: {e}", edges, counts)
    amp, mean, sigma = (float(v) for v in popt)
    var_mean = float(pcov[1, 1]) if np.all(np.isfinite(pcov)) else math.nan
    ok = (
        all(math.isfinite(v) for v in (amp, mean, sigma))
        and sigma != 0.0
        and math.isfinite(var_mean)
        and var_mean >= 0.0
        and edges[0] <= mean <= edges[-1]
    )
    return FitResult(
        mean=mean,
        sigma=abs(sigma),
        ci95=C.RATAG_CI95_Z * math.sqrt(var_mean) if ok else math.nan,
        amplitude=amp,
        fit_success=ok,
        n_events=n_events,
        bin_cuts=(lo, hi),
        nbins=int(nbins),
        exclude_first_bin=bool(exclude_first_bin),
        message="" if ok else "fit parameters or covariance not finite, or mean off the histogram",
        bin_edges=edges,
        counts=counts,
    )


# --------------------------------------------------------------------------------------------
# histograms as drawn, and the accounting of the areas

PLOT_MIN_BINS = 5
PLOT_MAX_BINS = 100


def histogram_bins(values: Any, lo: int = PLOT_MIN_BINS, hi: int = PLOT_MAX_BINS) -> int:
    """Bin count for drawing the finite ``values``: numpy's ``"auto"`` rule — the larger of
    Sturges' ``⌈log2 n⌉ + 1`` and Freedman–Diaconis' ``⌈range / (2·IQR·n^(−1/3))⌉`` (Sturges
    alone when the IQR is 0) — bounded to ``[lo, hi]`` (``lo`` for no or one distinct value).
    Computed here rather than by ``np.histogram_bin_edges`` so that one far outlier cannot
    ask for millions of edges before the bound applies."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(v.size)
    span = float(v.max() - v.min()) if n else 0.0
    if n < 2 or span <= 0.0:
        return int(lo)
    sturges = math.ceil(math.log2(n)) + 1
    q25, q75 = np.percentile(v, (25.0, 75.0))
    width = 2.0 * float(q75 - q25) * n ** (-1.0 / 3.0)
    fd = math.ceil(span / width) if width > 0.0 else 0
    return int(min(max(sturges, min(fd, hi), lo), hi))


def display_histogram(
    areas: Any, bin_cuts: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the finite areas strictly inside ``bin_cuts`` (all finite areas
    when None), in :func:`histogram_bins` bins over their own range — the range of the fit's
    histogram; empty arrays without areas."""
    a = np.asarray(areas, np.float64).reshape(-1)
    sel = a[np.isfinite(a)]
    if bin_cuts is not None:
        sel = sel[(sel > bin_cuts[0]) & (sel < bin_cuts[1])]
    if sel.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    lo, hi = float(sel.min()), float(sel.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(sel, bins=histogram_bins(sel), range=(lo, hi))


@dataclass(frozen=True)
class AreaCounts:
    """Where the areas of a histogram went: ``n_total`` = ``n_in_range`` + ``n_no_area`` +
    ``n_below`` + ``n_above`` (counts)."""

    n_total: int
    n_in_range: int
    """Finite and strictly inside the fit range (the fit's ``n_events``)."""
    n_no_area: int
    """NaN or infinite: no S2 area (window not known yet, or empty)."""
    n_below: int
    """At or below the fit range's low edge."""
    n_above: int
    """At or above the fit range's high edge."""

    @property
    def n_outside(self) -> int:
        return self.n_total - self.n_in_range


def area_counts(
    areas: Any, bin_cuts: tuple[float, float], n_total: int | None = None
) -> AreaCounts:
    """Count the areas inside ``bin_cuts`` (mV·µs, strict, as :func:`fit_area_histogram`)
    and, for the others, why they are not. ``n_total`` (e.g. a set's frames) above the
    number of areas: the missing ones count as without an area."""
    a = np.asarray(areas, np.float64).reshape(-1)
    finite = a[np.isfinite(a)]
    lo, hi = float(bin_cuts[0]), float(bin_cuts[1])
    below = int(np.count_nonzero(finite <= lo))
    above = int(np.count_nonzero(finite >= hi))
    total = max(int(a.size), int(n_total) if n_total is not None else 0)
    return AreaCounts(
        total, int(finite.size) - below - above, total - int(finite.size), below, above
    )
