"""``wavedqm reference create|list|show|use``: the reference runs the light quality tests
compare each file with (stored in ``STATE/references/``).

- ``create NAME FROM...``: analyse the files (or every file of the folders) given, as
  ``wavedqm process`` would, and store the reference's part of every kind they hold (light,
  s2, shots, voxels; :mod:`wavedqm.processors.reference_create`); a reference of the same name
  is replaced; no other state is touched, the files are only read;
- ``list``: the references, the one in use marked ``*``;
- ``show NAME``: where it came from and its medians (``--json`` for machines);
- ``use NAME``: make it the one in use (``quality.reference`` in the configuration wins).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wavedqm.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ref = sub.add_parser("reference", help="reference runs for the quality tests")
    rsub = ref.add_subparsers(dest="reference_command", required=True)
    create = rsub.add_parser("create", help="make a reference from good files or run folders")
    create.add_argument("name", metavar="NAME")
    create.add_argument("sources", nargs="+", metavar="FROM", help="files or run folders")
    listing = rsub.add_parser("list", help="the references (* the one in use)")
    show = rsub.add_parser("show", help="where a reference came from, its medians")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    use = rsub.add_parser("use", help="make a reference the one in use")
    use.add_argument("name", metavar="NAME")
    for p in (create, listing, show, use):
        p.add_argument("--config", metavar="FILE", help="TOML configuration file")
        p.add_argument("--state", metavar="DIR", help="state folder (config output.state_dir)")
        p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])


def run(args: argparse.Namespace) -> int:
    from wavedqm.config import load_config
    from wavedqm.exporters.reference_store import (
        ReferenceError,
        active_reference_name,
        list_references,
        use_reference,
    )
    from wavedqm.processors.reference_show import describe_reference

    cfg = load_config(args.config).with_overrides(output={"state_dir": args.state})
    state = Path(cfg.output.state_dir)
    try:
        if args.reference_command == "create":
            from wavedqm.processors.reference_create import create_reference

            made, not_made = create_reference(
                cfg, state, args.name, [Path(s) for s in args.sources]
            )
            for part in made:
                for file, why in part.skipped:
                    print(f"skipped {file}: {why}", file=sys.stderr)
                print(f"reference {args.name} {part.kind}: {part.files} files, "
                      f"{part.entries} {part.unit} -> {part.path}")  # fmt: skip
            for kind, why in not_made:
                print(f"reference {args.name}: no {kind} part: {why}", file=sys.stderr)
        elif args.reference_command == "list":
            active = active_reference_name(state, cfg.quality.reference)
            for name in list_references(state):
                print(f"{'*' if name == active else ' '} {name}")
            if active and active not in list_references(state):
                print(f"* {active} (in use, but not found in {state})")
        elif args.reference_command == "show":
            info = describe_reference(state, args.name)
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                print(_show_text(info))
        else:
            use_reference(state, args.name)
            configured = cfg.quality.reference
            wins = f" (the configuration names {configured!r}, which wins)"
            print(f"reference {args.name} is now in use"
                  + (wins if configured and configured != args.name else ""))  # fmt: skip
    except ReferenceError as err:
        raise UsageError(str(err)) from None
    return 0


def _show_text(info: dict) -> str:
    from wavedqm.exporters.plots import utc_text

    lines = []
    light = info.get("light")
    if light is not None:
        lines += [
            f"reference {info['name']} light: {light['files']} files, {light['events']} events, "
            f"made {utc_text(light['created_at'])}",
            f"  channels with data: {light['channels_with_data']}; median noise "
            f"{light['median_noise_adc16']} ADC16, median baseline "
            f"{light['median_baseline_adc16']} ADC16",
        ]
        for source in light["sources"]:
            start, end = utc_text(source["time_start_s"]), utc_text(source["time_end_s"])
            lines.append(f"  {source['file']}: {source['events']} events, data {start} -> {end}")
    for kind, part in info.get("parts", {}).items():
        made = utc_text(part["created_at"]) if part.get("created_at") else "?"
        lines.append(f"reference {info['name']} {kind}: {len(part.get('sources', []))} files, "
                     f"made {made}")  # fmt: skip
        for key, value in part.get("summary", {}).items():
            lines.append(f"  {key}: {value}")
        lines += [f"  {s['file'] if isinstance(s, dict) else s}" for s in part.get("sources", [])]
    return "\n".join(lines)
