"""The run report: trends over the files of a run (or of a time range), from their
``summary.json`` documents (``wavedqm report OUT [--last N] [--out FILE]``).

:func:`collect_summaries` reads every ``OUT/*/summary.json``, ordered by data start time then
file name; :func:`write_run_report` draws them into one PDF (atomically, through
:func:`wavedqm.exporters.report.write_pages`, so a page that fails becomes an error page):

1. "Files of the run": one row per file (data start, events, new dead channels, baseline
   flagged, clipped and negative channels, processing time); files with problems tinted red.
   A file has a problem when it has no light data or no events, new dead channels, newly
   flagged baselines or clipped channels (negative excursions are listed, not flagged);
2. "Files with problems": which channels, per problem file;
3. noise and baseline per ADC against the file index: per file, the mean over the ADC's
   monitored channels of the per-channel medians (ADC16 counts), one line per ADC;
4. dead, flagged and clipped channel counts per file;
5. clipped and negative fractions per TPC per file (beam and self triggers), with their
   Clopper–Pearson intervals;
6. power in the spectral regions of interest per ADC (V²), when the summaries carry
   ``spectra`` (:meth:`wavedqm.analysis.spectra.SpectraResult.to_dict`).

Nothing is recomputed but the per-ADC means of page 3, the one reduction a trend of 8 × 64
channels needs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from wavedqm import __version__
from wavedqm.constants import SUMMARY_FILE
from wavedqm.exporters import plots, trend_pages
from wavedqm.exporters.report import Page, write_pages
from wavedqm.logs import get_logger

log = get_logger(__name__)

RUN_REPORT_FILE = "run_report.pdf"
"""Default name of the run report (in the folder given)."""
ROWS_PER_TABLE_PAGE = 30
TRIGGERS = ("beam", "self")
FLAGS = {"clipped": "Clipped", "negative": "Negative"}


# --- reading ----------------------------------------------------------------------------------


def _start(doc: dict[str, Any]) -> float | None:
    t = doc.get("time_start_s")
    return float(t) if isinstance(t, int | float) else None


def file_name(doc: dict[str, Any]) -> str:
    """The input file's name (no folder) of a summary."""
    return Path(str(doc.get("file", "?"))).name


def collect_summaries(folder: Path, last: int | None = None) -> list[dict[str, Any]]:
    """Every ``folder/*/summary.json`` (and ``folder/summary.json``), ordered by data start
    time (files without one last), then file name; only the last ``last`` when given.
    Unreadable or malformed summaries are skipped with a ``summary_unreadable`` warning."""
    folder = Path(folder)
    paths = sorted(folder.glob(f"*/{SUMMARY_FILE}"))
    if (folder / SUMMARY_FILE).is_file():
        paths.insert(0, folder / SUMMARY_FILE)
    docs = []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            log.warning("summary_unreadable", path=str(path), error=str(err))
            continue
        if not isinstance(doc, dict) or "file" not in doc:
            log.warning("summary_unreadable", path=str(path), error="not a wavedqm summary")
            continue
        docs.append(doc)
    docs.sort(key=lambda d: (_start(d) is None, _start(d) or 0.0, file_name(d)))
    if last is not None:
        docs = docs[-last:] if last > 0 else []
    return docs


# --- what each file says ----------------------------------------------------------------------


def problems(doc: dict[str, Any]) -> list[str]:
    """The problems of one file, as short phrases (empty: none)."""
    if not doc.get("light"):
        return ["no light data"]
    out = []
    if not doc.get("events"):
        out.append("no events")
    for key, what in (
        ("dead_channels", "new dead"),
        ("baseline_flagged", "baseline flagged"),
        ("clipped_channels", "clipped"),
    ):
        cells = doc.get(key) or []
        if cells:
            out.append(f"{what} {_cells_text(cells)}")
    return out


def _cells_text(cells: Sequence[Sequence[int]], limit: int = 6) -> str:
    text = " ".join(":".join(str(v) for v in c) for c in cells[:limit])
    return text + (f" +{len(cells) - limit}" if len(cells) > limit else "")


def _count(doc: dict[str, Any], key: str) -> int:
    return len(doc.get(key) or [])


def _array(value: Any) -> np.ndarray:
    """JSON nested lists (None for NaN) -> float64 array."""
    if value is None:
        return np.array(np.nan)
    return np.array(value, dtype=object).astype(np.float64)


def adc_means(doc: dict[str, Any], key: str) -> np.ndarray:
    """Per ADC, the mean over its monitored channels of the file's per-channel medians
    ``light[key]`` (e.g. ``noise_adc16``), NaN where none is finite. Shape (n_adcs,)."""
    light = doc.get("light") or {}
    values = _array(light.get(key))
    if values.ndim != 2:
        return np.full(0, np.nan)
    mask = np.asarray(light.get("monitored", light.get("active", True)), dtype=bool)
    values = np.where(mask & np.isfinite(values), values, np.nan)
    count = np.isfinite(values).sum(axis=1)
    total = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Per-file 1-d arrays of maybe different lengths (missing data) -> (n_files, width)."""
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _tpc_fraction(doc: dict[str, Any], flag: str, trigger: str) -> tuple[np.ndarray, ...]:
    """(fraction, lower, upper) per TPC of one file (NaN where its denominator is 0)."""
    try:
        f = doc["fractions"][flag][trigger]["tpc"]
    except (KeyError, TypeError):
        return (np.full(0, np.nan),) * 3
    n = _array(f["n"])
    parts = [np.where(n > 0, _array(f[k]), np.nan) for k in ("fraction", "lower", "upper")]
    return tuple(parts)


# --- pages ------------------------------------------------------------------------------------


def _table_page(title: str, docs: list[dict[str, Any]], first_index: int) -> Figure:
    columns = [
        "#",
        "file",
        "data start (UTC)",
        "events",
        "beam / self",
        "new dead",
        "baseline flagged",
        "clipped ch.",
        "negative ch.",
        "processing (s)",
    ]
    rows, flagged = [], []
    for i, doc in enumerate(docs, start=first_index):
        trig = doc.get("events_by_trigger") or {}
        rows.append(
            [
                str(i),
                file_name(doc),
                plots.utc_text(_start(doc)).removesuffix(" UTC"),
                str(doc.get("events", 0)),
                f"{trig.get('beam', 0)} / {trig.get('self', 0)}",
                str(_count(doc, "dead_channels")),
                str(_count(doc, "baseline_flagged")),
                str(_count(doc, "clipped_channels")),
                str(_count(doc, "negative_channels")),
                f"{float(doc.get('processing_seconds') or 0.0):.2f}",
            ]
        )
        flagged.append(bool(problems(doc)))
    return plots.table_figure(
        title,
        columns,
        rows,
        highlight=flagged,
        col_widths=[0.03, 0.26, 0.13, 0.06, 0.08, 0.07, 0.11, 0.08, 0.09, 0.09],
        note="Red rows: files with problems (no light data or events, new dead channels, "
        "newly flagged baselines, clipped channels); see the next page.",
    )


def _problem_rows(docs: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [str(i), file_name(doc), "; ".join(found)]
        for i, doc in enumerate(docs)
        if (found := problems(doc))
    ]


def _problem_page(title: str, rows: list[list[str]]) -> Figure:
    return plots.table_figure(
        title,
        ["#", "file", "problems (ADC:channel; baseline ADC:channel:status)"],
        rows,
        highlight=[True] * len(rows),
        col_widths=[0.04, 0.32, 0.64],
    )


def _paged(title: str, n: int) -> list[tuple[str, slice]]:
    """Table pages of :data:`ROWS_PER_TABLE_PAGE` rows: (title, rows) for ``n`` rows."""
    starts = range(0, max(n, 1), ROWS_PER_TABLE_PAGE)
    return [
        (
            title + (f" ({k} of {len(starts)})" if len(starts) > 1 else ""),
            slice(first, first + ROWS_PER_TABLE_PAGE),
        )
        for k, first in enumerate(starts, start=1)
    ]


def _time_axis(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """``time_labels`` and ``time_note`` of a trend page of these files."""
    labels, note = trend_pages.time_axis_labels([_start(d) for d in docs])
    return {"time_labels": labels, "time_note": note}


def _noise_baseline_page(title: str, docs: list[dict[str, Any]]) -> Figure:
    panels = []
    for key, what in (("noise_adc16", "noise"), ("baseline_adc16", "baseline")):
        means = _stack([adc_means(d, key) for d in docs])
        panels.append(
            trend_pages.TrendPanel(
                f"{what}: mean over the ADC's channels of the per-channel medians",
                f"{what} (ADC16 counts)",
                [trend_pages.TrendSeries(f"ADC {a}", means[:, a]) for a in range(means.shape[1])],
            )
        )
    x = np.arange(len(docs))
    return trend_pages.trend_figure(title, x, panels, **_time_axis(docs))


def _channel_counts_page(title: str, docs: list[dict[str, Any]]) -> Figure:
    series = [
        trend_pages.TrendSeries(label, np.array([_count(d, key) for d in docs], dtype=np.float64))
        for key, label in (
            ("dead_channels", "new dead"),
            ("known_dead_channels", "known dead"),
            ("baseline_flagged", "baseline (new)"),
            ("clipped_channels", "clipped"),
            ("negative_channels", "negative"),
        )
    ]
    panel = trend_pages.TrendPanel(
        "channels per file: new dead, known dead, newly flagged baseline, with clipped events, "
        "with negative excursions",
        "channels",
        series,
        integer_y=True,
        dodge=True,
    )
    x = np.arange(len(docs))
    return trend_pages.trend_figure(title, x, [panel], **_time_axis(docs))


def _fraction_page(title: str, docs: list[dict[str, Any]], flag: str) -> Figure:
    panels = []
    for trigger in TRIGGERS:
        parts = [_tpc_fraction(d, flag, trigger) for d in docs]
        frac, lower, upper = (_stack([p[i] for p in parts]) * 100 for i in range(3))
        panels.append(
            trend_pages.TrendPanel(
                f"{trigger} trigger",
                "fraction of events (%)",
                [
                    trend_pages.TrendSeries(f"TPC {t}", frac[:, t], lower[:, t], upper[:, t])
                    for t in range(frac.shape[1])
                ],
                dodge=True,
            )
        )
    x = np.arange(len(docs))
    return trend_pages.trend_figure(title, x, panels, **_time_axis(docs))


def _roi_page(title: str, docs: list[dict[str, Any]]) -> Figure:
    centres: list[float] = []
    per_file = []
    for d in docs:
        spectra = d.get("spectra") or {}
        roi = _array(spectra.get("roi_power_adc_v2"))
        per_file.append(roi if roi.ndim == 2 else None)
        if not centres and spectra.get("roi_centres_mhz"):
            centres = [float(c) for c in spectra["roi_centres_mhz"]]
    n_adcs = max((r.shape[0] for r in per_file if r is not None), default=0)
    cube = np.full((len(docs), n_adcs, len(centres)), np.nan)
    for i, r in enumerate(per_file):
        if r is not None:
            cube[i, : r.shape[0], : r.shape[1]] = r[:, : len(centres)]
    panels = [
        trend_pages.TrendPanel(
            f"{c:g} MHz",
            "power (V²)",
            [trend_pages.TrendSeries(f"ADC {a}", cube[:, a, r]) for a in range(n_adcs)],
            log_y=True,
        )
        for r, c in enumerate(centres)
    ]
    x = np.arange(len(docs))
    return trend_pages.trend_figure(
        title, x, panels, n_cols=3, **_time_axis(docs), panel_legends=False
    )


def build_run_pages(summaries: list[dict[str, Any]]) -> list[Page]:
    """The planned pages of the run report, in order (see the module docstring)."""
    docs = list(summaries)
    n = len(docs)
    pages: list[Page] = []
    for t, rows in _paged("Files of the run", n):
        pages.append((t, partial(_table_page, t, docs[rows], rows.start)))
    problem_rows = _problem_rows(docs)
    for t, rows in _paged("Files with problems", len(problem_rows)):
        pages.append((t, partial(_problem_page, t, problem_rows[rows])))
    t = "Noise and baseline per ADC"
    pages.append((t, partial(_noise_baseline_page, t, docs)))
    t = "Dead, flagged and clipped channels per file"
    pages.append((t, partial(_channel_counts_page, t, docs)))
    for flag, name in FLAGS.items():
        t = f"{name} fraction per TPC"
        pages.append((t, partial(_fraction_page, t, docs, flag)))
    if any(d.get("spectra") for d in docs):
        t = "Power in the regions of interest per ADC"
        pages.append((t, partial(_roi_page, t, docs)))
    return pages


def write_run_report(summaries: list[dict[str, Any]], path: Path) -> Path:
    """Write the run report of ``summaries`` (ordered as given) at ``path``, atomically."""
    path = Path(path)
    names = [file_name(d) for d in summaries]
    span = f"{names[0]} to {names[-1]}" if names else "no files"
    titles, failed = write_pages(
        path,
        build_run_pages(summaries),
        title=f"wavedqm run report: {len(summaries)} files",
        subject=f"Light data quality trends over {span}",
        footer=f"run report, {len(summaries)} files: {span} - wavedqm {__version__}",
    )
    log.info("run_report_written", report=str(path), pages=len(titles), failed=len(failed))
    return path
