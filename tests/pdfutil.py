"""Read PDFs back with Debian's poppler-utils (pdfinfo, pdftotext); skip when absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} (Debian's poppler-utils) is not installed: cannot read PDFs back")
    return path


def pdf_info(path: Path) -> dict[str, str]:
    out = subprocess.run(
        [_poppler("pdfinfo"), str(path)], check=True, capture_output=True, text=True
    ).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def pdf_pages(path: Path) -> int:
    return int(pdf_info(path)["Pages"])


def page_text(path: Path, page: int | None = None) -> str:
    """Text of one page (1-based; None: the whole document) in reading layout (``-layout``:
    a line of the page stays one line), whitespace collapsed."""
    pages = [] if page is None else ["-f", str(page), "-l", str(page)]
    out = subprocess.run(
        [_poppler("pdftotext"), "-layout", *pages, str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return " ".join(out.split())
