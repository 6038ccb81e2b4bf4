"""`wavedqm process` on a >= 1 GB simulated file against a bare h5py read of its samples.

Prints wall times, the ratio, and the peak RSS of the `wavedqm process` child process.
Targets (issue 2): processing <= 1.5x the bare read; peak RSS <= 500 MB whatever the file size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from wavedqm.constants import READ_CHUNK_BYTES
from wavedqm.simulate.flow import write_flow_file


def bare_read_seconds(path: Path, chunk_bytes: int = READ_CHUNK_BYTES) -> tuple[float, int]:
    """Read every sample with h5py alone (row slices into one reused buffer); (s, bytes)."""
    start = time.perf_counter()
    with h5py.File(path, "r") as f:
        dset = f["light/wvfm/data"]
        row_bytes = dset.dtype.itemsize
        rows = max(1, chunk_bytes // row_bytes)
        buf = np.empty(rows, dtype=dset.dtype)
        total = 0
        for a in range(0, dset.shape[0], rows):
            b = min(a + rows, dset.shape[0])
            dset.read_direct(buf, np.s_[a:b], np.s_[0 : b - a])
            total += (b - a) * row_bytes
    return time.perf_counter() - start, total


CHILD = (
    "import sys; from wavedqm.cli import main; code = main(sys.argv[1:]); "
    "status = open('/proc/self/status').read(); "
    "print(status.split('VmHWM:')[1].split()[0], file=sys.stderr); sys.exit(code)"
)


def process_child(path: Path, out: Path) -> tuple[float, float, dict]:
    """Run `wavedqm process` in a child; (wall s, peak RSS MB, summary)."""
    # the child reports its own high-water mark (VmHWM of its own address space): a parent's
    # pages, shared while the child is forked, would inflate ru_maxrss
    cmd = [sys.executable, "-c", CHILD, "process", str(path), "--out", str(out)]
    cmd += ["--state", str(out.parent / "state"), "--log-level", "warning"]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"wavedqm process exited with {done.returncode}: {done.stderr}")
    peak_mb = int(done.stderr.strip().splitlines()[-1]) / 1024  # VmHWM is in kB
    summary = json.loads((out / path.name / "summary.json").read_text())
    return wall, peak_mb, summary


def run(n_events: int = 1100, compression: str | None = None, workdir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "bench.FLOW.hdf5"
        t0 = time.perf_counter()
        write_flow_file(path, n_events=n_events, seed=1, compression=compression)
        size_gb = path.stat().st_size / 1e9
        sim_s = time.perf_counter() - t0
        bare_read_seconds(path)  # warm the page cache for both measurements
        bare_s, sample_bytes = min(bare_read_seconds(path) for _ in range(2))
        wall, peak_mb, summary = process_child(path, Path(tmp) / "out")
        analyse_s = summary["processing_seconds"]
    result = {
        "file_gb": round(size_gb, 3),
        "compression": compression or "none",
        "events": n_events,
        "simulate_s": round(sim_s, 2),
        "bare_h5py_read_s": round(bare_s, 3),
        "bare_read_gb_per_s": round(sample_bytes / bare_s / 1e9, 2),
        "process_analyse_s": round(analyse_s, 3),
        "process_wall_s_incl_startup": round(wall, 3),
        "ratio_analyse_over_bare_read": round(analyse_s / bare_s, 2),
        "ratio_wall_over_bare_read": round(wall / bare_s, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1100, help="1 event = 1 MB of samples")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()
    result = run(args.events, "gzip" if args.gzip else None)
    for key, value in result.items():
        print(f"{key:32s} {value}")


if __name__ == "__main__":
    main()
