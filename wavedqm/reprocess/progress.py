"""Progress of a reprocess: a bar (files done / failed, rate, ETA: tqdm) on a terminal, a
structured log line per file otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from wavedqm.logs import get_logger

log = get_logger(__name__)


class Progress:
    def __init__(self, total: int, bar: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        if bar is None:
            bar = sys.stderr.isatty()
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="file", dynamic_ncols=True, file=sys.stderr)

    def update(self, *, ok: bool, path: Path) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(1)
            return
        n = self.done + self.failed
        elapsed = time.monotonic() - self.started
        rate = n / elapsed if elapsed > 0 else 0.0
        eta = (self.total - n) / rate if rate > 0 else None
        log.info(
            "reprocess_progress", file=str(path), done=self.done, failed=self.failed,
            total=self.total, files_per_s=round(rate, 3),
            eta_s=None if eta is None else round(eta, 1),
        )  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
