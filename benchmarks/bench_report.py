"""Time the PDF reports: the per-file report of a full 8 × 64 file and the run report of 50
summaries.

The per-file report is drawn from a real pipeline run: three simulated files (1000 samples,
the demo's faults) processed in turn, so that the last one has the rollup of the two before it
(the "previous files" bands); power spectra of 64 events (``SpectraAccumulator``); the jump
event taken from the first batch. ``write_file_report`` (every page drawn, the PDF written
atomically, the "latest" copy) is timed best of ``repeats``, as wall time and as the CPU time
of this process (the steadier figure on a shared machine). The run report: ``write_run_report``
over 50 copies of the last summary with spectra ROI values, best of ``repeats``.

Usage::

    python benchmarks/bench_report.py [--events 200] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, "") and "wavedqm" not in sys.modules:
    # run as a script from a source checkout: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib

from wavedqm.analysis.jump import JumpEvent
from wavedqm.analysis.masks import baseline_cells, flatline_cells
from wavedqm.analysis.spectra import SpectraAccumulator
from wavedqm.config import Config
from wavedqm.exporters.report import ReportInputs, build_pages, write_file_report
from wavedqm.exporters.run_report import build_run_pages, write_run_report
from wavedqm.formats.flow import FlowLightReader
from wavedqm.logs import configure_logging
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import ChannelFaults, write_flow_file

DEMO_FAULTS = ChannelFaults(
    dead=((1, 9), (6, 40)),
    clipped=((3, 22),),
    noisy=((4, 5),),
    baseline_off=((7, 60),),
    negative=((2, 10),),
)
RUN_FILES = 50


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall and best CPU time (s) of ``fn`` over ``repeats`` runs."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def report_inputs(folder: Path, n_events: int) -> ReportInputs:
    """A real pipeline run of three files; the inputs of the last one's report."""
    cfg = Config().with_overrides(
        output={"dir": str(folder / "out"), "state_dir": str(folder / "state")}
    )
    pipeline = Router(cfg)
    try:
        for i in range(3):
            path = folder / f"bench_p{i:04d}.FLOW.hdf5"
            write_flow_file(
                path,
                n_events=n_events,
                seed=i,
                detector_seed=7,
                faults=DEMO_FAULTS,
                start_time_s=1_700_000_000.0 + 600 * i,
            )
            outcome = pipeline.route(path).detail("light")
    finally:
        pipeline.close()
    light = outcome.light
    assert light is not None
    spectra_acc: SpectraAccumulator | None = None
    jump: JumpEvent | None = None
    with FlowLightReader(outcome.path) as reader:
        for batch in reader.batches():
            if spectra_acc is None:
                spectra_acc = SpectraAccumulator(
                    light.active.shape[0],
                    light.active.shape[1],
                    batch.samples.shape[-1],
                    cfg.light.sample_period_us,
                    64,
                    light.active,
                    expected_events=reader.info.n_light_events,
                )
                steps = np.abs(np.diff(batch.samples[0].astype(np.int32), axis=-1))
                a, c, i = np.unravel_index(int(np.argmax(steps)), steps.shape)
                jump = JumpEvent(
                    event=batch.first_event,
                    adc=int(a),
                    channel=int(c),
                    jump_adc16=int(steps[a, c, i]),
                    sample=int(i),
                    trig_type=int(batch.trig_type[0]),
                    samples=batch.samples[0, a, c].copy(),
                    sample_period_us=cfg.light.sample_period_us,
                )
            spectra_acc.add(batch)
    assert spectra_acc is not None
    spectra = spectra_acc.result()
    summary = dict(outcome.summary)
    summary["spectra"] = spectra.to_dict()
    return ReportInputs(
        file=outcome.path,
        summary=summary,
        config=cfg.to_dict(),
        light=light,
        previous=outcome.previous,
        spectra=spectra,
        jump=jump,
        flatline_cells=flatline_cells(light),
        baseline_cells=baseline_cells(light),
        processing_seconds=outcome.processing_seconds,
    )


def run_summaries(summary: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` copies of one summary as the files of a run (names, times; every 7th keeps its
    problems, the others are clean)."""
    docs = []
    for i in range(n):
        doc = json.loads(json.dumps(summary))
        doc["file"] = f"/data/mpd_run_bench_p{i:04d}.FLOW.hdf5"
        doc["time_start_s"] = 1_700_000_000.0 + 600 * i
        if i % 7:
            for key in ("dead_channels", "baseline_flagged", "clipped_channels"):
                doc[key] = []
        docs.append(doc)
    return docs


def run(n_events: int = 200, repeats: int = 3, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        inputs = report_inputs(folder, n_events)
        pages = len(build_pages(inputs))
        target = folder / "out" / inputs.file.name / "report.pdf"
        latest = folder / "out" / "reports" / "latest.pdf"
        cold_start = time.perf_counter()
        write_file_report(target, inputs, latest=latest)  # first one: fonts, caches
        cold = time.perf_counter() - cold_start
        wall, cpu = best_time(lambda: write_file_report(target, inputs, latest=latest), repeats)
        size = target.stat().st_size

        docs = run_summaries(inputs.summary, RUN_FILES)
        run_path = folder / "run_report.pdf"
        run_wall, run_cpu = best_time(lambda: write_run_report(docs, run_path), repeats)
        return {
            "file_report_pages": pages,
            "file_report_first_s": round(cold, 3),
            "file_report_wall_s": round(wall, 3),
            "file_report_cpu_s": round(cpu, 3),
            "file_report_ms_per_page": round(1000 * wall / pages, 1),
            "file_report_bytes": size,
            "run_report_files": RUN_FILES,
            "run_report_pages": len(build_run_pages(docs)),
            "run_report_wall_s": round(run_wall, 3),
            "run_report_cpu_s": round(run_cpu, 3),
            "events_per_file": n_events,
            "repeats": repeats,
            "matplotlib": matplotlib.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="events per simulated file")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    configure_logging("warning")
    result = run(n_events=args.events, repeats=args.repeats)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        print(f"  {key:28s} {value}")


if __name__ == "__main__":
    main()
