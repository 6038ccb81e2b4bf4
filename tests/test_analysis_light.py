"""Per-file light analysis: streamed accumulation == whole-array reference, statuses, JSON."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from wavedqm import constants as C
from wavedqm.analysis import light as light_module
from wavedqm.analysis.channels import ChannelMap, default_channel_status
from wavedqm.analysis.fractions import GRANULARITIES
from wavedqm.analysis.light import (
    SELECTIONS,
    LightAccumulator,
    LightResult,
    baseline_status,
    channel_status,
)
from wavedqm.analysis.stats import Spread
from wavedqm.config import LightConfig
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import LightFeatures, light_features

import reference as ref

CFG = LightConfig()
CMAP = ChannelMap.from_config(CFG)
N_EVENTS = 37
N_SAMPLES = 120

DEAD = (2, 10)
DEAD_AND_HIGH = (2, 11)  # no pulse and baseline above the range
KNOWN_DEAD = (3, 20)
NOT_MONITORED = (6, 8)  # active in the map, -1 in the known status, no pulse
OUT_OF_RANGE = (4, 30)
WIDE_KNOWN = (5, 40)  # baseline spread, known baseline problem
WIDE = (6, 45)
CLIPPED = (0, 4)
NEGATIVE = (1, 52)
MISSING = (7, 63)  # never a valid waveform


def make_file(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic light data ``(samples, valid, trig_type, time_s)`` with known problems."""
    rng = np.random.default_rng(seed)
    shape = (N_EVENTS, 8, 64, N_SAMPLES)
    base = rng.uniform(-28500, -27500, size=(1, 8, 64, 1)) * np.ones((N_EVENTS, 1, 1, 1))
    base[:, OUT_OF_RANGE[0], OUT_OF_RANGE[1]] = -31000
    base[:, DEAD_AND_HIGH[0], DEAD_AND_HIGH[1]] = -25000
    for cell in (WIDE_KNOWN, WIDE):
        base[:, cell[0], cell[1], 0] += rng.uniform(-1500, 1500, size=N_EVENTS)
    wave = base + rng.normal(0, 5, size=shape)
    # pulses: a guaranteed one per channel plus random ones
    amp = rng.uniform(0, 3000, size=shape[:3]) * (rng.random(shape[:3]) < 0.3)
    ev, adc, ch = np.indices(shape[:3])
    amp[ev == (adc * 64 + ch) % N_EVENTS] = 1000.0
    for cell in (DEAD, DEAD_AND_HIGH, KNOWN_DEAD, NOT_MONITORED):
        amp[:, cell[0], cell[1]] = 0.0
    wave[..., 70:80] += amp[..., None]
    samples = np.rint(wave).astype(np.int16)
    samples[:, ~CMAP.active] = 0
    samples[3, CLIPPED[0], CLIPPED[1], 90:95] = C.LIGHT_CLIP_LEVEL_ADC16
    samples[9, CLIPPED[0], CLIPPED[1], 100] = C.LIGHT_CLIP_LEVEL_ADC16
    samples[5, NEGATIVE[0], NEGATIVE[1], 60] -= 800
    valid = np.ones(shape[:3], bool)
    valid[0, 7, :] = False
    valid[:, MISSING[0], MISSING[1]] = False
    trig = rng.integers(0, 2, size=N_EVENTS).astype(np.uint8)
    trig[4] = 2  # some other trigger: only in "all"
    times = 1.7e9 + np.sort(rng.uniform(0, 60, size=N_EVENTS))
    return samples, valid, trig, times


def known_status() -> np.ndarray:
    known = default_channel_status(CMAP)
    known[KNOWN_DEAD] = C.STATUS_KNOWN_DEAD
    known[WIDE_KNOWN] = C.STATUS_KNOWN_BASELINE
    known[NOT_MONITORED] = C.STATUS_INACTIVE
    return known


def stream(
    samples: np.ndarray,
    valid: np.ndarray | None,
    trig: np.ndarray,
    times: np.ndarray,
    cuts: list[int],
) -> LightAccumulator:
    """Feed the accumulator in uneven batches through a reused sample buffer and reused
    feature buffers, as the daemon does."""
    acc = LightAccumulator(CFG, CMAP)
    buf = np.empty((max(cuts), *samples.shape[1:]), np.int16)
    feats: LightFeatures | None = None
    start = 0
    for size in cuts:
        stop = start + size
        view = buf[:size]
        view[...] = samples[start:stop]
        batch = WaveformBatch(
            samples=view,
            valid=None if valid is None else valid[start:stop].astype(np.uint8),
            trig_type=trig[start:stop],
            time_s=times[start:stop],
            first_event=start,
        )
        feats = light_features(
            view, CFG.pedestal_samples, CFG.ptp_threshold_adc16, CFG.clip_level_adc16, out=feats
        )
        acc.add(batch, feats)
        buf[...] = -1  # the reader reuses its buffer: nothing may be kept from it
        start = stop
    assert start == samples.shape[0]
    return acc


CUTS = [1, 5, 5, 5, 13, 8]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return make_file()


@pytest.fixture(scope="module")
def result(data: tuple[np.ndarray, ...]) -> LightResult:
    samples, valid, trig, times = data
    return stream(samples, valid, trig, times, CUTS).result(known_status())


def _selection_masks(trig: np.ndarray) -> dict[str, np.ndarray]:
    return {"all": np.ones(trig.shape, bool), "beam": trig == 1, "self": trig == 0}


def test_streamed_result_equals_whole_array_reference(
    data: tuple[np.ndarray, ...], result: LightResult
) -> None:
    samples, valid, trig, times = data
    r = ref.features(samples, CFG.pedestal_samples, CFG.ptp_threshold_adc16, CFG.clip_level_adc16)
    baseline = np.where(valid, r.baseline.astype(np.float32), np.nan)
    noise = np.where(valid, r.noise, np.nan)
    over = (r.max_above_baseline > CFG.ptp_threshold_adc16) & valid
    alive_events = (r.max_above_baseline >= CFG.flatline_threshold_adc16) & valid
    flags = {"clipped": r.clipped & valid, "negative": r.negative & valid}
    cl = CFG.confidence_level

    assert result.n_events == N_EVENTS
    assert result.events_by_trigger == {
        "beam": int((trig == 1).sum()),
        "self": int((trig == 0).sum()),
    }
    assert result.time_start_s == times.min() and result.time_end_s == times.max()
    for sel, mask in _selection_masks(trig).items():
        s = result.selections[sel]
        assert s.n_events == mask.sum()
        med, lo, hi = ref.nan_median_errors(baseline[mask], cl)
        np.testing.assert_array_equal(s.baseline.median, med)
        np.testing.assert_allclose(s.baseline.err_low, lo, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(s.baseline.err_high, hi, rtol=1e-12, atol=1e-9)
        med, lo, hi = ref.nan_median_errors(noise[mask], cl)
        np.testing.assert_allclose(s.noise.median, med, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(s.noise.err_low, lo, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.noise.err_high, hi, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(s.alive_events, alive_events[mask].sum(axis=0))
        for flag in ("clipped", "negative"):
            for g in GRANULARITIES:
                groups = CMAP.groups(g) if g in ("epcb", "tpc") else (None, 0)
                k, n = ref.group_counts(g, flags[flag][mask], over[mask], CMAP.active, *groups)
                f = result.fractions[flag][sel][g]
                np.testing.assert_array_equal(f.k, k, err_msg=f"{flag}/{sel}/{g}")
                np.testing.assert_array_equal(f.n, n, err_msg=f"{flag}/{sel}/{g}")
    np.testing.assert_array_equal(result.alive, alive_events.any(axis=0))
    assert result.baseline is result.selections["all"].baseline
    assert result.channel_map is CMAP


def test_small_storage_and_median_blocks_give_the_same_result(
    data: tuple[np.ndarray, ...], result: LightResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-event values kept in blocks of 4 events (batches cross blocks) and medians taken
    a few channels at a time: exactly the numbers of the whole-array result."""
    samples, valid, trig, times = data
    monkeypatch.setattr(light_module, "STORE_BLOCK_ROWS", 4)
    monkeypatch.setattr(light_module, "MEDIAN_BLOCK_VALUES", 3 * N_EVENTS)  # 3 channels
    small = stream(samples, valid, trig, times, CUTS).result(known_status())
    a = json.dumps(small.to_dict(), sort_keys=True)
    assert a == json.dumps(result.to_dict(), sort_keys=True)


def test_problems_found_and_known_ones_kept_apart(result: LightResult) -> None:
    assert result.dead_new == sorted([DEAD, DEAD_AND_HIGH, MISSING])
    assert result.known_dead == [KNOWN_DEAD]
    expected_status = np.zeros((8, 64), np.int8)
    expected_status[OUT_OF_RANGE] = C.BASELINE_OUT_OF_RANGE
    expected_status[DEAD_AND_HIGH] = C.BASELINE_OUT_OF_RANGE
    expected_status[WIDE_KNOWN] = C.BASELINE_SPREAD
    expected_status[WIDE] = C.BASELINE_SPREAD
    np.testing.assert_array_equal(result.baseline_status, expected_status)
    assert result.baseline_flagged == [
        (*DEAD_AND_HIGH, -1),
        (*OUT_OF_RANGE, -1),
        (*WIDE, 1),
    ]
    assert result.clipped_channels == [CLIPPED]
    assert result.negative_channels == [NEGATIVE]
    assert not result.monitored[NOT_MONITORED] and result.active[NOT_MONITORED]
    assert not result.monitored[0, 0]
    clipped_channel = result.fractions["clipped"]["all"]["channel"]
    assert clipped_channel.k[CLIPPED] == 2 and clipped_channel.k.sum() == 2
    assert int(result.fractions["clipped"]["all"]["total"].k) == 2
    assert result.fractions["negative"]["all"]["channel"].k[NEGATIVE] == 1


def test_channel_status_merges_new_problems_into_known(result: LightResult) -> None:
    status = channel_status(result)
    expected = known_status()
    expected[DEAD] = C.STATUS_KNOWN_DEAD
    expected[MISSING] = C.STATUS_KNOWN_DEAD
    expected[DEAD_AND_HIGH] = C.STATUS_KNOWN_BOTH
    expected[OUT_OF_RANGE] = C.STATUS_KNOWN_BASELINE
    expected[WIDE] = C.STATUS_KNOWN_BASELINE
    assert status.dtype == np.int8
    np.testing.assert_array_equal(status, expected)


def test_to_dict_is_json_ready(result: LightResult) -> None:
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    for key in (
        "n_events",
        "events_by_trigger",
        "time_start_s",
        "time_end_s",
        "noise_adc16",
        "baseline_adc16",
        "noise_err_adc16",
        "baseline_err_adc16",
        "selections",
        "dead_channels",
        "known_dead_channels",
        "baseline_status",
        "baseline_flagged",
        "clipped_channels",
        "negative_channels",
        "fractions",
    ):
        assert key in d, key
    assert d["n_events"] == N_EVENTS
    assert d["noise_adc16"][MISSING[0]][MISSING[1]] is None
    assert d["baseline_adc16"][0][4] == pytest.approx(float(result.baseline.median[0, 4]))
    assert len(d["baseline_err_adc16"]) == 2 and len(d["baseline_err_adc16"][1]) == 8
    assert d["dead_channels"] == [list(c) for c in sorted([DEAD, DEAD_AND_HIGH, MISSING])]
    assert d["known_dead_channels"] == [list(KNOWN_DEAD)]
    assert d["baseline_flagged"][-1] == [*WIDE, 1]
    assert d["clipped_channels"] == [list(CLIPPED)]
    assert set(d["selections"]) == set(SELECTIONS)
    assert d["selections"]["beam"]["n_events"] == result.selections["beam"].n_events
    total = d["fractions"]["clipped"]["all"]["total"]
    assert (total["k"], total["n"]) == (2, N_EVENTS)
    assert 0 < total["lower"] < total["fraction"] < total["upper"] < 1
    assert len(d["fractions"]["negative"]["self"]["epcb"]["k"]) == CMAP.n_epcb
    assert len(d["fractions"]["negative"]["beam"]["tpc"]["n"]) == CMAP.n_tpc


def test_all_valid_batches_without_mask(data: tuple[np.ndarray, ...]) -> None:
    samples, _, trig, times = data
    acc = stream(samples[:20], None, trig[:20], times[:20], [20])
    res = acc.result(default_channel_status(CMAP))
    r = ref.features(samples[:20], CFG.pedestal_samples, CFG.ptp_threshold_adc16, 32760)
    med, _, _ = ref.nan_median_errors(r.baseline.astype(np.float32), CFG.confidence_level)
    np.testing.assert_array_equal(res.baseline.median, med)
    assert not np.isnan(res.noise.median).any()
    assert acc.n_events == 20


def test_all_true_valid_mask_equals_no_mask(data: tuple[np.ndarray, ...]) -> None:
    samples, _, trig, times = data
    with_mask = stream(samples, np.ones(samples.shape[:3], bool), trig, times, CUTS)
    without = stream(samples, None, trig, times, CUTS)
    a = with_mask.result(known_status()).to_dict()
    b = without.result(known_status()).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_time_range_ignores_missing_and_infinite_times(data: tuple[np.ndarray, ...]) -> None:
    samples, valid, trig, _ = data
    times = 1.7e9 + np.arange(N_EVENTS, dtype=np.float64)
    times[:5] = np.nan  # the whole first batches have no time
    times[7] = np.inf
    times[-1] = -np.inf
    times[-2] = np.nan
    res = stream(samples, valid, trig, times, CUTS).result(known_status())
    assert res.time_start_s == 1.7e9 + 5
    assert res.time_end_s == 1.7e9 + N_EVENTS - 3
    no_time = stream(samples, valid, trig, np.full(N_EVENTS, np.nan), CUTS)
    assert no_time.result(known_status()).time_start_s is None


def test_shift_against_previous_files(result: LightResult) -> None:
    prev = result.baseline
    same = baseline_status(result.baseline, CFG, prev)
    mon = result.monitored
    np.testing.assert_array_equal(same[mon], result.baseline_status[mon])  # no shift vs itself
    assert (same[~CMAP.active] == C.BASELINE_OUT_OF_RANGE).all()  # zeros: masked in results
    assert (result.baseline_status[~mon] == C.BASELINE_OK).all()
    moved = Spread(prev.median.copy(), prev.err_low, prev.err_high)
    moved.median[0, 5] += 10 * (prev.err_low[0, 5] + prev.err_high[0, 5]) + 50
    moved.median[WIDE] += 50  # wide channel: 50 ADC16 is far below 3σ
    samples, valid, trig, times = make_file()
    res = stream(samples, valid, trig, times, CUTS).result(known_status(), previous=moved)
    assert res.baseline_status[0, 5] == C.BASELINE_SHIFT
    assert res.baseline_status[WIDE] == C.BASELINE_SPREAD
    assert (*(0, 5), C.BASELINE_SHIFT) in res.baseline_flagged


def test_baseline_status_codes_by_hand() -> None:
    nan = np.nan
    cur = Spread(
        median=np.array([-28000, -31000, -28000, -28000, -25000, nan, -28000, -30000, -28000.0]),
        err_low=np.array([10, 10, 500, 10, 600, nan, 50, 10, 450.0]),
        err_high=np.array([10, 10, 500, 10, 600, nan, 1, 10, 450.0]),
    )
    no_prev = baseline_status(cur, CFG)
    assert no_prev.tolist() == [0, -1, 1, 0, -1, 0, 0, 0, 0]  # range inclusive, 900 not over
    prev = Spread(
        median=np.array([-28000, -28000, -26000, -28100, -28000, -28000, -28100, -30000, nan]),
        err_low=np.array([10, 10, 10, 10, 10, 10, 1, 10, 10.0]),
        err_high=np.array([10, 10, 10, 10, 10, 10, 1, 10, 10.0]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = baseline_status(cur, CFG, prev)
    # 2: went down by 2000 > 3 * hypot(500, 10) -> spread and shift = 3
    # 3: went up by 100 > 3 * hypot(10, 10) -> shift
    # 6: went up by 100 < 3 * hypot(current err_low 50, previous err_high 1): the errors that
    #    face each other, not the small ones on the far sides
    assert status.tolist() == [0, -1, 3, 2, -1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="previous"):
        baseline_status(cur, CFG, Spread(np.zeros(2), np.zeros(2), np.zeros(2)))


def test_empty_file_result_is_well_defined() -> None:
    acc = LightAccumulator(CFG, CMAP)
    empty = WaveformBatch(
        np.zeros((0, 8, 64, 100), np.int16),
        None,
        np.zeros(0, np.uint8),
        np.zeros(0),
        0,
    )
    acc.add(empty, LightFeatures.empty((0, 8, 64)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = acc.result(default_channel_status(CMAP))
        d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert res.n_events == 0 and res.time_start_s is None and d["time_end_s"] is None
    assert np.isnan(res.baseline.median).all()
    assert (res.baseline_status == 0).all()
    assert len(res.dead_new) == 8 * 48  # nothing seen alive
    total = res.fractions["negative"]["all"]["total"]
    assert (int(total.k), int(total.n), float(total.lower), float(total.upper)) == (0, 0, 0, 1)
    assert d["noise_adc16"][0][0] is None


def test_refuses_mismatched_input() -> None:
    acc = LightAccumulator(CFG, CMAP)
    batch = WaveformBatch(
        np.zeros((2, 8, 64, 60), np.int16), None, np.zeros(2, np.uint8), np.zeros(2), 0
    )
    with pytest.raises(ValueError, match="do not match the batch"):
        acc.add(batch, LightFeatures.empty((3, 8, 64)))
    with pytest.raises(ValueError, match="known_status"):
        acc.result(np.zeros((8, 63), np.int8))
    with pytest.raises(ValueError, match="does not match the config"):
        LightAccumulator(LightConfig(n_adcs=4), CMAP)
