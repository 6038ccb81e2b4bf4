"""The run context of an S2 run folder: its constants and set voltages (``RUN/run.toml`` over
the defaults, re-read when it changes), and each set's info and physics."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from wavedqm.analysis.ratag import RunConstants, SetInfo, SetPhysics, parse_set_name, set_physics
from wavedqm.analysis.ratag_run import FitSettings
from wavedqm.errors import InputFileError
from wavedqm.formats.run_config import RUN_CONFIG_FILE, SetOverrides, load_run_config
from wavedqm.logs import get_logger

log = get_logger(__name__)


@dataclass
class RunContext:
    name: str
    run_dir: Path
    constants: RunConstants
    overrides: SetOverrides
    fits: FitSettings
    """How this run's areas are fitted (``[fit]`` of its run.toml over the defaults)."""
    config_mtime_ns: int | None


class RunContexts:
    """The run contexts seen so far, by run name."""

    def __init__(
        self, run_constants: RunConstants, set_overrides: SetOverrides, fits: FitSettings
    ) -> None:
        self.run_constants = run_constants
        self.set_overrides = set_overrides
        self.fits = fits
        self._runs: dict[str, RunContext] = {}

    def context(self, run_dir: Path) -> RunContext:
        """The run's constants, voltage overrides and fit settings (``RUN/run.toml`` over the
        defaults), re-read when run.toml changes."""
        name = run_dir.name
        toml = run_dir / RUN_CONFIG_FILE
        try:
            mtime: int | None = toml.stat().st_mtime_ns
        except OSError:
            mtime = None
        ctx = self._runs.get(name)
        if ctx is not None and ctx.run_dir == run_dir and ctx.config_mtime_ns == mtime:
            return ctx
        constants, overrides, fits = self.run_constants, dict(self.set_overrides), self.fits
        if mtime is not None:
            run_config = load_run_config(toml, base=self.run_constants)
            constants = run_config.constants
            overrides |= run_config.sets
            fits = replace(fits, **run_config.fits)
            log.info(
                "s2_run_config",
                run=name,
                path=str(toml),
                constants=constants.to_dict(),
                fits=run_config.fits,
            )
        ctx = RunContext(name, run_dir, constants, overrides, fits, mtime)
        self._runs[name] = ctx
        return ctx

    def set_info(self, ctx: RunContext, set_name: str, path: Path) -> SetInfo:
        if set_name in ctx.overrides:
            gate, anode = ctx.overrides[set_name]
            rate = None
            with contextlib.suppress(ValueError):
                rate = parse_set_name(set_name).sampling_gs_s
            return SetInfo(set_name, gate, anode, rate)
        try:
            return parse_set_name(set_name)
        except ValueError as err:
            raise InputFileError(
                path,
                "wrong_layout",
                str(err),
                f"Gate<V> and Anode<V>/EL<V> in the set name, or [sets.{set_name}] gate_v and "
                f"anode_v in {ctx.run_dir / RUN_CONFIG_FILE}",
            ) from err

    def physics(self, ctx: RunContext, set_name: str, path: Path) -> tuple[SetInfo, SetPhysics]:
        info = self.set_info(ctx, set_name, path)
        physics = set_physics(info, ctx.constants)
        if not (math.isfinite(physics.time_drift) and physics.time_drift > 0):
            raise InputFileError(
                path,
                "wrong_layout",
                f"set {set_name}: gate {info.gate_v:g} V gives drift time {physics.time_drift}",
                "a gate voltage > 0 V (a drift field)",
            )
        return info, physics


def fit_settings(options: FitSettings) -> FitSettings:
    """The plain fit settings of ``options`` (which may be a subclass with more fields)."""
    return FitSettings(**{f.name: getattr(options, f.name) for f in fields(FitSettings)})
