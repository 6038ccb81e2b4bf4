"""Command line: ``wavedqm watch | process | reprocess | simulate | demo | inspect | ...``.

Exit codes: 0 success, 1 a file failed (``process``), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from wavedqm import __version__, cli_reference, cli_reprocess, cli_voxels
from wavedqm.config import Config, load_config, parse_listen
from wavedqm.errors import ConfigError, FileNotReady, InputFileError, UsageError
from wavedqm.logs import configure_logging, get_logger

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--out", metavar="DIR", help="output folder (config output.dir)")
    parser.add_argument(
        "--status",
        metavar="CSV",
        help="known channel-status CSV (8 rows x 64 values; config light.channel_status_csv)",
    )
    parser.add_argument(
        "--state", metavar="DIR", help="state folder: ledger, history (config output.state_dir)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavedqm",
        description="Real-time data-quality monitoring of detector waveform files.",
    )
    parser.add_argument("--version", action="version", version=f"wavedqm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    watch = sub.add_parser("watch", help="watch folders and process each completed file")
    watch.add_argument("paths", nargs="*", metavar="PATH", help="folders to watch")
    _common(watch)
    watch.add_argument("--listen", metavar="HOST:PORT", help="HTTP address for /metrics")
    watch.add_argument("--poll", action="store_true", default=None, help="poll instead of inotify")

    process = sub.add_parser(
        "process", help="process files, FieldScan set folders or run folders once, no daemon"
    )
    process.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    _common(process)
    process.add_argument("--pushgateway", metavar="URL", help="push metrics to a Pushgateway")

    simulate = sub.add_parser("simulate", help="write simulated DAQ files")
    sim_sub = simulate.add_subparsers(dest="kind", required=True, metavar="KIND")
    flow = sim_sub.add_parser("flow", help="light .FLOW.hdf5 files in the ndlar_flow layout")
    flow.add_argument("--out", required=True, metavar="DIR")
    flow.add_argument("--files", type=int, default=1, metavar="N")
    flow.add_argument("--events", type=int, default=50, metavar="N")
    flow.add_argument("--samples", type=int, default=1000, metavar="N", help="samples/waveform")
    flow.add_argument("--interval", type=float, default=0.0, metavar="S", help="s between files")
    for fault in ("dead", "clipped", "noisy", "baseline-off", "negative"):
        flow.add_argument(f"--{fault}", default="", metavar="ADC:CH,...")
    flow.add_argument("--gzip", action="store_true", help="gzip-compress the waveforms")
    flow.add_argument(
        "--with-charge",
        action="store_true",
        help="add charge hits: tracks, a dead region, hits out of bounds, disabled hits, and the "
        "detector geometry",
    )
    flow.add_argument("--seed", type=int, default=0)
    flow.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])

    wfm = sim_sub.add_parser(
        "wfm", help="a xenon-TPC field scan: FieldScan_* sets of FastFrame WFM#003 files"
    )
    wfm.add_argument("--out", required=True, metavar="RUN_DIR")
    wfm.add_argument(
        "--sets",
        default="200:2100,400:2300,800:2700",
        metavar="GATE:ANODE,...",
        help="gate and anode voltages (V) of each set",
    )
    wfm.add_argument("--files", type=int, default=2, metavar="N", help="files per set")
    wfm.add_argument("--frames", type=int, default=200, metavar="N", help="frames per file")
    wfm.add_argument("--interval", type=float, default=0.0, metavar="S", help="s between files")
    wfm.add_argument("--seed", type=int, default=0)
    wfm.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])

    shots = sim_sub.add_parser(
        "shots", help="shots of a pulsed experiment: shot_NNNN.csv + .meta.json, with flaws"
    )
    shots.add_argument("--out", required=True, metavar="DIR")
    shots.add_argument("--shots", type=int, default=30, metavar="N")
    shots.add_argument("--interval", type=float, default=0.0, metavar="S", help="s between shots")
    shots.add_argument("--samples", type=int, default=4000, metavar="N", help="samples/channel")
    shots.add_argument("--dt", type=float, default=1e-6, metavar="S", help="sample period (s)")
    shots.add_argument("--npz", action="store_true", help="write .npz shots instead of CSV")
    shots.add_argument("--seed", type=int, default=0)
    shots.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])

    demo = sub.add_parser("demo", help="simulated DAQ -> watched folder -> metrics and outputs")
    demo.add_argument("--out", default="wavedqm-demo", metavar="DIR")
    demo.add_argument("--files", type=int, default=5, metavar="N")
    demo.add_argument("--events", type=int, default=60, metavar="N")
    demo.add_argument("--interval", type=float, default=1.0, metavar="S")
    demo.add_argument("--listen", default="127.0.0.1:9108", metavar="HOST:PORT")
    demo.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit once every file is processed (default on a terminal: keep serving until Ctrl-C)",
    )
    demo.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])

    report = sub.add_parser(
        "report", help="run report: trends over the files of a run or an output folder"
    )
    report.add_argument(
        "source",
        metavar="RUN_DIR_OR_OUT",
        help="an output folder (OUT/<file>/summary.json) or a folder of data files "
        "(their summaries are looked up in --results; files not processed yet are processed)",
    )
    report.add_argument("--last", type=int, metavar="N", help="only the last N files")
    report.add_argument("--since", metavar="ISO", help="data starting at or after this time")
    report.add_argument("--until", metavar="ISO", help="data starting before this time")
    report.add_argument("--out", metavar="FILE", help="the PDF to write")
    report.add_argument("--config", metavar="FILE", help="TOML configuration file")
    report.add_argument(
        "--results", metavar="DIR", help="output folder of the run's files (config output.dir)"
    )
    report.add_argument("--state", metavar="DIR", help="state folder (config output.state_dir)")
    report.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])

    inspect = sub.add_parser("inspect", help="what a file holds")
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    for module in (cli_voxels, cli_reprocess, cli_reference):
        module.add_parser(sub)
    return parser


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "config", None))
    listen = getattr(args, "listen", None)
    if listen is not None:
        parse_listen(listen)
    return cfg.with_overrides(
        light={"channel_status_csv": getattr(args, "status", None)},
        output={"dir": getattr(args, "out", None), "state_dir": getattr(args, "state", None)},
        metrics={"listen": listen, "pushgateway": getattr(args, "pushgateway", None)},
        watch={
            "paths": tuple(args.paths) if getattr(args, "paths", None) else None,
            "poll": getattr(args, "poll", None),
        },
    )


def cmd_process(args: argparse.Namespace) -> int:
    return process_files(_config(args), [Path(name) for name in args.files])


def input_files(inputs: Sequence[Path], patterns: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """``(files, not found)``: each file named as it is; under each folder (recursively, by
    name) the files whose names match ``patterns`` (hidden names left out)."""
    from fnmatch import fnmatchcase

    files: list[Path] = []
    missing: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
                and any(fnmatchcase(p.name, pattern) for pattern in patterns)
                and p.is_file()
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    return list(dict.fromkeys(files)), missing


def process_files(cfg: Config, inputs: Sequence[Path]) -> int:
    """Every input once, no daemon, through the same router as the daemon: files as named,
    folders recursively (``.FLOW.hdf5`` files, FieldScan set folders, run folders, a mix).
    One line per file on stdout, one line per failure on stderr; the metrics are pushed to a
    Pushgateway if asked."""
    from prometheus_client import push_to_gateway

    from wavedqm.daemon.preflight import check_output_folders
    from wavedqm.processors.router import Router, watch_patterns

    log = get_logger("wavedqm.process")
    check_output_folders(cfg)
    patterns = watch_patterns(cfg)
    files, missing = input_files(inputs, patterns)
    router = Router(cfg, batch=True)
    failed = 0

    def fail(path: Path, reason: str, message: str) -> None:
        nonlocal failed
        failed += 1
        log.error("file_failed", file=str(path), reason=reason, error=message)
        print(f"wavedqm: {message}", file=sys.stderr)

    for path in missing:
        router.count_failure(path, "missing", f"{path}: no such file or folder")
        fail(path, "missing", f"{path}: no such file or folder")
    for folder in (p for p in inputs if p.is_dir()):
        if not any(f.is_relative_to(folder) for f in files):
            message = f"{folder}: no file matching {', '.join(patterns)} in this folder"
            router.count_failure(folder, "no_data", message)
            fail(folder, "no_data", message)
    try:
        router.begin_batch(files)
        for path in files:
            try:
                result = router.route(path)
            except FileNotReady as err:
                router.count_failure(path, "not_ready", str(err))
                fail(path, "not_ready", str(err))
                continue
            if result.ok:
                print(result.line())
            else:
                fail(path, result.failure or "internal", result.error)
        for outcome in router.end_batch():
            if outcome.failure:
                fail(outcome.path, outcome.failure, outcome.error)
            else:
                print(f"{outcome.path}: {outcome.summary}")
    finally:
        router.close()  # waits for the plots and reports
    if cfg.metrics.pushgateway:
        push_to_gateway(cfg.metrics.pushgateway, job=cfg.metrics.job, registry=router.registry)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if not cfg.watch.paths:
        raise ConfigError("nothing to watch: give PATH arguments or watch.paths in the config")
    missing = [p for p in cfg.watch.paths if not Path(p).is_dir()]
    if missing:
        raise ConfigError(f"watch path {missing[0]} is not a folder")
    from wavedqm.daemon.app import DaemonApp

    app = DaemonApp(cfg)
    app.start()
    app.run_forever()
    return EXIT_OK


def _voltage_pairs(text: str) -> tuple[tuple[float, float], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        gate, sep, anode = item.partition(":")
        try:
            pairs.append((float(gate), float(anode)))
        except ValueError:
            raise ConfigError(
                f"--sets: {item!r} (expected GATE:ANODE in V, e.g. 200:2100)"
            ) from None
        if not sep:
            raise ConfigError(f"--sets: {item!r} (expected GATE:ANODE in V, e.g. 200:2100)")
    if not pairs:
        raise ConfigError("--sets: no set given (expected GATE:ANODE,...)")
    return tuple(pairs)


def _simulate_shots(args: argparse.Namespace) -> int:
    from wavedqm.simulate.shots import CONFIG_FILE, TRUTH_FILE, simulate_shots

    if args.shots < 1 or args.samples < 16 or not args.dt > 0:
        raise UsageError("--shots, --samples, --dt: expected at least 1 shot, 16 samples, dt > 0")
    truths = simulate_shots(
        Path(args.out), shots=args.shots, interval_s=args.interval, seed=args.seed,
        n_samples=args.samples, dt_s=args.dt, npz=args.npz,
    )  # fmt: skip
    for truth in truths:
        flaw = f"  {truth.imperfection}: {truth.flags}" if truth.imperfection else ""
        print(f"{Path(args.out) / truth.file}{flaw}")
    out = Path(args.out)
    print(f"truth: {out / TRUTH_FILE}; the [shots] config it assumes: {out / CONFIG_FILE}")
    print(f"process them: wavedqm process --config {out / CONFIG_FILE} {out}")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.kind == "shots":
        return _simulate_shots(args)
    if args.kind == "wfm":
        from wavedqm.formats.run_config import RUN_CONFIG_FILE
        from wavedqm.simulate.wfm import simulate_field_scan

        truths = simulate_field_scan(
            Path(args.out),
            sets=_voltage_pairs(args.sets),
            files_per_set=args.files,
            frames_per_file=args.frames,
            interval_s=args.interval,
            seed=args.seed,
        )
        for truth in truths:
            print(
                f"{truth.set_name}: {len(truth.files)} files, S2 mean "
                f"{truth.s2_mean_mv_us:.3g} mV·µs, drift time {truth.drift_time_us:.3g} µs"
            )
        config = Path(args.out) / RUN_CONFIG_FILE
        print(f"fit ranges that hold the simulated areas: {config} (read with the run)")
        print(f"process it: wavedqm process {args.out}")
        return EXIT_OK

    from wavedqm.simulate.flow import ChannelFaults, parse_channel_pairs, simulate_run

    pairs = {}
    for fault in ("dead", "clipped", "noisy", "baseline_off", "negative"):
        try:
            pairs[fault] = parse_channel_pairs(getattr(args, fault))
        except ValueError as err:
            raise UsageError(f"--{fault.replace('_', '-')} {err}") from None
    faults = ChannelFaults(**pairs)
    written = simulate_run(
        Path(args.out),
        files=args.files,
        events=args.events,
        interval_s=args.interval,
        faults=faults,
        seed=args.seed,
        compression="gzip" if args.gzip else None,
        n_samples=args.samples,
        with_charge=args.with_charge,
    )
    for path, _truth in written:
        print(path)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from wavedqm.demo import DemoOptions, run_demo

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    options = DemoOptions(
        out=Path(args.out).resolve(),
        files=args.files,
        events=args.events,
        interval_s=args.interval,
        listen=args.listen,
        stay=interactive and not args.exit_when_done,
    )
    return run_demo(options, lambda line: print(line, flush=True))


def _timestamp(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{flag}: {text!r} (expected an ISO time, e.g. 2026-11-21T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _no_report_reason(source: Path, found: list[dict], args: argparse.Namespace) -> str:
    """Why a run report has no file: none processed, or none in the --since/--until window
    (with the data times the processed files do span)."""
    if not found:
        return f"no processed files found for {source}"
    starts = sorted(d["time_start_s"] for d in found if d.get("time_start_s") is not None)
    span = ""
    if starts:
        first, last = (
            datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
            for t in (starts[0], starts[-1])
        )
        span = f": their data start between {first} and {last}"
    window = " ".join(
        f"{flag} {value}"
        for flag, value in (("--since", args.since), ("--until", args.until))
        if value
    )
    return f"none of the {len(found)} processed file(s) of {source} is inside {window}{span}"


def cmd_report(args: argparse.Namespace) -> int:
    from wavedqm.exporters.run_report import RUN_REPORT_FILE, collect_summaries, write_run_report

    cfg = load_config(args.config).with_overrides(
        output={"dir": args.results, "state_dir": args.state}
    )
    source = Path(args.source)
    if not source.is_dir():
        raise ConfigError(f"report: {source} is not a folder")
    since, until = _timestamp(args.since, "--since"), _timestamp(args.until, "--until")
    from wavedqm.processors.router import watch_patterns

    data_files = sorted(
        p for pattern in watch_patterns(cfg) for p in source.glob(pattern) if p.is_file()
    )
    if data_files:  # a run folder: its files' summaries live in the output folder
        out_root = Path(cfg.output.dir)
        todo = [p for p in data_files if not (out_root / p.name / "summary.json").is_file()]
        if todo:
            print(f"processing {len(todo)} file(s) not processed yet", file=sys.stderr)
            process_files(cfg, todo)
        names = {p.name for p in data_files}
        docs = [d for d in collect_summaries(out_root) if Path(d["file"]).name in names]
        default_out = out_root / f"{source.name}_{RUN_REPORT_FILE}"
    else:
        docs = collect_summaries(source)
        default_out = source / RUN_REPORT_FILE
    found = docs
    if since is not None or until is not None:
        docs = [
            d
            for d in docs
            if d.get("time_start_s") is not None
            and (since is None or d["time_start_s"] >= since)
            and (until is None or d["time_start_s"] < until)
        ]
    if args.last:
        docs = docs[-args.last :]
    if not docs:
        print(f"wavedqm: {_no_report_reason(source, found, args)}", file=sys.stderr)
        return EXIT_FAILED
    path = write_run_report(docs, Path(args.out) if args.out else default_out)
    print(f"run report over {len(docs)} file(s): {path}")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    import importlib

    from wavedqm.formats.detect import detect
    from wavedqm.processors.registry import registered_formats

    path = Path(args.file)
    if not path.is_file():
        raise InputFileError(path, "missing", "no such file")
    fmt = detect(path, registered_formats())
    module, _, function = fmt.inspect.partition(":")
    info = getattr(importlib.import_module(module), function)(path)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        from wavedqm.inspect_view import human_lines

        print("\n".join(human_lines(info)))
    return EXIT_OK


COMMANDS = {
    "watch": cmd_watch,
    "process": cmd_process,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
    "report": cmd_report,
    "inspect": cmd_inspect,
    "voxels": lambda args: cli_voxels.run(args),
    "reprocess": lambda args: cli_reprocess.run(args),
    "reference": lambda args: cli_reference.run(args),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"))
    try:
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(f"wavedqm {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as err:
        print(f"wavedqm: configuration error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except InputFileError as err:
        print(f"wavedqm: {err}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `wavedqm inspect F | head`: the reader went away
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
