"""write_wfm: round trips through the reader for every version × byte order × data format,
header fields at the spec's byte offsets (read here with struct, independently of the reader),
FastFrame pre/post charge and the last frame, and a rewrite of the real FastFrame sample that
must reproduce every expected value of it."""

from __future__ import annotations

import itertools
import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavedqm.formats.wfm import open_wfm, read_wfm_header
from wavedqm.formats.wfm_writer import format_code, write_wfm

VERSIONS = (":WFM#001", ":WFM#002", ":WFM#003")
BYTE_ORDERS = ("LE", "BE")
CODES = {
    0: np.int16,
    1: np.int32,
    2: np.uint32,
    3: np.uint64,
    4: np.float32,
    5: np.float64,
    6: np.uint8,
    7: np.int8,
}
# byte offsets from the spec (v3 as listed; v2: point density u4 instead of f8, 4 bytes less per
# dimension block; v1: no summary-frame field, 2 bytes less from byte 154 on)
SPEC = {
    ":WFM#003": {"vscale": 168, "voffset": 176, "format": 240, "dt": 488, "t0": 496,
                 "size": 504, "tt": 788, "frac": 796, "gmt": 804, "curve": 818, "end": 838},
    ":WFM#002": {"vscale": 168, "voffset": 176, "format": 240, "dt": 480, "t0": 488,
                 "size": 496, "tt": 772, "frac": 780, "gmt": 788, "curve": 802, "end": 822},
    ":WFM#001": {"vscale": 166, "voffset": 174, "format": 238, "dt": 478, "t0": 486,
                 "size": 494, "tt": 770, "frac": 778, "gmt": 786, "curve": 800, "end": 820},
}  # fmt: skip
COMBOS = list(itertools.product(VERSIONS, BYTE_ORDERS, sorted(CODES)))


def _values(dtype: Any, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Random samples covering the type's range (its extremes included)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        out = (rng.standard_normal(shape) * 1e3).astype(dt)
        out.flat[0] = np.finfo(dt).max
        out.flat[-1] = np.finfo(dt).min
        return out
    info = np.iinfo(dt)
    out = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    out.flat[0], out.flat[-1] = info.min, info.max
    return out


def _check_file(
    path: Path,
    raw: np.ndarray,
    *,
    version: str,
    byte_order: str,
    pre: int,
    post: int,
    params: dict[str, Any],
    gmt: np.ndarray,
    frac: np.ndarray,
    tt: np.ndarray,
) -> None:
    """Everything a written file must hold, through the reader and byte by byte."""
    frames, record = raw.shape
    e = "<" if byte_order == "LE" else ">"
    file_dt = raw.dtype.newbyteorder(e)
    bpp = raw.dtype.itemsize
    stride = (pre + record + post) * bpp
    off = SPEC[version]
    curve_offset = off["end"] + 54 * (frames - 1)
    size = curve_offset + frames * stride + 8
    data = path.read_bytes()
    assert len(data) == size

    def get(fmt: str, at: int) -> Any:
        return struct.unpack_from(e + fmt, data, at)[0]

    # the spec's offsets, read directly
    assert data[:2] == (b"\x0f\x0f" if byte_order == "LE" else b"\xf0\xf0")
    assert data[2:10] == version.encode()
    assert get("i", 11) == size - 15
    assert data[10] == len(str(size - 15))
    assert (data[15], get("i", 16), get("I", 72)) == (bpp, curve_offset, frames - 1)
    assert get("i", 78) == (1 if frames > 1 else 0)
    assert (get("i", 122), get("I", 114), get("I", 118)) == (2, 1, 1)
    assert get("I", 150) == (frames if frames > 1 else 0)
    assert get("i", off["format"]) == format_code(raw.dtype)
    assert get("d", off["vscale"]) == params["vscale"]
    assert get("d", off["voffset"]) == params["voffset"]
    assert (get("d", off["dt"]), get("d", off["t0"])) == (params["dt_s"], params["t0_s"])
    assert get("I", off["size"]) == record
    assert (get("d", off["tt"]), get("d", off["frac"]), get("i", off["gmt"])) == (
        tt[0],
        frac[0],
        gmt[0],
    )
    curve = [get("I", off["curve"] + 4 * k) for k in range(5)]
    assert curve == [0, pre * bpp, (pre + record) * bpp, stride, stride]
    for k in range(1, frames):  # FastFrame time-base records
        at = off["end"] + 24 * (k - 1)
        assert (get("d", at + 4), get("d", at + 12), get("i", at + 20)) == (tt[k], frac[k], gmt[k])
    block = np.frombuffer(data, file_dt, count=frames * (pre + record + post), offset=curve_offset)
    block = block.reshape(frames, -1)
    np.testing.assert_array_equal(block[:, pre : pre + record], raw)
    np.testing.assert_array_equal(block[:, :pre], np.repeat(raw[:, :1], pre, axis=1))
    np.testing.assert_array_equal(block[:, pre + record :], np.repeat(raw[:, -1:], post, axis=1))
    checksum = np.frombuffer(data, np.uint8, count=size - 8).sum(dtype=np.uint64)
    assert get("Q", size - 8) == int(checksum)

    # the reader
    with open_wfm(path) as w:
        h = w.header
        assert (h.version, h.byte_order, h.frames, h.record_length) == (
            version,
            byte_order,
            frames,
            record,
        )
        assert h.dtype == file_dt.str and h.bytes_per_point == bpp
        assert (h.precharge_pts, h.postcharge_pts) == (pre, post)
        assert (h.vscale, h.voffset, h.dt_s, h.t0_s) == (
            params["vscale"],
            params["voffset"],
            params["dt_s"],
            params["t0_s"],
        )
        assert (h.vunits, h.tunits, h.label) == ("V", "s", params.get("label", ""))
        assert h.set_type == (1 if frames > 1 else 0)
        assert not h.has_tekmeta_trailer and h.size_bytes == size
        assert w.raw.dtype == file_dt
        np.testing.assert_array_equal(w.raw, raw)
        np.testing.assert_array_equal(w.raw[-1], raw[-1])  # the last frame, explicitly
        np.testing.assert_array_equal(w.curve_block, block)
        np.testing.assert_array_equal(w.gmt_seconds, gmt)
        np.testing.assert_array_equal(w.frac_seconds, frac)
        np.testing.assert_array_equal(w.trigger_offsets, tt)
        assert w.verify_checksum()


PARAMS = {"dt_s": 2.5e-10, "t0_s": -1.25e-7, "vscale": 7.8125e-05, "voffset": -0.25}


@pytest.mark.parametrize(("version", "byte_order", "code"), COMBOS)
def test_round_trip_every_version_byte_order_and_format(
    tmp_path: Path, version: str, byte_order: str, code: int
) -> None:
    dtype = CODES[code]
    raw = _values(dtype, (4, 37), seed=code)
    gmt = np.array([1_700_000_000, 1_700_000_000, 1_700_000_001, 2**31 - 1])
    frac = np.array([0.0, 0.125, 0.999999, 0.5])
    tt = np.array([0.5, 0.25, 0.453125, 0.0])
    path = tmp_path / "rt.wfm"
    kwargs: dict[str, Any] = dict(
        PARAMS, version=version, byte_order=byte_order, precharge=5, postcharge=3
    )
    if code in (6, 7) and version != ":WFM#003":
        with pytest.raises(ValueError, match="only in :WFM#003"):
            write_wfm(path, raw, **kwargs)
        return
    assert format_code(dtype) == code
    out = write_wfm(
        path, raw, **kwargs, gmt_seconds=gmt, frac_seconds=frac, tt_offsets=tt, label="CH1"
    )
    assert out == path
    _check_file(
        path,
        raw,
        version=version,
        byte_order=byte_order,
        pre=5,
        post=3,
        params=dict(PARAMS, label="CH1"),
        gmt=gmt,
        frac=frac,
        tt=tt,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_single_record(tmp_path: Path, version: str) -> None:
    raw = np.arange(-50, 50, dtype=np.int16)
    path = write_wfm(tmp_path / "one.wfm", raw, **PARAMS, version=version, precharge=0,
                     postcharge=0, gmt_seconds=123, frac_seconds=0.5, tt_offsets=0.75)  # fmt: skip
    h = read_wfm_header(path)
    assert (h.frames, h.set_type, h.acquired_fast_frames) == (1, 0, 0)
    assert h.curve_offset == SPEC[version]["end"]
    assert (h.precharge_pts, h.postcharge_pts) == (0, 0)
    with open_wfm(path) as w:
        np.testing.assert_array_equal(w.raw, raw[None, :])
        assert w.raw.flags.c_contiguous  # no charge: plain rows
        assert w.timestamps_s.tolist() == [123.5]
        assert w.trigger_offsets.tolist() == [0.75]


def test_last_frame_of_a_large_fastframe_set(tmp_path: Path) -> None:
    """Frame k holds k everywhere: a reader that ignores pre/post charge or drops the last
    frame sees mixed values; this one must see exactly k in row k."""
    frames, record = 988, 500
    raw = np.repeat(np.arange(frames, dtype=np.int16)[:, None], record, axis=1)
    path = write_wfm(tmp_path / "ff.wfm", raw, **PARAMS, precharge=32, postcharge=32)
    with open_wfm(path) as w:
        assert w.raw.shape == (frames, record)
        assert (w.raw[-1] == frames - 1).all()
        assert (w.raw.min(axis=1) == np.arange(frames)).all()
        assert (w.raw.max(axis=1) == np.arange(frames)).all()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    version=st.sampled_from(VERSIONS),
    byte_order=st.sampled_from(BYTE_ORDERS),
    code=st.sampled_from(sorted(CODES)),
    frames=st.integers(1, 6),
    record=st.integers(1, 40),
    pre=st.integers(0, 40),
    post=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_any_shape(
    tmp_path: Path,
    version: str,
    byte_order: str,
    code: int,
    frames: int,
    record: int,
    pre: int,
    post: int,
    seed: int,
) -> None:
    if code in (6, 7):
        version = ":WFM#003"
    raw = _values(CODES[code], (frames, record), seed)
    rng = np.random.default_rng(seed)
    gmt = rng.integers(0, 2**31 - 1, frames)
    frac = rng.random(frames)
    tt = rng.random(frames)
    path = tmp_path / f"h_{seed}.wfm"
    write_wfm(path, raw, **PARAMS, version=version, byte_order=byte_order, precharge=pre,
              postcharge=post, gmt_seconds=gmt, frac_seconds=frac, tt_offsets=tt)  # fmt: skip
    _check_file(path, raw, version=version, byte_order=byte_order, pre=pre, post=post,
                params=PARAMS, gmt=gmt, frac=frac, tt=tt)  # fmt: skip
    path.unlink()


def test_big_endian_batches_are_native_for_kernels(tmp_path: Path) -> None:
    raw = _values(np.int16, (7, 64), seed=1)
    path = write_wfm(tmp_path / "be.wfm", raw, **PARAMS, byte_order="BE")
    with open_wfm(path) as w:
        assert w.raw.dtype.str == ">i2"
        parts = []
        for b in w.batches(3):  # a copy in a buffer reused by the next batch
            assert b.samples.dtype.isnative
            assert not np.shares_memory(b.samples, w.raw)
            parts.append(b.samples.copy())
        assert [len(p) for p in parts] == [3, 3, 1]
        np.testing.assert_array_equal(np.concatenate(parts), raw)
        as_stored = list(w.batches(3, native=False))
        assert as_stored[0].samples.dtype.str == ">i2"
        assert np.shares_memory(as_stored[0].samples, w.raw)


def test_rewrite_of_the_fastframe_sample_reproduces_its_expected_values(
    shared_dir: Path, tmp_path: Path
) -> None:
    src = shared_dir / "data" / "wfm" / "tek_sample_ff1.wfm"
    if not src.is_file():
        pytest.skip(f"sample file {src} is absent")
    e = json.loads((src.parent / "expected_values.json").read_text())[src.name]
    with open_wfm(src) as w:
        h = w.header
        path = write_wfm(
            tmp_path / "ff1_copy.wfm",
            w.raw,
            dt_s=h.dt_s,
            t0_s=h.t0_s,
            vscale=h.vscale,
            voffset=h.voffset,
            version=h.version,
            byte_order=h.byte_order,
            precharge=h.precharge_pts,
            postcharge=h.postcharge_pts,
            gmt_seconds=w.gmt_seconds,
            frac_seconds=w.frac_seconds,
            tt_offsets=w.trigger_offsets,
        )
        original_records = w.raw.copy()
    with open_wfm(path) as c:
        g = c.header
        got = {
            "size": g.size_bytes,
            "version": g.version,
            "byte_order": g.byte_order,
            "set_type": g.set_type,
            "frames": g.frames,
            "acquired_fast_frames": g.acquired_fast_frames,
            "record_length": g.record_length,
            "dtype": g.dtype,
            "bytes_per_point": g.bytes_per_point,
            "precharge_pts": g.precharge_pts,
            "postcharge_pts": g.postcharge_pts,
            "curve_offset": g.curve_offset,
            "vscale": g.vscale,
            "voffset": g.voffset,
            "vunits": g.vunits,
            "dt_s": g.dt_s,
            "t0_s": g.t0_s,
            "tunits": g.tunits,
            "raw_frame0_first5": c.raw[0, :5].tolist(),
            "raw_last_frame_first5": c.raw[-1, :5].tolist(),
            "volts_frame0_mean": c.volts(0).mean(),
            "volts_last_mean": c.volts(-1).mean(),
            "volts_all_sum": c.volts().sum(),
            "tt_offset_first3": c.trigger_offsets[:3].tolist(),
            "gmt_sec_first": int(c.gmt_seconds[0]),
            "gmt_sec_last": int(c.gmt_seconds[-1]),
            "frac_sec_first3": c.frac_seconds[:3].tolist(),
            "has_tekmeta_trailer": g.has_tekmeta_trailer,
        }
        assert set(got) == set(e)
        for key, value in e.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert got[key] == value, key
        np.testing.assert_array_equal(c.raw, original_records)
        assert c.verify_checksum()
    # the record bytes sit at the same offsets as in the original file
    a, b = src.read_bytes(), path.read_bytes()
    for k in range(5):
        start = 1054 + k * 2128 + 64
        assert a[start : start + 2000] == b[start : start + 2000]


def test_writing_988_frames_is_fast(tmp_path: Path) -> None:
    """~20 MB of int16 in well under a second (a per-sample Python loop would take many)."""
    raw = _values(np.int16, (988, 10_000), seed=7)
    t = time.perf_counter()
    path = write_wfm(tmp_path / "big.wfm", raw, **PARAMS, gmt_seconds=1_700_000_000,
                     frac_seconds=np.linspace(0, 0.9, 988))  # fmt: skip
    elapsed = time.perf_counter() - t
    assert elapsed < 3.0, f"{elapsed:.2f} s"
    with open_wfm(path) as w:
        np.testing.assert_array_equal(w.raw[-1], raw[-1])
        np.testing.assert_array_equal(w.raw[::97], raw[::97])
        assert w.verify_checksum()


@pytest.mark.parametrize(
    ("raw", "kwargs", "match"),
    [
        (np.zeros((2, 3, 4), np.int16), {}, "shape"),
        (np.zeros((2, 0), np.int16), {}, "shape"),
        (np.zeros((2, 4), np.int64), {}, "int64"),
        (np.zeros((2, 4), bool), {}, "bool"),
        (np.zeros((2, 4), np.complex64), {}, "complex64"),
        (np.zeros((2, 4), np.int16), {"version": "WFM#003"}, "version"),
        (np.zeros((2, 4), np.int16), {"byte_order": "little"}, "byte_order"),
        (np.zeros((2, 4), np.int16), {"label": "x" * 32}, "label"),
        (np.zeros((2, 4), np.int16), {"precharge": -1}, "precharge"),
        (np.zeros((2, 4), np.int16), {"gmt_seconds": [1, 2, 3]}, "gmt_seconds"),
        (np.zeros((2, 4), np.int16), {"gmt_seconds": 2**31}, "gmt_seconds"),
        (np.zeros((2, 4), np.int16), {"frac_seconds": np.zeros((2, 2))}, "frac_seconds"),
        (np.zeros((2, 4), np.int16), {"vunits": "V" * 20}, "units"),
    ],
)
def test_refuses_what_the_format_cannot_hold(
    tmp_path: Path, raw: np.ndarray, kwargs: dict[str, Any], match: str
) -> None:
    path = tmp_path / "bad.wfm"
    with pytest.raises(ValueError, match=match):
        write_wfm(path, raw, **dict(PARAMS, **kwargs))


def test_file_too_large_for_the_format_is_refused_before_writing(tmp_path: Path) -> None:
    # 2^31 bytes of samples: beyond the i4 bytes-to-EOF field (a zero-stride view, no memory)
    raw = np.lib.stride_tricks.as_strided(np.zeros(1, np.int16), (2**20, 2**10), (0, 0))
    path = tmp_path / "huge.wfm"
    with pytest.raises(ValueError, match="at most"):
        write_wfm(path, raw, **PARAMS)
    assert not path.exists()
