"""Read the Grafana dashboards shipped in ``grafana/dashboards/`` and list their PromQL.

Used by the tests (structure, metric names) and by the end-to-end test that runs every panel's
query against a real Prometheus. Grafana itself is not needed.

- :func:`load_dashboards`: every ``*.json`` dashboard model in a folder.
- :func:`iter_panels`: every panel, including those nested in (collapsed) rows.
- :func:`panel_queries`: ``(panel title, expr)`` for every Prometheus target, with the dashboard
  variables (``$instance``, ``${instance}``, ``[[instance]]``) replaced by the value Grafana
  would send for their default selection ("All" -> the variable's ``allValue``), so each
  expression can be sent to Prometheus as it is.
- :func:`panel_targets`: the same with the target's flags (``instant``, ``wavedqmMayBeEmpty``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAY_BE_EMPTY_KEY = "wavedqmMayBeEmpty"
"""Custom target field: the query may legitimately return nothing right after the first file."""

ALL_VALUE = "$__all"
DEFAULT_ALL_REGEX = ".*"

_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::[^}]*)?\}|\[\[(?P<bracketed>\w+)(?::[^\]]*)?\]\]|\$(?P<plain>\w+)"
)


@dataclass(frozen=True)
class PanelTarget:
    """One Prometheus query of a panel."""

    panel_title: str
    panel_id: int | None
    ref_id: str
    expr: str
    """With the dashboard variables replaced (see :func:`expand_variables`)."""
    raw_expr: str
    instant: bool
    may_be_empty: bool


def load_dashboards(folder: str | Path) -> list[dict[str, Any]]:
    """The dashboard models of every ``*.json`` file in ``folder``, sorted by file name.

    Raises ``ValueError`` naming the file when one is not valid JSON or not a dashboard (an
    object with a ``panels`` list), and ``FileNotFoundError`` when the folder is absent.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"dashboard folder {folder} does not exist")
    dashboards = []
    for path in sorted(folder.glob("*.json")):
        try:
            model = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(model, dict) or not isinstance(model.get("panels"), list):
            raise ValueError(f"{path}: not a Grafana dashboard (expected an object with 'panels')")
        dashboards.append(model)
    return dashboards


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel in layout order, rows included, and the panels nested in collapsed rows
    right after their row."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", []) if panel.get("type") == "row" else ()


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Name -> value of each templating variable for its default (saved) selection.

    "All" becomes the variable's ``allValue`` (``.*`` when unset, as a regex matcher would
    need); a multi-value selection becomes ``(a|b)`` like Grafana's regex formatting.
    """
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current") or {}
        value = current.get("value", var.get("query", ""))
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else "(" + "|".join(map(str, value)) + ")"
        if value == ALL_VALUE:
            value = var.get("allValue") or DEFAULT_ALL_REGEX
        if isinstance(value, Mapping):  # query variables keep their query object in "query"
            value = ""
        values[var["name"]] = str(value)
    return values


def expand_variables(text: str, values: Mapping[str, str]) -> str:
    """``text`` with ``$name``, ``${name}``, ``${name:format}`` and ``[[name]]`` replaced by
    ``values[name]``; unknown names (e.g. Grafana's ``$__interval``) are left as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        return values.get(name, match.group(0))

    return _VARIABLE.sub(replace, text)


def variables_used(text: str) -> set[str]:
    """Names of the variables referenced in ``text``."""
    return {
        m.group("braced") or m.group("bracketed") or m.group("plain")
        for m in _VARIABLE.finditer(text)
    }


def panel_targets(dashboard: Mapping[str, Any]) -> list[PanelTarget]:
    """Every target with an ``expr`` of every panel (nested ones included), in layout order."""
    values = variable_values(dashboard)
    found = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" not in target:
                continue
            raw = str(target["expr"])
            found.append(
                PanelTarget(
                    panel_title=str(panel.get("title", "")),
                    panel_id=panel.get("id"),
                    ref_id=str(target.get("refId", "")),
                    expr=expand_variables(raw, values),
                    raw_expr=raw,
                    instant=bool(target.get("instant", False)) and not target.get("range"),
                    may_be_empty=bool(target.get(MAY_BE_EMPTY_KEY, False)),
                )
            )
    return found


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL expression)`` for every Prometheus target of the dashboard,
    panels nested in rows included, with the dashboard variables at their default values."""
    return [(t.panel_title, t.expr) for t in panel_targets(dashboard)]
