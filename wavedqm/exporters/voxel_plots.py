"""The voxel pages (PNGs per run for Grafana, and pages of the PDF reports), after DiffusePipe's
Phase 3 visual checks (seed 004). Nothing here computes physics: the figures draw a
:class:`~wavedqm.analysis.voxels.VoxelDiagnostics`.

- :func:`occupancy_figure`: hits per voxel column projected on XY, XZ and YZ (log colour
  scale; voxels never hit are white), with the grid and the run's hit counts in the title;
  with a reference in use, a second row: the run minus the reference scaled to the run's hits
  (red: fewer hits than the reference, e.g. a new dead region; blue: more);
- :func:`charge_figure`: mean charge per hit of each XY column (ke⁻), the profile of hits
  along the drift coordinate, and the histogram of hits per occupied voxel with its min /
  max / mean / median and the low-statistics and dead-region fractions.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from wavedqm.analysis.voxel_quality import OccupancyComparison
from wavedqm.analysis.voxels import AXES, PROJECTIONS, Grid, VoxelDiagnostics
from wavedqm.exporters.plots import A4_LANDSCAPE_IN, CURRENT_COLOUR, PROBLEM_COLOUR

OCCUPANCY_PNG = "voxel_occupancy.png"
CHARGE_PNG = "voxel_charge.png"


def _subtitle(run: str, grid: Grid, n_files: int, d: VoxelDiagnostics) -> str:
    size = "×".join(f"{s:g}" for s in grid.voxel_size_cm)
    dead = "n/a" if math.isnan(d.dead_region_ratio) else f"{100 * d.dead_region_ratio:.1f} %"
    return (
        f"run {run}: {n_files} file(s), {int(d.hits_per_voxel.sum())} hits in the grid; "
        f"voxels {size} cm, {d.n_occupied} of {d.n_active} active voxels hit, never hit {dead}"
    )


def _title(fig: Figure, title: str, subtitle: str) -> None:
    fig.suptitle(f"{title}\n", fontsize=15, weight="bold", parse_math=False)
    fig.text(0.5, 0.955, subtitle, ha="center", va="top", fontsize=10, parse_math=False)


def occupancy_figure(
    run: str,
    grid: Grid,
    n_files: int,
    d: VoxelDiagnostics,
    comparison: OccupancyComparison | None = None,
) -> Figure:
    """Occupancy projections XY / XZ / YZ (hits, log scale); under them, with ``comparison``,
    the run minus the reference's projections scaled to the run's hits."""
    fig = Figure(figsize=A4_LANDSCAPE_IN, layout="constrained")
    _title(fig, "Voxel occupancy (hits per projected column)", _subtitle(run, grid, n_files, d))
    rows = fig.subplots(2 if comparison is not None else 1, 3, squeeze=False)
    axes = rows[0]
    vmax = max(1, max(int(p.max()) for p in d.projections.values()))
    image = None
    for ax, (name, summed) in zip(axes, PROJECTIONS.items(), strict=True):
        counts = d.projections[name].astype(np.float64)
        counts[counts == 0] = np.nan  # never hit: white
        image = _projection(ax, grid, name, summed, counts, norm=LogNorm(1, vmax), cmap="viridis")
        ax.set_title(f"{name.upper()} (summed over {AXES[summed]})", fontsize=11)
        if comparison is not None:
            _outline(ax, grid, summed, comparison.new_dead.get(name))
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.6, label="hits")
    if comparison is not None:
        _difference_row(fig, rows[1], grid, comparison)
    return fig


def _projection(ax, grid: Grid, name: str, summed: int, values: np.ndarray, **style):
    a, b = (i for i in range(3) if i != summed)
    image = ax.pcolormesh(
        grid.edges(a),
        grid.edges(b),
        values.T,
        rasterized=True,  # one image in the PDF, not a path per cell (0.9 s -> ms)
        **style,
    )
    ax.set_xlabel(f"{AXES[a]} (cm)")
    ax.set_ylabel(f"{AXES[b]} (cm)")
    ax.set_aspect("equal")
    ax.set_facecolor("white")
    return image


def _outline(ax, grid: Grid, summed: int, mask: np.ndarray | None) -> None:
    """The outline of the columns with a new dead region (black), when there are any (the
    mask padded with one empty column all round, so that the outline closes at the edges)."""
    if mask is None or not mask.any():
        return
    a, b = (i for i in range(3) if i != summed)

    def centres(axis: int) -> np.ndarray:
        c = grid.centres(axis)
        step = grid.voxel_size_cm[axis]
        return np.concatenate([[c[0] - step], c, [c[-1] + step]])

    padded = np.pad(mask, 1).astype(float)
    ax.contour(centres(a), centres(b), padded.T, levels=[0.5], colors="black", linewidths=1.6)


def _difference_row(fig: Figure, axes, grid: Grid, c: OccupancyComparison) -> None:
    """Run − scaled reference per projection (diverging, symmetric colour scale)."""
    finite = [np.abs(v[np.isfinite(v)]) for v in c.difference.values()]
    top = max([float(np.percentile(v, 99)) for v in finite if v.size] + [1.0])
    image = None
    for ax, (name, summed) in zip(axes, PROJECTIONS.items(), strict=True):
        image = _projection(ax, grid, name, summed, c.difference[name], cmap="RdBu",
                            vmin=-top, vmax=top)  # fmt: skip
        ax.set_title(f"{name.upper()}: run − reference {c.reference} × {c.scale:.3g}",
                     fontsize=10, parse_math=False)  # fmt: skip
        _outline(ax, grid, summed, c.new_dead.get(name))
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.6,
                     label="hits − reference (red: fewer than the reference)")  # fmt: skip
    if any(m.any() for m in c.new_dead.values()):
        fig.text(0.5, 0.002, "black outline: columns of the new dead region (dead-region test)",
                 ha="center", va="bottom", fontsize=9)  # fmt: skip


def charge_figure(run: str, grid: Grid, n_files: int, d: VoxelDiagnostics) -> Figure:
    """Mean charge XY, drift profile, hits-per-voxel histogram."""
    fig = Figure(figsize=A4_LANDSCAPE_IN, layout="constrained")
    _title(fig, "Voxel charge and statistics", _subtitle(run, grid, n_files, d))
    ax_q, ax_drift, ax_hist = fig.subplots(1, 3)
    q = d.mean_q_xy
    finite = q[np.isfinite(q)]
    mesh = ax_q.pcolormesh(
        grid.edges(0), grid.edges(1), q.T, cmap="magma",
        vmin=float(np.percentile(finite, 2)) if finite.size else 0.0,
        vmax=float(np.percentile(finite, 98)) if finite.size else 1.0,
        rasterized=True,
    )  # fmt: skip
    fig.colorbar(mesh, ax=ax_q, location="bottom", shrink=0.9, label="mean charge per hit (ke⁻)")
    ax_q.set_title("Mean charge per hit, XY columns", fontsize=11)
    ax_q.set_xlabel("x (cm)")
    ax_q.set_ylabel("y (cm)")
    ax_q.set_aspect("equal")

    axis = d.drift_axis
    ax_drift.step(grid.centres(axis), d.drift_profile, where="mid", color=CURRENT_COLOUR)
    ax_drift.set_title(f"Hits along the drift coordinate ({AXES[axis]})", fontsize=11)
    ax_drift.set_xlabel(f"{AXES[axis]} (cm)")
    ax_drift.set_ylabel(f"hits per {grid.voxel_size_cm[axis]:g} cm slab")
    ax_drift.grid(alpha=0.3)

    hits = d.hits_per_voxel
    if hits.size:
        top = max(2, int(hits.max()) + 1)
        bins = (
            np.unique(np.geomspace(1, top, 40).astype(int)) if top > 40 else np.arange(1, top + 1)
        )
        ax_hist.hist(hits, bins=bins, color=CURRENT_COLOUR, alpha=0.8)
        if top > 40:
            ax_hist.set_xscale("log")
        ax_hist.axvline(
            d.low_hits_threshold,
            color=PROBLEM_COLOUR,
            ls="--",
            label=f"low statistics: < {d.low_hits_threshold} hits",
        )
        ax_hist.legend(fontsize=9, loc="upper right")
    else:
        ax_hist.text(
            0.5, 0.5, "no hit in the grid", ha="center", va="center", transform=ax_hist.transAxes
        )
    ax_hist.set_yscale("log" if hits.size else "linear")
    ax_hist.set_title("Hits per occupied voxel", fontsize=11)
    ax_hist.set_xlabel("hits in the voxel")
    ax_hist.set_ylabel("voxels")
    stats = (
        f"min {d.hits_min:g}, max {d.hits_max:g}\n"
        f"mean {d.hits_mean:.3g}, median {d.hits_median:g}\n"
        f"< {d.low_hits_threshold} hits: {100 * d.low_hits_ratio:.1f} % of active\n"
        f"never hit: {100 * d.dead_region_ratio:.1f} % of active"
        if hits.size
        else ""
    )
    ax_hist.text(0.97, 0.80, stats, ha="right", va="top", transform=ax_hist.transAxes, fontsize=9,
                 bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})  # fmt: skip
    return fig
