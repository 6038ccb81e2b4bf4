"""The report of a series of shots, rewritten after each shot: ``OUT/<series>/shot_report.pdf``
(flag counts, the latest shots, the overlays, the trends) and the seed's Markdown report
``shot_report.md`` with the PNGs of the same folder embedded and a metrics table. Nothing
here computes physics: it lays out records, traces and trend series."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.analysis.shot_series import SHOT_INDEX, ShotRecord, channel_names, ordered
from wavedqm.atomic import atomic_write_text
from wavedqm.exporters.plots import table_figure, utc_text
from wavedqm.exporters.plotting import Page

REPORT_PDF = "shot_report.pdf"
REPORT_MD = "shot_report.md"
LATEST_ROWS = 30
"""Shots listed in the latest-shots table of the PDF and in the Markdown metrics table."""
SHOTS_SUBJECT = "Shots: flags by channel, latest shots, overlays, trends"


def flag_counts(records: Sequence[ShotRecord]) -> dict[str, dict[str, int]]:
    """Shots with each flag, per channel (every channel and flag present, zeros included)."""
    counts = {c: dict.fromkeys(C.SHOT_FLAGS, 0) for c in channel_names(records)}
    for r in records:
        for name, c in r.channels.items():
            for flag in c.flags:
                counts[name][flag] += 1
    return counts


def _flag_text(r: ShotRecord) -> str:
    """``"saturation: photodiode; timing_outlier: all channels"``, or ``-``."""
    by_flag: dict[str, list[str]] = {}
    for name, flags in r.flags().items():
        for flag in flags:
            by_flag.setdefault(flag, []).append(name)
    everyone = len(r.channels)
    parts = [
        f"{flag}: {'all channels' if len(names) == everyone > 1 else ', '.join(names)}"
        for flag, names in by_flag.items()
    ]
    return "; ".join(parts) or "-"


def summary_page(series: str, records: Sequence[ShotRecord]) -> Callable[[], object]:
    counts = flag_counts(records)
    shots = len(records)
    rows = []
    for name, per_flag in counts.items():
        flagged = sum(1 for r in records if r.channels.get(name) and r.channels[name].flags)
        rows.append([name, str(flagged), *(str(per_flag[f]) for f in C.SHOT_FLAGS)])
    last = ordered(records)[-1] if records else None
    note = (
        f"{shots} shots; latest {last.shot_id} ({last.source}) analysed "
        f"{utc_text(last.processed_at)}"
        if last
        else "no shots"
    )
    columns = ["channel", "shots flagged", *C.SHOT_FLAGS]
    return partial(
        table_figure, f"Shots of {series}: quality flags ({shots} shots)", columns, rows,
        highlight=[r[1] != "0" for r in rows], note=note,
    )  # fmt: skip


def latest_page(series: str, records: Sequence[ShotRecord]) -> Callable[[], object]:
    latest = ordered(records)[-LATEST_ROWS:]
    controls = sorted({k for r in latest for k in r.control_vars})
    rows = [
        [r.shot_id, r.source, *(_num(r.control_vars.get(k)) for k in controls), _flag_text(r)]
        for r in reversed(latest)
    ]
    columns = ["shot", "file", *controls, "flags"]
    widths = [0.06, 0.12] + [min(0.13, 0.5 / max(1, len(controls)))] * len(controls)
    widths.append(max(0.25, 1 - sum(widths)))
    return partial(
        table_figure, f"Shots of {series}: the latest {len(latest)}", columns, rows,
        highlight=[r.flagged for r in reversed(latest)], col_widths=widths,
    )  # fmt: skip


def _num(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.6g}"


def report_pages(
    series: str,
    records: Sequence[ShotRecord],
    overlay: Callable[[], object],
    trends: Mapping[str, Callable[[], object]],
) -> list[Page]:
    """Flag counts, the latest shots, the overlays, then one trends page per x."""
    pages: list[Page] = [
        (f"Quality flags of {series}", summary_page(series, records)),  # type: ignore[list-item]
        (f"Latest shots of {series}", latest_page(series, records)),  # type: ignore[list-item]
        (f"Overlays of {series}", overlay),  # type: ignore[list-item]
    ]
    for x, builder in trends.items():
        label = "shot number" if x == SHOT_INDEX else x
        pages.append((f"Trends of {series} against {label}", builder))  # type: ignore[arg-type]
    return pages


def markdown_report(
    series: str, records: Sequence[ShotRecord], pngs: Sequence[Path], metrics: Sequence[str]
) -> str:
    """The Markdown report (the seed's format): summary, flag counts, the PNGs (relative
    links: the report sits beside them), the metrics of the latest shots."""
    shots = ordered(records)
    lines = [f"# Shot report: {series}", "",
             f"{len(shots)} shots, {sum(r.flagged for r in shots)} with a flagged channel. "
             f"Written by wavedqm {__version__}.", "", "## Quality flags", ""]  # fmt: skip
    counts = flag_counts(shots)
    lines.append("| channel | " + " | ".join(C.SHOT_FLAGS) + " |")
    lines.append("|---" * (len(C.SHOT_FLAGS) + 1) + "|")
    for name, per_flag in counts.items():
        lines.append(f"| {name} | " + " | ".join(str(per_flag[f]) for f in C.SHOT_FLAGS) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}]({p.name})" for p in pngs]
    latest = shots[-LATEST_ROWS:]
    lines += ["", f"## Metrics of the latest {len(latest)} shots", ""]
    lines.append("| shot | channel | " + " | ".join(metrics) + " | flags |")
    lines.append("|---" * (len(metrics) + 3) + "|")
    for r in latest:
        for name, c in r.channels.items():
            values = " | ".join(_num(c.metrics.get(m)) for m in metrics)
            lines.append(f"| {r.shot_id} | {name} | {values} | {', '.join(c.flags)} |")
    return "\n".join(lines) + "\n"


def write_markdown(out_dir: Path, text: str) -> Path:
    return atomic_write_text(Path(out_dir) / REPORT_MD, text)
