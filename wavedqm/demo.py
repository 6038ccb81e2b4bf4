"""``wavedqm demo``: simulated DAQs of every kind write into a watched folder while the daemon
processes each file as it completes, serves the metrics, masks and reports, and writes the
outputs; then the run report, and where to look.

The simulated sources (:data:`SOURCES`) publish like real DAQs (temporary name, then rename):
light + charge ``.FLOW.hdf5`` files of a detector with faults on purpose
(:data:`DEMO_FAULTS`), a xenon-TPC field scan of FastFrame ``.wfm`` files and the shots of a
pulsed experiment (CSV + sidecar, some with flaws). The demo ends when every simulated file is
processed and its outputs are drawn (or at Ctrl-C); on a terminal it then keeps serving until
Ctrl-C, so that ``/metrics`` and the images can be looked at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wavedqm.config import Config
from wavedqm.daemon.app import DaemonApp
from wavedqm.processors.router import FileResult

Say = Callable[[str], None]
"""Prints a line for the user (the CLI passes ``print``)."""

DEMO_FAULTS = {
    "dead": "1:9,6:40",
    "clipped": "3:22",
    "noisy": "4:5",
    "baseline_off": "7:60",
}
"""The light detector's simulated faults (ADC:channel)."""
DEMO_SETS = ((200.0, 2100.0), (800.0, 2700.0))
"""Gate and anode voltages (V) of the simulated field scan's sets."""
DEMO_WFM_FILES_PER_SET = 2
DEMO_WFM_FRAMES = 150
DEMO_RUN = "RUN_demo"
DEMO_SHOTS = 12
"""Shots of the simulated pulsed experiment (four of them with a flaw on purpose)."""
DEMO_SHOT_SERIES = "shots_demo"
SETTLE_SECONDS = 0.5
DEMO_REFERENCE = "demo-good"
"""The reference run the demo makes from good simulated files of every kind, and uses."""
DEMO_REFERENCE_FILES = 2
DEMO_REFERENCE_SHOTS = 8


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    files: int = 5
    """Light files to simulate."""
    events: int = 60
    """Events per light file (more than the light quality tests' 50, so they have data)."""
    interval_s: float = 1.0
    """Seconds between the files of each source."""
    listen: str = "127.0.0.1:9108"
    stay: bool = False
    """Keep serving after the last file until Ctrl-C."""


@dataclass(frozen=True)
class Source:
    """One simulated DAQ: how many files it publishes, and the function that publishes them
    into the watched folder (returns when done or when ``stop`` is set)."""

    name: str
    files: Callable[[DemoOptions], int]
    publish: Callable[[Path, DemoOptions, threading.Event, int], object]
    """``publish(spool, options, stop, seed)``."""


def _publish_light(spool: Path, opts: DemoOptions, stop: threading.Event, seed: int) -> object:
    from wavedqm.simulate.flow import ChannelFaults, parse_channel_pairs, simulate_run

    faults = ChannelFaults(**{k: parse_channel_pairs(v) for k, v in DEMO_FAULTS.items()})
    return simulate_run(
        spool, files=opts.files, events=opts.events, interval_s=opts.interval_s,
        faults=faults, seed=seed, stop=stop, with_charge=True,
    )  # fmt: skip


def _publish_field_scan(spool: Path, opts: DemoOptions, stop: threading.Event, seed: int) -> object:
    from wavedqm.simulate.wfm import simulate_field_scan

    return simulate_field_scan(
        spool / DEMO_RUN, sets=DEMO_SETS, files_per_set=DEMO_WFM_FILES_PER_SET,
        frames_per_file=DEMO_WFM_FRAMES, interval_s=opts.interval_s, seed=seed, stop=stop,
    )  # fmt: skip


def _publish_shots(spool: Path, opts: DemoOptions, stop: threading.Event, seed: int) -> object:
    from wavedqm.simulate.shots import simulate_shots

    return simulate_shots(
        spool / DEMO_SHOT_SERIES, shots=DEMO_SHOTS, interval_s=opts.interval_s / 2,
        seed=seed, stop=stop,
    )  # fmt: skip


SOURCES: tuple[Source, ...] = (
    Source("light+charge .FLOW.hdf5", lambda o: o.files, _publish_light),
    Source(
        "field scan .wfm",
        lambda o: len(DEMO_SETS) * DEMO_WFM_FILES_PER_SET,
        _publish_field_scan,
    ),
    Source("shots .csv", lambda o: DEMO_SHOTS, _publish_shots),
)
"""Every simulated DAQ of the demo."""


def demo_config(opts: DemoOptions) -> Config:
    from wavedqm.simulate.shots import SHOTS_CONFIG

    out = opts.out
    return Config().with_overrides(
        watch={"paths": (str(out / "spool"),), "settle_seconds": SETTLE_SECONDS},
        output={
            "dir": str(out / "results"),
            "state_dir": str(out / "state"),
            "status_csv": str(out / "results" / "channel_status.csv"),
        },
        metrics={"listen": opts.listen},
        shots=SHOTS_CONFIG,  # the simulated diagnostics' metrics and low-signal thresholds
    )


def _make_reference(cfg: Config, opts: DemoOptions, seed: int) -> list[str]:
    """Good simulated files of every kind in ``OUT/reference-run/`` (light + charge of the
    demo's detector without its faults, one file per field-scan set, clean shots), made into
    the reference :data:`DEMO_REFERENCE` and put in use: the demo's files are then tested
    against it (the quality masks, the reference on the plots). Returns what was made."""
    from wavedqm.exporters.reference_store import use_reference
    from wavedqm.processors.reference_create import create_reference
    from wavedqm.simulate.flow import simulate_run
    from wavedqm.simulate.shots import simulate_shots
    from wavedqm.simulate.wfm import simulate_field_scan

    folder = opts.out / "reference-run"
    simulate_run(
        folder / "light", files=DEMO_REFERENCE_FILES, events=opts.events, interval_s=0.0,
        seed=seed + 500, detector_seed=seed, with_charge=True,
    )  # fmt: skip
    simulate_field_scan(
        folder / "RUN_reference", sets=DEMO_SETS, files_per_set=1,
        frames_per_file=DEMO_WFM_FRAMES * DEMO_WFM_FILES_PER_SET, seed=seed + 501,
    )  # fmt: skip
    simulate_shots(folder / "shots", shots=DEMO_REFERENCE_SHOTS, seed=seed + 502)
    state = Path(cfg.output.state_dir)
    made, not_made = create_reference(cfg, state, DEMO_REFERENCE, [folder])
    use_reference(state, DEMO_REFERENCE)
    lines = [f"{m.kind}: {m.files} files, {m.entries} {m.unit} -> {m.path}" for m in made]
    return lines + [f"no {kind} part: {why}" for kind, why in not_made]


def run_demo(opts: DemoOptions, say: Say) -> int:
    """The demo (module doc); 0 when every simulated file was processed without failure,
    else 1 (a failure of a simulated file is a bug: its line says why)."""
    cfg = demo_config(opts)
    spool, results = Path(cfg.watch.paths[0]), Path(cfg.output.dir)
    spool.mkdir(parents=True, exist_ok=True)
    expected = sum(source.files(opts) for source in SOURCES)
    done: list[FileResult] = []
    all_done = threading.Event()

    def on_file_done(path: Path, result: FileResult | None) -> None:
        if result is None:  # deferred (its writer still held it): it comes back
            return
        done.append(result)
        what = result.line() if result.ok else f"{path}: FAILED ({result.failure}) {result.error}"
        say(f"  [{len(done)}/{expected}] {what}")
        if len(done) >= expected:
            all_done.set()

    seed = int(time.time()) % 100_000
    say(f"wavedqm demo: reference {DEMO_REFERENCE!r} from good simulated files of every kind ...")
    for line in _make_reference(cfg, opts, seed):
        say(f"  {line}")
    say("wavedqm demo: compiling the kernels (once after installing: about a minute; "
        "later starts take about a second) ...")  # fmt: skip
    app = DaemonApp(cfg, on_file_done)
    started = time.perf_counter()
    app.start()
    say(f"  ready in {time.perf_counter() - started:.1f} s")
    say(f"  metrics:  {app.url}/metrics   health: {app.url}/healthz")
    for url in app.served_urls():
        say(f"  latest:   {url}")
    say(f"  outputs:  {results}   state: {cfg.output.state_dir}")
    say("  simulated light faults: " + ", ".join(f"{k} {v}" for k, v in DEMO_FAULTS.items()))
    say(f"simulated DAQs writing {expected} files into {spool}: "
        + ", ".join(f"{s.files(opts)} {s.name}" for s in SOURCES))  # fmt: skip
    stop = threading.Event()
    daqs = [
        threading.Thread(
            target=source.publish,
            args=(spool, opts, stop, seed + i),
            name=f"simulated-daq-{i}",
            daemon=True,
        )
        for i, source in enumerate(SOURCES)
    ]
    for daq in daqs:
        daq.start()
    try:
        while not all_done.wait(0.2):
            pass
        say("all files processed; drawing the last masks, plots and PDF reports ...")
        app.router.plots.wait_idle()
        _run_report(results, say)
        _where_to_look(app, results, say)
        if opts.stay:
            say(f"serving {app.url}/metrics and the images until Ctrl-C")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        say("interrupted: stopping")
    finally:
        stop.set()
        for daq in daqs:
            daq.join(timeout=30)
        app.stop(timeout=30)
    failed = [r for r in done if not r.ok]
    if failed:
        say(f"{len(failed)} of {len(done)} files FAILED (see their lines above)")
    return 0 if len(done) >= expected and not failed else 1


def _run_report(results: Path, say: Say) -> None:
    from wavedqm.exporters.run_report import RUN_REPORT_FILE, collect_summaries, write_run_report

    summaries = collect_summaries(results)
    if summaries:
        path = write_run_report(summaries, results / RUN_REPORT_FILE)
        say(f"run report over {len(summaries)} light files: {path}")


def _where_to_look(app: DaemonApp, results: Path, say: Say) -> None:
    say("where to look:")
    say(f"  {results}/<file>/summary.json, report.pdf, flatline.png, baseline.png (light)")
    say(f"  {results}/voxels/<run>/voxels.h5, voxel_summary.txt, voxel_*.png (charge)")
    say(f"  {results}/{DEMO_RUN}/<set>/s2_results.json, {results}/{DEMO_RUN}/plots/*.png (S2)")
    say(f"  {results}/{DEMO_SHOT_SERIES}/<shot>.json, shot_metrics.csv, shot_report.pdf|md, "
        "overlay_*.png, trends_vs_*.png (shots)")  # fmt: skip
    say(f"  {results}/reports/latest.pdf, {results}/images/*.png (served at {app.url}/...)")
