"""Quality tests of the shots against a reference run (pure, no I/O).
Placeholder: no tests yet."""

from __future__ import annotations

DEFAULT_TESTS: dict[str, dict[str, object]] = {}
"""The tests when none is configured: name -> QualityTestConfig keyword arguments."""
KINDS_BY_QUANTITY: dict[str, tuple[str, ...]] = {}
"""Quantity -> the test kinds that apply to it."""
