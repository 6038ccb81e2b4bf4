"""What a ``wavedqm reprocess`` has to do: the input files, those the ledger already holds
(skipped unless ``--force``), the ``--since/--until`` window, and the units of work."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wavedqm.config import Config
from wavedqm.daemon.ledger import Ledger, fingerprint
from wavedqm.errors import InputFileError
from wavedqm.formats.detect import FLOW, WFM, detect
from wavedqm.processors.registry import Registration, enabled


@dataclass
class Plan:
    """The units of work: ``flow`` files (light and charge, one task each, taken in data-time
    order), ``files`` of the other formats (shots: one task each, in file order), ``s2_runs``
    (run folder -> its ``.wfm`` files: one task per run), ``direct`` (files of no known format:
    routed by the client, to fail with their reason), and what was left out."""

    flow: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    s2_runs: dict[Path, list[Path]] = field(default_factory=dict)
    direct: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    """In the ledger with the same size and mtime (done before)."""
    outside: list[Path] = field(default_factory=list)
    """Modified outside the ``--since/--until`` window."""

    @property
    def n_files(self) -> int:
        n_s2 = sum(len(files) for files in self.s2_runs.values())
        return len(self.flow) + len(self.files) + len(self.direct) + n_s2


def _in_window(path: Path, since: float | None, until: float | None) -> bool:
    mtime = os.stat(path).st_mtime
    return (since is None or mtime >= since) and (until is None or mtime < until)


def plan(
    cfg: Config,
    inputs: Sequence[Path],
    ledger: Ledger | None,
    *,
    since: float | None = None,
    until: float | None = None,
    registrations: Sequence[Registration] | None = None,
) -> Plan:
    """Sort the inputs (files as named, folders recursively) into units of work. ``ledger``
    None: ``--force`` (nothing skipped). ``since``/``until``: unix s, on the files'
    modification times (when the DAQ wrote them; cheap on thousands of files)."""
    from wavedqm.cli import input_files
    from wavedqm.processors.router import watch_patterns

    patterns = watch_patterns(cfg)
    if registrations is not None:
        patterns = tuple(
            dict.fromkeys(p for r in registrations for f in r.formats for p in f.patterns)
        )
    files, missing = input_files(inputs, patterns)
    result = Plan(missing=list(missing))
    regs = registrations if registrations is not None else enabled(cfg.processors.disabled)
    formats = tuple(dict.fromkeys(f for r in regs for f in r.formats))
    wfm_by_run: dict[Path, list[Path]] = {}
    new_runs: set[Path] = set()
    for path in files:
        if not _in_window(path, since, until):
            result.outside.append(path)
            continue
        seen = ledger is not None and ledger.seen(fingerprint(path, read_header=False))
        try:
            kind = detect(path, formats).name
        except (InputFileError, OSError):
            kind = ""
        if kind == WFM:  # a run is redone whole when any of its files is new
            run = path.parent.parent
            wfm_by_run.setdefault(run, []).append(path)
            if not seen:
                new_runs.add(run)
            continue
        if seen:
            result.skipped.append(path)
        elif kind == FLOW:
            result.flow.append(path)
        elif kind:
            result.files.append(path)
        else:
            result.direct.append(path)
    for run, run_files in wfm_by_run.items():
        if run in new_runs:
            result.s2_runs[run] = run_files
        else:
            result.skipped += run_files
    return result
