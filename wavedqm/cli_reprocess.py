"""``wavedqm reprocess PATH... [--scheduler ADDRESS | --workers N] ...``: an archive on Dask
(:mod:`wavedqm.reprocess.run`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wavedqm.errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "reprocess",
        help="process an archive again on a Dask cluster (local by default)",
        description="Files as named and folders recursively, as `wavedqm process`, with the "
        "work spread over Dask workers: a local cluster (one worker per core, or --workers), "
        "or a running one (--scheduler). Files already in the ledger with the same size and "
        "mtime are skipped unless --force.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--out", metavar="DIR", help="output folder (overrides output.dir)")
    p.add_argument("--state", metavar="DIR", help="state folder (overrides output.state_dir)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786"
    )
    where.add_argument("--workers", type=int, metavar="N", help="workers of the local cluster")
    p.add_argument("--since", metavar="ISO", help="only files modified at or after this time")
    p.add_argument("--until", metavar="ISO", help="only files modified before this time")
    p.add_argument("--force", action="store_true", help="also the files already processed")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="a progress bar (default: when stderr is a terminal)",
    )  # fmt: skip
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])


def run(args: argparse.Namespace) -> int:
    from wavedqm.cli import _timestamp
    from wavedqm.config import load_config
    from wavedqm.reprocess.run import ReprocessOptions, reprocess

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers} (expected 1 or more)")
    cfg = load_config(args.config).with_overrides(output={"dir": args.out, "state_dir": args.state})
    options = ReprocessOptions(
        scheduler=args.scheduler,
        workers=args.workers,
        since=_timestamp(args.since, "--since"),
        until=_timestamp(args.until, "--until"),
        force=args.force,
        progress=args.progress,
        log_level=args.log_level,
        announce=lambda line: print(line, file=sys.stderr, flush=True),
    )
    try:
        report = reprocess(cfg, [Path(p) for p in args.paths], options)
    except KeyboardInterrupt:
        print("wavedqm reprocess: interrupted (run it again to finish)", file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in report.lines:
        print(line)
    for _path, _reason, message in report.failures:
        print(f"wavedqm: {message}", file=sys.stderr)
    print(
        f"reprocess: {report.done} done, {report.failed} failed, {report.skipped} already "
        f"done (skipped), {report.outside} outside --since/--until; {report.workers} "
        f"worker(s), {report.seconds:.1f} s",
        file=sys.stderr,
    )
    if report.interrupted:
        print("wavedqm reprocess: stopped early (run it again to finish)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else EXIT_OK
