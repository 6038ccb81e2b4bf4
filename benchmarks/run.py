"""All benchmarks in one run: `python3 benchmarks/run.py [--quick]`.

Prints, measured in this run: the fused light kernel against the seed's numpy `features()` and a
plain `np.sum` memory pass (GB/s of int16 samples, ratios), and `wavedqm process` on a >= 1 GB
simulated file against a bare h5py read (times, ratio, peak RSS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_kernel
import bench_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    results = {
        "kernel": bench_kernel.run(n_events=40 if args.quick else 200),
        "process_plain": bench_process.run(n_events=100 if args.quick else 1100),
        "process_gzip": bench_process.run(n_events=50 if args.quick else 300, compression="gzip"),
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
