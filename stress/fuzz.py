"""Byte-level fuzzing of the readers: every exception must be one of ours with a reason, no
case may hang, and no allocation may pass the configured limit.

Seeds are small valid files from the simulators (``.FLOW.hdf5`` with light and charge, plain
and gzip; ``.wfm`` FastFrame; shot CSV). Each case mutates one seed (random byte flips, runs of
0x00/0xFF, an 8-byte integer overwritten with an extreme value, a cut at a random point; half
of the offsets within the first 8 KiB, where HDF5 keeps its superblock and object headers) and
reads it the way the daemon does. Cases run in a worker process with an address-space limit;
the parent restarts a worker that hangs (over ``hang_seconds``) or dies.

Outcomes: ``ok`` (read fine), ``ours:<reason>`` (an ``InputFileError``), ``foreign:<type>``
(anything else: a bug), ``hang``, ``crash`` (the worker died, e.g. a segfault).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXTREMES = (2**64 - 1, 2**63 - 1, 2**63, 2**32 - 1, 2**31, 0, 1)
"""Values written over 8 bytes by the integer mutation."""
HEADER_BYTES = 8192
WORKER_ADDRESS_LIMIT = 6 * 2**30
"""Address space of a fuzz worker (bytes): an allocation sized by a hostile header fails
as ``MemoryError`` (counted foreign) instead of taking the machine."""


@dataclass
class FuzzReport:
    """What one format's fuzzing gave."""

    fmt: str
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    """First message per foreign/hang/crash outcome."""
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        return sum(n for k, n in self.outcomes.items() if not k.startswith(("ok", "ours:")))


# -- seeds ---------------------------------------------------------------------------------


def make_seeds(fmt: str, folder: Path) -> list[Path]:
    """Small valid files of ``fmt`` (``flow``, ``wfm`` or ``shots``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "flow":
        from wavedqm.simulate.flow import write_flow_file

        out = []
        for i, comp in enumerate((None, "gzip")):
            p = folder / f"seed{i}.FLOW.hdf5"
            write_flow_file(p, n_events=6, n_samples=128, seed=i, compression=comp,
                            with_charge=True, chunk_rows=2)  # fmt: skip
            out.append(p)
        return out
    if fmt == "wfm":
        from wavedqm.formats.wfm_writer import write_wfm

        rng = np.random.default_rng(0)
        p = folder / "seed.wfm"
        raw = rng.integers(-200, 200, (16, 256)).astype(np.int16)
        write_wfm(p, raw, dt_s=2e-9, t0_s=-1e-7, vscale=1e-3, voffset=0.0,
                  gmt_seconds=np.arange(16) + 1.7e9,
                  frac_seconds=np.linspace(0, 0.9, 16))  # fmt: skip
        return [p]
    if fmt == "shots":
        from wavedqm.simulate.shots import write_shot_csv

        t = np.arange(400) * 1e-7
        p = folder / "shot_0001.csv"
        write_shot_csv(p, t, {"pd": np.sin(t * 1e6), "pmt": np.cos(t * 1e6)})
        return [p]
    raise ValueError(f"format {fmt!r} (expected flow, wfm or shots)")


# -- mutations ------------------------------------------------------------------------------


def _offset(rng: random.Random, n: int) -> int:
    if rng.random() < 0.5:
        return rng.randrange(min(n, HEADER_BYTES))
    return rng.randrange(n)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutated copy of ``data`` (module doc)."""
    buf = bytearray(data)
    kind = rng.random()
    if kind < 0.45:
        for _ in range(rng.randint(1, 16)):
            buf[_offset(rng, len(buf))] = rng.randrange(256)
    elif kind < 0.65:
        at, n = _offset(rng, len(buf)), rng.randint(1, 64)
        buf[at : at + n] = bytes([rng.choice((0, 0xFF))]) * len(buf[at : at + n])
    elif kind < 0.9:
        at = _offset(rng, max(1, len(buf) - 8))
        value = rng.choice(EXTREMES)
        buf[at : at + 8] = value.to_bytes(8, rng.choice(("little", "big")))
    else:
        del buf[rng.randrange(1, len(buf)) :]
    return bytes(buf)


# -- reading as the daemon does ------------------------------------------------------------


def read_flow(path: Path) -> None:
    """The light reader's every batch, then the charge processor's read and fill."""
    from wavedqm.config import Config
    from wavedqm.formats.flow import FlowLightReader
    from wavedqm.processors.charge import ChargeProcessor

    with FlowLightReader(path) as reader:
        for batch in reader.batches():
            batch.samples.max()
    charge = ChargeProcessor.__new__(ChargeProcessor)  # its read path only: no state
    charge.cfg = Config()
    charge.accumulate(path)


def read_wfm(path: Path) -> None:
    from wavedqm.formats.wfm import inspect_wfm, open_wfm

    inspect_wfm(path)
    with open_wfm(path) as w:
        for batch in w.batches():
            batch.samples.max()
        w.timestamps_s  # noqa: B018 - reads the frame table


def read_shots(path: Path) -> None:
    from wavedqm.formats.shots import read_shot

    read_shot(path, sidecar=False)


READERS: dict[str, Callable[[Path], None]] = {
    "flow": read_flow,
    "wfm": read_wfm,
    "shots": read_shots,
}


def classify(fn: Callable[[Path], None], path: Path) -> tuple[str, str]:
    """``(outcome, message)`` of reading ``path`` (module doc)."""
    from wavedqm.errors import FileNotReady, InputFileError

    try:
        fn(path)
    except InputFileError as err:
        return f"ours:{err.reason}", str(err)
    except FileNotReady as err:
        return "ours:not_ready", str(err)
    except Exception as err:  # what fuzzing looks for
        return f"foreign:{type(err).__name__}", f"{type(err).__name__}: {err}"
    return "ok", ""


# -- the worker and the parent -------------------------------------------------------------


def _worker(conn, fmt: str, seeds: list[bytes], name: str, seed: int,
            indices: list[int]) -> None:  # fmt: skip
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_LIMIT, WORKER_ADDRESS_LIMIT))
    fn = READERS[fmt]
    with tempfile.TemporaryDirectory(prefix="wavedqm-fuzz-") as tmp:
        for i in indices:
            rng = random.Random(seed * 1_000_003 + i)
            data = mutate(seeds[i % len(seeds)], rng)
            path = Path(tmp) / name
            path.write_bytes(data)
            conn.send(("start", i))
            outcome, message = classify(fn, path)
            conn.send(("done", i, outcome, message[:300]))
    conn.send(("end",))


def fuzz(
    fmt: str,
    cases: int | list[int],
    seed: int = 0,
    hang_seconds: float = 10.0,
) -> FuzzReport:
    """Fuzz the ``fmt`` reader for ``cases`` cases (module doc); a list: only those case
    numbers (to replay what a run found)."""
    indices = list(range(cases)) if isinstance(cases, int) else list(cases)
    t0 = time.perf_counter()
    report = FuzzReport(fmt)
    with tempfile.TemporaryDirectory(prefix="wavedqm-seeds-") as tmp:
        paths = make_seeds(fmt, Path(tmp))
        seeds = [p.read_bytes() for p in paths]
        name = paths[0].name
    if fmt == "flow":  # compile the voxel kernels once, before the workers fork
        from wavedqm.kernels.voxels import warm_up

        warm_up()
    ctx = mp.get_context("fork")
    k = 0  # position in indices of the next case to run
    while k < len(indices):
        parent, child = ctx.Pipe()
        todo = indices[k:]
        proc = ctx.Process(target=_worker, args=(child, fmt, seeds, name, seed, todo))
        proc.start()
        child.close()
        current = todo[0]
        while True:
            if not parent.poll(hang_seconds):
                proc.kill()
                _record(report, "hang", f"case {current} (seed {seed}): no answer in "
                        f"{hang_seconds} s")  # fmt: skip
                k += 1
                break
            try:
                msg = parent.recv()
            except EOFError:
                proc.join()
                _record(report, "crash", f"case {current} (seed {seed}): worker exit "
                        f"{proc.exitcode}")  # fmt: skip
                k += 1
                break
            if msg[0] == "start":
                current = msg[1]
            elif msg[0] == "done":
                _record(report, msg[2], f"case {msg[1]} (seed {seed}): {msg[3]}")
                k += 1
            else:
                k = len(indices)
                break
        proc.join(5)
        parent.close()
    report.seconds = time.perf_counter() - t0
    return report


def _record(report: FuzzReport, outcome: str, message: str) -> None:
    report.cases += 1
    report.outcomes[outcome] += 1
    if not outcome.startswith(("ok", "ours:")):
        report.examples.setdefault(outcome, message)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000, help="cases per format")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="flow,wfm,shots")
    args = ap.parse_args(argv)
    bad = 0
    for fmt in args.formats.split(","):
        r = fuzz(fmt, args.cases, args.seed)
        bad += r.bad
        top = ", ".join(f"{k} {n}" for k, n in r.outcomes.most_common())
        os.write(1, f"{fmt}: {r.cases} cases in {r.seconds:.0f} s: {top}\n".encode())
        for k, v in r.examples.items():
            os.write(1, f"  {k}: {v}\n".encode())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
