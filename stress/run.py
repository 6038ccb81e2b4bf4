"""The fault-injection run: ``python -m stress.run [--size small|full]``.

Scenarios, each against a real ``wavedqm watch`` child process (``stress/daemon.py``):

- ``single``: one file, for the reference peak RSS;
- ``burst``: N files renamed into the watched folder at once (a few bad ones among them);
- ``burst-poll``: the same with polling (no inotify);
- ``kills``: ``kill -9`` at K random instants while M files arrive and are processed
  (during ledger commits, history appends, summary writes, PDFs: wherever it falls), then a
  final start that drains: every file once, every summary valid JSON, every drawing made
  (the journal), no temp file left;
- ``targeted``: for each instant of ``stress/killpoint.py`` (before and after the ledger
  commit, mid history append, before the summary's rename, between the voxel contribution and
  its run, after a drawing is journaled, mid PDF), a daemon killed there, then a start that
  drains: every file once, every summary valid, every drawing made, no temp file left;
- ``writers``: files written in place slowly (pauses shorter than the settle time) and files
  held open by an HDF5 writer holding its lock: each processed once, complete;
- ``truncation``: a valid file cut at every 5 % of its size: each one of ours with a reason;
- ``fuzz``: byte-level fuzzing of the three readers (``stress/fuzz.py``).

Prints one table (files in, processed once, lost, doubled, failed by reason, peak RSS, time
to drain, daemon alive) and exits 1 if anything was lost, doubled, failed ``internal``, a
fuzz case was not ours, or (full size) the burst's memory was over 1.2× a single file's.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from stress import daemon as dm
from stress.fuzz import classify, fuzz, read_flow
from stress.killpoint import POINTS

SIZES = {
    "ci": {"reports": False, "burst": 4, "poll": 3, "kill_files": 6, "kills": 2,
           "targeted": 2, "slow": 1, "locked": 1, "fuzz": 100},
    "small": {"reports": True, "burst": 60, "poll": 20, "kill_files": 30, "kills": 5,
              "targeted": 4, "slow": 3, "locked": 2, "fuzz": 300},
    "full": {"reports": True, "burst": 1000, "poll": 100, "kill_files": 150, "kills": 50,
             "targeted": 6, "slow": 3, "locked": 2, "fuzz": 100_000},
}  # fmt: skip
CONFIG = "[charge]\nplots = false\n"
NO_REPORTS = "[output]\nreports = false\n"
"""At CI size the PDF reports (about 5 s of drawing per file) are off: the kills then check
the PNG masks each file's drawings make, through the same journal."""


@dataclass
class Row:
    scenario: str
    files_in: int
    once: int = 0
    lost: int = 0
    doubled: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = float("nan")
    drain_s: float = float("nan")
    alive: bool = True
    memory_ok: bool = True
    reached: bool = True
    """Targeted kills: the daemon did reach its kill point (else the row proves nothing)."""
    notes: str = ""

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.doubled == 0 and self.alive and self.memory_ok
                and self.reached and "internal" not in self.failed
                and self.drain_s != float("inf"))  # fmt: skip


def _template(folder: Path) -> Path:
    from wavedqm.simulate.flow import write_flow_file

    path = folder / "template.FLOW.hdf5"
    write_flow_file(path, n_events=20, n_samples=256, seed=1, with_charge=True)
    return path


def _bad_files(folder: Path, template: Path) -> list[Path]:
    """Three files that must fail, each with its reason."""
    text = folder / "bad-text.FLOW.hdf5"
    text.write_text("not an HDF5 file\n")
    cut = folder / "bad-cut.FLOW.hdf5"
    data = template.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    empty = folder / "bad-empty.FLOW.hdf5"
    empty.write_bytes(b"")
    return [text, cut, empty]


def _stage(template: Path, staging: Path, names: list[str]) -> list[Path]:
    """Hard links of the template under new names (cheap, same content)."""
    staging.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        p = staging / name
        os.link(template, p)
        out.append(p)
    return out


def _account(row: Row, root: Path, expected: list[str], bad: set[str]) -> Row:
    state, out = root / "state", root / "out"
    ledger = dm.ledger_rows(state)
    history = dm.history_files(state)
    good = [n for n in expected if n not in bad]
    row.lost = sum(1 for n in expected if n not in ledger)
    row.once = sum(1 for n in good if history.count(n) == 1 and ledger.get(n, ("",))[0] == "ok")
    row.doubled = sum(max(0, history.count(n) - 1) for n in set(history))
    row.failed = dict(dm.failed_by_reason(ledger))
    unexpected = [n for n in good if ledger.get(n, ("ok",))[0] != "ok"]
    if unexpected:
        row.failed.setdefault("internal", 0)
        row.notes += f"good files failed: {unexpected[:3]}; "
    bad_summaries = dm.invalid_summaries(out)
    if bad_summaries:
        row.notes += f"{len(bad_summaries)} invalid summary.json; "
        row.lost += len(bad_summaries)
    return row


def _drain(row: Row, d: dm.Daemon, root: Path, expected: int, timeout: float,
           since: float | None = None) -> float:  # fmt: skip
    """Wait until ``expected`` files are in the ledger and no drawing is pending; fill the
    row's drain time (from ``since``, a monotonic time, or from now), peak RSS and liveness;
    stop the daemon and return how long SIGTERM took (s)."""
    t0 = time.monotonic() if since is None else since
    if dm.wait_drained(root / "state", expected, timeout, d) != float("inf"):
        row.drain_s = time.monotonic() - t0
    else:
        row.drain_s = float("inf")
    row.peak_rss_mb = d.peak_rss_mb()
    row.alive = d.alive()
    return d.stop()


def _drawn_output() -> str:
    """The drawing every processed file gets: its PDF report, or (reports off) a mask."""
    return "baseline.png" if NO_REPORTS in CONFIG else "report.pdf"


def scenario_single(work: Path, template: Path) -> Row:
    root = work / "single"
    spool = root / "spool"
    spool.mkdir(parents=True)
    d = dm.start(root, spool, CONFIG)
    [src] = _stage(template, root / "staging", ["one.FLOW.hdf5"])
    os.replace(src, spool / src.name)
    row = Row("single file", 1)
    _drain(row, d, root, 1, 300)
    return _account(row, root, ["one.FLOW.hdf5"], set())


def scenario_burst(work: Path, template: Path, n: int, *, poll: bool = False) -> Row:
    name = "burst-poll" if poll else "burst"
    root = work / name
    spool = root / "spool"
    spool.mkdir(parents=True)
    d = dm.start(root, spool, CONFIG, poll=poll)
    names = [f"b{i:05d}.FLOW.hdf5" for i in range(n)]
    staged = _stage(template, root / "staging", names)
    bad = _bad_files(root / "staging", template)
    t0 = time.monotonic()
    for p in staged + bad:
        os.replace(p, spool / p.name)
    row = Row(f"{name} of {n + len(bad)} files", n + len(bad))
    stop_s = _drain(row, d, root, n + len(bad), 60 + 2.0 * n, since=t0)
    row.notes += f"SIGTERM exit {stop_s:.1f} s; "
    row.notes += f"{dm.log_events(root, 'drawing_dropped', reason='load')} drawings dropped "
    row.notes += "under load; "
    return _account(row, root, names + [p.name for p in bad], {p.name for p in bad})


def scenario_kills(work: Path, template: Path, n_files: int, n_kills: int, seed: int) -> Row:
    rng = random.Random(seed)
    root = work / "kills"
    spool = root / "spool"
    spool.mkdir(parents=True)
    names = [f"k{i:05d}.FLOW.hdf5" for i in range(n_files)]
    staged = _stage(template, root / "staging", names)
    row = Row(f"kill -9 x{n_kills} during {n_files} files", n_files)
    feeder_done = threading.Event()

    def feed() -> None:  # files keep arriving across the kills
        for p in staged:
            os.replace(p, spool / p.name)
            time.sleep(rng.uniform(0.0, 0.15))
        feeder_done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    started = False
    kills = 0
    while kills < n_kills:
        d = dm.start(root, spool, CONFIG)
        if not started:
            feeder.start()
            started = True
        time.sleep(rng.uniform(0.05, 2.5))
        d.kill()
        kills += 1
    feeder.join()
    d = dm.start(root, spool, CONFIG)
    _drain(row, d, root, n_files, 60 + 3.0 * n_files)
    _account(row, root, names, set())
    drawn = _drawn_output()
    reports = sum(1 for n in names if (root / "out" / n / drawn).is_file())
    dropped = dm.log_events(root, "drawing_dropped", reason="load")
    if reports + dropped < n_files:  # a report may be dropped under load, and is counted
        row.notes += f"{n_files - reports - dropped} {drawn} neither drawn nor dropped; "
        row.lost += n_files - reports - dropped
    row.notes += f"{n_files - reports} {drawn} dropped under load ({dropped} drawings); "
    leftovers = dm.temp_files(root / "out", root / "state")
    if leftovers:
        row.notes += f"{len(leftovers)} temp files left; "
    row.notes += f"{kills} kills; "
    return row


def scenario_targeted(work: Path, template: Path, point: str, n_files: int, seed: int) -> Row:
    """A daemon that kills itself at the n-th time it reaches ``point`` (stress/killpoint.py)
    while ``n_files`` arrive, then a normal start that drains: every file once, every
    summary valid, every drawing made, no temp file left."""
    rng = random.Random(f"{seed}-{point}")
    root = work / f"kill-{point}"
    spool = root / "spool"
    spool.mkdir(parents=True)
    config = CONFIG
    drawn = _drawn_output()
    if point == "pdf":  # the report drawn in the daemon's own process
        config = "[charge]\nplots = false\n[output]\nreports = true\ndrawing_processes = 0\n"
        drawn = "report.pdf"
    names = [f"t{i:03d}.FLOW.hdf5" for i in range(n_files)]
    staged = _stage(template, root / "staging", names)
    n = rng.randint(1, min(3, n_files))
    row = Row(f"kill -9 at {point} (call {n})", n_files)
    d = dm.start(root, spool, config, kill_at=(point, n))
    for p in staged:
        os.replace(p, spool / p.name)
        time.sleep(0.05)
    try:
        d.proc.wait(120)
    except subprocess.TimeoutExpired:
        d.kill()
    if d.proc.returncode != -signal.SIGKILL:  # never reached its point: proves nothing
        row.reached = False
        row.notes += f"kill point not reached (exit {d.proc.returncode}); "
    d = dm.start(root, spool, config)
    _drain(row, d, root, n_files, 60 + 8.0 * n_files)
    _account(row, root, names, set())
    missing = [n for n in names if not (root / "out" / n / drawn).is_file()]
    if missing:
        row.notes += f"{len(missing)} {drawn} never drawn; "
        row.lost += len(missing)
    leftovers = dm.temp_files(root / "out", root / "state")
    if leftovers:
        row.notes += f"{len(leftovers)} temp files left; "
        row.lost += len(leftovers)
    for mismatch in dm.voxel_run_mismatches(root / "state"):
        row.notes += f"voxels {mismatch}; "
        row.doubled += 1
    return row


def _slow_copy(src: Path, dst: Path, pieces: int, pause_s: float) -> None:
    data = src.read_bytes()
    step = -(-len(data) // pieces)
    with open(dst, "wb") as fh:
        for a in range(0, len(data), step):
            fh.write(data[a : a + step])
            fh.flush()
            time.sleep(pause_s)


def _locked_writer(template: Path, dst: Path, hold_s: float) -> None:
    """Write through h5py holding the HDF5 lock for ``hold_s``, then close."""
    with h5py.File(template, "r") as src, h5py.File(dst, "w", locking=True) as out:
        for name in ("light", "charge", "geometry_info"):
            if name in src:
                src.copy(src[name], out, name)
        out.flush()
        time.sleep(hold_s)


def scenario_writers(
    work: Path, template: Path, *, poll: bool, slow: int = 3, locked: int = 2
) -> Row:
    name = "writers-poll" if poll else "writers"
    root = work / name
    spool = root / "spool"
    spool.mkdir(parents=True)
    d = dm.start(root, spool, CONFIG, poll=poll)
    names = []
    threads = []
    for i in range(slow):
        n = f"slow{i}.FLOW.hdf5"
        names.append(n)
        threads.append(threading.Thread(target=_slow_copy, args=(template, spool / n, 8, 0.2)))
    for i in range(locked):
        n = f"locked{i}.FLOW.hdf5"
        names.append(n)
        threads.append(threading.Thread(target=_locked_writer, args=(template, spool / n, 3.0)))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = Row(f"{name}: {slow} slow in-place + {locked} HDF5-locked", len(names))
    _drain(row, d, root, len(names), 120, since=t0)
    _account(row, root, names, set())
    events = [_summary_events(root / "out" / n) for n in names]
    if any(e != 20 for e in events):
        row.notes += f"events per file {events} (expected 20 each); "
        row.lost += sum(1 for e in events if e != 20)
    return row


def _summary_events(folder: Path) -> int:
    import json

    try:
        return int(json.loads((folder / "summary.json").read_text())["events"])
    except (OSError, ValueError, KeyError):
        return -1


def scenario_truncation(work: Path, template: Path) -> Row:
    folder = work / "truncation"
    folder.mkdir(parents=True)
    data = template.read_bytes()
    row = Row("truncated at every 5 %", 19)
    reasons: dict[str, int] = {}
    for pct in range(5, 100, 5):
        p = folder / f"cut{pct:02d}.FLOW.hdf5"
        p.write_bytes(data[: len(data) * pct // 100])
        outcome, message = classify(read_flow, p)
        key = outcome.removeprefix("ours:")
        if outcome == "ok" or outcome.startswith("foreign"):
            row.notes += f"{pct}%: {outcome} {message[:80]}; "
            key = "internal"
        reasons[key] = reasons.get(key, 0) + 1
    row.failed = reasons
    row.drain_s = 0.0
    return row


def fuzz_rows(cases: int, seed: int) -> list[Row]:
    rows = []
    for fmt in ("flow", "wfm", "shots"):
        r = fuzz(fmt, cases, seed)
        row = Row(f"fuzz {fmt}", r.cases, drain_s=r.seconds)
        row.failed = {k.removeprefix("ours:"): n for k, n in r.outcomes.items() if k != "ok"}
        if r.bad:
            row.failed["internal"] = r.bad
            row.notes += "; ".join(f"{k}: {v}" for k, v in r.examples.items())[:300]
        row.once = r.outcomes.get("ok", 0)
        rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    head = ("scenario", "files in", "processed once", "lost", "doubled", "failed by reason",
            "peak RSS MB", "drain s", "alive", "notes")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        failed = ", ".join(f"{k} {v}" for k, v in sorted(r.failed.items())) or "-"
        lines.append(
            f"| {r.scenario} | {r.files_in} | {r.once} | {r.lost} | {r.doubled} | {failed} | "
            f"{r.peak_rss_mb:.0f} | {r.drain_s:.1f} | {'yes' if r.alive else 'NO'} | "
            f"{r.notes.strip('; ') or '-'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    global CONFIG
    if not size["reports"]:
        CONFIG += NO_REPORTS
    only = set(filter(None, args.only.split(",")))
    work = Path(tempfile.mkdtemp(prefix="wavedqm-stress-"))
    rows: list[Row] = []

    def want(name: str) -> bool:
        return not only or name in only

    try:
        template = _template(work)
        single = None
        if want("burst") or want("single"):
            single = scenario_single(work, template)
            rows.append(single)
        if want("burst"):
            burst = scenario_burst(work, template, size["burst"])
            if single is not None and args.size == "full":
                ratio = burst.peak_rss_mb / single.peak_rss_mb
                burst.notes += f"RSS {ratio:.2f}x a single file's; "
                burst.memory_ok = ratio <= 1.2
            rows.append(burst)
        if want("burst-poll"):
            rows.append(scenario_burst(work, template, size["poll"], poll=True))
        if want("kills"):
            rows.append(scenario_kills(work, template, size["kill_files"], size["kills"],
                                       args.seed))  # fmt: skip
        if want("targeted"):
            for point in POINTS:
                rows.append(scenario_targeted(work, template, point, size["targeted"],
                                              args.seed))  # fmt: skip
        if want("writers"):
            for poll in (False, True):
                rows.append(scenario_writers(work, template, poll=poll, slow=size["slow"],
                                             locked=size["locked"]))  # fmt: skip
        if want("truncation"):
            rows.append(scenario_truncation(work, template))
        if want("fuzz"):
            rows.extend(fuzz_rows(size["fuzz"], args.seed))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    os.write(1, (table(rows) + "\n").encode())
    if args.keep:
        os.write(1, f"work folder: {work}\n".encode())
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
