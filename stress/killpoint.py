"""``python -m stress.killpoint POINT N [wavedqm arguments...]``: run ``wavedqm`` that sends
itself SIGKILL at the N-th time it reaches POINT, a chosen instant of a file's processing (the
stress run's targeted kills; the random ones cannot aim at a 1 ms window). The library is
not changed: the wrapper patches the function at that instant in this process only.

Points (each the worst instant of its step):

- ``ledger-before``: every output and state of the file written, its ledger row not yet;
- ``ledger-after``: the ledger row committed, the drawings not yet made;
- ``history``: the history row written and fsynced, the row count not yet bumped;
- ``summary``: ``summary.json`` written to its temporary file and fsynced, not yet renamed;
- ``voxels``: a file's voxel contribution saved, its run accumulator not yet;
- ``journal``: a drawing journaled, not yet queued;
- ``pdf``: a report's first page written into the temporary PDF (run with
  ``output.drawing_processes = 0``: the report is drawn in this process).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

POINTS = ("ledger-before", "ledger-after", "history", "summary", "voxels", "journal", "pdf")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(owner: Any, name: str, n: int, *, after: bool, when: Callable[..., bool] | None = None
         ) -> None:  # fmt: skip
    """Wrap ``owner.name`` to die at its n-th (matching) call, before or after it runs."""
    original = getattr(owner, name)
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        hit = when is None or when(*args, **kwargs)
        if hit:
            calls[0] += 1
        if hit and calls[0] == n and not after:
            _die()
        out = original(*args, **kwargs)
        if hit and calls[0] == n and after:
            _die()
        return out

    setattr(owner, name, wrapped)


def arm(point: str, n: int) -> None:
    if point in ("ledger-before", "ledger-after"):
        from wavedqm.daemon.ledger import Ledger

        _arm(Ledger, "record", n, after=point == "ledger-after")
    elif point == "history":
        from wavedqm.exporters.history_store import HistoryStore

        _arm(HistoryStore, "_write_row", n, after=True)
    elif point == "summary":
        _arm(os, "replace", n, after=False,
             when=lambda src, dst, **_: os.fspath(dst).endswith("summary.json"))  # fmt: skip
    elif point == "voxels":
        from wavedqm.exporters.voxel_store import VoxelStore

        _arm(VoxelStore, "save_contribution", n, after=True)
    elif point == "journal":
        from wavedqm.exporters.drawing_journal import DrawingJournal

        _arm(DrawingJournal, "record", n, after=True)
    elif point == "pdf":
        from matplotlib.backends.backend_pdf import PdfPages

        _arm(PdfPages, "savefig", n, after=True)
    else:
        raise SystemExit(f"killpoint: unknown point {point!r} (expected one of {POINTS})")


def main(argv: list[str]) -> int:
    point, n, *rest = argv
    arm(point, int(n))
    from wavedqm.cli import main as wavedqm_main

    return int(wavedqm_main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
