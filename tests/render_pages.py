"""Render every page type wavedqm draws, to look at them (test support, not a test).

``python tests/render_pages.py OUT [--dpi 60]`` runs ``wavedqm demo --exit-when-done`` into
``OUT/demo`` (light + charge ``.FLOW.hdf5`` files, an S2 field scan, shots), then writes into
``OUT/pages``: every page of every PDF it made (per-file light reports, the run report, the
shot report) as PNGs at ``--dpi`` (poppler's ``pdftoppm``), a copy of every PNG it drew (masks,
voxel maps, S2 plots, shot overlays and trends), and ``index.txt``: one line per image with
its source and, for a PDF page, the page's first line of text. Look at them at full size and
at Grafana-panel size (640 px wide).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _first_line(pdf: Path, page: int) -> str:
    text = _run(["pdftotext", "-f", str(page), "-l", str(page), "-layout", str(pdf), "-"])
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--dpi", type=int, default=60)
    args = ap.parse_args(argv)
    for tool in ("pdftoppm", "pdftotext", "pdfinfo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install poppler-utils")
    demo, pages = args.out / "demo", args.out / "pages"
    shutil.rmtree(demo, ignore_errors=True)
    shutil.rmtree(pages, ignore_errors=True)
    pages.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "wavedqm.cli", "demo", "--out", str(demo),
                    "--exit-when-done", "--listen", "127.0.0.1:0"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    index = []
    results = demo / "results"
    for pdf in sorted(results.rglob("*.pdf")):
        if pdf.parent.name == "reports":
            continue  # latest.pdf: a copy of the last per-file report
        stem = "_".join(pdf.relative_to(results).with_suffix("").parts)
        n = int(next(line.split()[-1] for line in _run(["pdfinfo", str(pdf)]).splitlines()
                     if line.startswith("Pages:")))  # fmt: skip
        _run(["pdftoppm", "-r", str(args.dpi), "-png", str(pdf), str(pages / stem)])
        made = sorted(pages.glob(f"{stem}-*.png"))
        for k, png in enumerate(made, start=1):
            index.append(f"{png.name}\t{pdf.relative_to(results)} page {k}/{n}\t"
                         f"{_first_line(pdf, k)}")  # fmt: skip
    for png in sorted(results.rglob("*.png")):
        if png.parent.name == "images":
            continue  # the served latest copies
        name = "_".join(png.relative_to(results).parts)
        shutil.copy2(png, pages / name)
        index.append(f"{name}\t{png.relative_to(results)}\t(drawn PNG)")
    (pages / "index.txt").write_text("\n".join(index) + "\n")
    sys.stdout.write(f"{len(index)} images in {pages} (index.txt lists them)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
