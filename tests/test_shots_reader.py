"""The shot reader: CSV and NPZ shots, sidecars, and a failure reason for every bad file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from wavedqm.errors import InputFileError
from wavedqm.formats.detect import SHOT, detect
from wavedqm.formats.shots import inspect_shot, read_shot
from wavedqm.simulate.shots import write_shot_csv


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_nan_cells_and_a_sidecar(tmp_path: Path) -> None:
    p = _csv(tmp_path / "shot_0007.csv", "t,a,b\n0,1.5,\n1e-6,nan,2\n2e-6,-3,4e-1\n")
    (tmp_path / "shot_0007.meta.json").write_text(
        json.dumps({"shot_id": "0007", "control_vars": {"p_mTorr": 5.2, "v": 1200}})
    )
    before = p.stat().st_mtime_ns
    shot = read_shot(p)
    assert detect(p).name == SHOT
    assert shot.shot_id == "0007" and shot.control_vars == {"p_mTorr": 5.2, "v": 1200.0}
    assert shot.t.tolist() == [0.0, 1e-6, 2e-6]
    np.testing.assert_array_equal(shot.channels["a"], [1.5, np.nan, -3.0])
    np.testing.assert_array_equal(shot.channels["b"], [np.nan, 2.0, 0.4])
    assert shot.dt_s == pytest.approx(1e-6)
    assert p.stat().st_mtime_ns == before  # read-only


def test_without_sidecar_the_id_comes_from_the_name(tmp_path: Path) -> None:
    p = _csv(tmp_path / "shot_0012.csv", "t,x\n0,1\n1,2\n")
    shot = read_shot(p)
    assert (shot.shot_id, shot.control_vars, shot.sidecar) == ("0012", {}, None)


def test_quoted_header_and_bom_and_the_simulators_writer(tmp_path: Path) -> None:
    p = tmp_path / "shot_0001.csv"
    p.write_bytes('\ufeff"t","a"\n0,1\n1,2\n'.encode())
    assert list(read_shot(p).channels) == ["a"]
    q = tmp_path / "shot_0002.csv"
    x = np.array([1.0, np.nan, 3.0])
    write_shot_csv(q, np.array([0.0, 1.0, 2.0]), {"a": x})
    np.testing.assert_array_equal(read_shot(q).channels["a"], x)


def test_npz_shot(tmp_path: Path) -> None:
    p = tmp_path / "shot_0003.npz"
    np.savez(p, t=np.arange(4) * 1e-6, a=np.arange(4.0), b=np.ones(4, dtype=np.float32))
    shot = read_shot(p)
    assert detect(p).name == SHOT
    assert list(shot.channels) == ["a", "b"] and shot.channels["b"].dtype == np.float64
    info = inspect_shot(p)
    assert info["samples"] == 4 and info["channels"]["a"] == {"nan": 0, "min": 0.0, "max": 3.0}


BAD_CSV = {
    "no_time_column": "time,a\n0,1\n1,2\n",
    "non_numeric": "t,a\n0,1\n1,abc\n",
    "unequal_lengths": "t,a,b\n0,1,2\n1,2\n",
    "time_not_increasing": "t,a\n0,1\n2,2\n1,3\n",
    "empty": "",
    "no_data": "t\n0\n1\n",
    "wrong_layout": "t,a,a\n0,1,2\n1,2,3\n",
}


@pytest.mark.parametrize("reason", sorted(BAD_CSV))
def test_every_bad_csv_has_its_reason(tmp_path: Path, reason: str) -> None:
    p = _csv(tmp_path / "shot_0001.csv", BAD_CSV[reason])
    with pytest.raises(InputFileError) as err:
        read_shot(p)
    assert err.value.reason == reason
    assert str(p) in str(err.value)


def test_messages_say_where_and_what(tmp_path: Path) -> None:
    p = _csv(tmp_path / "shot_0001.csv", "t,a\n0,1\n1,abc\n")
    with pytest.raises(InputFileError, match=r"column 'a' line 3: not a number"):
        read_shot(p)
    p = _csv(tmp_path / "shot_0002.csv", "t,a\n0,1\n2,2\n1,3\n")
    with pytest.raises(InputFileError, match=r"t does not increase at sample 2"):
        read_shot(p)


def test_bad_sidecar_and_bad_npz(tmp_path: Path) -> None:
    p = _csv(tmp_path / "shot_0001.csv", "t,a\n0,1\n1,2\n")
    (tmp_path / "shot_0001.meta.json").write_text("{not json")
    with pytest.raises(InputFileError) as err:
        read_shot(p)
    assert err.value.reason == "bad_sidecar"
    (tmp_path / "shot_0001.meta.json").write_text('{"control_vars": {"v": "high"}}')
    with pytest.raises(InputFileError, match="not a number"):
        read_shot(p)
    q = tmp_path / "shot_0002.npz"
    q.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputFileError) as err:
        read_shot(q)
    assert err.value.reason == "not_npz"
    r = tmp_path / "shot_0003.npz"
    np.savez(r, t=np.arange(3.0), a=np.arange(4.0))
    with pytest.raises(InputFileError) as err:
        read_shot(r)
    assert err.value.reason == "unequal_lengths"


def test_large_csv_reads_every_sample(tmp_path: Path) -> None:
    n = 200_000
    t = np.arange(n) * 1e-8
    x = np.sin(np.arange(n) / 100.0)
    x[::1000] = np.nan
    p = tmp_path / "shot_0100.csv"
    write_shot_csv(p, t, {"a": x, "b": -x})
    shot = read_shot(p)
    assert shot.n_samples == n
    np.testing.assert_array_equal(shot.channels["a"], x)
    assert math.isclose(shot.dt_s, 1e-8, rel_tol=1e-9)
