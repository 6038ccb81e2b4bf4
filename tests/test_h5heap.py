"""Issue 11 finding 9, the last fuzz cases: a damaged global heap behind a variable-length
attribute is refused before HDF5 reads it (HDF5 would loop forever holding the GIL,
HDFGroup/hdf5#1707).

The damaged files are never read with h5py's attribute API in this process (the test would
hang); ``wavedqm process`` on the real fuzz case runs in a child process with a timeout."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import wavedqm.formats.h5heap as h5heap
from wavedqm.errors import InputFileError
from wavedqm.formats.h5heap import check_vlen_attribute

REPO = Path(__file__).resolve().parents[1]


def _file(path: Path, libver: str, n_numeric: int = 1) -> Path:
    with h5py.File(path, "w", libver=libver) as f:
        g = f.create_group("geometry_info")
        for i in range(n_numeric):
            g.attrs[f"a{i}"] = np.arange(3.0)
        g.attrs["drift_direction"] = "x"
        g.attrs["names"] = np.array(["ab", "cde"], dtype=h5py.string_dtype())
    return path


def _check(path: Path, name: str = "drift_direction") -> None:
    with h5py.File(path, "r") as f:
        check_vlen_attribute(f["geometry_info"], name, path)


def _walked(path: Path, monkeypatch) -> list[int]:
    seen: list[int] = []
    original = h5heap._walk_collection

    def spy(reader, addr, where, what):
        seen.append(addr)
        return original(reader, addr, where, what)

    monkeypatch.setattr(h5heap, "_walk_collection", spy)
    _check(path)
    return seen


def _damage(path: Path, out: Path, header: bytes) -> Path:
    """Copy of ``path`` with the first object header of its only global heap collection
    replaced by ``header`` (16 bytes: index, refs, reserved, size)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"GCOL")
    assert at > 0 and data.find(b"GCOL", at + 1) == -1
    data[at + 16 : at + 32] = header
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_a_good_attribute_passes_and_its_collection_is_walked(tmp_path, libver, monkeypatch):
    """Object header v1 (h5py's default) and v2 both parsed: the collection is found."""
    f = _file(tmp_path / "good.h5", libver)
    addrs = _walked(f, monkeypatch)
    assert len(addrs) == 1 and f.read_bytes()[addrs[0] : addrs[0] + 4] == b"GCOL"
    with h5py.File(f, "r") as h:
        assert h["geometry_info"].attrs["drift_direction"] == "x"
        check_vlen_attribute(h["geometry_info"], "names", f)  # an array of strings
        check_vlen_attribute(h["geometry_info"], "a0", f)  # not variable-length: nothing


@pytest.mark.parametrize("libver", ["earliest", "latest"])
@pytest.mark.parametrize(
    ("header", "says"),
    [
        (bytes(16), "object 0 at offset 16 declares 0 bytes"),  # zeroed, as the fuzz found
        (struct.pack("<HHIQ", 1, 1, 0, 2**64 - 8), f"declares {2**64 - 8} bytes"),  # wraps
    ],
    ids=["zeroed", "wrapping"],
)
def test_a_collection_hdf5_would_loop_on_is_refused(tmp_path, libver, header, says):
    f = _damage(_file(tmp_path / "good.h5", libver), tmp_path / "bad.h5", header)
    with pytest.raises(InputFileError) as err:
        _check(f)
    e = err.value
    assert e.reason == "read_error" and e.path == f
    assert "/geometry_info attribute drift_direction" in str(e) and says in str(e)
    assert "HDFGroup/hdf5#1707" in str(e)


def test_dense_attribute_storage_is_left_to_hdf5(tmp_path, monkeypatch):
    """20 attributes with libver latest go to a fractal heap this check does not parse."""
    f = _file(tmp_path / "dense.h5", "latest", n_numeric=20)
    assert _walked(f, monkeypatch) == []


def test_every_string_attribute_of_the_real_sample_file_passes(sample_flow_file, monkeypatch):
    walked = 0
    original = h5heap._walk_collection

    def spy(*args):
        nonlocal walked
        walked += 1
        return original(*args)

    monkeypatch.setattr(h5heap, "_walk_collection", spy)
    with h5py.File(sample_flow_file, "r") as f:
        objects = [f]
        f.visititems(lambda _name, obj: objects.append(obj))
        names = [(o, a) for o in objects for a in o.attrs]
        for obj, name in names:
            check_vlen_attribute(obj, name, sample_flow_file)
        values = {(o.name, a): o.attrs[a] for o, a in names}
    assert walked > 100  # the real file has hundreds of string attributes
    assert values[("/geometry_info", "drift_direction")] in ("x", "y", "z", b"x", b"y", b"z")


def test_the_real_fuzz_case_is_refused_in_well_under_a_second(tmp_path):
    """Fuzz case 69871 of seed 1 (stress/fuzz.py): ``wavedqm process`` used to spin forever
    inside HDF5; now it fails the file ``read_error`` and exits 1."""
    sys.path.insert(0, str(REPO))
    from stress.fuzz import make_seeds, mutate

    seeds = [p.read_bytes() for p in make_seeds("flow", tmp_path / "seeds")]
    case, seed = 69871, 1
    bad = tmp_path / "case69871.FLOW.hdf5"
    bad.write_bytes(mutate(seeds[case % len(seeds)], random.Random(seed * 1_000_003 + case)))
    cmd = [sys.executable, "-m", "wavedqm.cli", "process", str(bad), "--out",
           str(tmp_path / "out"), "--state", str(tmp_path / "state")]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "global heap collection" in run.stdout + run.stderr
    assert "read_error" in run.stdout + run.stderr
