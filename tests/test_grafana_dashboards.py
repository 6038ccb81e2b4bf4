"""The Grafana dashboards and provisioning files, checked without Grafana: structure, layout,
datasource, and that every PromQL expression only uses metrics and labels wavedqm exports."""

from __future__ import annotations

import copy
import json
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from wavedqm.config import Config
from wavedqm.daemon.http import HttpServer
from wavedqm.dashboards import (
    MAY_BE_EMPTY_KEY,
    expand_variables,
    iter_panels,
    load_dashboards,
    panel_queries,
    panel_targets,
    variable_values,
    variables_used,
)
from wavedqm.exporters.reference_store import use_reference
from wavedqm.processors.reference_create import create_reference
from wavedqm.processors.router import Router
from wavedqm.simulate.flow import ChannelFaults
from wavedqm.simulate.shots import simulate_shots
from wavedqm.simulate.wfm import simulate_field_scan

REPO = Path(__file__).resolve().parents[1]
GRAFANA = REPO / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
DATASOURCE_YAML = GRAFANA / "provisioning" / "datasources" / "wavedqm.yml"
PROVIDER_YAML = GRAFANA / "provisioning" / "dashboards" / "wavedqm.yml"
DASHBOARD_PATH = "/var/lib/grafana/dashboards/wavedqm"
GRID_WIDTH = 24
OVERVIEW_UID = "wavedqm-overview"
ROW_TITLES = [
    "Service",
    "Light channels",
    "Masks",
    "Quality vs reference",
    "S2 (xenon TPC)",
    "Voxels",
    "Shots",
]
METRIC = re.compile(r"wavedqm_[a-z0-9_]+")
SELECTOR = re.compile(r"(wavedqm_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
PROMETHEUS_LABELS = {"instance", "job"}
"""Added by Prometheus at scrape time."""
GRAFANA_GLOBALS = {"__from", "__to", "__interval", "__rate_interval", "__range"}


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboards() -> list[dict[str, Any]]:
    return load_dashboards(DASHBOARD_DIR)


@pytest.fixture(scope="module")
def overview(dashboards: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in dashboards if d.get("uid") == OVERVIEW_UID]
    return found


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    config = yaml.safe_load(DATASOURCE_YAML.read_text())
    (datasource,) = config["datasources"]
    return datasource["uid"]


@pytest.fixture(scope="module")
def exported_names() -> set[str]:
    """Every series name a fresh router with every processor built exposes, read from its
    text exposition: sample names, plus the ``# TYPE`` names of families without samples
    yet (labelled gauges before the first file), histograms with their
    ``_bucket``/``_sum``/``_count``."""
    router = Router(Config())
    router.processors()
    text = generate_latest(router.registry).decode()
    router.close()
    names = set(re.findall(r"^(wavedqm_\w+)[ {]", text, flags=re.MULTILINE))
    for name, kind in re.findall(r"^# TYPE (wavedqm_\w+) (\w+)$", text, flags=re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


@pytest.fixture(scope="module")
def one_file(tmp_path_factory: pytest.TempPathFactory, flow_file) -> tuple[Router, Path]:
    """Metrics and output folder after the router processed one simulated light + charge
    file, two shots and the two files of a simulated S2 set."""
    path, _ = flow_file(
        n_events=30,
        seed=7,
        faults=ChannelFaults(dead=((1, 9),), clipped=((3, 22),)),
        with_charge=True,
    )
    root = tmp_path_factory.mktemp("grafana_one_file")
    cfg = Config().with_overrides(
        output={"dir": str(root / "out"), "state_dir": str(root / "state")}
    )
    # a reference run from good files of every kind, so that the quality series exist too
    good, _ = flow_file(n_events=30, seed=8, with_charge=True)
    good_shots = simulate_shots(root / "good" / "shots", shots=3, n_samples=500, seed=11)
    simulate_field_scan(
        root / "good" / "RUN0", sets=((200.0, 2100.0),), files_per_set=1, frames_per_file=200
    )
    assert good_shots
    made, _ = create_reference(cfg, root / "state", "good", [good, root / "good"])
    assert {m.kind for m in made} == {"light", "s2", "shots", "voxels"}
    use_reference(root / "state", "good")
    router = Router(cfg)
    router.processors()
    assert router.route(path, completed_at=time.time()).ok
    shots = simulate_shots(root / "shots", shots=2, n_samples=500)
    for shot in shots:
        assert router.route(root / "shots" / shot.file, completed_at=time.time()).ok
    (s2_set,) = simulate_field_scan(
        root / "scan" / "RUN1", sets=((200.0, 2100.0),), files_per_set=2, frames_per_file=200
    )
    for path in s2_set.files:
        assert router.route(path, completed_at=time.time()).ok
    router.close()  # waits for the masks (drawn after the metrics are out)
    return router, root / "out"


@pytest.fixture(scope="module")
def exported_labels(one_file: tuple[Router, Path]) -> dict[str, dict[str, set[str]]]:
    """Series name -> label name -> label values, after one file."""
    metrics, _ = one_file
    labels: dict[str, dict[str, set[str]]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            by_label = labels.setdefault(sample.name, {})
            for key, value in sample.labels.items():
                by_label.setdefault(key, set()).add(value)
    return labels


def _all_targets(dashboard: dict[str, Any]) -> list[tuple[dict, dict]]:
    """(panel, target) pairs found by walking the JSON independently of wavedqm.dashboards."""
    found = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            found.extend((panel, target) for target in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return found


def _rows(dashboard: dict[str, Any]) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] == "row"]


def _overlaps(a: dict, b: dict) -> bool:
    ga, gb = a["gridPos"], b["gridPos"]
    return (
        ga["x"] < gb["x"] + gb["w"]
        and gb["x"] < ga["x"] + ga["w"]
        and ga["y"] < gb["y"] + gb["h"]
        and gb["y"] < ga["y"] + ga["h"]
    )


# -- dashboard models ------------------------------------------------------------------------


def test_every_dashboard_loads_and_is_a_provisionable_model(
    dashboards: list[dict[str, Any]],
) -> None:
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert files, "no dashboard JSON in grafana/dashboards"
    assert len(dashboards) == len(files)
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))  # strict JSON, no trailing commas
    uids = [d.get("uid") for d in dashboards]
    assert all(uids) and len(set(uids)) == len(uids), uids
    for d in dashboards:
        assert d.get("title")
        assert d.get("id") is None, "a provisioned dashboard must not carry a database id"
        assert 36 <= d["schemaVersion"] <= 41
        assert d["time"]["from"].startswith("now-") and d["time"]["to"] == "now"


def test_overview_settings_and_rows(overview: dict[str, Any]) -> None:
    assert overview["refresh"] == "15s"
    assert overview["title"]
    rows = _rows(overview)
    assert [r["title"] for r in rows] == ROW_TITLES
    assert [r["gridPos"]["y"] for r in rows] == sorted(r["gridPos"]["y"] for r in rows)
    for r in rows:
        if r["collapsed"]:
            assert r["panels"], f"collapsed row {r['title']!r} holds its panels"
        else:
            assert r["panels"] == [], "an expanded row's panels belong at the top level"
    by_title = {r["title"]: r for r in rows}
    s2 = " ".join(
        t["expr"] for p in by_title["S2 (xenon TPC)"]["panels"] for t in p.get("targets", [])
    )
    for metric in (
        "wavedqm_s2_area_mean_mv_us",
        "wavedqm_s2_area_ci95_mv_us",
        "wavedqm_xray_accepted_ratio",
        "wavedqm_s2_fit_ok",
        "wavedqm_s2_mean_shift_std_errors",
        "wavedqm_s2_window_shift_us",
        "wavedqm_s2_files_behind",
        "wavedqm_s2_last_file_timestamp_seconds",
    ):
        assert metric in s2, metric
    voxels = " ".join(t["expr"] for p in by_title["Voxels"]["panels"] for t in p.get("targets", []))
    for metric in ("wavedqm_voxel_dead_region_ratio", "wavedqm_charge_hits_rejected_total"):
        assert metric in voxels, metric
    shots = " ".join(t["expr"] for p in by_title["Shots"]["panels"] for t in p.get("targets", []))
    for metric in ("wavedqm_shot_flags_total", "wavedqm_shot_flag_streak", "wavedqm_shot_metric"):
        assert metric in shots, metric


def test_panel_ids_are_unique_across_rows(overview: dict[str, Any]) -> None:
    ids = [p.get("id") for p in iter_panels(overview)]
    assert all(isinstance(i, int) for i in ids), ids
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates
    nested = [p for r in _rows(overview) for p in r["panels"]]
    assert nested, "the check must include panels nested in rows"
    assert len(ids) == len(overview["panels"]) + len(nested)


def test_grid_positions_fit_the_grid_and_do_not_overlap(dashboards: list[dict]) -> None:
    for d in dashboards:
        for panel in iter_panels(d):
            g = panel.get("gridPos")
            assert g, f"panel {panel.get('title')!r} has no gridPos"
            assert all(isinstance(g[k], int) for k in "xywh"), g
            assert g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1, g
            assert g["x"] + g["w"] <= GRID_WIDTH, f"{panel.get('title')!r} sticks out: {g}"
        # the top level, and each collapsed row's children among themselves (Grafana lays
        # them out below the row when it is expanded)
        layouts = [d["panels"]] + [r["panels"] for r in _rows(d) if r.get("collapsed")]
        for layout in layouts:
            for i, a in enumerate(layout):
                for b in layout[i + 1 :]:
                    assert not _overlaps(a, b), f"{a['title']!r} overlaps {b['title']!r}"
        for r in _rows(d):
            for child in r["panels"]:
                assert child["gridPos"]["y"] > r["gridPos"]["y"]


def test_panels_sit_in_their_rows(overview: dict[str, Any]) -> None:
    """Top-level panels belong to the row above them: check what each row holds."""
    sections: dict[str, list[dict]] = {}
    current = None
    for panel in sorted(overview["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
            sections[current] = list(panel["panels"])
        else:
            assert current is not None, f"{panel['title']!r} is above the first row"
            sections[current].append(panel)

    def exprs(section: str) -> str:
        return " ".join(t.get("expr", "") for p in sections[section] for t in p.get("targets", []))

    service = exprs("Service")
    for metric in (
        "wavedqm_files_processed_total",
        "wavedqm_files_failed_total",
        "wavedqm_file_processing_seconds",
        "wavedqm_file_latency_seconds",
        "wavedqm_queue_files",
        "wavedqm_last_file_processed_timestamp_seconds",
        "wavedqm_dead_channels",
    ):
        assert metric in service, metric
    light = exprs("Light channels")
    for metric in (
        "wavedqm_channel_noise_adc",
        "wavedqm_channel_baseline_adc",
        "wavedqm_channel_alive",
        "wavedqm_tpc_clipped_ratio",
        "wavedqm_tpc_negative_ratio",
    ):
        assert metric in light, metric
    assert {p["type"] for p in sections["Masks"]} == {"text"}
    assert len(sections["Masks"]) == 2


# -- queries ---------------------------------------------------------------------------------


def test_every_target_has_an_expr_and_the_provisioned_datasource(
    dashboards: list[dict], datasource_uid: str
) -> None:
    expected = {"type": "prometheus", "uid": datasource_uid}
    for d in dashboards:
        targets = _all_targets(d)
        assert targets
        for panel, target in targets:
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), panel["title"]
            assert target.get("datasource") == expected, panel["title"]
            if "datasource" in panel:
                assert panel["datasource"] == expected, panel["title"]
        for panel in iter_panels(d):
            ref_ids = [t.get("refId") for t in panel.get("targets", [])]
            assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), panel["title"]
        for var in d.get("templating", {}).get("list", []):
            if var["type"] == "query":
                assert var["datasource"] == expected, var["name"]


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for _, t in _all_targets(dashboard)]
    for var in dashboard.get("templating", {}).get("list", []):
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def test_every_metric_name_is_exported(dashboards: list[dict], exported_names: set[str]) -> None:
    assert "wavedqm_channel_noise_adc" in exported_names  # labelled, no series before a file
    assert "wavedqm_file_processing_seconds_bucket" in exported_names
    assert "wavedqm_files_failed_total" in exported_names
    used = set()
    for d in dashboards:
        for expr in _expressions(d):
            names = set(METRIC.findall(expr))
            unknown = names - exported_names
            assert not unknown, f"{expr!r} uses metrics wavedqm does not export: {unknown}"
            used |= names
    assert len(used) >= 15, sorted(used)


def test_the_name_check_catches_a_typo(overview: dict[str, Any], exported_names: set[str]) -> None:
    broken = copy.deepcopy(overview)
    _, target = _all_targets(broken)[0]
    target["expr"] = target["expr"].replace("wavedqm_", "wavedqm_x", 1)
    unknown = {n for e in _expressions(broken) for n in METRIC.findall(e)} - exported_names
    assert unknown


def test_label_matchers_and_groupings_use_exported_labels(
    dashboards: list[dict], exported_labels: dict[str, dict[str, set[str]]]
) -> None:
    """After one file every per-channel/per-TPC series exists: each label a query matches or
    groups by must be one of its metrics' labels, and each fixed label value must occur."""
    for d in dashboards:
        for expr in _expressions(d):
            metrics = set(METRIC.findall(expr))
            allowed = set(PROMETHEUS_LABELS)
            for metric in metrics:
                assert metric in exported_labels, f"no {metric} series after one file"
                allowed |= set(exported_labels[metric])
            for metric, matchers in SELECTOR.findall(expr):
                for label, op, value in MATCHER.findall(matchers):
                    assert label in PROMETHEUS_LABELS or label in exported_labels[metric], (
                        f"{expr!r}: {metric} has no label {label!r}"
                    )
                    if op == "=" and label not in PROMETHEUS_LABELS:
                        assert value in exported_labels[metric][label], (
                            f"{expr!r}: {metric} never has {label}={value!r}"
                        )
            for group in GROUPING.findall(expr):
                for label in filter(None, (s.strip() for s in group.split(","))):
                    assert label in allowed, f"{expr!r} groups by unknown label {label!r}"


def test_variables_are_defined_and_expanded(dashboards: list[dict]) -> None:
    for d in dashboards:
        defined = {v["name"] for v in d.get("templating", {}).get("list", [])}
        texts = [t["expr"] for _, t in _all_targets(d)]
        texts += [p["options"]["content"] for p in iter_panels(d) if p["type"] == "text"]
        for text in texts:
            undefined = variables_used(text) - defined - GRAFANA_GLOBALS
            assert not undefined, f"{text!r} uses undefined variables {undefined}"
        for title, expr in panel_queries(d):
            assert "$" not in expr and "[[" not in expr, (title, expr)


def test_instance_variable_defaults_to_all(overview: dict[str, Any]) -> None:
    (var,) = [v for v in overview["templating"]["list"] if v["name"] == "instance"]
    assert var["includeAll"] and var["allValue"] == ".*"
    assert "label_values(wavedqm_build_info, instance)" in json.dumps(var["query"])
    assert variable_values(overview)["instance"] == ".*"
    # every per-daemon query honours the selector
    for title, expr in ((p.panel_title, p.raw_expr) for p in panel_targets(overview)):
        for metric, matchers in SELECTOR.findall(expr) or [(None, "")]:
            assert 'instance=~"$instance"' in matchers, (title, metric, expr)


def test_panel_queries_returns_every_target(overview: dict[str, Any]) -> None:
    targets = _all_targets(overview)
    queries = panel_queries(overview)
    assert len(queries) == len(targets)
    assert [title for title, _ in queries] == [panel["title"] for panel, _ in targets]
    values = variable_values(overview)
    assert [expr for _, expr in queries] == [
        expand_variables(t["expr"], values) for _, t in targets
    ]


def test_panel_queries_finds_nested_panels_and_expands_every_variable_form() -> None:
    ds = {"type": "prometheus", "uid": "x"}
    dashboard = {
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "type": "query",
                    "query": {"query": "q"},
                    "current": {"text": "All", "value": "$__all"},
                    "allValue": ".*",
                },
                {
                    "name": "job",
                    "type": "custom",
                    "query": "a,b",
                    "current": {"text": "a + b", "value": ["a", "b"]},
                },
                {
                    "name": "q",
                    "type": "textbox",
                    "query": "0.95",
                    "current": {"text": "0.95", "value": "0.95"},
                },
            ]
        },
        "panels": [
            {
                "id": 1,
                "type": "stat",
                "title": "top",
                "targets": [{"refId": "A", "datasource": ds, "expr": 'm{instance=~"$instance"}'}],
            },
            {
                "id": 2,
                "type": "row",
                "title": "r",
                "collapsed": True,
                "panels": [
                    {
                        "id": 3,
                        "type": "timeseries",
                        "title": "nested",
                        "targets": [
                            {"refId": "A", "expr": 'm{job=~"${job}"}', MAY_BE_EMPTY_KEY: True},
                            {
                                "refId": "B",
                                "expr": "histogram_quantile([[q]], m[${__rate_interval}])",
                            },
                            {"refId": "C", "rawSql": "select 1"},
                        ],
                    },
                ],
            },
        ],
    }
    assert panel_queries(dashboard) == [
        ("top", 'm{instance=~".*"}'),
        ("nested", 'm{job=~"(a|b)"}'),
        ("nested", "histogram_quantile(0.95, m[${__rate_interval}])"),
    ]
    assert [t.may_be_empty for t in panel_targets(dashboard)] == [False, True, False]
    assert expand_variables("${instance:regex}|$instance", {"instance": "i"}) == "i|i"


def test_may_be_empty_targets_are_few_and_windowed(overview: dict[str, Any]) -> None:
    targets = panel_targets(overview)
    flagged = [t for t in targets if t.may_be_empty]
    assert 0 < len(flagged) <= 4
    for t in flagged:
        assert re.search(r"\[\d+[smh]\]", t.raw_expr), f"{t.expr!r} needs no flag"
    for t in targets:
        if not t.may_be_empty:
            # a window that needs more than a minute of scrapes could be empty after one file
            for window in re.findall(r"\[(\d+)([smh])\]", t.raw_expr):
                assert window in {("1", "m")} or window[1] == "s", t.expr


def test_grids_are_adc_by_channel_matrices(
    overview: dict[str, Any], exported_labels: dict[str, dict[str, set[str]]]
) -> None:
    grids = [p for p in iter_panels(overview) if p["type"] == "table"]
    assert {METRIC.search(p["targets"][0]["expr"]).group(0) for p in grids} >= {
        "wavedqm_channel_noise_adc",
        "wavedqm_channel_baseline_adc",
        "wavedqm_channel_alive",
    }
    for panel in grids:
        (target,) = panel["targets"]  # groupingToMatrix takes a single query
        assert target["instant"] and target["format"] == "table", panel["title"]
        metric = METRIC.search(target["expr"]).group(0)
        ids = [t["id"] for t in panel["transformations"]]
        assert ids == ["groupingToMatrix", "organize"], panel["title"]
        matrix = panel["transformations"][0]["options"]
        organize = panel["transformations"][1]["options"]
        first_column = f"{matrix['rowField']}\\{matrix['columnField']}"
        renamed = organize["renameByName"][first_column]
        assert panel["options"]["sortBy"] == [{"displayName": renamed, "desc": False}]
        assert matrix["valueField"] == "Value", panel["title"]
        if metric.startswith(("wavedqm_s2_", "wavedqm_shots_", "wavedqm_voxels_")):
            # the kinds' quality tables: one row per set / channel / run, one column per test
            assert matrix["columnField"] == "test", panel["title"]
            assert {matrix["rowField"], "test"} <= set(exported_labels[metric]), metric
            continue
        assert {"adc", "channel"} <= set(exported_labels[metric]), metric
        assert (matrix["rowField"], matrix["columnField"]) == ("adc", "channel")
        order = organize["indexByName"]
        assert order[first_column] == 0
        channels = sorted(exported_labels[metric]["channel"], key=int)
        assert [order[c] for c in channels] == sorted(order[c] for c in channels)
        assert order[channels[0]] < order[channels[-1]]
        assert {p["gridPos"]["w"] for p in grids} == {GRID_WIDTH}


# -- mask images -----------------------------------------------------------------------------


def _image_sources(dashboard: dict[str, Any]) -> dict[str, str]:
    sources = {}
    for panel in iter_panels(dashboard):
        if panel["type"] == "text" and panel["options"].get("mode") == "html":
            for src in re.findall(r'<img[^>]*\bsrc="([^"]+)"', panel["options"]["content"]):
                sources[panel["title"]] = src
    return sources


def test_image_panels_point_at_the_daemon_masks(overview: dict[str, Any]) -> None:
    sources = _image_sources(overview)
    defaults = variable_values(overview)
    assert defaults["wavedqm_url"] == "http://127.0.0.1:9108"
    paths = sorted(urlsplit(expand_variables(s, defaults)).path for s in sources.values())
    assert paths == [
        "/images/baseline.png",
        "/images/flatline.png",
        "/images/quality.png",
        "/images/shot_overlay.png",
        "/images/shot_trends.png",
        "/images/voxel_charge.png",
        "/images/voxel_occupancy.png",
    ]
    for src in sources.values():
        url = expand_variables(src, defaults | {"__to": "1700000000000"})
        assert url.startswith("http://127.0.0.1:9108/images/"), url


def test_image_urls_are_served_by_the_daemon_after_one_file(
    overview: dict[str, Any], one_file: tuple[Router, Path]
) -> None:
    """The panels' URLs, pointed at a daemon HTTP server, return the pipeline's latest PNGs."""
    metrics, out = one_file
    with HttpServer(
        "127.0.0.1", 0, registry=metrics.registry, health=lambda: True, static_dir=out
    ) as srv:
        values = variable_values(overview) | {"wavedqm_url": srv.url, "__to": "1700000000000"}
        for title, src in _image_sources(overview).items():
            with urllib.request.urlopen(expand_variables(src, values), timeout=10) as resp:
                assert resp.status == 200, title
                assert resp.headers["Content-Type"] == "image/png", title
                assert resp.read(8) == b"\x89PNG\r\n\x1a\n", title


# -- provisioning ----------------------------------------------------------------------------


def test_datasource_provisioning(datasource_uid: str) -> None:
    config = yaml.safe_load(DATASOURCE_YAML.read_text())
    assert config["apiVersion"] == 1
    (ds,) = config["datasources"]
    assert ds["type"] == "prometheus"
    assert datasource_uid == "wavedqm-prometheus"
    assert ds["url"] == "http://127.0.0.1:9090"
    assert ds["access"] == "proxy"


def test_dashboard_provider_provisioning() -> None:
    config = yaml.safe_load(PROVIDER_YAML.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "wavedqm"
    assert provider["options"]["path"] == DASHBOARD_PATH
    readme = (GRAFANA / "README.md").read_text()
    for documented in (
        DASHBOARD_PATH,
        "/etc/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards",
        "/images/flatline.png",
        "wavedqm-prometheus",
    ):
        assert documented in readme, documented


def test_load_dashboards_names_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"panels": [], "uid": "a"}')
    assert load_dashboards(tmp_path) == [{"panels": [], "uid": "a"}]
    (tmp_path / "b.json").write_text('{"panels": [],}')
    with pytest.raises(ValueError, match=r"b\.json"):
        load_dashboards(tmp_path)
    (tmp_path / "b.json").write_text('{"title": "no panels"}')
    with pytest.raises(ValueError, match=r"b\.json.*not a Grafana dashboard"):
        load_dashboards(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_dashboards(tmp_path / "absent")
