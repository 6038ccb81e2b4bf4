"""Quality tests of the shots against a reference run: the kinds on hand-computed values, the
reference part stored and decoded, and end to end: a reference made by the CLI from good
simulated shots, then a bad shot is an error exactly on the channel and test it is bad in, a
mildly bad one a warning, a clean one ok everywhere; the metrics, the plots, no reference and
a damaged reference part."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from wavedqm import constants as C
from wavedqm.analysis.shot_quality import (
    DEFAULT_TESTS,
    KINDS_BY_QUANTITY,
    QUANTITIES,
    ShotReference,
    build_shot_reference,
    decode_reference,
    encode_reference,
    evaluate_shot,
    kind_value,
    reference_bands,
)
from wavedqm.analysis.shot_series import ShotRecord
from wavedqm.analysis.shots import ChannelResult
from wavedqm.cli import main
from wavedqm.config import Config, ConfigError, QualityTestConfig
from wavedqm.exporters.reference_sections import load_section, section_path
from wavedqm.processors.router import Router
from wavedqm.simulate.shots import (
    NOISE_FRACTION,
    NOMINAL_AMPLITUDE,
    SHOTS_CONFIG,
    TRUTH_FILE,
    shot_waveforms,
    write_shot_csv,
)

from netutil import metric_value

OK, WARN, ERR, NED = C.QUALITY_OK, C.QUALITY_WARNING, C.QUALITY_ERROR, C.QUALITY_NOT_ENOUGH
N_SAMPLES, DT_S = 2000, 2e-6


def _record(shot_id: str, peaks: dict[str, float], flags: dict[str, list[str]] | None = None,
            noise: float = 0.01) -> ShotRecord:  # fmt: skip
    flags = flags or {}
    channels = {
        name: ChannelResult(name, {"peak": p, "time_of_peak": 1e-3}, list(flags.get(name, [])),
                            baseline_mean=0.0, baseline_std=noise)
        for name, p in peaks.items()
    }  # fmt: skip
    return ShotRecord(shot_id, int(shot_id), f"shot_{shot_id}.csv", 0.0, 10, 1e-6, 0.0, 1e-5,
                      {}, channels)  # fmt: skip


def _hand_reference() -> ShotReference:
    shots = [_record(f"{i}", {"a": p, "b": 2.0}) for i, p in enumerate([1.0, 2.0, 3.0, 4.0, 10.0])]
    shots.append(_record("9", {"a": 100.0, "b": 2.0}, flags={"a": ["saturation"]}))
    return build_shot_reference("hand", [({"file": r.source}, r) for r in shots], 123.0)


def test_reference_holds_the_good_shots_distributions() -> None:
    ref = _hand_reference()
    a = ref.stats("a", "peak")
    assert a is not None and a.count == 5  # the flagged 100 is not a good shot of "a"
    assert (a.mean, a.median) == (4.0, 3.0)
    assert a.std == pytest.approx(math.sqrt(12.5))  # ddof=1: Σ(x−4)²/4 = 50/4
    b = ref.stats("b", "peak")
    assert b is not None and b.count == 6 and b.std == 0.0
    noise = ref.stats("a", "baseline_std")
    assert noise is not None and noise.median == 0.01
    assert ref.stats("a", "auc").count == 0  # type: ignore[union-attr]
    assert ref.stats("c", "peak") is None
    profile = ref.profile[ref.channels.index("a"), QUANTITIES.index("peak")]
    assert profile[0] == 1.0 and profile[25] == 2.0 and profile[50] == 3.0 and profile[-1] == 10.0
    assert ref.good_shots() == {"a": 5, "b": 6}
    assert ref.sources[-1]["flags"] == {"a": ["saturation"]}
    meta, arrays = encode_reference(ref)
    json.dumps(meta, allow_nan=False)
    again = decode_reference({**meta, "name": "hand"}, arrays)
    assert again.stats("a", "peak") == a and again.channels == ("a", "b")
    with pytest.raises(ValueError, match="count: shape"):
        decode_reference({**meta, "name": "hand"}, {**arrays, "count": arrays["count"][:1]})
    with pytest.raises(ValueError, match="good channel"):
        build_shot_reference("bad", [({}, _record("1", {"a": 1.0}, {"a": ["low_signal"]}))], 0.0)


def test_each_kind_on_hand_computed_values() -> None:
    ref = _hand_reference()
    a = ref.stats("a", "peak")
    assert kind_value("range", 1.5, a) == 1.5  # type: ignore[arg-type]
    assert kind_value("ratio", 1.5, a) == 0.5  # type: ignore[arg-type]
    assert kind_value("sigma", 1.5, a) == pytest.approx(-2.5 / math.sqrt(12.5))  # type: ignore[arg-type]
    assert math.isnan(kind_value("sigma", 1.5, ref.stats("b", "peak")))  # type: ignore[arg-type]
    tests = {
        "level": QualityTestConfig("peak", "ratio", (0.67, 1.5), (0.55, 1.8), 5),
        "shift": QualityTestConfig("peak", "sigma", (-1.0, 1.0), (-2.0, 2.0), 5),
        "raw": QualityTestConfig("peak", "range", (0.0, 1.0), (0.0, 2.0), 5),
        "strict": QualityTestConfig("peak", "ratio", (0.0, 9.0), (0.0, 9.0), 6),
        "noise": QualityTestConfig("baseline_std", "ratio", (0.8, 1.25), (0.57, 1.75), 5),
    }
    shot = _record("20", {"a": 1.5, "b": 2.0, "c": 1.0}, noise=0.015)
    shot.channels["b"].metrics["peak"] = math.nan  # undefined in this shot
    result = evaluate_shot(shot.channels, ref, tests)
    got = {t.name: {c: (round(ct.value, 4), ct.status) for c, ct in t.channels.items()}
           for t in result.tests}  # fmt: skip
    nan = (math.nan, NED)
    assert _same(got["level"], {"a": (0.5, ERR), "b": nan, "c": nan})  # c: not in the reference
    assert _same(got["shift"], {"a": (-0.7071, OK), "b": nan, "c": nan})
    assert _same(got["raw"], {"a": (1.5, WARN), "b": nan, "c": nan})
    assert _same(got["strict"], {"a": nan, "b": nan, "c": nan})  # a: 5 good shots < 6
    assert _same(got["noise"], {"a": (1.5, WARN), "b": (1.5, WARN), "c": nan})
    assert result.worst == {"a": ERR, "b": WARN, "c": NED} and result.status == ERR
    doc = result.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["status"] == "error" and doc["reference"] == "hand" and doc["reference_shots"] == 6
    assert doc["failed"][0] == {
        "test": "level", "quantity": "peak", "kind": "ratio", "channel": "a", "status": "error",
        "value": 0.5, "measured": 1.5, "warning": [0.67, 1.5], "error": [0.55, 1.8]}  # fmt: skip
    assert doc["tests"]["level"]["channels"]["a"]["reference"]["std"] == pytest.approx(3.5355, 1e-4)
    assert [(r["test"], r["channel"], r["status"]) for r in doc["failed"]] == [
        ("level", "a", "error"), ("noise", "a", "warning"), ("noise", "b", "warning"),
        ("raw", "a", "warning")]  # fmt: skip
    bands = reference_bands(ref, ["peak", "auc"], ["a", "z"])
    assert bands == {("peak", "a"): ref.stats("a", "peak")}
    assert evaluate_shot(shot.channels, ref, {}).status == NED


def _same(got: dict, want: dict) -> bool:
    return all(
        ((math.isnan(g[0]) and math.isnan(w[0])) or g[0] == w[0]) and g[1] == w[1]
        for g, w in ((got[k], want[k]) for k in want)
    ) and set(got) == set(want)


def test_defaults_and_config_validation() -> None:
    assert set(Config().quality.shot_tests) == set(DEFAULT_TESTS)
    assert set(KINDS_BY_QUANTITY) == set(C.SHOT_METRICS) | {"baseline_mean", "baseline_std"}
    with pytest.raises(ConfigError, match=r"quality.shot_tests.x.kind: 'ks'"):
        Config().with_overrides(quality={"shot_tests": {"x": {"quantity": "peak", "kind": "ks"}}})
    with pytest.raises(ConfigError, match=r"quality.shot_tests.x.quantity: 'height'"):
        Config().with_overrides(
            quality={"shot_tests": {"x": {"quantity": "height", "kind": "ratio"}}})  # fmt: skip


# --- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder with reference "good" in use, made by the CLI from 20 simulated shots
    (their own flawed shots among them: those channels are left out of the reference)."""
    from wavedqm.simulate.shots import simulate_shots

    root = tmp_path_factory.mktemp("shotq")
    good = root / "good" / "run1"
    simulate_shots(good, shots=20, seed=3, n_samples=N_SAMPLES, dt_s=DT_S)
    state = root / "state"
    config = str(good / "shots.toml")
    assert main(["reference", "create", "good", str(good.parent), "--state", str(state),
                 "--config", config]) == 0  # fmt: skip
    assert main(["reference", "use", "good", "--state", str(state)]) == 0
    return state


def test_the_reference_part_holds_the_good_shots_of_each_channel(
    made: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = json.loads((made.parent / "good" / "run1" / TRUTH_FILE).read_text())["shots"]
    capsys.readouterr()
    assert main(["reference", "show", "good", "--json", "--state", str(made)]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["shots"]
    good = {c: sum(c not in t["flags"] for t in truth) for c in truth[0]["amplitudes"]}
    assert part["summary"]["good_shots_by_channel"] == good
    assert part["summary"]["shots"] == 20 and part["summary"]["series"] == ["run1"]
    assert [Path(s["file"]).name for s in part["sources"]] == [t["file"] for t in truth]
    assert [s["flags"] for s in part["sources"]] == [t["flags"] for t in truth]
    peaks = [t["amplitudes"]["photodiode"] for t in truth if "photodiode" not in t["flags"]]
    median = _reference_median(made, "photodiode", "peak")
    assert median == pytest.approx(float(np.median(peaks)), rel=0.03)  # + the noise's max


def _config(state: Path, out: Path, plots: bool = False) -> Config:
    return Config().with_overrides(
        output={"dir": str(out), "state_dir": str(state), "reports": False},
        shots={**SHOTS_CONFIG, "plots": plots},
    )  # fmt: skip


def _reference_median(state: Path, channel: str, quantity: str) -> float:
    meta, arrays = load_section(state, "good", "shots")  # type: ignore[misc]
    ref = decode_reference(meta, arrays)
    return ref.stats(channel, quantity).median  # type: ignore[union-attr]


def _shot(folder: Path, shot_id: str, index: int, seed: int, peak_ratio: float | None = None,
          noise_factor: float = 1.0, median: float = 1.0) -> Path:  # fmt: skip
    """A clean simulated shot; the photodiode's pulse (after the discharge; its baseline region
    untouched) scaled so that its peak is ``peak_ratio`` × ``median``; the B-dot's noise
    ``noise_factor`` × the simulated one (white noise added over the whole record)."""
    rng = np.random.default_rng(seed)
    t, x, truth = shot_waveforms(index, N_SAMPLES, DT_S, rng, None)
    if peak_ratio is not None:
        on = t >= truth.discharge_s
        x["photodiode"][on] *= peak_ratio * median / float(np.max(x["photodiode"]))
    if noise_factor != 1.0:
        sigma = NOISE_FRACTION * NOMINAL_AMPLITUDE["b_dot"] * math.sqrt(noise_factor**2 - 1)
        x["b_dot"] = x["b_dot"] + rng.normal(0.0, sigma, t.size)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"shot_{shot_id}.csv"
    write_shot_csv(path, t, x)
    return path


def _statuses(doc: dict) -> dict[tuple[str, str], str]:
    return {(name, channel): ct["status"] for name, test in doc["quality"]["tests"].items()
            for channel, ct in test["channels"].items()}  # fmt: skip


def _metric(router: Router, name: str, **labels: str) -> float | None:
    return metric_value(generate_latest(router.registry).decode(), name, **labels)


def test_bad_mild_and_clean_shots_against_the_reference(made: Path, tmp_path: Path) -> None:
    state = made
    median = _reference_median(state, "photodiode", "peak")
    spool = tmp_path / "spool" / "run2"
    clean = _shot(spool, "0001", 1, seed=101)
    bad = _shot(spool, "0002", 2, seed=102, peak_ratio=0.45, noise_factor=2.0, median=median)
    mild = _shot(spool, "0003", 3, seed=103, peak_ratio=0.61, noise_factor=1.5, median=median)
    channels = ("b_dot", "interferometer", "photodiode", "xray_proxy")
    everything = {(t, c) for t in DEFAULT_TESTS for c in channels}
    out = tmp_path / "out"
    with Router(_config(state, out, plots=True)) as router:
        docs, summaries = {}, {}
        for path in (clean, bad, mild):
            result = router.route(path)
            assert result.ok, result.error
            assert result.detail("shots").flags() == {}, "the shots raise no flag"
            summaries[path.stem] = result.outcome("shots").summary  # type: ignore[union-attr]
            docs[path.stem] = json.loads((out / "run2" / f"{path.stem[5:]}.json").read_text())
        router.plots.wait_idle()
        assert _statuses(docs["shot_0001"]) == dict.fromkeys(everything, "ok")
        assert docs["shot_0001"]["quality"]["status"] == "ok"
        for name, level in (("shot_0002", "error"), ("shot_0003", "warning")):
            want = dict.fromkeys(everything, "ok")
            want[("peak_level", "photodiode")] = want[("noise_level", "b_dot")] = level
            assert _statuses(docs[name]) == want, name
            worst = dict.fromkeys(channels, "ok") | {"b_dot": level, "photodiode": level}
            assert docs[name]["quality"]["worst_by_channel"] == worst
        assert summaries["shot_0002"].endswith(
            "quality vs good: error (b_dot noise_level error, photodiode peak_level error)"
        )
        failed = docs["shot_0002"]["quality"]["failed"]
        assert [(f["test"], f["channel"]) for f in failed] == [
            ("noise_level", "b_dot"), ("peak_level", "photodiode")]  # fmt: skip
        assert failed[1]["value"] == pytest.approx(0.45, rel=1e-9)
        assert failed[0]["value"] == pytest.approx(2.0, rel=0.15)
        # the last shot (mild) in the metrics
        m = lambda **kw: _metric(router, kw.pop("n"), **kw)  # noqa: E731
        assert m(n="wavedqm_shots_quality_status", channel="photodiode", test="peak_level") == WARN
        assert m(n="wavedqm_shots_quality_status", channel="xray_proxy", test="peak_time") == OK
        assert m(n="wavedqm_shots_quality_worst_status", channel="b_dot") == WARN
        assert m(n="wavedqm_shots_quality_worst_status", channel="interferometer") == OK
        assert m(n="wavedqm_shots_quality_value", channel="photodiode",
                 test="peak_level") == pytest.approx(0.61)  # fmt: skip
        # no reference in use: the series go (an alert resolves)
        (state / "references" / C.ACTIVE_REFERENCE_FILE).rename(state / "ACTIVE.away")
        try:
            assert router.route(_shot(spool, "0004", 4, seed=104)).ok
        finally:
            (state / "ACTIVE.away").rename(state / "references" / C.ACTIVE_REFERENCE_FILE)
        doc = json.loads((out / "run2" / "0004.json").read_text())
        assert doc["quality"] == {"reference": None, "status": "no_reference"}
        assert m(n="wavedqm_shots_quality_status", channel="photodiode", test="peak_level") is None
        assert m(n="wavedqm_shots_quality_worst_status", channel="b_dot") is None
        assert m(n="wavedqm_shots_quality_reference_errors_total") == 0
    for png in ("trends_vs_shot.png", "overlay_photodiode.png"):
        assert (out / "run2" / png).stat().st_size > 1000


def test_a_damaged_reference_part_is_reported_not_fatal(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    (state / "references" / "shots").mkdir(parents=True)
    (state / "references" / "shots" / "good.npz").write_bytes(b"not an npz at all")
    assert main(["reference", "use", "good", "--state", str(state)]) == 0
    capsys.readouterr()
    spool = tmp_path / "spool" / "run3"
    with Router(_config(state, tmp_path / "out")) as router:
        for i in (1, 2):
            result = router.route(_shot(spool, f"000{i}", i, seed=200 + i))
            assert result.ok, result.error
        assert _metric(router, "wavedqm_shots_quality_reference_errors_total") == 1  # once
        assert _metric(router, "wavedqm_shots_quality_worst_status", channel="b_dot") is None
    doc = json.loads((tmp_path / "out" / "run3" / "0002.json").read_text())
    assert doc["quality"]["status"] == "no_reference" and doc["flags"] == {}
    err = capsys.readouterr().err
    assert "shots_quality_reference_unusable" in err
    assert str(section_path(state, "good", "shots")) in err


def test_reference_create_refuses_shots_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "shot_0001.csv").write_text("t,a\n0,1\n1,x\n")
    rc = main(["reference", "create", "bad", str(folder), "--state", str(tmp_path / "s")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "shot_0001.csv" in err and "expected shot CSV/NPZ" in err
    assert not section_path(tmp_path / "s", "bad", "shots").exists()


def test_the_error_streak_counts_shots_in_a_row_per_channel() -> None:
    """WavedqmShotQualityError's gauge: consecutive shots with a quality error, per channel;
    a shot without one, or no reference any more, ends the streak."""
    from prometheus_client import CollectorRegistry

    from wavedqm.analysis.shot_quality import ShotQualityResult
    from wavedqm.exporters.shot_quality_metrics import ShotQualityMetrics

    registry = CollectorRegistry()
    metrics = ShotQualityMetrics(registry)

    def shot(**worst: int) -> None:
        metrics.shot_done(ShotQualityResult("good", 10, [], dict(worst)))

    def streak(channel: str) -> float | None:
        return registry.get_sample_value("wavedqm_shots_quality_error_streak", {"channel": channel})

    for _ in range(3):
        shot(photodiode=C.QUALITY_ERROR, b_dot=C.QUALITY_WARNING)
    assert streak("photodiode") == 3 and streak("b_dot") == 0
    shot(photodiode=C.QUALITY_OK, b_dot=C.QUALITY_ERROR)
    assert streak("photodiode") == 0 and streak("b_dot") == 1
    shot(b_dot=C.QUALITY_ERROR)  # a shot without the photodiode: its series goes
    assert streak("photodiode") is None and streak("b_dot") == 2
    metrics.shot_done(None)
    assert streak("b_dot") is None
    shot(b_dot=C.QUALITY_ERROR)
    assert streak("b_dot") == 1, "no reference in between: the streak starts again"
