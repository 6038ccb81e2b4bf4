"""The README's metric and failure-reason lists are complete: every metric any registered
processor (or the router) puts on the registry, and every failure reason, is named there."""

from __future__ import annotations

from pathlib import Path

from wavedqm.config import Config
from wavedqm.errors import FAILURE_REASONS
from wavedqm.processors.router import Router

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_metric_is_in_the_readme(tmp_path: Path) -> None:
    cfg = Config().with_overrides(
        output={"dir": str(tmp_path / "out"), "state_dir": str(tmp_path / "state")}
    )
    router = Router(cfg)
    try:
        router.processors()
        names = {family.name for family in router.registry.collect()}
    finally:
        router.close()
    assert len(names) > 20  # the router's and every processor's metrics were collected
    # prometheus_client drops a counter's _total from the family name
    missing = sorted(n for n in names if n not in README and f"{n}_total" not in README)
    assert not missing, f"metrics not named in README.md: {missing}"


def test_every_failure_reason_is_in_the_readme() -> None:
    missing = [r for r in FAILURE_REASONS if f"`{r}`" not in README]
    assert not missing, f"failure reasons not named in README.md: {missing}"
