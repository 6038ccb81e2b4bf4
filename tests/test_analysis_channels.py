"""Channel map (active, EPCB, TPC) and the channel-status CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wavedqm import constants as C
from wavedqm.analysis.channels import (
    ChannelMap,
    default_channel_status,
    read_channel_status,
    write_channel_status,
)
from wavedqm.config import LightConfig
from wavedqm.errors import ConfigError

CMAP = ChannelMap.from_config(LightConfig())
ACTIVE = [*range(4, 16), *range(20, 32), *range(36, 48), *range(52, 64)]


def test_active_channels_are_48_per_adc() -> None:
    assert CMAP.shape == (8, 64)
    assert CMAP.active.sum(axis=1).tolist() == [48] * 8
    for adc in range(8):
        assert np.flatnonzero(CMAP.active[adc]).tolist() == ACTIVE


def test_epcbs_are_six_consecutive_active_channels() -> None:
    assert CMAP.n_epcb == 64 and CMAP.epcb_per_adc == 8
    assert (CMAP.epcb[~CMAP.active] == -1).all()
    for adc in range(8):
        for local in range(8):
            members = np.flatnonzero(CMAP.epcb[adc] == adc * 8 + local).tolist()
            assert members == ACTIVE[6 * local : 6 * local + 6]
    assert np.flatnonzero(CMAP.epcb[3] == 3 * 8 + 1).tolist() == [10, 11, 12, 13, 14, 15]
    assert np.flatnonzero(CMAP.epcb[3] == 3 * 8 + 2).tolist() == [20, 21, 22, 23, 24, 25]
    assert CMAP.epcb[7, 63] == 63


def test_tpc_pairs_split_at_channel_32() -> None:
    assert CMAP.n_tpc == 8
    assert CMAP.tpc[0, 4] == 0 and CMAP.tpc[1, 31] == 0
    assert CMAP.tpc[0, 36] == 1 and CMAP.tpc[1, 63] == 1
    assert CMAP.tpc[2, 10] == 2 and CMAP.tpc[3, 40] == 3
    assert CMAP.tpc[6, 4] == 6 and CMAP.tpc[7, 63] == 7
    assert CMAP.tpc[0, 0] == -1 and CMAP.tpc[5, 33] == -1  # inactive
    for t in range(8):
        cells = np.argwhere(CMAP.tpc == t)
        assert len(cells) == 2 * 24
        assert set(cells[:, 0]) == {2 * (t // 2), 2 * (t // 2) + 1}
        assert (cells[:, 1] < 32).all() if t % 2 == 0 else (cells[:, 1] >= 32).all()


def test_custom_config_map() -> None:
    cfg = LightConfig(
        n_adcs=3,
        n_channels=8,
        active_channels="1-3,5-7,0",
        epcb_size=3,
        tpc_adc_pairs=((2, 0),),
        tpc_split_channel=4,
    )
    cmap = ChannelMap.from_config(cfg)
    assert cmap.epcb_per_adc == 3 and cmap.n_epcb == 9 and cmap.n_tpc == 2
    # EPCB 1 of each ADC spans the unconnected channel 4; the last EPCB is short
    assert cmap.epcb[1].tolist() == [3, 3, 3, 4, -1, 4, 4, 5]
    assert cmap.tpc[2].tolist() == [0, 0, 0, 0, -1, 1, 1, 1]
    assert cmap.tpc[0].tolist() == [0, 0, 0, 0, -1, 1, 1, 1]
    assert (cmap.tpc[1] == -1).all()  # ADC 1 is in no pair
    assert cmap.groups("tpc")[1] == 2 and cmap.groups("epcb")[1] == 9
    with pytest.raises(ValueError, match="granularity"):
        cmap.groups("channel")


def test_adc_in_two_pairs_is_refused() -> None:
    with pytest.raises(ConfigError, match="ADC 1 appears in more than one pair"):
        ChannelMap.from_config(LightConfig(tpc_adc_pairs=((0, 1), (1, 2))))


def test_default_status() -> None:
    status = default_channel_status(CMAP)
    assert status.dtype == np.int8
    assert (status[CMAP.active] == 0).all() and (status[~CMAP.active] == -1).all()


def _csv(rows: list[list[str]], tail: str = "\n") -> str:
    return "\n".join(",".join(r) for r in rows) + tail


def test_read_ints_floats_and_blank_trailing_lines(tmp_path: Path) -> None:
    expected = default_channel_status(CMAP).astype(np.int64)
    expected[2, 10] = 1
    expected[5, 40] = 2
    expected[7, 63] = 3
    rows = [
        [f"{float(v):.1f}" if adc % 2 else str(v) for v in row]
        for adc, row in enumerate(expected.tolist())
    ]
    path = tmp_path / "status.csv"
    path.write_text(_csv(rows, tail="\n\n  \n"))
    got = read_channel_status(path, 8, 64)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    assert "-1.0" in path.read_text()
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(
        _csv([[f" {v} " for v in row] for row in expected.tolist()]).replace("\n", "\r\n").encode()
    )
    np.testing.assert_array_equal(read_channel_status(crlf, 8, 64), expected)


def test_read_errors_name_file_row_and_expectation(tmp_path: Path) -> None:
    good = [["0"] * 64 for _ in range(8)]
    path = tmp_path / "bad.csv"

    path.write_text(_csv(good[:7]))
    with pytest.raises(ConfigError, match=r"bad\.csv: 7 rows \(expected 8 rows"):
        read_channel_status(path, 8, 64)

    rows = [r.copy() for r in good]
    rows[2] = rows[2][:63]
    path.write_text(_csv(rows))
    with pytest.raises(ConfigError, match=r"bad\.csv: row 3: 63 values \(expected 64\)"):
        read_channel_status(path, 8, 64)

    rows = [r.copy() for r in good]
    rows[4][10] = "dead"
    path.write_text(_csv(rows))
    with pytest.raises(ConfigError, match=r"row 5, column 11: 'dead' is not a number"):
        read_channel_status(path, 8, 64)

    rows = [r.copy() for r in good]
    rows[0][0] = ""
    path.write_text(_csv(rows))
    with pytest.raises(ConfigError, match=r"row 1, column 1: '' is not a number"):
        read_channel_status(path, 8, 64)

    for bad in ("8", "-2", "0.5"):  # 0..7 are codes (bits 1, 2, 4), -1 inactive
        rows = [r.copy() for r in good]
        rows[1][1] = bad
        path.write_text(_csv(rows))
        with pytest.raises(ConfigError, match=rf"row 2, column 2: '{bad}' \(expected one of"):
            read_channel_status(path, 8, 64)

    # a blank line inside the table is a short row, not tolerated
    path.write_text(_csv(good[:3]) + "\n" + _csv(good[3:]))
    with pytest.raises(ConfigError, match="9 rows"):
        read_channel_status(path, 8, 64)

    with pytest.raises(ConfigError, match="not found"):
        read_channel_status(tmp_path / "missing.csv", 8, 64)


def test_write_is_atomic_and_round_trips(tmp_path: Path) -> None:
    status = default_channel_status(CMAP)
    status[1, 5] = 3
    path = tmp_path / "out.csv"
    path.write_text("old content\n")
    write_channel_status(path, status)
    np.testing.assert_array_equal(read_channel_status(path, 8, 64), status)
    assert path.read_text().splitlines()[0].startswith("-1,-1,-1,-1,0,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left
    assert path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(ValueError, match="shape"):
        write_channel_status(path, status.reshape(-1))


def test_status_bits_known_noisy_combines_with_dead_and_baseline() -> None:
    from wavedqm.analysis.channels import has_status_bit

    codes = np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7])
    assert has_status_bit(codes, C.STATUS_KNOWN_DEAD).tolist() == [0, 0, 1, 0, 1, 0, 1, 0, 1]
    assert has_status_bit(codes, C.STATUS_KNOWN_BASELINE).tolist() == [0, 0, 0, 1, 1, 0, 0, 1, 1]
    assert has_status_bit(codes, C.STATUS_KNOWN_NOISY).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
