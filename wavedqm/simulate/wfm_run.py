"""Run-folder files of a simulated field scan besides its sets: the truth file name
(``simulation_truth.json``), the default (gate, anode) voltages (V) and ``run.toml``, whose
``[fit]`` ranges (mV·µs) hold the simulated ion and X-ray areas."""

from __future__ import annotations

from pathlib import Path

from wavedqm.analysis import ratag
from wavedqm.atomic import atomic_write_text
from wavedqm.formats.run_config import RUN_CONFIG_FILE
from wavedqm.simulate.wfm_model import set_model

TRUTH_FILE = "simulation_truth.json"
DEFAULT_SETS: tuple[tuple[float, float], ...] = ((200, 2100), (400, 2300), (800, 2700))
"""(gate, anode) voltages of the default field scan: drift fields 143/286/571 V/cm at one
EL field (2375 V/cm)."""


def write_run_config(
    run_dir: str | Path,
    sets: tuple[tuple[float, float], ...],
    run: ratag.RunConstants | None = None,
) -> Path:
    """``RUN/run.toml`` (:mod:`wavedqm.formats.run_config`) with a ``[fit]`` table whose ranges
    hold the simulated ion and X-ray areas of every set (mean + 6σ of the set models). The
    spec's defaults (ions 0–4, X-rays 0.6–20 mV·µs) cannot: an S2 that passes RaTag's duration
    cut (≥ 5 µs above 0.8 mV) has at least 4 mV·µs. Written before the first file, so that the
    daemon reads it for the run's first file already."""
    models = [set_model(gate, anode, run) for gate, anode in sets]
    ion_top = max(m.s2_mean_mv_us + 6 * m.s2_sigma_mv_us for m in models)
    xray_top = max(m.xray_mean_mv_us + 6 * m.xray_sigma_mv_us for m in models)
    text = (
        "# written by `wavedqm simulate wfm`: fit ranges that hold the simulated areas\n"
        "[fit]\n"
        f"ion_bin_cuts = [0.0, {ion_top:.1f}]\n"
        f"xray_bin_cuts = [5.0, {xray_top:.1f}]\n"
    )
    return atomic_write_text(Path(run_dir) / RUN_CONFIG_FILE, text)
