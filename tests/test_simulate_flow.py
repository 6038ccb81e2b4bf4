"""The simulator writes the ndlar_flow layout field by field, and exactly the faults it was given,
checked with plain numpy over the written file."""

from __future__ import annotations

import fnmatch
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from wavedqm import constants as C
from wavedqm.config import parse_channel_list
from wavedqm.formats.detect import FLOW_FORMAT
from wavedqm.formats.flow import inspect_flow
from wavedqm.simulate.flow import (
    ChannelFaults,
    parse_channel_pairs,
    publish_flow_file,
    run_file_name,
    simulate_run,
    write_flow_file,
)

FAULTS = ChannelFaults(
    dead=((0, 5), (3, 40)),
    clipped=((1, 20), (7, 63)),
    noisy=((2, 30),),
    baseline_off=((5, 60),),
    negative=((6, 10),),
    invalid=((4, 44),),
)
N = 40
ACTIVE = np.zeros((8, 64), dtype=bool)
ACTIVE[:, list(parse_channel_list(C.LIGHT_ACTIVE_CHANNELS, 64))] = True


@pytest.fixture(scope="module")
def faulty(flow_file):
    """A 40-event file with every kind of fault, and its per-waveform numbers."""
    path, truth = flow_file(n_events=N, n_samples=1000, seed=21, faults=FAULTS)
    with h5py.File(path, "r") as f:
        s = f["light/wvfm/data"].fields("samples")[:].astype(np.float64)
        events = f["light/events/data"][:]
    valid = events["wvfm_valid"] != 0
    ped = s[..., : C.PEDESTAL_SAMPLES]
    base = ped.mean(axis=-1)
    stats = {
        "samples": s,
        "valid": valid,
        "events": events,
        "base": base,
        "noise": ped.std(axis=-1),
        "max": (s - base[..., None]).max(axis=-1),
        "min": (s - base[..., None]).min(axis=-1),
        "clipped": (s >= C.LIGHT_CLIP_LEVEL_ADC16).any(axis=-1),
    }
    return path, truth, stats


def _channels(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(c)) for a, c in zip(*np.nonzero(mask), strict=True)}


def test_layout_matches_spec_field_by_field(flow_file) -> None:
    path, truth = flow_file(n_events=20, n_samples=200, seed=2, compression="gzip", chunk_rows=8)
    with h5py.File(path, "r") as f:
        ev = f["light/events/data"]
        assert ev.dtype == np.dtype(
            [
                ("id", "<u8"),
                ("event", "<i4"),
                ("sn", "<i4", (8,)),
                ("utime_ms", "<u8", (8,)),
                ("tai_ns", "<u8", (8,)),
                ("wvfm_valid", "u1", (8, 64)),
                ("trig_type", "u1"),
            ]
        )
        wv = f["light/wvfm/data"]
        assert wv.dtype == np.dtype([("samples", "<i2", (8, 64, 200))])
        assert wv.attrs["n_samples"] == 200
        assert f["light/events"].attrs["n_samples"] == 200
        for dset in (ev, wv):
            assert dset.shape == (20,) and dset.maxshape == (None,) and dset.chunks is not None
        assert wv.chunks == (8,)
        assert (wv.compression, wv.compression_opts, wv.shuffle) == ("gzip", 4, True)
        rows = ev[:]
        np.testing.assert_array_equal(rows["id"], np.arange(20))
        np.testing.assert_array_equal(rows["event"], np.arange(20))
        assert int(rows["trig_type"].sum()) == truth.n_beam == 10
        assert set(np.unique(rows["trig_type"])) <= {0, 1}
        assert np.all(np.diff(rows["utime_ms"][:, 0].astype(np.int64)) == 10)
        assert rows["utime_ms"][0, 0] / 1000 == pytest.approx(truth.time_start_s)
        assert np.all(rows["wvfm_valid"] == 1)
        assert len(set(rows["sn"][0])) == 8

        ref = f["light/events/ref/light/wvfm/ref"]
        assert ref.dtype == np.uint32 and ref.shape == (20, 2) and ref.maxshape == (None, 2)
        np.testing.assert_array_equal(ref[:], np.stack([np.arange(20)] * 2, axis=1))
        assert ref.attrs["dset0"] == "/light/events/data"
        assert ref.attrs["dset1"] == "/light/wvfm/data"
        for side, name in (
            ("ref_region0", "light/events/ref/light/wvfm/ref_region"),
            ("ref_region1", "light/wvfm/ref/light/events/ref_region"),
        ):
            assert ref.attrs[side] == "/" + name
            region = f[name]
            assert region.dtype == np.dtype([("start", "<i4"), ("stop", "<i4")])
            assert region.maxshape == (None,)
            assert region.attrs["ref"] == "/light/events/ref/light/wvfm/ref"
            np.testing.assert_array_equal(region["start"], np.arange(20))
            np.testing.assert_array_equal(region["stop"], np.arange(1, 21))


def test_charge_section_has_the_spec_fields(flow_file) -> None:
    path, truth = flow_file(n_events=6, n_samples=128, seed=3, with_charge=True)
    with h5py.File(path, "r") as f:
        ev = f["charge/events/data"][:]
        hits = f["charge/calib_prompt_hits/data"]
        assert ev.dtype.names == (
            "id", "nhit", "ADC", "ts_start", "ts_end", "n_ext_trigs", "unix_ts", "unix_ts_usec",
        )  # fmt: skip
        assert hits.dtype.names == (
            "id", "x", "y", "z", "t_drift", "ts_pps", "io_group", "io_channel", "chip_id",
            "channel_id", "Q_raw", "Q", "E", "is_disabled",
        )  # fmt: skip
        assert hits.dtype["is_disabled"] == np.bool_
        region = f["charge/events/ref/charge/calib_prompt_hits/ref_region"][:]
        ref = f["charge/events/ref/charge/calib_prompt_hits/ref"][:]
        assert len(ev) == truth.n_charge_events == 6
        assert len(hits) == truth.n_charge_hits == int(ev["nhit"].sum())
        for i in range(len(ev)):  # each event's region of the ref table names its hits
            sel = ref[region["start"][i] : region["stop"][i]]
            assert np.all(sel[:, 0] == i) and len(sel) == ev["nhit"][i]
        assert abs(int(ev["unix_ts"][0]) - truth.time_start_s) <= 1


def test_samples_are_stored_like_the_14_bit_adc(faulty) -> None:
    _, _, st = faulty
    s = st["samples"]
    assert np.all(s % C.ADC14_TO_ADC16 == 0)
    assert s.max() <= C.LIGHT_ADC16_MAX and s.min() >= -(C.ADC14_MAX + 1) * C.ADC14_TO_ADC16


def test_truth_baseline_and_noise_match_the_file(faulty) -> None:
    _, truth, st = faulty
    assert truth.baseline_adc16.shape == truth.noise_adc16.shape == (8, 64)
    valid = st["valid"]
    base = np.where(valid, st["base"], np.nan)
    noise = np.where(valid, st["noise"], np.nan)
    med_base = np.nanmedian(base, axis=0)
    med_noise = np.nanmedian(noise, axis=0)
    # the truth's realised medians are exactly what the file holds
    np.testing.assert_allclose(truth.pedestal_mean_median_adc16, med_base, rtol=1e-9)
    np.testing.assert_allclose(truth.pedestal_std_median_adc16, med_noise, rtol=1e-9)
    # the generating noise: median pedestal std within 2% on every channel, noisy one included
    assert np.all(np.abs(med_noise / truth.noise_adc16 - 1) < 0.02)
    # the generating baseline: within the statistical error of a 40-event median
    err = 3 * 1.26 * truth.noise_adc16 / np.sqrt(C.PEDESTAL_SAMPLES * N) + 2
    assert np.all(np.abs(med_base - truth.baseline_adc16) < err)
    healthy = ~FAULTS.mask("baseline_off") & ~FAULTS.mask("noisy")
    assert np.all(
        (truth.baseline_adc16[healthy] > -28800) & (truth.baseline_adc16[healthy] < -27200)
    )
    assert np.all((truth.noise_adc16[healthy] > 15) & (truth.noise_adc16[healthy] < 41))
    assert truth.n_events == N and truth.n_beam + truth.n_self == N
    d = truth.to_dict()
    assert d["faults"]["dead"] == [[0, 5], [3, 40]]
    assert len(d["noise_adc16"]) == 8 and len(d["noise_adc16"][0]) == 64


def test_dead_channels_and_only_they_never_pulse(faulty) -> None:
    _, _, st = faulty
    alive = (np.where(st["valid"], st["max"], 0) >= C.FLATLINE_THRESHOLD_ADC16).any(axis=0)
    assert _channels(ACTIVE & ~alive) == set(FAULTS.dead)
    assert not np.any(alive & ~ACTIVE), "inactive channels hold baseline + noise only"
    assert np.all(st["max"][:, ~ACTIVE] < C.FLATLINE_THRESHOLD_ADC16)
    assert np.all(st["max"][:, 0, 5] < C.FLATLINE_THRESHOLD_ADC16)
    # healthy active channels: a pulse of at least 1000 in most events
    healthy = ACTIVE & ~FAULTS.mask("dead") & ~FAULTS.mask("invalid")
    frac = (st["max"] >= 1000).mean(axis=0)
    assert np.all(frac[healthy] >= 0.6)


def test_clipped_channels_and_only_they_clip(faulty) -> None:
    _, _, st = faulty
    clipped_any = st["clipped"].any(axis=0)
    assert _channels(clipped_any) == set(FAULTS.clipped)
    frac = st["clipped"].mean(axis=0)
    for a, c in FAULTS.clipped:
        assert 0.1 <= frac[a, c] <= 0.6
        assert st["samples"][:, a, c].max() == C.LIGHT_ADC16_MAX


def test_negative_channels_and_only_they_undershoot(faulty) -> None:
    _, _, st = faulty
    below = st["min"] < -C.PTP_THRESHOLD_ADC16
    assert _channels(below.any(axis=0)) == set(FAULTS.negative), "noisy is not negative"
    for a, c in FAULTS.negative:
        assert 0.05 <= (st["min"][:, a, c] < -600).mean() <= 0.5


def test_baseline_off_noisy_and_invalid_channels(faulty) -> None:
    _, _, st = faulty
    lo, hi = C.BASELINE_RANGE_ADC16
    med = np.nanmedian(np.where(st["valid"], st["base"], np.nan), axis=0)
    assert _channels((med < lo) | (med > hi)) == set(FAULTS.baseline_off)
    assert -20500 < med[5, 60] < -19500
    noise = np.nanmedian(np.where(st["valid"], st["noise"], np.nan), axis=0)
    assert noise[2, 30] > 5 * np.median(noise[2, ACTIVE[2]])
    invalid = ~st["valid"]
    assert _channels(invalid.any(axis=0)) == set(FAULTS.invalid)
    assert 0.2 <= invalid[:, 4, 44].mean() <= 0.8
    assert np.all(st["samples"][invalid] == 0)


def test_same_seed_same_file_other_seed_other_events(tmp_path: Path) -> None:
    kw = {"n_events": 5, "n_samples": 128, "start_time_s": 1.7e9}
    paths = [tmp_path / f"{i}.h5" for i in range(4)]
    t0 = write_flow_file(paths[0], seed=1, **kw)
    write_flow_file(paths[1], seed=1, **kw)
    t2 = write_flow_file(paths[2], seed=2, **kw)
    t3 = write_flow_file(paths[3], seed=2, detector_seed=1, **kw)
    data = []
    for p in paths:
        with h5py.File(p, "r") as f:
            data.append(f["light/wvfm/data"].fields("samples")[:])
    np.testing.assert_array_equal(data[0], data[1])
    assert not np.array_equal(data[0], data[2])
    assert not np.allclose(t0.baseline_adc16, t2.baseline_adc16)
    np.testing.assert_array_equal(t0.baseline_adc16, t3.baseline_adc16)  # one detector
    np.testing.assert_array_equal(t0.noise_adc16, t3.noise_adc16)
    assert not np.array_equal(data[0], data[3])


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_samples"):
        write_flow_file(tmp_path / "x.h5", n_samples=50)
    with pytest.raises(ValueError, match="compression"):
        write_flow_file(tmp_path / "x.h5", compression="zstd")
    with pytest.raises(ValueError, match="beam_fraction"):
        write_flow_file(tmp_path / "x.h5", beam_fraction=1.5)
    with pytest.raises(ValueError, match=r"faults.dead: \(8, 1\)"):
        ChannelFaults(dead=((8, 1),))


def test_publish_never_shows_a_partial_file(tmp_path: Path) -> None:
    name = "run_p0001.FLOW.hdf5"
    final = tmp_path / name
    seen_tmp: list[str] = []
    checks: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            names = [p.name for p in tmp_path.iterdir()]
            seen_tmp.extend(n for n in names if n != name)
            if name in names:
                checks.append(inspect_flow(final).n_light_events)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        path, truth = publish_flow_file(tmp_path, name, n_events=60, n_samples=1000, seed=1)
    finally:
        time.sleep(0.05)
        done.set()
        watcher.join()
    assert path == final and truth.n_events == 60
    assert checks == [60], "the first sight of the final name is the complete file"
    assert seen_tmp, "the temporary file was seen while being written"
    assert not any(fnmatch.fnmatch(n, FLOW_FORMAT.patterns[0]) for n in seen_tmp)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    # a failed write leaves nothing behind
    with pytest.raises(ValueError):
        publish_flow_file(tmp_path, "bad.FLOW.hdf5", n_samples=10)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_simulate_run_names_seeds_and_stop(tmp_path: Path) -> None:
    out = tmp_path / "spool"
    written = simulate_run(
        out, files=3, events=4, interval_s=0.01, faults=FAULTS, seed=7, n_samples=128,
        start_time_s=1.7e9,
    )  # fmt: skip
    assert [p.name for p, _ in written] == [run_file_name(7, i) for i in range(3)]
    assert written[0][0].name == "mpd_run_sim_rctl_7_p0000.FLOW.hdf5"
    assert [t.seed for _, t in written] == [7, 8, 9]
    assert all(t.faults == FAULTS for _, t in written)
    np.testing.assert_array_equal(written[0][1].baseline_adc16, written[2][1].baseline_adc16)
    assert written[1][1].time_start_s > written[0][1].time_end_s
    assert sorted(p.name for p in out.iterdir()) == [p.name for p, _ in written]

    stop = threading.Event()
    stop.set()
    assert simulate_run(out, files=3, events=4, interval_s=0, seed=1, stop=stop) == []

    stop = threading.Event()
    started = time.monotonic()
    threading.Timer(0.5, stop.set).start()
    written = simulate_run(
        tmp_path / "s2", files=5, events=2, interval_s=30, seed=3, stop=stop, n_samples=128
    )
    assert len(written) == 1 and time.monotonic() - started < 10


def test_parse_channel_pairs() -> None:
    assert parse_channel_pairs("0:5,3:17") == ((0, 5), (3, 17))
    assert parse_channel_pairs(" 7:63 , ") == ((7, 63),)
    assert parse_channel_pairs("") == ()
    for bad, match in [
        ("0-5", "is not ADC:CHANNEL"),
        ("a:1", "is not ADC:CHANNEL"),
        ("8:1", "ADC 0..7"),
        ("0:64", "channel 0..63"),
    ]:
        with pytest.raises(ValueError, match=match) as exc:
            parse_channel_pairs(f"1:1,{bad}")
        assert repr(bad) in str(exc.value)
