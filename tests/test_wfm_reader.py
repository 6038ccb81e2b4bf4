"""Tektronix ``.wfm`` reader on the real sample files (every value of expected_values.json),
the memory-mapped view it returns, and one specific error per kind of bad input.

Byte offsets used to patch files come from the spec (tektronix-wfm.md), written out here on
purpose rather than taken from the module under test."""

from __future__ import annotations

import json
import mmap
import struct
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from wavedqm.errors import InputFileError
from wavedqm.formats.wfm import WfmHeader, inspect_wfm, open_wfm, read_wfm_header

FF1 = "tek_sample_ff1.wfm"
ANALOG = [FF1, "tmdt_analog_waveform.wfm", "tmdt_golden_analog.wfm", "tmdt_data_test_waveform.wfm"]
DIGITAL = "tmdt_digital_waveform.wfm"
NPY = "tmdt_analog_data.npy"

HEADER_KEYS = {
    "size": "size_bytes",
    "version": "version",
    "byte_order": "byte_order",
    "set_type": "set_type",
    "frames": "frames",
    "acquired_fast_frames": "acquired_fast_frames",
    "record_length": "record_length",
    "dtype": "dtype",
    "bytes_per_point": "bytes_per_point",
    "precharge_pts": "precharge_pts",
    "postcharge_pts": "postcharge_pts",
    "curve_offset": "curve_offset",
    "vscale": "vscale",
    "voffset": "voffset",
    "vunits": "vunits",
    "dt_s": "dt_s",
    "t0_s": "t0_s",
    "tunits": "tunits",
    "has_tekmeta_trailer": "has_tekmeta_trailer",
}
"""expected_values.json key -> WfmHeader attribute."""
SAMPLE_KEYS = {
    "raw_frame0_first5",
    "raw_last_frame_first5",
    "volts_frame0_mean",
    "volts_last_mean",
    "volts_all_sum",
    "tt_offset_first3",
    "gmt_sec_first",
    "gmt_sec_last",
    "frac_sec_first3",
}
"""expected_values.json keys checked against the samples and per-frame timing."""

# ff1 layout (v3, little-endian, 5 frames × 1000 int16, 32 + 32 charge), from the spec
FF1_CURVE = 1054
FF1_STRIDE = 2128
FF1_CURVE_END = FF1_CURVE + 5 * FF1_STRIDE  # 11694, then the 8-byte checksum
FF1_SIZE = 11702


@pytest.fixture(scope="module")
def wfm_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "wfm"
    if not d.is_dir():
        pytest.skip(f"sample folder {d} is absent")
    return d


@pytest.fixture(scope="module")
def expected(wfm_dir: Path) -> dict[str, dict[str, Any]]:
    return json.loads((wfm_dir / "expected_values.json").read_text())


def _patched(
    src: Path,
    dst: Path,
    edits: list[tuple[int, str, Any]] = (),  # type: ignore[assignment]
    *,
    cut: int | None = None,
    append: bytes = b"",
) -> Path:
    """Copy ``src`` to ``dst`` with struct ``(offset, fmt, value)`` edits, cut, appended bytes."""
    data = bytearray(src.read_bytes())
    for offset, fmt, value in edits:
        if isinstance(value, bytes):
            data[offset : offset + len(value)] = value
        else:
            struct.pack_into(fmt, data, offset, value)
    if cut is not None:
        data = data[:cut]
    dst.write_bytes(bytes(data) + append)
    return dst


def _error(path: Path, reader: Any = read_wfm_header) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        reader(path)
    err = info.value
    assert str(path) in str(err), "the message names the file"
    return err


# --------------------------------------------------------------------------------------------
# the real sample files


def test_every_sample_file_and_expected_value_is_covered(
    wfm_dir: Path, expected: dict[str, dict[str, Any]]
) -> None:
    files = {p.name for p in wfm_dir.glob("*.wfm")}
    assert files == set(expected) == {*ANALOG, DIGITAL}
    for name, entry in expected.items():
        unknown = set(entry) - set(HEADER_KEYS) - SAMPLE_KEYS - {"note"}
        assert not unknown, f"{name}: expected values not checked by these tests: {unknown}"


@pytest.mark.parametrize("name", ANALOG)
def test_header_matches_expected_values(
    wfm_dir: Path, expected: dict[str, dict[str, Any]], name: str
) -> None:
    path = wfm_dir / name
    h = read_wfm_header(path)
    assert isinstance(h, WfmHeader)
    assert h.path == path
    e = expected[name]
    for key, attr in HEADER_KEYS.items():
        assert getattr(h, attr) == e[key], f"{name}: {attr}"
    assert h.size_bytes == path.stat().st_size
    assert h.record_type == 2 and h.storage_type == 0 and h.time_base == 0
    assert h.label == ""
    with open_wfm(path) as w:
        assert w.header == h


@pytest.mark.parametrize("name", ANALOG)
def test_samples_and_timing_match_expected_values(
    wfm_dir: Path, expected: dict[str, dict[str, Any]], name: str
) -> None:
    e = expected[name]
    with open_wfm(wfm_dir / name) as w:
        raw = w.raw
        assert raw.shape == (e["frames"], e["record_length"])
        assert raw.dtype.str == e["dtype"]
        assert raw[0, :5].tolist() == e["raw_frame0_first5"]
        assert raw[-1, :5].tolist() == e["raw_last_frame_first5"]
        v0 = w.volts(0)
        assert v0.dtype == np.float64 and v0.shape == (e["record_length"],)
        assert v0.mean() == pytest.approx(e["volts_frame0_mean"], rel=1e-12)
        assert w.volts(-1).mean() == pytest.approx(e["volts_last_mean"], rel=1e-12)
        assert w.volts().sum() == pytest.approx(e["volts_all_sum"], rel=1e-12)
        n = len(e["tt_offset_first3"])
        assert w.trigger_offsets[:n].tolist() == e["tt_offset_first3"]
        assert w.frac_seconds[:n].tolist() == e["frac_sec_first3"]
        assert int(w.gmt_seconds[0]) == e["gmt_sec_first"]
        assert int(w.gmt_seconds[-1]) == e["gmt_sec_last"]
        for arr in (w.trigger_offsets, w.frac_seconds, w.gmt_seconds, w.timestamps_s):
            assert arr.shape == (e["frames"],)
        np.testing.assert_array_equal(w.timestamps_s, w.gmt_seconds + w.frac_seconds)


def test_fastframe_frames_are_where_the_spec_puts_them(wfm_dir: Path) -> None:
    """Frame k starts at curve offset + k × (pre + record + post) points: an independent plain
    read of the file. The widely used buggy reading (N × record points in one run from the
    first data point) drops the last frame and shifts the others: it must not match."""
    path = wfm_dir / FF1
    flat = np.fromfile(path, "<i2", count=5 * 1064, offset=FF1_CURVE)
    reference = flat.reshape(5, 1064)[:, 32:1032]
    buggy = flat[32 : 32 + 4 * 1000].reshape(4, 1000)
    with open_wfm(path) as w:
        np.testing.assert_array_equal(w.raw, reference)
        np.testing.assert_array_equal(w.curve_block, flat.reshape(5, 1064))
        assert not np.array_equal(w.raw[1:4], buggy[1:4])
        assert w.raw.shape[0] == 5


def test_analog_waveform_equals_its_npy(wfm_dir: Path) -> None:
    truth = np.load(wfm_dir / NPY)
    with open_wfm(wfm_dir / "tmdt_analog_waveform.wfm") as w:
        assert w.raw.shape == (1, truth.size)
        assert w.raw.dtype == np.int16
        np.testing.assert_array_equal(w.raw[0], truth.reshape(-1))


def test_digital_record_is_refused_with_a_clear_reason(
    wfm_dir: Path, expected: dict[str, dict[str, Any]]
) -> None:
    path = wfm_dir / DIGITAL
    for reader in (read_wfm_header, open_wfm, inspect_wfm):
        err = _error(path, reader)
        assert err.reason == "unsupported"
        assert "digital" in str(err)
        assert "analog" in str(err)
    # what the file is, when asked without the support check
    h = read_wfm_header(path, check_supported=False)
    e = expected[DIGITAL]
    assert (h.version, h.frames, h.record_length) == (e["version"], e["frames"], e["record_length"])
    assert h.record_type == 6


@pytest.mark.parametrize("name", ANALOG)
def test_stored_checksums_verify(wfm_dir: Path, name: str) -> None:
    with open_wfm(wfm_dir / name) as w:
        assert w.verify_checksum()
        assert w.verify_checksum(chunk_bytes=999)


def test_flipped_sample_byte_fails_the_checksum(wfm_dir: Path, tmp_path: Path) -> None:
    src = wfm_dir / FF1
    byte = src.read_bytes()[FF1_CURVE + 4 * FF1_STRIDE + 100]
    path = _patched(src, tmp_path / "flip.wfm", [(FF1_CURVE + 4 * FF1_STRIDE + 100, "B", byte ^ 1)])
    with open_wfm(path) as w:
        assert not w.verify_checksum()


# --------------------------------------------------------------------------------------------
# the memory-mapped view


def test_raw_is_a_read_only_strided_view_of_the_mapping(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        raw = w.raw
        assert not raw.flags.owndata
        assert not raw.flags.writeable
        assert not raw.flags.c_contiguous  # rows skip the 32 + 32 charge points
        assert raw.strides == (FF1_STRIDE, 2)
        assert np.shares_memory(raw, w.curve_block)
        base: Any = raw
        while isinstance(base, np.ndarray):
            assert not base.flags.owndata
            base = base.base
        assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
        assert w.raw is raw  # the same view each time, nothing re-read
        with pytest.raises(ValueError):
            raw[0, 0] = 1


def test_close_unmaps_and_views_held_by_callers_stay_valid(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        held = w.raw[-1]
        mm = w._mm
        assert mm is not None
    assert w.closed
    for attr in ("raw", "curve_block"):
        with pytest.raises(ValueError, match="closed"):
            getattr(w, attr)
    with pytest.raises(ValueError, match="closed"):
        w.volts(0)
    assert held[:5].tolist() == [-23624, -23924, -23868, -23464, -23732]
    assert not mm.closed  # still in use by `held`
    del held
    with open_wfm(wfm_dir / FF1) as w2:
        mm2 = w2._mm
        assert mm2 is not None
    assert mm2.closed  # nothing held: unmapped on exit


@numba.njit(cache=False)
def _sum_2d(a: np.ndarray) -> float:
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j]
    return total


def test_numba_kernel_reads_the_view_directly(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        assert _sum_2d(w.raw) == float(w.raw.sum(dtype=np.int64))


def test_volts_converts_only_the_selection(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        h = w.header
        sel = w.volts(slice(1, 3))
        assert sel.shape == (2, 1000) and sel.dtype == np.float64
        np.testing.assert_array_equal(sel, w.raw[1:3] * h.vscale + h.voffset)
        np.testing.assert_array_equal(w.volts([0, 4]), w.volts()[[0, 4]])
        v = w.volts(4)
        v[:] = 0.0  # a fresh array: the file is untouched
        assert w.volts(4)[0] == pytest.approx(-23624 * 6.875e-05 + 1.7)


def test_time_axis(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        t = w.time_axis_s()
    assert t.shape == (1000,)
    assert t[0] == -1.6e-07
    np.testing.assert_allclose(np.diff(t), 3.2e-10, rtol=1e-9)
    assert t[-1] == pytest.approx(-1.6e-07 + 999 * 3.2e-10, rel=1e-12)


def test_batches_are_views_with_frame_metadata(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / FF1) as w:
        batches = list(w.batches(2))
        assert [b.first_event for b in batches] == [0, 2, 4]
        assert [b.n_events for b in batches] == [2, 2, 1]
        for b in batches:
            assert b.samples.shape == (b.n_events, 1000)
            assert np.shares_memory(b.samples, w.raw) and not b.samples.flags.owndata
            assert b.valid is None
            assert b.trig_type.dtype == np.uint8 and not b.trig_type.any()
            assert b.time_s.dtype == np.float64
        np.testing.assert_array_equal(np.concatenate([b.samples for b in batches]), w.raw)
        np.testing.assert_array_equal(np.concatenate([b.time_s for b in batches]), w.timestamps_s)
        assert batches[0].time_s[0] == pytest.approx(1537384245.46139239199, abs=1e-6)
        (whole,) = list(w.batches())  # default: 32 MiB of samples per batch
        assert whole.n_events == 5
        with pytest.raises(ValueError):
            next(w.batches(0))


def test_batches_of_a_file_without_absolute_time_give_nan(wfm_dir: Path) -> None:
    with open_wfm(wfm_dir / "tmdt_data_test_waveform.wfm") as w:
        (b,) = list(w.batches())
        assert np.isnan(b.time_s).all()
        assert w.timestamps_s.tolist() == [0.0]


@pytest.mark.parametrize("name", ANALOG)
def test_inspect_is_json_ready_and_matches(
    wfm_dir: Path, expected: dict[str, dict[str, Any]], name: str
) -> None:
    e = expected[name]
    info = inspect_wfm(wfm_dir / name)
    assert json.loads(json.dumps(info)) == info
    assert info["format"] == "tektronix-wfm"
    for key in ("version", "frames", "record_length", "dtype", "dt_s", "t0_s", "vscale"):
        assert info[key] == e[key]
    assert info["voffset"] == e["voffset"]
    assert info["byte_order"] == e["byte_order"]
    assert (info["precharge_pts"], info["postcharge_pts"]) == (
        e["precharge_pts"],
        e["postcharge_pts"],
    )
    assert info["set_type"] == e["set_type"]
    assert info["frame0_mean_v"] == pytest.approx(e["volts_frame0_mean"], rel=1e-12)
    assert info["last_frame_mean_v"] == pytest.approx(e["volts_last_mean"], rel=1e-12)
    n = e["frames"] * e["record_length"]
    assert info["mean_v"] == pytest.approx(e["volts_all_sum"] / n, rel=1e-12)
    if e["gmt_sec_first"] > 0:
        assert info["time_start_s"] == pytest.approx(
            e["gmt_sec_first"] + e["frac_sec_first3"][0], abs=1e-6
        )
        assert info["time_end_s"] > info["time_start_s"]
    else:
        assert info["time_start_s"] is None and info["time_end_s"] is None


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "cut",
    [
        1,  # inside the byte-order word
        9,  # inside the version string
        10,
        100,  # inside the static header
        837,  # one byte short of the v3 header
        900,  # inside the FastFrame records
        FF1_CURVE,  # no curve buffer at all
        FF1_CURVE + 2 * FF1_STRIDE + 7,  # inside frame 2
        FF1_CURVE_END - 1,  # last post-charge byte missing
        FF1_CURVE_END + 3,  # inside the checksum
        FF1_SIZE - 1,
    ],
)
def test_truncated_copies_are_refused(wfm_dir: Path, tmp_path: Path, cut: int) -> None:
    path = _patched(wfm_dir / FF1, tmp_path / "cut.wfm", cut=cut)
    for reader in (read_wfm_header, open_wfm):
        err = _error(path, reader)
        assert err.reason == "truncated", str(err)
        assert f"{cut} bytes long" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wfm"
    path.write_bytes(b"")
    err = _error(path)
    assert err.reason == "empty"
    assert "empty" in str(err)


@pytest.mark.parametrize(
    ("edits", "needle"),
    [
        ([(0, "<H", 0x1234)], "byte-order word at byte 0 is 0x1234"),
        ([(0, "<H", 0x0F0E)], "byte-order word"),
        ([(2, "", b":WFN#003")], "version string"),
        ([(2, "", b"ABCDEFGH")], "version string"),
    ],
)
def test_corrupted_signature_is_not_wfm(
    wfm_dir: Path, tmp_path: Path, edits: list[tuple[int, str, Any]], needle: str
) -> None:
    path = _patched(wfm_dir / FF1, tmp_path / "sig.wfm", edits)
    for reader in (read_wfm_header, open_wfm, inspect_wfm):
        err = _error(path, reader)
        assert err.reason == "not_wfm"
        assert needle in str(err)
        assert "expected" in str(err)


@pytest.mark.parametrize("content", [b"abc", b"just some text, not a scope file\n" * 40])
def test_other_files_are_not_wfm(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.wfm"
    path.write_bytes(content)
    assert _error(path).reason == "not_wfm"


def test_unknown_wfm_version_is_unsupported(wfm_dir: Path, tmp_path: Path) -> None:
    path = _patched(wfm_dir / FF1, tmp_path / "v4.wfm", [(2, "", b":WFM#004")])
    err = _error(path)
    assert err.reason == "unsupported"
    assert ":WFM#004" in str(err)


# (offset, struct format, value) edits of ff1 that make its sizes disagree, and a word
# that the message must hold
WRONG_LAYOUT = {
    "one frame more than the curve buffer holds": (
        [(72, "<I", 5), (16, "<i", 838 + 5 * 54)],
        "6 frames × 2128 bytes",
    ),
    "one frame more, curve buffer not moved": ([(72, "<I", 5)], "curve buffer offset"),
    "bytes-to-EOF off by two": ([(11, "<i", 11689)], "bytes-to-EOF"),
    "bytes-to-EOF negative": ([(11, "<i", -5)], "bytes-to-EOF"),
    "absurd frame count": ([(72, "<I", 0xFFFFFFFF)], "4294967296 frames"),
    "bytes per point not int16's": ([(15, "<B", 4)], "bytes per point"),
    "unknown data format code": ([(240, "<i", 9)], "data format code 9"),
    "record length 0": ([(826, "<I", 64)], "record length 0"),
    "record length over 2^31": (
        [(240, "<i", 7), (15, "<B", 1), (826, "<I", 0xFFFFFF00), (830, "<I", 0xFFFFFFFF)],
        "record length",
    ),
    "offsets out of order": ([(822, "<I", 3000)], "curve offsets"),
    "odd byte offsets for int16": ([(822, "<I", 63)], "multiples"),
    "curve buffer inside the frame records": ([(16, "<i", 838)], "curve buffer offset"),
    "unknown set type": ([(78, "<i", 7)], "set type 7"),
}


@pytest.mark.parametrize("case", sorted(WRONG_LAYOUT))
def test_inconsistent_headers_are_wrong_layout(wfm_dir: Path, tmp_path: Path, case: str) -> None:
    edits, needle = WRONG_LAYOUT[case]
    path = _patched(wfm_dir / FF1, tmp_path / "bad.wfm", edits)
    for reader in (read_wfm_header, open_wfm):
        err = _error(path, reader)
        assert err.reason == "wrong_layout", str(err)
        assert needle in str(err)
        assert "expected" in str(err)


@pytest.mark.parametrize(
    ("edits", "needle"),
    [
        ([(122, "<i", 5)], "record type 5"),
        ([(244, "<i", 1)], "min/max"),
        ([(768, "<i", 1)], "spectral"),
        ([(118, "<I", 2)], "explicit dimensions"),
    ],
)
def test_other_unsupported_records(
    wfm_dir: Path, tmp_path: Path, edits: list[tuple[int, str, Any]], needle: str
) -> None:
    path = _patched(wfm_dir / FF1, tmp_path / "odd.wfm", edits)
    err = _error(path, open_wfm)
    assert err.reason == "unsupported"
    assert needle in str(err)
    read_wfm_header(path, check_supported=False)  # well-formed otherwise


def test_trailing_bytes_must_be_a_tekmeta_trailer(wfm_dir: Path, tmp_path: Path) -> None:
    garbage = _patched(wfm_dir / FF1, tmp_path / "garbage.wfm", append=b"\x00junk after it")
    err = _error(garbage)
    assert err.reason == "wrong_layout"
    assert f"{FF1_SIZE} bytes after them" not in str(err)
    assert "14 bytes after them" in str(err)
    meta = _patched(wfm_dir / FF1, tmp_path / "meta.wfm", append=b"tekmeta!\x01\x00\x00\x00xyz")
    h = read_wfm_header(meta)
    assert h.has_tekmeta_trailer
    assert h.size_bytes == FF1_SIZE + 15
    with open_wfm(meta) as w:
        assert w.raw[-1, :5].tolist() == [-23624, -23924, -23868, -23464, -23732]


def _assert_fails_fast(path: Path, reason: str) -> InputFileError:
    tracemalloc.start()
    t = time.perf_counter()
    try:
        for reader in (read_wfm_header, open_wfm):
            err = _error(path, reader)
            assert err.reason == reason, str(err)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes allocated while refusing the file"
    assert time.perf_counter() - t < 1.0
    return err


def test_header_claiming_1e12_samples_fails_fast(wfm_dir: Path, tmp_path: Path) -> None:
    frames, record = 10**6, 10**6  # 10^12 int16 samples, in a 11702-byte file
    stop = (32 + record + 32) * 2
    edits = [
        (72, "<I", frames - 1),
        (16, "<i", 838 + 54 * (frames - 1)),
        (826, "<I", 64 + 2 * record),
        (830, "<I", stop),
        (834, "<I", stop),
    ]
    path = _patched(wfm_dir / FF1, tmp_path / "huge.wfm", edits)
    err = _assert_fails_fast(path, "wrong_layout")
    assert "1000000 frames" in str(err)


def test_consistent_header_larger_than_the_file_fails_fast(wfm_dir: Path, tmp_path: Path) -> None:
    """N and bytes-to-EOF agree (half a million frames, ~1.1 GB) but the file is 11702 bytes:
    refused as truncated before the 27 MB of frame records or any sample is touched."""
    frames = 500_000
    curve_offset = 838 + 54 * (frames - 1)
    bytes_to_eof = curve_offset + frames * FF1_STRIDE + 8 - 15
    edits = [(72, "<I", frames - 1), (16, "<i", curve_offset), (11, "<i", bytes_to_eof)]
    path = _patched(wfm_dir / FF1, tmp_path / "claims.wfm", edits)
    err = _assert_fails_fast(path, "truncated")
    assert "500000 frame(s) of 1000 samples" in str(err)
