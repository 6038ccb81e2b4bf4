"""A toy processor for a made-up format, registered by the tests only: proof that a kind of
data is one module plus one registry line.

``*.toy`` files start with ``TOYDQM1`` and hold one integer per line after it; the toy
processor counts them (events), sums them, writes ``OUT/<file>/toy.txt`` and a report page.
A line ``fail`` makes the file bad (reason ``wrong_layout``). ``FlowRowsProcessor`` reads the
number of light event rows of a ``.FLOW.hdf5`` file with h5py: a second processor for the
light processor's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
from matplotlib.figure import Figure

from wavedqm.atomic import atomic_write_text
from wavedqm.errors import InputFileError
from wavedqm.exporters.paths import file_output_dir
from wavedqm.formats.detect import FLOW, FLOW_FORMAT, FileFormat
from wavedqm.processors.base import NOT_PREPARED, BaseProcessor, Outcome, unwrap
from wavedqm.processors.registry import Registration

TOY_FORMAT = FileFormat(
    "toy-counts",
    patterns=("*.toy",),
    signatures=((0, b"TOYDQM1\n"),),
    description="a toy counts file",
    inspect="toyproc:inspect_toy",
)


def inspect_toy(path: Path) -> dict[str, object]:
    lines = Path(path).read_text().splitlines()[1:]
    return {"format": TOY_FORMAT.name, "values": len(lines)}


def _page(total: int) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))
    fig.text(0.5, 0.5, f"toy total {total}", ha="center")
    return fig


class ToyProcessor(BaseProcessor):
    name = "toy"
    formats = (TOY_FORMAT.name,)
    report_subject = "toy totals"

    def process(self, path: Path, completed_at: float | None = None) -> Outcome:
        lines = Path(path).read_text().splitlines()[1:]
        if "fail" in lines:
            raise InputFileError(path, "wrong_layout", "a 'fail' line", "integers")
        total = sum(int(x) for x in lines)
        out = file_output_dir(self.context.out_root, path) / "toy.txt"
        atomic_write_text(out, f"{total}\n")
        return Outcome(
            self.name,
            Path(path),
            events=len(lines),
            summary=f"{len(lines)} values, total {total}",
            outputs={"toy": out},
            document={"file": str(path), "format": TOY_FORMAT.name, "toy": {"total": total}},
            pages=[(f"Toy total of {Path(path).name}", lambda: _page(total))],
        )


class FlowRowsProcessor(BaseProcessor):
    name = "flowrows"
    formats = (FLOW,)

    def process(self, path: Path, completed_at: float | None = None) -> Outcome:
        with h5py.File(path, "r", locking=False) as f:
            rows = len(f["light/events/data"]) if "light/events/data" in f else 0
        return Outcome(
            self.name, Path(path), events=rows, summary=f"{rows} light rows",
            nothing=rows == 0, document={"flowrows": rows},
        )  # fmt: skip


TOY = Registration("toy", "toyproc:ToyProcessor", (TOY_FORMAT,))
FLOW_ROWS = Registration("flowrows", "toyproc:FlowRowsProcessor", (FLOW_FORMAT,))


class PreparedToyProcessor(ToyProcessor):
    """The toy with a ``prepare`` (``wavedqm reprocess`` runs it on a worker): a line
    ``poison`` kills the process that prepares the file, as a reader crash would."""

    name = "preparedtoy"

    def prepare(self, path: Path) -> list[str]:
        lines = Path(path).read_text().splitlines()[1:]
        if "poison" in lines:
            os._exit(3)
        if "fail" in lines:
            raise InputFileError(path, "wrong_layout", "a 'fail' line", "integers")
        return lines

    def process(
        self, path: Path, completed_at: float | None = None, prepared: object = NOT_PREPARED
    ) -> Outcome:
        lines = self.prepare(path) if prepared is NOT_PREPARED else unwrap(prepared)
        total = sum(int(x) for x in lines)
        out = file_output_dir(self.context.out_root, path) / "toy.txt"
        atomic_write_text(out, f"{total}\n")
        return Outcome(self.name, Path(path), events=len(lines), summary=f"total {total}",
                       outputs={"toy": out}, document={"toy": {"total": total}})  # fmt: skip


PREPARED_TOY = Registration("preparedtoy", "toyproc:PreparedToyProcessor", (TOY_FORMAT,))


def pid_drawing() -> dict[str, Path]:
    """A drawing job that says which process drew it."""
    return {"pid": Path(str(os.getpid()))}


def failing_drawing() -> dict[str, Path]:
    raise ValueError("this figure cannot be drawn")


def crashing_drawing() -> dict[str, Path]:
    os._exit(9)
