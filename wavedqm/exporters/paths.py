"""Where outputs go under the output folder ``OUT`` (config ``output.dir``)."""

from __future__ import annotations

from pathlib import Path


def file_output_dir(out_root: Path, path: Path) -> Path:
    """``OUT/<file name>/``: every per-file output of one input file (``summary.json``, the
    report, the masks)."""
    return Path(out_root) / Path(path).name
