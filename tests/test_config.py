"""Config: spec defaults, TOML overrides, refusals naming key, value and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from wavedqm.config import Config, config_from_dict, load_config, parse_listen
from wavedqm.errors import ConfigError
from wavedqm.processors.router import watch_patterns


def test_defaults_are_the_spec_values() -> None:
    cfg = Config()
    assert cfg.light.pedestal_samples == 50
    assert cfg.light.ptp_threshold_adc16 == 500
    assert cfg.light.flatline_threshold_adc16 == 300
    assert cfg.light.clip_level_adc16 == 32760
    assert cfg.light.baseline_range_adc16 == (-30000, -26000)
    assert cfg.light.baseline_spread_limit_adc16 == 900
    assert cfg.watch.patterns == ()  # empty: the enabled processors' formats decide
    assert watch_patterns(cfg)[:2] == ("*.FLOW.hdf5", "*.wfm")
    assert cfg.metrics.listen == "127.0.0.1:9108"
    channels = cfg.light.active_channel_list()
    assert len(channels) == 48
    assert channels[:13] == (*range(4, 16), 20)
    assert not {0, 1, 2, 3, 16, 19, 32, 35, 48, 51} & set(channels)


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "wavedqm.toml"
    path.write_text(
        "[light]\nptp_threshold_adc16 = 400\nactive_channels = '0-3'\n"
        "baseline_range_adc16 = [-31000, -25000]\n"
        "[watch]\npatterns = ['*.h5']\nsettle_seconds = 0.5\n"
        "[metrics]\nlisten = '0.0.0.0:9200'\n"
    )
    cfg = load_config(path)
    assert cfg.light.ptp_threshold_adc16 == 400.0
    assert cfg.light.active_channel_list() == (0, 1, 2, 3)
    assert cfg.light.baseline_range_adc16 == (-31000.0, -25000.0)
    assert cfg.watch.patterns == ("*.h5",)
    assert watch_patterns(cfg) == ("*.h5",)
    assert cfg.watch.settle_seconds == 0.5
    assert cfg.light.pedestal_samples == 50  # untouched keys keep their default
    assert parse_listen(cfg.metrics.listen) == ("0.0.0.0", 9200)


def test_flags_override_file(tmp_path: Path) -> None:
    cfg = Config().with_overrides(output={"dir": str(tmp_path), "state_dir": None})
    assert cfg.output.dir == str(tmp_path)
    assert cfg.output.state_dir == Config().output.state_dir


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"light": {"ptp_treshold_adc16": 400}}, "unknown key light.ptp_treshold_adc16"),
        (
            {"light": {"pedestal_samples": "fifty"}},
            "light.pedestal_samples: 'fifty' is not an integer",
        ),
        ({"light": {"pedestal_samples": 1.5}}, "light.pedestal_samples: 1.5 is not an integer"),
        ({"watch": {"poll": "yes"}}, "watch.poll: 'yes' is not a boolean"),
        ({"light": {"baseline_range_adc16": [1]}}, "light.baseline_range_adc16: [1] has 1 items"),
        ({"light": {"baseline_range_adc16": [5, 1]}}, "low < high"),
        ({"light": {"active_channels": "4-99"}}, "outside 0..63"),
        ({"light": {"active_channels": "a-b"}}, "is not a channel or range"),
        ({"metrics": {"listen": "localhost"}}, "expected HOST:PORT"),
        ({"daq": {}}, "unknown section [daq]"),
        ({"light": 3}, "is not a table"),
    ],
)
def test_wrong_key_or_type_is_refused_with_key_and_value(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert message in str(err.value)


def test_bad_toml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[light\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
    typo = tmp_path / "typo.toml"
    typo.write_text("[light]\nflatline = 3\n")
    with pytest.raises(ConfigError, match=r"typo.toml: unknown key light.flatline"):
        load_config(typo)


def test_example_config_loads_and_matches_defaults() -> None:
    example = Path(__file__).resolve().parents[1] / "wavedqm.example.toml"
    cfg = load_config(example)
    assert cfg == Config()
