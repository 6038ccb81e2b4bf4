"""Drawings of the quality tests: the quality mask (Grafana PNG and report page) and the
report's first page, the table of tests with the channels that failed. Nothing is computed
here: the statuses and values come from :class:`~wavedqm.analysis.quality.QualityResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from wavedqm import constants as C
from wavedqm.analysis.quality import QualityResult
from wavedqm.exporters import plots
from wavedqm.exporters.masks import (
    NEW_COLOUR,
    OK_COLOUR,
    WARN_COLOUR,
    MaskStyle,
    NewKind,
    render_mask,
)

QUALITY_STYLE = MaskStyle(
    title="Channels quality vs reference",
    ok_label="every test ok",
    new_kinds=(
        NewKind(C.CELL_QUALITY_WARNING, "D", WARN_COLOUR, "warning"),
        NewKind(C.CELL_QUALITY_ERROR, "X", NEW_COLOUR, "error"),
    ),
    known_label="not enough data",
)
CHANNELS_SHOWN = 8
"""Failed channels listed per test on the report's first page (the rest: summary.json)."""
VERDICT_COLOUR = {
    C.QUALITY_ERROR: NEW_COLOUR,
    C.QUALITY_WARNING: WARN_COLOUR,
    C.QUALITY_OK: OK_COLOUR,
    C.QUALITY_NOT_ENOUGH: "0.4",
}


def verdict(quality: QualityResult) -> tuple[str, str]:
    """The mask's top-right line: how many channels are in error / warning."""
    n_err = int((quality.monitored & (quality.worst == C.QUALITY_ERROR)).sum())
    n_warn = int((quality.monitored & (quality.worst == C.QUALITY_WARNING)).sum())
    if n_err or n_warn:
        text = f"{n_err} error, {n_warn} warning"
    elif quality.status == C.QUALITY_NOT_ENOUGH:
        text = "not enough data"
    else:
        text = "all tests ok"
    return text, VERDICT_COLOUR[quality.status]


def quality_mask_figure(
    cells: Any,
    quality: QualityResult,
    *,
    time_start_s: float | None,
    time_end_s: float | None,
    source: str,
    tpc_split_channel: int,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The quality mask: each channel coloured by its worst test against the reference."""
    return render_mask(
        cells,
        QUALITY_STYLE,
        time_start_s=time_start_s,
        time_end_s=time_end_s,
        source=f"{source}   reference {quality.reference}",
        tpc_split_channel=tpc_split_channel,
        verdict=verdict(quality),
        **({} if figsize is None else {"figsize": figsize}),
    )


def _interval(lo: float, hi: float) -> str:
    if lo == -C.INF:
        return f"≤ {hi:g}"
    if hi == C.INF:
        return f"≥ {lo:g}"
    return f"[{lo:g}, {hi:g}]"


def _channels(rows: Sequence[dict[str, Any]]) -> str:
    parts = []
    for r in rows[:CHANNELS_SHOWN]:
        value = "n/a" if r["value"] is None else f"{r['value']:#.3g}"
        mark = "!" if r["status"] == "error" else "?"
        masked = " (no alert)" if r["alert_masked"] else ""
        parts.append(f"{r['adc']}:{r['channel']}{mark} {value}{masked}")
    if len(rows) > CHANNELS_SHOWN:
        parts.append(f"+{len(rows) - CHANNELS_SHOWN} more")
    return ", ".join(parts) or "-"


def quality_page(quality: QualityResult, title: str, reference: dict[str, Any]) -> Figure:
    """The report's first page: one row per test (ok / warning / error / not enough data
    channel counts, thresholds, the channels that failed: ``!`` error, ``?`` warning), then
    the global test; rows with an error are tinted."""
    failed = quality.failed()
    rows, highlight = [], []
    for test in quality.tests:
        counts = test.counts(quality.monitored)
        mine = [r for r in failed if r["test"] == test.name]
        rows.append([
            test.name, f"{test.quantity}: {test.kind}",
            _interval(*test.warning), _interval(*test.error),
            str(counts["ok"]), str(counts["warning"]), str(counts["error"]),
            str(counts["not_enough_data"]), _channels(mine),
        ])  # fmt: skip
        highlight.append(counts["error"] > 0)
    warn, err = quality.channels_failing_thresholds
    status = C.QUALITY_STATUS_NAMES[quality.channels_failing_status]
    rows.append([
        "channels_failing", "fraction with an error", f"≤ {warn:g}", f"≤ {err:g}",
        "", "", "", "", f"{quality.channels_failing:#.3g} ({status})",
    ])  # fmt: skip
    highlight.append(quality.channels_failing_status == C.QUALITY_ERROR)
    overall = C.QUALITY_STATUS_NAMES[quality.status].replace("_", " ").upper()
    made = plots.utc_text(reference.get("created_at"))
    note = (
        f"Reference {quality.reference!r}: {reference.get('files', '?')} files, "
        f"{reference.get('events', '?')} events, made {made}.\n"
        "Ok inside the first interval, warning inside the second, error outside; "
        "channels: ADC:channel, ! error, ? warning, then the value."
    )
    return plots.table_figure(
        f"{title}: {overall}",
        ["test", "quantity: kind", "ok if", "warning if", "ok", "warn", "error", "n/a",
         "channels failing (value)"],
        rows,
        highlight=highlight,
        col_widths=[0.1, 0.12, 0.07, 0.07, 0.035, 0.035, 0.04, 0.035, 0.475],
        note=note,
    )  # fmt: skip
