"""Shared fixtures: the ``shared`` folder beside the checkout, and small simulated light files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wavedqm.simulate.flow import ChannelFaults, SimulationTruth, write_flow_file

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
SAMPLE_FLOW = SHARED_DIR / "data" / "flow" / "UCD_2x2_sample_data.hdf5"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (specs, sample data); the test is skipped when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared folder {SHARED_DIR} is absent (it holds the real sample files)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def sample_flow_file(shared_dir: Path) -> Path:
    """The real charge-only 2x2 ``.FLOW.hdf5`` sample (read-only: never write to it)."""
    if not SAMPLE_FLOW.is_file():
        pytest.skip(f"real sample file {SAMPLE_FLOW} is absent")
    return SAMPLE_FLOW


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default state folder ($XDG_STATE_HOME/wavedqm) of every command the tests run,
    in-process or as a child: a temporary folder, never the user's ~/.local/state."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg_state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


FlowFactory = Callable[..., tuple[Path, SimulationTruth]]


@pytest.fixture(scope="session")
def flow_file(tmp_path_factory: pytest.TempPathFactory) -> FlowFactory:
    """``flow_file(**write_flow_file_kwargs) -> (path, truth)``: a simulated light file, written
    once per session for each set of arguments. Shared between tests: do not modify it."""
    folder = tmp_path_factory.mktemp("flow")
    cache: dict[str, tuple[Path, SimulationTruth]] = {}

    def make(**kwargs: Any) -> tuple[Path, SimulationTruth]:
        kwargs.setdefault("start_time_s", 1_700_000_000.0)
        key = json.dumps(
            {k: v.to_dict() if isinstance(v, ChannelFaults) else v for k, v in kwargs.items()},
            sort_keys=True,
        )
        if key not in cache:
            path = folder / f"sim_{len(cache):03d}.FLOW.hdf5"
            cache[key] = (path, write_flow_file(path, **kwargs))
        return cache[key]

    return make
