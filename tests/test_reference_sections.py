"""The reference parts of the non-light kinds: stored, listed, checked, replaced as a whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from wavedqm.cli import main
from wavedqm.exporters.reference_sections import (
    has_section,
    load_section,
    save_section,
    section_names,
    section_path,
    section_stamp,
)
from wavedqm.exporters.reference_store import (
    ReferenceError,
    active_reference_name,
    list_references,
    use_reference,
)
from wavedqm.processors.reference_cache import SectionCache
from wavedqm.processors.reference_create import files_of_format, source_files
from wavedqm.processors.reference_show import describe_reference


def _save(state: Path, name: str = "good", value: float = 1.0) -> Path:
    meta = {"created_at": 1.0, "sources": [{"file": "a.wfm"}], "summary": {"sets": 1}}
    return save_section(state, name, "s2", meta, {"x": np.arange(3.0) * value})


def test_a_part_round_trips_and_is_listed_and_usable(tmp_path: Path) -> None:
    path = _save(tmp_path)
    assert path == tmp_path / "references" / "s2" / "good.npz"
    assert not list(path.parent.glob("*.tmp*")), "written by temp file + rename"
    meta, arrays = load_section(tmp_path, "good", "s2")  # type: ignore[misc]
    assert meta["kind"] == "s2" and meta["name"] == "good" and meta["summary"] == {"sets": 1}
    np.testing.assert_array_equal(arrays["x"], [0.0, 1.0, 2.0])
    assert load_section(tmp_path, "good", "shots") is None  # no part of that kind
    assert has_section(tmp_path, "good", "s2") and not has_section(tmp_path, "good", "voxels")
    assert section_names(tmp_path) == {"s2": ["good"]}
    assert list_references(tmp_path) == ["good"]
    use_reference(tmp_path, "good")  # a reference without a light part can be used
    assert active_reference_name(tmp_path) == "good"
    shown = describe_reference(tmp_path, "good")
    assert shown["light"] is None and shown["parts"]["s2"]["summary"] == {"sets": 1}
    assert "format_version" not in shown["parts"]["s2"]


def test_bad_names_kinds_and_damaged_parts_are_specific_errors(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError, match="expected letters"):
        _save(tmp_path, name="../x")
    with pytest.raises(ReferenceError, match="expected one of"):
        section_path(tmp_path, "good", "photons")
    with pytest.raises(ReferenceError, match="not found"):
        use_reference(tmp_path, "missing")
    path = _save(tmp_path)
    path.write_bytes(b"not an npz")
    with pytest.raises(ReferenceError, match=r"good\.npz: cannot read the s2 reference"):
        load_section(tmp_path, "good", "s2")
    assert path.read_bytes() == b"not an npz", "a damaged part is never overwritten"
    # a part of another kind in the wrong folder
    save_section(tmp_path, "other", "shots", {}, {})
    (tmp_path / "references" / "shots" / "other.npz").rename(
        tmp_path / "references" / "s2" / "other.npz"
    )
    with pytest.raises(ReferenceError, match="kind 's2'"):
        load_section(tmp_path, "other", "s2")


def test_the_cache_reads_the_part_again_when_it_changes(tmp_path: Path) -> None:
    errors: list[tuple[str, str]] = []
    decoded: list[float] = []

    def decode(meta: dict, arrays: dict[str, np.ndarray]) -> float:
        decoded.append(float(arrays["x"][1]))
        return decoded[-1]

    cache = SectionCache(tmp_path, "", "s2", decode, lambda n, e: errors.append((n, e)))
    assert cache.get() is None  # no reference in use
    _save(tmp_path, value=2.0)
    use_reference(tmp_path, "good")
    assert cache.get() == 2.0 and cache.get() == 2.0
    assert decoded == [2.0], "decoded once while the file is unchanged"
    stamp = section_stamp(tmp_path, "good", "s2")
    _save(tmp_path, value=3.0)
    path = section_path(tmp_path, "good", "s2")
    if section_stamp(tmp_path, "good", "s2") == stamp:  # same size, same ns: force a change
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.get() == 3.0
    path.write_bytes(b"damaged")
    assert cache.get() is None and len(errors) == 1 and errors[0][0] == "good"
    assert cache.get() is None and len(errors) == 1, "reported once per version of the file"


def test_source_files_and_formats(tmp_path: Path, flow_file) -> None:
    flow, _ = flow_file(n_events=5, seed=3)
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "sub" / "a.FLOW.hdf5").write_bytes(flow.read_bytes())
    (run / "notes.txt").write_text("hello\n")
    (run / ".hidden").mkdir()
    (run / ".hidden" / "b.FLOW.hdf5").write_bytes(flow.read_bytes())
    files = source_files([run])
    assert files == [run / "notes.txt", run / "sub" / "a.FLOW.hdf5"]
    assert files_of_format(files, "flow-hdf5") == [run / "sub" / "a.FLOW.hdf5"]


def test_cli_create_replaces_the_reference_as_a_whole(
    tmp_path: Path, flow_file, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    flow, _ = flow_file(n_events=20, seed=4)
    _save(state)  # an s2 part of "good" from an earlier create
    assert main(["reference", "create", "good", str(flow), "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "reference good light: 1 files, 20 events" in out
    assert not has_section(state, "good", "s2"), "a part not made again is removed"
    assert main(["reference", "show", "good", "--json", "--state", str(state)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["light"]["events"] == 20 and shown["parts"] == {}
    text = tmp_path / "notes.txt"
    text.write_text("not data\n")
    assert main(["reference", "create", "bad", str(text), "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert "no part could be made from 1 files" in err and "expected good .FLOW.hdf5" in err
    assert main(["reference", "create", "bad", str(tmp_path / "nope"), "--state", str(state)]) == 2
    assert "is not a file or folder" in capsys.readouterr().err
    assert list_references(state) == ["good"]
