"""Test helper: one file through the router, as the daemon and ``wavedqm process`` do."""

from __future__ import annotations

from pathlib import Path

from wavedqm.processors.light import LightFileResult
from wavedqm.processors.router import Router


def route_light(router: Router, path: Path) -> LightFileResult:
    """Route ``path``; it must succeed; the light processor's result."""
    result = router.route(path)
    assert result.ok, result.error
    light = result.detail("light")
    assert isinstance(light, LightFileResult)
    return light
