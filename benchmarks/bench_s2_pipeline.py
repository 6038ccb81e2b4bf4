"""The online S2 pipeline per 988-frame FastFrame file (what the scope writes each time).

Simulates one set of several 988-frame files, then feeds them to ``S2Engine.process_file``
one by one (as the daemon does) and prints seconds per file and frames per second; pass 1,
pass 2 (with any re-run of earlier files), JSON/NPY writing and metrics are included, plots
are drawn on their own thread and waited for separately.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from wavedqm.config import Config
from wavedqm.kernels.s2 import warm_up
from wavedqm.processors.s2 import s2_engine_from_config
from wavedqm.simulate.wfm import write_set


def run(files: int = 4, frames: int = 988) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        set_dir = Path(tmp) / "RUN1" / "FieldScan_Gate0400_Anode2300"
        t0 = time.perf_counter()
        truth = write_set(set_dir, gate_v=400, anode_v=2300, files=files, frames_per_file=frames)
        simulate_s = time.perf_counter() - t0
        cfg = Config().with_overrides(
            output={"dir": str(Path(tmp) / "out"), "state_dir": str(Path(tmp) / "state")},
            s2={"ion_bin_cuts": (0.0, 80.0), "xray_bin_cuts": (5.0, 90.0)},
        )
        warm_up()
        pipeline = s2_engine_from_config(cfg, None)
        per_file = []
        for path in sorted(truth.files):
            t = time.perf_counter()
            outcome = pipeline.process_file(path)
            per_file.append(time.perf_counter() - t)
        t = time.perf_counter()
        for fut in outcome.plots:
            fut.result()
        pipeline.close()
        plots_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in truth.files) / len(truth.files) / 1e6
    return {
        "files": files,
        "frames_per_file": frames,
        "record_length": truth.record_length,
        "file_mb": round(size_mb, 1),
        "simulate_s": round(simulate_s, 2),
        "seconds_per_file": [round(s, 3) for s in per_file],
        "frames_per_s_last_file": round(frames / per_file[-1]),
        "plots_after_last_file_s": round(plots_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    for key, value in run(args.files).items():
        print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
