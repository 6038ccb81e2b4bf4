"""All benchmarks in one run: `python3 benchmarks/run.py [--quick]`.

Prints, measured in this run: the fused light kernel against the seed's numpy `features()` and a
plain `np.sum` memory pass (GB/s of int16 samples, ratios); `wavedqm process` on a >= 1 GB
simulated file against a bare h5py read (times, ratio, peak RSS); power spectra; the PDF report;
the S2 kernels against numpy on a 988-frame FastFrame set (frames/s, GB/s, ratio); the voxel
kernel against numpy.histogramdd and boost-histogram's Mean storage, and the charge processor
against a bare h5py read of the hits; `wavedqm reprocess` on 1 and 2 Dask workers against serial
`wavedqm process` (files/s) and the scheduler's cost per task.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_kernel
import bench_process
import bench_report
import bench_reprocess
import bench_s2
import bench_s2_pipeline
import bench_shots
import bench_spectra
import bench_voxels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    results = {
        "kernel": bench_kernel.run(n_events=40 if args.quick else 200),
        "process_plain": bench_process.run(n_events=100 if args.quick else 1100),
        "process_gzip": bench_process.run(n_events=50 if args.quick else 300, compression="gzip"),
        "spectra": bench_spectra.run(n_events=200 if args.quick else 1000),
        "report": bench_report.run(
            n_events=50 if args.quick else 200, repeats=1 if args.quick else 3
        ),
        "s2_int8": bench_s2.run(n_frames=100 if args.quick else 988, dtype="int8"),
        "s2_int16": bench_s2.run(n_frames=100 if args.quick else 988, dtype="int16"),
        "s2_pipeline": bench_s2_pipeline.run(files=2 if args.quick else 4),
        "voxels": bench_voxels.run(
            n_hits=500_000 if args.quick else 5_000_000,
            repeats=1 if args.quick else 3,
            file_hits=500_000 if args.quick else 5_000_000,
        ),
        "reprocess": bench_reprocess.run(
            files=3 if args.quick else 8, events=50 if args.quick else 300
        ),
        "shots": bench_shots.run(
            n_samples=100_000 if args.quick else 1_000_000, repeats=1 if args.quick else 3
        ),
    }
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for name, result in results.items():
        print(f"== {name}")
        for key, value in result.items():
            print(f"  {key:34s} {value}")


if __name__ == "__main__":
    main()
