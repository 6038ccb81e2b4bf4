"""Benchmark of ``wavedqm reprocess`` on this machine: files per second against serial
``wavedqm process`` of the same files, measured in the same run.

Data: ``--files`` simulated ``.FLOW.hdf5`` files (light + charge, ``--events`` events of 1000
samples each), in the page cache. Each configuration starts from empty output and state
folders. Rows:

- ``serial``: :func:`wavedqm.cli.process_files` in this process (the plotting thread draws the
  masks and reports while the next file is analysed);
- ``dask_1``, ``dask_2``: :func:`wavedqm.reprocess.run.reprocess` on a LocalCluster of 1 and 2
  worker processes (cluster start-up included, and reported apart as ``cluster_start_s``);
- ``task_overhead_ms``: the scheduler's cost per task: ``--noop`` no-op tasks through the
  2-worker cluster, wall time per task;
- ``dask_N_client_ms_per_file``: the client's serial part per file (routing with what the
  worker prepared: comparisons, state, summaries, ledger): the ceiling of any cluster is
  1000 / this files per second.

Reports (PDF) on by default: they are most of the CPU per file (``--no-reports``: masks and
voxel PNGs only).

Usage::

    python benchmarks/bench_reprocess.py [--files 8] [--events 300] [--no-reports] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavedqm.cli import process_files
from wavedqm.config import load_config
from wavedqm.logs import configure_logging
from wavedqm.reprocess.run import ReprocessOptions, dask_client, reprocess
from wavedqm.simulate.flow import write_flow_file

T0 = 1_780_000_000.0


def _noop(x: int) -> int:
    return x


def _config(root: Path, name: str, reports: bool) -> Any:
    path = root / f"{name}.toml"
    path.write_text(
        f'[output]\ndir = "{root / name / "out"}"\nstate_dir = "{root / name / "state"}"\n'
        f"reports = {'true' if reports else 'false'}\n"
    )
    return load_config(path)


def task_overhead_ms(workers: int, n: int) -> float:
    with dask_client(ReprocessOptions(workers=workers)) as client:
        client.gather(client.map(_noop, range(50), pure=False))  # warm
        t0 = time.perf_counter()
        client.gather(client.map(_noop, range(n), pure=False))
        return 1e3 * (time.perf_counter() - t0) / n


def cluster_start_s(workers: int) -> float:
    t0 = time.perf_counter()
    with dask_client(ReprocessOptions(workers=workers)) as client:
        client.submit(_noop, 1).result()
        return time.perf_counter() - t0


def run(files: int = 8, events: int = 300, reports: bool = True, noop: int = 2000) -> dict:
    configure_logging("warning")
    root = Path(tempfile.mkdtemp(prefix="wavedqm-bench-reprocess-"))
    try:
        data = root / "data"
        data.mkdir()
        for i in range(files):
            write_flow_file(
                data / f"f{i:03d}.FLOW.hdf5", n_events=events, n_samples=1000, seed=i,
                with_charge=True, start_time_s=T0 + 60 * i, detector_seed=1,
            )  # fmt: skip
        size_mb = sum(p.stat().st_size for p in data.iterdir()) / 1e6
        result: dict[str, Any] = {"files": files, "events_per_file": events, "data_mb": size_mb,
                                  "reports": reports}  # fmt: skip
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its one line per file
            process_files(_config(root, "serial", reports), [data])
        result["serial_s"] = time.perf_counter() - t0
        for workers in (1, 2):
            cfg = _config(root, f"dask{workers}", reports)
            t0 = time.perf_counter()
            report = reprocess(cfg, [data], ReprocessOptions(workers=workers, progress=False))
            result[f"dask_{workers}_s"] = time.perf_counter() - t0
            assert report.done == files, report.failures
            result[f"dask_{workers}_client_ms_per_file"] = 1e3 * report.client_seconds / files
        result["cluster_start_s"] = cluster_start_s(2)
        result["task_overhead_ms"] = task_overhead_ms(2, noop)
        for key in ("serial", "dask_1", "dask_2"):
            result[f"{key}_files_per_s"] = files / result[f"{key}_s"]
        result["dask_2_vs_serial"] = result["serial_s"] / result["dask_2_s"]
        result["dask_2_vs_dask_1"] = result["dask_1_s"] / result["dask_2_s"]
        steady = result["dask_2_s"] - result["cluster_start_s"]
        result["dask_2_vs_serial_without_start"] = result["serial_s"] / max(steady, 1e-9)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--no-reports", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.files, args.events, reports=not args.no_reports)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        print(f"{key:34s} {value:.3f}" if isinstance(value, float) else f"{key:34s} {value}")


if __name__ == "__main__":
    main()
