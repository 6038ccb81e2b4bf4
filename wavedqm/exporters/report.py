"""The per-file PDF report (``OUT/<file name>/report.pdf``) and the PDF writer shared with the
run report.

:func:`build_pages` plans the pages of one file as ``(title, builder)`` pairs; each builder
returns a ``Figure`` drawn from what the analysis gave (:class:`ReportInputs`):

1. the file: name, data start/end, events by trigger, processing time, wavedqm version, the
   problems found, the previous files compared with, and the full effective configuration;
2. baseline and noise per channel for each ADC (two pages of four ADCs each), this file over
   the band of the previous files;
3. the waveform with the largest sample-to-sample jump (when given);
4. power spectra per EPCB (two pages, when given);
5. clipped and negative fractions by channel (two pages each), EPCB, TPC and in total, for
   beam and self triggers, with their Clopper–Pearson intervals and the previous files;
6. the two masks ("Alive and dead channels", "Channels baseline status"), drawn by
   :func:`wavedqm.exporters.masks.render_mask`.

:func:`write_pages` draws every page in turn: a builder that raises gives a page
``<title>: could not be drawn: <error>`` instead and the other pages still come out. The PDF
goes to a temporary file beside the target and is renamed over it when complete
(:func:`wavedqm.atomic.atomic_open`): a reader sees the previous report or the new one, never
half of one. Reports are for people; call them after the metrics are out.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from wavedqm import __version__
from wavedqm import constants as C
from wavedqm.analysis.history import Rollup
from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.light import LightResult
from wavedqm.analysis.masks import baseline_cells, flatline_cells, quality_cells
from wavedqm.analysis.quality import QualityResult
from wavedqm.analysis.reference import LightReference
from wavedqm.analysis.spectra import SpectraResult
from wavedqm.analysis.stats import shift_in_sigmas
from wavedqm.atomic import atomic_open
from wavedqm.exporters import channel_pages, light_pages, plots, quality_pages
from wavedqm.exporters.masks import BASELINE_STYLE, FLATLINE_STYLE, render_mask
from wavedqm.logs import get_logger

log = get_logger(__name__)

TRIGGER_SELECTIONS = ("beam", "self")
FLAG_NAMES = {"clipped": "Clipped", "negative": "Negative"}
GRANULARITY_TITLES = {
    "channel": "per channel",
    "epcb": "per EPCB",
    "tpc": "per TPC",
    "total": "in total",
}
LIGHT_SUBJECT = (
    "Light data quality: baseline, noise, spectra, clipped and negative fractions, masks"
)
"""What the light pages of a report show (PDF ``Subject``)."""
ADC_PAGES_OF = 4
"""ADCs per page of the per-channel plots."""

PageBuilder = Callable[[], Figure]
Page = tuple[str, PageBuilder]


@dataclass
class ReportInputs:
    """Everything one file's report draws (nothing is recomputed)."""

    file: Path
    """The input file."""
    summary: dict[str, Any]
    """Its ``summary.json`` document."""
    config: dict[str, Any]
    """The effective configuration (``Config.to_dict()``)."""
    light: LightResult
    previous: Rollup | None = None
    """The previous files compared with (None: no history)."""
    spectra: SpectraResult | None = None
    jump: JumpEvent | None = None
    flatline_cells: np.ndarray | None = None
    """Cell codes of the "Alive and dead channels" mask (None: from ``light``)."""
    baseline_cells: np.ndarray | None = None
    """Cell codes of the "Channels baseline status" mask (None: from ``light``)."""
    processing_seconds: float = 0.0
    """Read + analyse time of the file (s)."""
    version: str = __version__
    quality: QualityResult | None = None
    """The tests against the reference (None: no reference in use)."""
    reference: LightReference | None = None


@dataclass
class ReportOutcome:
    """What writing a report gave."""

    path: Path
    pages: list[str]
    """Page titles, in order (failed pages included: they hold the error)."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(title, error)`` of each page that could not be drawn."""
    seconds: float = 0.0
    """Wall time to draw and write the PDF (s)."""


# --- pages ----------------------------------------------------------------------------------


def _adc_groups(n_adcs: int, per_page: int = ADC_PAGES_OF) -> list[list[int]]:
    return [list(range(a, min(a + per_page, n_adcs))) for a in range(0, n_adcs, per_page)]


def _adc_range(adcs: Sequence[int]) -> str:
    return f"ADC {adcs[0]}" if len(adcs) == 1 else f"ADC {adcs[0]}-{adcs[-1]}"


def _n_previous(rollup: Rollup | None) -> int:
    return 0 if rollup is None else int(rollup.n_files)


def _cells_mask(shape: tuple[int, ...], cells: Sequence[Sequence[int]]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for a, c, *_ in cells:
        mask[a, c] = True
    return mask


def _config_lines(config: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """``[section]`` blocks of ``key = value`` lines (every key, as the TOML file has them)."""
    blocks = []
    for section, values in config.items():
        if isinstance(values, dict):
            lines = [f"{k} = {_value_text(v)}" for k, v in values.items()]
        else:
            lines = [_value_text(values)]
        blocks.append((f"[{section}]", lines))
    return blocks


def _value_text(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    return str(v)


def _cell_list(cells: Sequence[Sequence[int]], limit: int = 12) -> str:
    if not cells:
        return "none"
    text = ", ".join(":".join(str(int(v)) for v in c) for c in cells[:limit])
    return text + (f" (+{len(cells) - limit} more)" if len(cells) > limit else "")


def overview_figure(inputs: ReportInputs, title: str) -> Figure:
    """First page: the file, its data, the problems found and the full configuration."""
    s = inputs.summary
    light = inputs.light
    by_trig = s.get("events_by_trigger") or light.events_by_trigger
    start, end = s.get("time_start_s", light.time_start_s), s.get("time_end_s", light.time_end_s)
    duration = f"{end - start:.1f} s" if start is not None and end is not None else "-"
    prev = inputs.previous
    file_lines = [
        "file:",
        f"  {inputs.file.name}",
        "folder:",
        *(f"  {part}" for part in plots.path_lines(inputs.file.parent)),
        f"format:          {s.get('format', '-')}",
        f"data start:      {plots.utc_text(start)}",
        f"data end:        {plots.utc_text(end)}",
        f"duration:        {duration}",
        f"events:          {s.get('events', light.n_events)}",
        f"  beam trigger:  {by_trig.get('beam', 0)}",
        f"  self trigger:  {by_trig.get('self', 0)}",
        f"processing time: {inputs.processing_seconds:.2f} s (read + analyse)",
        f"report made:     {plots.utc_text(time.time())}",
        f"wavedqm version: {inputs.version}",
    ]
    problem_lines = [
        f"new dead:        {_cell_list(light.dead_new)}",
        f"known dead:      {_cell_list(light.known_dead)}",
        f"baseline (new):  {_cell_list(light.baseline_flagged)}",
        f"clipped:         {_cell_list(light.clipped_channels)}",
        f"negative:        {_cell_list(light.negative_channels)}",
        "",
        "ADC:channel, baseline ADC:channel:status",
        "status -1: median outside the allowed range",
        "        1: spread over events too wide",
        "        2: moved against the previous files",
        "        3: both 1 and 2",
    ]
    if prev is None or prev.n_files == 0:
        compare = ["none (no history yet, or comparison off)"]
    else:
        compare = [
            f"files:  {prev.n_files} ({prev.n_events} events)",
            f"first:  {prev.files[0]}",
            f"last:   {prev.files[-1]}",
            f"from:   {plots.utc_text(prev.time_start_s)}",
            f"to:     {plots.utc_text(prev.time_end_s)}",
        ]
    missing = [
        name
        for name, value in (("power spectra", inputs.spectra), ("jump event", inputs.jump))
        if value is None
    ]
    blocks = [("File", file_lines), ("Problems found", problem_lines), ("Previous files", compare)]
    if missing:
        blocks.append(("Not in this report", [f"{m}: not computed for this file" for m in missing]))
    config = _config_lines(inputs.config)
    if config:
        heading, lines = config[0]
        config[0] = (f"Effective configuration: {heading}", lines)
    return plots.text_figure(
        title, [*blocks, plots.COLUMN_BREAK, *config], n_columns=3, font_size=8.5
    )


def build_pages(inputs: ReportInputs) -> list[Page]:
    """The planned pages of one file's report, in order: ``(title, builder)`` pairs (a
    builder draws its page when called; nothing is drawn here)."""
    light = inputs.light
    cmap = light.channel_map
    prev = inputs.previous
    n_prev = _n_previous(prev)
    light_cfg = inputs.config.get("light", {})
    groups = _adc_groups(cmap.n_adcs)
    title = f"wavedqm report: {inputs.file.name}"
    pages: list[Page] = [(title, partial(overview_figure, inputs, title))]
    quality, ref = inputs.quality, inputs.reference
    if quality is not None and ref is not None:
        t = f"Quality tests against reference {quality.reference}"
        pages.insert(0, (t, partial(quality_pages.quality_page, quality, t, ref.describe())))

    per_channel = (
        (
            "baseline",
            "baseline (ADC16 counts)",
            dict(
                highlight=_cells_mask(light.active.shape, light.baseline_flagged),
                highlight_label="new baseline problem",
                reference_lines=tuple(light_cfg.get("baseline_range_adc16", ())),
                reference_label="allowed baseline range",
                deviation_limit=C.BASELINE_SHIFT_SIGMAS,
            ),
        ),
        (
            "noise",
            "noise (ADC16 counts, std of the pedestal)",
            dict(
                highlight=_cells_mask(light.active.shape, light.dead_new),
                highlight_label="new dead channel (no pulses: its noise can look normal)",
            ),
        ),
    )
    for quantity, y_label, options in per_channel:
        current = getattr(light.selections["all"], quantity)
        previous = None if prev is None else getattr(prev, quantity)["all"]
        deviation = None if previous is None else shift_in_sigmas(current, previous)
        for adcs in groups:
            t = f"{quantity.capitalize()} per channel, {_adc_range(adcs)}"
            builder = partial(
                channel_pages.channel_series_figure,
                t,
                y_label,
                current,
                previous,
                n_prev,
                adcs=adcs,
                active=light.monitored,
                deviation=deviation,
                reference=None if quality is None or ref is None else ref.spreads[quantity],
                reference_name="" if ref is None else ref.name,
                **options,
            )
            pages.append((t, builder))

    if inputs.jump is not None:
        t = "Largest sample-to-sample jump"
        pages.append((t, partial(light_pages.jump_figure, inputs.jump, title=t)))

    if inputs.spectra is not None:
        spectra = inputs.spectra
        for adcs in groups:
            t = f"Power spectra per EPCB, {_adc_range(adcs)}"
            pages.append((t, partial(light_pages.spectra_page, t, spectra, cmap, adcs)))

    by_trig = light.events_by_trigger
    sel_labels = {s: f"{s} trigger ({by_trig.get(s, 0)} events)" for s in TRIGGER_SELECTIONS}
    for flag, flag_name in FLAG_NAMES.items():
        for gran, what in GRANULARITY_TITLES.items():
            current = {s: light.fractions[flag][s][gran] for s in TRIGGER_SELECTIONS}
            previous = None
            if prev is not None:
                previous = {s: prev.fractions[flag][s][gran] for s in TRIGGER_SELECTIONS}
            for adcs in groups if gran == "channel" else [None]:
                t = f"{flag_name} fraction {what}"
                if adcs is not None:
                    t += f", {_adc_range(adcs)}"
                builder = partial(
                    light_pages.fraction_figure,
                    t,
                    gran,
                    current,
                    previous,
                    n_prev,
                    adcs=adcs,
                    active=light.monitored if gran == "channel" else None,
                    groups_per_adc=cmap.epcb_per_adc if gran == "epcb" else None,
                    selection_labels=sel_labels,
                )
                pages.append((t, builder))

    split = int(light_cfg.get("tpc_split_channel", 32))
    for style, cells, derive in (
        (FLATLINE_STYLE, inputs.flatline_cells, flatline_cells),
        (BASELINE_STYLE, inputs.baseline_cells, baseline_cells),
    ):
        if cells is None:
            cells = derive(light)
        builder = partial(
            render_mask,
            cells,
            style,
            time_start_s=light.time_start_s,
            time_end_s=light.time_end_s,
            source=inputs.file.name,
            tpc_split_channel=split,
            figsize=plots.A4_LANDSCAPE_IN,  # A4 like every other page
        )
        pages.append((style.title, builder))
    if quality is not None:
        builder = partial(quality_pages.quality_mask_figure, quality_cells(quality.worst,
                          quality.monitored), quality, time_start_s=light.time_start_s,
                          time_end_s=light.time_end_s, source=inputs.file.name,
                          tpc_split_channel=split, figsize=plots.A4_LANDSCAPE_IN)  # fmt: skip
        pages.append((quality_pages.QUALITY_STYLE.title, builder))
    return pages


# --- writing --------------------------------------------------------------------------------


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def write_pages(
    path: Path,
    pages: Sequence[Page],
    *,
    title: str,
    subject: str,
    footer: str = "",
    version: str = __version__,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Draw ``pages`` into one PDF at ``path``, atomically; returns (page titles, failures).

    A page whose builder raises, or whose figure fails while it is drawn into the PDF, becomes
    an error page (:func:`wavedqm.exporters.plots.error_figure`), logged with
    ``report_page_failed``; the others still come out, so the PDF always has one page per
    planned page. PDF metadata:
    ``Title``, ``Subject``, ``Creator``. Fonts are embedded as TrueType (Type 42) subsets:
    viewers render them well and text extractors (``pdftotext``, copy and paste) keep the
    lines of the page; about 0.1 s more per PDF than Type 3.
    """
    titles: list[str] = []
    failed: list[tuple[str, str]] = []
    metadata = {"Title": title, "Subject": subject, "Creator": f"wavedqm {version}"}
    n = len(pages)
    with (
        _gc_paused(),
        matplotlib.rc_context({"pdf.fonttype": 42}),
        atomic_open(path) as fh,
        PdfPages(fh, metadata=metadata) as pdf,
    ):
        for i, (page_title, builder) in enumerate(pages, start=1):
            titles.append(page_title)
            footer_text = f"{footer}   page {i} of {n}".strip()
            try:
                fig = builder()
                plots.add_footer(fig, footer_text)
                pdf.savefig(fig)
                continue
            except Exception as err:
                error = _error_text(err)
                failed.append((page_title, error))
                log.error(
                    "report_page_failed",
                    report=str(path),
                    page=page_title,
                    error=error,
                    exc_info=True,
                )
            _drop_partial_page(pdf, n_pages=i - 1)
            fig = plots.error_figure(page_title, error)
            plots.add_footer(fig, footer_text)
            pdf.savefig(fig)
    return titles, failed


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while pages are drawn: matplotlib creates hundreds
    of thousands of small objects per report, and the collections they trigger cost a quarter
    of the drawing time. Figures are freed by reference counting as usual; the collector is
    switched back on afterwards (if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _drop_partial_page(pdf: PdfPages, n_pages: int) -> None:
    """Forget the page a failed ``savefig`` started (drawn halfway, then closed by
    matplotlib), so that the error page takes its place: the PDF keeps one page per planned
    page. The half-drawn page stays in the file as an unreferenced object (its annotation
    object too: matplotlib writes every object it reserved), which readers ignore."""
    file = getattr(pdf, "_file", None)
    pages = getattr(file, "pageList", None)
    if isinstance(pages, list) and len(pages) > n_pages:
        del pages[n_pages:]


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` through a temporary file and a rename."""
    with atomic_open(target) as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return target


def write_file_report(
    path: Path, inputs: ReportInputs, latest: Path | None = None
) -> ReportOutcome:
    """Write the light report of one file at ``path`` (:func:`write_report`)."""
    return write_report(
        path, build_pages(inputs), inputs.file, LIGHT_SUBJECT, latest, version=inputs.version
    )


def write_report(
    path: Path,
    pages: Sequence[Page],
    source: Path,
    subject: str,
    latest: Path | None = None,
    *,
    version: str = __version__,
) -> ReportOutcome:
    """Write the report of input file ``source`` at ``path`` (atomically) from the pages its
    processors planned (``subject``: what they show, PDF metadata), then copy it to
    ``latest`` (a stable name served over HTTP) when given. Never raises for a page that
    fails; raises ``OSError`` if the file itself cannot be written (``path`` is then left as
    it was)."""
    started = time.perf_counter()
    path = Path(path)
    titles, failed = write_pages(
        path,
        pages,
        title=f"wavedqm report: {source.name}",
        subject=f"{source.name}: {subject}",
        footer=f"{source.name} - wavedqm {version}",
        version=version,
    )
    if latest is not None:
        copy_atomic(path, Path(latest))
    seconds = time.perf_counter() - started
    log.info(
        "report_written",
        file=str(source),
        report=str(path),
        pages=len(titles),
        failed_pages=[title for title, _ in failed],
        seconds=round(seconds, 3),
    )
    return ReportOutcome(path=path, pages=titles, failed=failed, seconds=seconds)
