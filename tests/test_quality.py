"""Quality tests against a reference run, on simulated files: a reference made of good files,
then a clean file, one channel with its noise doubled and one with 1.5x; the reference store,
the CLI, the metrics, the summary, the mask and the known-noisy mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap, default_channel_status
from wavedqm.analysis.light import LightResult
from wavedqm.analysis.quality import evaluate_light
from wavedqm.analysis.reference import build_light_reference
from wavedqm.cli import main
from wavedqm.config import Config, QualityConfig, config_from_dict
from wavedqm.errors import ConfigError
from wavedqm.exporters.quality_metrics import QualityMetrics
from wavedqm.exporters.reference_store import (
    ReferenceError,
    active_reference_name,
    list_references,
    load_reference,
    reference_path,
    save_reference,
    use_reference,
)
from wavedqm.processors.light import analyse_light_file
from wavedqm.simulate.flow import write_flow_file

from pdfutil import page_text, pdf_pages

CHANNEL = (2, 10)
DETECTOR = 7
EVENTS = 200


def _light(cfg: Config, path: Path) -> LightResult:
    cmap = ChannelMap.from_config(cfg.light)
    light = analyse_light_file(cfg, cmap, default_channel_status(cmap), path).light
    assert light is not None
    return light


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three good files, a clean one, and CHANNEL's noise x2 and x1.5 (one detector)."""
    root = tmp_path_factory.mktemp("quality")
    files = {}
    for i in range(3):
        files[f"ref{i}"] = root / "ref" / f"good_{i}.FLOW.hdf5"
        files[f"ref{i}"].parent.mkdir(exist_ok=True)
        write_flow_file(files[f"ref{i}"], n_events=EVENTS, seed=100 + i, detector_seed=DETECTOR)
    for name, seed, scale in (("clean", 201, 1.0), ("double", 202, 2.0), ("half", 203, 1.5)):
        files[name] = root / "data" / f"{name}.FLOW.hdf5"
        files[name].parent.mkdir(exist_ok=True)
        write_flow_file(files[name], n_events=EVENTS, seed=seed, detector_seed=DETECTOR,
                        noise_scale={CHANNEL: scale})  # fmt: skip
    return files


@pytest.fixture(scope="module")
def reference(run: dict[str, Path]):
    cfg = Config()
    return build_light_reference(
        "good", [(str(run[f"ref{i}"]), _light(cfg, run[f"ref{i}"])) for i in range(3)], 1.0
    )


def _errors(result) -> set[tuple[str, int, int]]:
    return {(r["test"], r["adc"], r["channel"]) for r in result.failed() if r["status"] == "error"}


def test_a_clean_file_passes_every_test(run, reference) -> None:
    result = evaluate_light(_light(Config(), run["clean"]), reference, QualityConfig())
    assert result.failed() == []
    assert result.status == C.QUALITY_OK
    monitored = result.monitored
    assert np.all(result.worst[monitored] == C.QUALITY_OK)
    for test in result.tests:
        assert test.counts(monitored)["ok"] == monitored.sum(), test.name


def test_doubled_noise_fails_exactly_that_channel_with_an_error(run, reference) -> None:
    result = evaluate_light(_light(Config(), run["double"]), reference, QualityConfig())
    assert _errors(result) == {("noise_level", *CHANNEL)}
    assert {(r["adc"], r["channel"]) for r in result.failed()} == {CHANNEL}
    (row,) = result.failed()
    assert row["value"] == pytest.approx(2.0, rel=0.05)  # the noise ratio
    assert result.worst[CHANNEL] == C.QUALITY_ERROR
    assert result.status == C.QUALITY_ERROR
    assert result.channels_failing == pytest.approx(1 / result.monitored.sum())
    assert result.channels_failing_status == C.QUALITY_OK  # one channel of 384 is no outbreak


def test_one_and_a_half_times_the_noise_only_warns(run, reference) -> None:
    result = evaluate_light(_light(Config(), run["half"]), reference, QualityConfig())
    assert _errors(result) == set()
    assert [(r["test"], r["adc"], r["channel"], r["status"]) for r in result.failed()] == [
        ("noise_level", *CHANNEL, "warning")
    ]
    assert result.status == C.QUALITY_WARNING


def test_distribution_tests_see_the_wider_noise(run, reference) -> None:
    cfg = config_from_dict({"quality": {"tests": {
        "noise_ks": {"quantity": "noise", "kind": "ks", "warning": [0.01, 1], "error": [1e-3, 1]},
        "noise_chi2": {"quantity": "noise", "kind": "chi2_ndf", "warning": [0, 3],
                       "error": [0, 10]},
    }}})  # fmt: skip
    clean = evaluate_light(_light(cfg, run["clean"]), reference, cfg.quality)
    double = evaluate_light(_light(cfg, run["double"]), reference, cfg.quality)
    assert (double.tests[0].value[CHANNEL], double.tests[0].status[CHANNEL]) == (
        pytest.approx(0, abs=1e-12), C.QUALITY_ERROR)  # fmt: skip
    assert double.tests[1].status[CHANNEL] == C.QUALITY_ERROR
    # KS p-values of good files against their reference: most channels well above 1e-3
    p = clean.tests[0].value[clean.monitored]
    assert np.mean(p > 1e-3) > 0.95


def test_few_events_say_not_enough_data(run, reference) -> None:
    cfg = config_from_dict({"quality": {"tests": {
        "noise_level": {"quantity": "noise", "kind": "ratio", "warning": [0.8, 1.25],
                        "error": [0.57, 1.75], "min_events": EVENTS + 1},
    }}})  # fmt: skip
    result = evaluate_light(_light(cfg, run["double"]), reference, cfg.quality)
    assert result.failed() == []
    assert np.all(result.worst[result.monitored] == C.QUALITY_NOT_ENOUGH)
    assert result.status == C.QUALITY_NOT_ENOUGH


def test_reference_is_pooled_from_its_files(run, reference) -> None:
    assert [s["events"] for s in reference.sources] == [EVENTS] * 3
    assert reference.n_events == 3 * EVENTS
    lights = [_light(Config(), run[f"ref{i}"]) for i in range(3)]
    k = sum(light.fractions["clipped"]["all"]["channel"].k for light in lights)
    np.testing.assert_array_equal(reference.rates["clipped"][0], k)
    active = lights[0].monitored
    np.testing.assert_array_equal(reference.valid_events[active], 3 * EVENTS)
    # the pooled median noise lies between the files' medians
    medians = np.stack([light.noise.median for light in lights])
    ref_median = reference.spreads["noise"].median
    assert np.all(ref_median[active] >= medians.min(0)[active] - 1e-9)
    assert np.all(ref_median[active] <= medians.max(0)[active] + 1e-9)


def test_reference_store_round_trip_and_damaged_file(tmp_path: Path, reference) -> None:
    state = tmp_path / "state"
    path = save_reference(state, reference)
    assert path == reference_path(state, "good") and list_references(state) == ["good"]
    loaded = load_reference(state, "good")
    for q in ("baseline", "noise"):
        np.testing.assert_array_equal(loaded.profiles[q], reference.profiles[q])
    np.testing.assert_array_equal(loaded.valid_events, reference.valid_events)
    assert loaded.sources == reference.sources
    assert active_reference_name(state) == ""
    use_reference(state, "good")
    assert active_reference_name(state) == "good"
    assert active_reference_name(state, "other") == "other"  # the configuration wins
    with pytest.raises(ReferenceError, match=r"reference 'nope' not found.*references: good"):
        use_reference(state, "nope")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ReferenceError, match=r"good\.npz: cannot read the reference"):
        load_reference(state, "good")
    assert path.stat().st_size == 100  # left as it is for someone to look at
    with pytest.raises(ReferenceError, match="reference name"):
        reference_path(state, "../etc")


def test_quality_config_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"quality.tests.x.kind: 'ks' \(expected for clipped"):
        config_from_dict({"quality": {"tests": {"x": {"quantity": "clipped", "kind": "ks"}}}})
    inverted = {"quantity": "noise", "kind": "ratio", "warning": [0.5, 2], "error": [0.8, 1.25]}
    with pytest.raises(ConfigError, match=r"warning .* must lie inside error"):
        config_from_dict({"quality": {"tests": {"x": inverted}}})
    with pytest.raises(ConfigError, match=r"quality\.tests\.x\.quantity: 'gain'"):
        config_from_dict({"quality": {"tests": {"x": {"quantity": "gain", "kind": "ratio"}}}})
    with pytest.raises(ConfigError, match=r"quality\.reference"):
        config_from_dict({"quality": {"reference": "a/b"}})


def test_metrics_follow_the_results_and_clear_without_a_reference(run, reference) -> None:
    registry = CollectorRegistry()
    metrics = QualityMetrics(registry, 0.25)
    light = _light(Config(), run["double"])
    result = evaluate_light(light, reference, QualityConfig())
    masked = np.zeros(light.monitored.shape, bool)
    masked[CHANNEL] = True
    metrics.file_done(result, masked)
    labels = {"adc": str(CHANNEL[0]), "channel": str(CHANNEL[1])}
    value = registry.get_sample_value
    assert value("wavedqm_channel_quality_status", labels) == C.QUALITY_ERROR
    assert value("wavedqm_channel_quality_status", {"adc": "0", "channel": "4"}) == 0
    assert value("wavedqm_channel_quality_status", {"adc": "0", "channel": "0"}) is None
    assert value("wavedqm_channel_alert_masked", labels) == 1
    assert value("wavedqm_quality_channels", {"test": "noise_level", "status": "error"}) == 1
    assert value("wavedqm_quality_channels", {"test": "worst", "status": "ok"}) == 383
    assert value("wavedqm_quality_status") == C.QUALITY_ERROR
    assert value("wavedqm_quality_channels_failing_limit") == 0.25
    metrics.file_done(None, np.zeros(light.monitored.shape, bool))
    assert value("wavedqm_channel_quality_status", labels) is None  # the alert resolves
    assert value("wavedqm_channel_alert_masked", labels) is None
    assert value("wavedqm_quality_channels", {"test": "noise_level", "status": "error"}) is None
    assert value("wavedqm_quality_status") == C.QUALITY_NOT_ENOUGH


def test_cli_reference_then_process_writes_quality_and_masks_known_noisy(
    tmp_path: Path, run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    folder = str(run["ref0"].parent)
    assert main(["reference", "create", "good", folder, "--state", str(state)]) == 0
    assert "reference good light: 3 files, 600 events" in capsys.readouterr().out
    assert main(["reference", "show", "good", "--json", "--state", str(state)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["light"]["files"] == 3 and shown["light"]["events"] == 3 * EVENTS
    assert shown["parts"] == {}  # light files only
    assert main(["reference", "use", "missing", "--state", str(state)]) == 2
    assert "reference 'missing' not found" in capsys.readouterr().err
    assert main(["reference", "use", "good", "--state", str(state)]) == 0
    assert main(["reference", "list", "--state", str(state)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "* good"
    # the doubled channel marked known noisy (bit 4) in the status CSV: still tested and drawn
    status = np.where(ChannelMap.from_config(Config().light).active, 0, -1)
    status[CHANNEL] = C.STATUS_KNOWN_NOISY
    csv = tmp_path / "status.csv"
    csv.write_text("".join(",".join(map(str, row)) + "\n" for row in status))
    args = ["process", str(run["double"]), "--state", str(state), "--out", str(out)]
    assert main([*args, "--status", str(csv)]) == 0
    folder = out / run["double"].name
    quality = json.loads((folder / "summary.json").read_text())["quality"]
    assert quality["reference"] == "good" and quality["status"] == "error"
    assert quality["tests"]["noise_level"]["channels"]["error"] == 1
    (row,) = quality["failed"]
    assert (row["adc"], row["channel"], row["alert_masked"]) == (*CHANNEL, True)
    assert quality["tests"]["clipped_rate"]["warning"] == [None, 3.0]  # -inf as null
    first = page_text(folder / "report.pdf", 1)
    assert "Quality tests against reference good: ERROR" in first
    assert f"{CHANNEL[0]}:{CHANNEL[1]}! 2.0" in first  # the channel, error, its ratio
    last = page_text(folder / "report.pdf", pdf_pages(folder / "report.pdf"))
    assert "Channels quality vs reference" in last and "1 error, 0 warning" in last
    assert "reference good" in page_text(folder / "report.pdf", 6)  # a noise page's legend
    png = (folder / "quality.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (out / "images" / "quality.png").read_bytes() == png
    # no reference: the section says so
    (state / "references" / "ACTIVE").unlink()
    assert main(["process", str(run["clean"]), "--state", str(state), "--out", str(out)]) == 0
    clean = json.loads((out / run["clean"].name / "summary.json").read_text())
    assert clean["quality"] == {"reference": None, "status": "no_reference"}
    assert not (out / run["clean"].name / "quality.png").exists()
