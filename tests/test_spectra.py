"""Power spectra: kernel normalisation by hand (sines, impulses, constants), the 2.0 V
conversion, float64 reference agreement, and the per-file accumulator (quantiles, ROI sums,
memory bound, event picking, inactive and missing channels)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.spectra import (
    SpectraAccumulator,
    even_picks,
    roi_masks,
    roi_sums,
)
from wavedqm.analysis.stats import nan_quantiles
from wavedqm.config import LightConfig
from wavedqm.formats.batch import WaveformBatch
from wavedqm.formats.flow import FlowLightReader
from wavedqm.kernels import spectra as kspectra
from wavedqm.kernels.spectra import frequencies_mhz, power_factor, power_spectra, warm_up
from wavedqm.simulate.flow import ChannelFaults

S = 1000
V = 2.0 / (8191 * 4)
"""One ADC16 count in volts (2.0 V range)."""
NORM = S / 2 + 1
CMAP = ChannelMap.from_config(LightConfig())
ACTIVE = CMAP.active


def reference_power(samples: np.ndarray) -> np.ndarray:
    """The spec, literally, in float64: 2 |rfft(volts) / (n/2 + 1)|²."""
    n = samples.shape[-1]
    volts = samples.astype(np.float64) * 2.0 / (8191 * 4)
    return 2 * np.abs(np.fft.rfft(volts, axis=-1) / (n / 2 + 1)) ** 2


def one_waveform(values: np.ndarray) -> np.ndarray:
    """(S,) -> int16 (1, 1, 1, S)."""
    return np.asarray(values).astype(np.int16).reshape(1, 1, 1, -1)


# --- frequency axis and conversion --------------------------------------------------------------


def test_frequency_axis_0_to_31_25_mhz_in_501_bins() -> None:
    freq = frequencies_mhz(S, C.LIGHT_SAMPLE_PERIOD_US)
    assert freq.shape == (501,)
    assert freq[0] == 0.0
    assert freq[-1] == pytest.approx(31.25, abs=1e-12)
    np.testing.assert_allclose(np.diff(freq), 0.0625, atol=1e-12)  # 62.5 MHz / 1000


def test_one_count_is_2v_over_32764_not_the_1v_slip() -> None:
    # a constant of 1 ADC16 count: X0 = S·v, power = 2 (S·v / (S/2+1))²
    power = power_spectra(one_waveform(np.ones(S)), 2.0, 8191 * 4)[0, 0, 0]
    v = 2.0 / (8191 * 4)
    assert power[0] == pytest.approx(2 * (S * v / NORM) ** 2, rel=1e-6)
    slipped = 2 * (S * (1.0 / (8191 * 4)) / NORM) ** 2
    assert power[0] == pytest.approx(4 * slipped, rel=1e-6)
    np.testing.assert_array_equal(power[1:], 0.0)
    # the defaults are the 2x2 constants
    assert power_factor(S, C.LIGHT_ADC_RANGE_V, C.LIGHT_ADC16_MAX) == pytest.approx(
        2 * v**2 / NORM**2, rel=1e-15
    )
    np.testing.assert_array_equal(power_spectra(one_waveform(np.ones(S))), power[None, None, None])


def test_baseline_stays_in_the_dc_bin() -> None:
    c = -28000
    power = power_spectra(one_waveform(np.full(S, c)))[0, 0, 0]
    assert power[0] == pytest.approx(2 * (c * V * S / NORM) ** 2, rel=1e-6)  # ≈ 23 V²
    assert 22 < power[0] < 24
    np.testing.assert_array_equal(power[1:], 0.0)


# --- sines and impulses, by hand --------------------------------------------------------------


def test_cosine_at_quarter_rate_exact_integers() -> None:
    # A·cos(2π·250·t/S) sampled: A, 0, -A, 0, ... exactly; bin 250 = 15.625 MHz
    a = 8000
    wf = np.tile([a, 0, -a, 0], S // 4)
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    expected = 2 * (a * V * (S / 2) / NORM) ** 2  # |X_k| = A·S/2 for a bin-centred sine
    assert power[250] == pytest.approx(expected, rel=1e-6)
    assert frequencies_mhz(S)[250] == pytest.approx(15.625)
    others = np.delete(power, 250)
    assert others.max() <= 1e-10 * expected


def test_cosine_on_a_baseline_only_adds_the_dc_bin() -> None:
    a, c = 8000, -20000
    wf = np.tile([a, 0, -a, 0], S // 4) + c
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    assert power[250] == pytest.approx(2 * (a * V * (S / 2) / NORM) ** 2, rel=1e-6)
    assert power[0] == pytest.approx(2 * (c * V * S / NORM) ** 2, rel=1e-6)
    assert np.delete(power, [0, 250]).max() <= 1e-10 * power[250]


def test_nyquist_alternating_samples() -> None:
    # ±A alternating: X_{S/2} = A·S (the Nyquist bin is not split in two)
    a = 3000
    wf = np.tile([a, -a], S // 2)
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    assert power[S // 2] == pytest.approx(2 * (a * V * S / NORM) ** 2, rel=1e-6)
    assert power[: S // 2].max() <= 1e-10 * power[S // 2]


@pytest.mark.parametrize("position", [0, 1, 377, S - 1])
def test_impulse_gives_a_flat_spectrum(position: int) -> None:
    h = 12000
    wf = np.zeros(S)
    wf[position] = h
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    np.testing.assert_allclose(power, 2 * (h * V / NORM) ** 2, rtol=1e-5)


def test_impulse_on_a_baseline() -> None:
    h, c = 5000, -28000
    wf = np.full(S, c)
    wf[123] += h
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    np.testing.assert_allclose(power[1:], 2 * (h * V / NORM) ** 2, rtol=1e-5)
    assert power[0] == pytest.approx(2 * ((c * S + h) * V / NORM) ** 2, rel=1e-6)


@pytest.mark.parametrize("k", [16, 100, 160, 307, 480])
def test_sine_of_amplitude_a_volts_peaks_at_its_bin(k: int) -> None:
    # A volts = 0.5 V: a sine at bin k (k·62.5 kHz), rounded to ADC16 counts
    amplitude_v = 0.5
    t = np.arange(S)
    counts = np.round(amplitude_v / V * np.sin(2 * np.pi * k * t / S))
    power = power_spectra(one_waveform(counts))[0, 0, 0]
    expected = 2 * (amplitude_v * (S / 2) / NORM) ** 2  # ≈ 0.498 V²
    assert int(np.argmax(power)) == k
    assert frequencies_mhz(S)[k] == pytest.approx(k * 0.0625)
    # rounding to counts changes the amplitude by < 1e-4 relative
    assert power[k] == pytest.approx(expected, rel=1e-4)
    assert np.delete(power, k).max() < 1e-7 * expected  # rounding noise only


def test_odd_length_uses_true_division_normalisation() -> None:
    n = 999
    wf = np.zeros(n)
    wf[0] = 1000
    power = power_spectra(one_waveform(wf))[0, 0, 0]
    assert power.shape == (500,)
    np.testing.assert_allclose(power, 2 * (1000 * V / (n / 2 + 1)) ** 2, rtol=1e-5)


# --- agreement with the float64 reference -------------------------------------------------------


def test_matches_float64_reference_on_realistic_noise() -> None:
    rng = np.random.default_rng(3)
    samples = (-28000 + rng.normal(0, 4, size=(3, 2, 8, S))).round().astype(np.int16)
    samples[1, 1, 3, 300:350] += 9000
    power = power_spectra(samples)
    ref = reference_power(samples)
    assert power.dtype == np.float32 and power.shape == (3, 2, 8, 501)
    # float32 rounding is relative to the waveform's largest AC component, not to the
    # baseline (removed before the transform): within 1e-4 of the noise level for noise-only
    # waveforms, within 2e-6 of the largest bin for the one with a pulse
    err = np.abs(power[..., 1:] - ref[..., 1:])
    noise_level = np.median(ref[..., 1:], axis=-1, keepdims=True)
    pulse = np.zeros(err.shape, bool)
    pulse[1, 1, 3] = True
    assert (err / noise_level)[~pulse].max() < 1e-4
    assert err[1, 1, 3].max() < 2e-6 * ref[1, 1, 3, 1:].max()
    np.testing.assert_allclose(power[..., 0], ref[..., 0], rtol=1e-6)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    shape = (
        draw(st.integers(0, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        draw(st.integers(2, 70)),
    )
    samples = draw(hnp.arrays(np.int16, shape, elements=st.integers(-32768, 32767)))
    n_wf = shape[1] * shape[2]
    channels = draw(
        st.none() | st.lists(st.integers(0, n_wf - 1), min_size=0, max_size=5).map(np.array)
    )
    events = None
    if shape[0]:
        events = draw(st.none() | st.lists(st.integers(0, shape[0] - 1), max_size=4).map(np.array))
    return samples, channels, events


@settings(max_examples=120, deadline=None)
@given(cases())
def test_any_selection_matches_reference(
    case: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
) -> None:
    samples, channels, events = case
    if channels is not None:
        channels = channels.astype(np.int64)
    if events is not None:
        events = events.astype(np.int64)
    power = power_spectra(samples, channels=channels, events=events)
    ref = reference_power(samples)
    if events is not None:
        ref = ref[events]
    if channels is not None:
        n_wf = samples.shape[1] * samples.shape[2]
        ref = ref.reshape(ref.shape[0], n_wf, ref.shape[-1])[:, channels]
    assert power.shape == ref.shape
    scale = ref.max(axis=-1, keepdims=True) if ref.size else 1.0
    assert np.all(np.abs(power - ref) <= 1e-5 * ref + 1e-6 * scale + 1e-30)


def test_channel_mask_equals_index_list_and_keeps_order() -> None:
    rng = np.random.default_rng(5)
    samples = rng.integers(-300, 300, size=(4, 8, 64, 64)).astype(np.int16)
    by_mask = power_spectra(samples, channels=ACTIVE)
    assert by_mask.shape == (4, 384, 33)
    by_index = power_spectra(samples, channels=np.flatnonzero(ACTIVE))
    np.testing.assert_array_equal(by_mask, by_index)
    full = power_spectra(samples)
    np.testing.assert_array_equal(by_mask, full[:, ACTIVE])
    picked = power_spectra(samples, channels=np.array([70, 5]), events=np.array([2, 2, 0]))
    np.testing.assert_array_equal(picked[:, 0], full[[2, 2, 0], 1, 6])
    np.testing.assert_array_equal(picked[:, 1], full[[2, 2, 0], 0, 5])
    by_event_mask = power_spectra(samples, events=np.array([True, False, True, False]))
    np.testing.assert_array_equal(by_event_mask, full[[0, 2]])


def test_blocks_workers_out_and_layouts_give_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(6)
    samples = rng.integers(-29000, -27000, size=(7, 2, 5, 100)).astype(np.int16)
    expected = power_spectra(samples)
    monkeypatch.setattr(kspectra, "BLOCK_BYTES", 2 * 5 * 100 * 4 * 3)  # 3 events per block
    np.testing.assert_array_equal(power_spectra(samples), expected)
    np.testing.assert_array_equal(power_spectra(samples, workers=2), expected)
    out = np.full((7, 2, 5, 51), -1.0, np.float32)
    assert power_spectra(samples, out=out) is out
    np.testing.assert_array_equal(out, expected)
    readonly = samples.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(power_spectra(readonly), expected)
    fortran = np.asfortranarray(samples)
    np.testing.assert_array_equal(power_spectra(fortran), expected)


def test_out_of_a_longer_store_and_bad_arguments() -> None:
    samples = np.zeros((2, 1, 3, 10), np.int16)
    store = np.zeros((5, 3, 6), np.float32)
    power_spectra(samples, channels=np.arange(3), out=store[1:3])
    with pytest.raises(ValueError, match="int16"):
        power_spectra(samples.astype(np.int32))
    with pytest.raises(ValueError, match="out"):
        power_spectra(samples, out=np.zeros((2, 1, 3, 5), np.float32))
    with pytest.raises(ValueError, match="out"):
        power_spectra(samples, out=np.zeros((2, 1, 3, 6), np.float64))
    with pytest.raises(ValueError, match="channels"):
        power_spectra(samples, channels=np.array([3]))
    with pytest.raises(ValueError, match="channels"):
        power_spectra(samples, channels=np.ones((3, 1), bool))
    with pytest.raises(ValueError, match="events"):
        power_spectra(samples, events=np.array([-1]))
    with pytest.raises(ValueError, match="adc_range_v"):
        power_spectra(samples, 0.0)
    empty = power_spectra(samples, events=np.array([], np.int64))
    assert empty.shape == (0, 1, 3, 6)


def test_warm_up_runs() -> None:
    from wavedqm.kernels import spectra as kernel

    warm_up()
    # writeable and read-only samples are two numba types: both compiled
    layouts = {sig[0].mutable for sig in kernel._gather.signatures}
    assert layouts == {True, False}
    assert kernel._power.signatures


# --- regions of interest -----------------------------------------------------------------------


def test_roi_masks_hold_9_bins_and_keep_neighbours_apart() -> None:
    freq = frequencies_mhz(S)
    masks = roi_masks(freq)
    assert masks.shape == (len(C.SPECTRA_ROI_CENTRES_MHZ), 501)
    # ± 0.25 MHz = ± 4 bins of 62.5 kHz, both ends included, where the centre is on a bin
    on_bin = [c for c in C.SPECTRA_ROI_CENTRES_MHZ if abs(c / 0.0625 - round(c / 0.0625)) < 1e-9]
    for c in on_bin:
        row = masks[list(C.SPECTRA_ROI_CENTRES_MHZ).index(c)]
        k = round(c / 0.0625)
        np.testing.assert_array_equal(np.flatnonzero(row), np.arange(k - 4, k + 5))
    assert masks.sum(axis=1).min() >= 8
    assert not masks[:, 0].any()  # DC is in no region
    assert masks.sum(axis=0).max() == 1  # no bin in two regions
    # 1.8 MHz = bin 28.8: bins 25..32 (1.5625..2.0 MHz)
    np.testing.assert_array_equal(np.flatnonzero(masks[1]), np.arange(25, 33))


def test_roi_sums_on_a_hand_made_spectrum() -> None:
    freq = frequencies_mhz(S)
    power = np.zeros((2, 501))
    power[0, 160] = 3.0  # 10 MHz
    power[0, 164] = 1.0  # 10.25 MHz: edge of the 10 MHz region
    power[0, 165] = 100.0  # 10.3125 MHz: outside
    power[0, 0] = 50.0  # DC: in no region
    power[1] = 1.0
    sums = roi_sums(freq, power)
    i10 = C.SPECTRA_ROI_CENTRES_MHZ.index(10.0)
    assert sums.shape == (2, 11)
    assert sums[0, i10] == 4.0
    assert np.delete(sums[0], i10).sum() == 0.0
    np.testing.assert_array_equal(sums[1], roi_masks(freq).sum(axis=1))
    power[1, 480] = np.nan  # 30 MHz region
    assert np.isnan(roi_sums(freq, power)[1, -1])
    # a region above the Nyquist frequency has no bin: NaN
    short = roi_sums(frequencies_mhz(100), np.ones(51), (10.0, 40.0), 0.5)
    assert short[0] == 1.0  # 625 kHz bins: only 10.0 is within ± 0.5 MHz
    assert np.isnan(short[1])
    with pytest.raises(ValueError, match="bins"):
        roi_sums(freq, np.ones(500))


# --- accumulator -------------------------------------------------------------------------------


def make_batch(
    samples: np.ndarray,
    first_event: int = 0,
    valid: np.ndarray | None = None,
    trig: np.ndarray | None = None,
) -> WaveformBatch:
    n = samples.shape[0]
    return WaveformBatch(
        samples=samples,
        valid=valid,
        trig_type=np.zeros(n, np.uint8) if trig is None else trig,
        time_s=np.full(n, 1.7e9),
        first_event=first_event,
    )


def stream(
    acc: SpectraAccumulator, samples: np.ndarray, size: int, valid: np.ndarray | None = None
) -> None:
    for i in range(0, samples.shape[0], size):
        acc.add(
            make_batch(samples[i : i + size], i, None if valid is None else valid[i : i + size])
        )


@pytest.mark.parametrize("m", [0, 1, 2, 7, 64])
def test_spectra_quantiles_match_numpy_in_smallest_blocks(
    m: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quantiles the accumulator takes (stats.nan_quantiles on (events, channels, bins)),
    one channel per sorted block, against np.nanquantile."""
    rng = np.random.default_rng(m)
    values = rng.exponential(size=(m, 13, 9)).astype(np.float32)
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 4] = np.nan  # a channel without data
    qs = (0.16, 0.5, 0.84, 0.0, 1.0)
    monkeypatch.setattr("wavedqm.analysis.stats._BLOCK_BYTES", 1)  # 1 channel/block
    got = nan_quantiles(values, qs)
    for g in got:
        assert g.shape == (13, 9)
        assert np.isnan(g[4]).all()
    if m:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanquantile(values.astype(np.float64), qs, axis=0)
        np.testing.assert_allclose(np.array(got), ref, rtol=1e-12, equal_nan=True)
    else:
        assert all(np.isnan(g).all() for g in got)


def test_median_and_quantiles_match_numpy_over_events() -> None:
    rng = np.random.default_rng(7)
    n_samples, n_ev = 64, 23
    samples = (-28000 + rng.normal(0, 30, size=(n_ev, 8, 64, n_samples))).astype(np.int16)
    valid = rng.random((n_ev, 8, 64)) > 0.1
    valid[:, 2, 10] = False  # an active channel without any valid waveform
    acc = SpectraAccumulator(8, 64, n_samples, 0.016, 100, ACTIVE)
    stream(acc, samples, 5, valid)
    res = acc.result()
    assert res.n_events == n_ev
    np.testing.assert_array_equal(res.event_indices, np.arange(n_ev))

    ref = reference_power(samples)
    ref[~valid] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN channel
        q16, q50, q84 = np.nanquantile(ref, (0.16, 0.5, 0.84), axis=0)
    has = ACTIVE & valid.any(axis=0)
    for got, want in ((res.p16, q16), (res.median, q50), (res.p84, q84)):
        assert got.shape == (8, 64, 33)
        np.testing.assert_allclose(got[has], want[has], rtol=2e-5)
        assert np.isnan(got[~ACTIVE]).all()
        assert np.isnan(got[2, 10]).all()
    np.testing.assert_array_equal(res.n_waveforms, np.where(ACTIVE, valid.sum(axis=0), 0))
    assert np.all((res.p16 <= res.median) | np.isnan(res.median))
    assert np.all((res.median <= res.p84) | np.isnan(res.median))


def test_memory_bound_first_come() -> None:
    rng = np.random.default_rng(8)
    samples = rng.integers(-100, 100, size=(12, 8, 64, 32)).astype(np.int16)
    acc = SpectraAccumulator(8, 64, 32, 0.016, 5, ACTIVE)
    assert acc.nbytes == 5 * 384 * 17 * 4
    kept = [acc.add(make_batch(samples[i : i + 3], i)) for i in range(0, 12, 3)]
    assert kept == [3, 2, 0, 0]
    assert acc.full and acc.n_events == 5
    assert acc._power.shape[0] == 5  # never more than max_events stored
    res = acc.result()
    np.testing.assert_array_equal(res.event_indices, np.arange(5))
    ref = reference_power(samples[:5])[:, ACTIVE]
    np.testing.assert_allclose(
        res.median[ACTIVE], np.median(ref, axis=0), rtol=1e-5, atol=1e-6 * ref.max()
    )


def test_even_spread_with_expected_events_and_selection_mask() -> None:
    np.testing.assert_array_equal(even_picks(20, 5), [0, 5, 10, 14, 19])
    np.testing.assert_array_equal(even_picks(3, 10), [0, 1, 2])
    assert even_picks(0, 5).size == 0
    samples = np.zeros((20, 8, 64, 16), np.int16)
    for i in range(20):
        samples[i, :, :, 0] = i  # an impulse of i counts marks the event
    acc = SpectraAccumulator(8, 64, 16, 0.016, 5, ACTIVE, expected_events=20)
    for i in range(0, 20, 6):
        acc.add(make_batch(samples[i : i + 6], i))
    res = acc.result()
    np.testing.assert_array_equal(res.event_indices, [0, 5, 10, 14, 19])
    # the median of the flat spectra 2 (i v / (S/2+1))² over the picked events is event 10's
    assert res.median[0, 4, 3] == pytest.approx(2 * (10 * V / 9) ** 2, rel=1e-6)

    acc = SpectraAccumulator(8, 64, 16, 0.016, 5, ACTIVE, expected_events=20)
    for i in range(0, 20, 6):
        part = samples[i : i + 6]
        acc.add(make_batch(part, i), selected_event_mask=(np.arange(i, i + len(part)) % 2 == 0))
    np.testing.assert_array_equal(acc.result().event_indices, [0, 10, 14])
    with pytest.raises(ValueError, match="selected_event_mask"):
        acc.add(make_batch(samples[:2]), selected_event_mask=np.ones(3, bool))


def test_sine_in_one_channel_lands_in_its_roi_and_adc_mean() -> None:
    # 0.2 V at 10 MHz (bin 160) on every event of channel (3, 20), white noise elsewhere
    rng = np.random.default_rng(9)
    t = np.arange(S)
    sine = np.round(0.2 / V * np.sin(2 * np.pi * 160 * t / S)).astype(np.int16)
    samples = (-28000 + rng.normal(0, 2, size=(6, 8, 64, S))).astype(np.int16)
    samples[:, 3, 20] = -28000 + sine
    acc = SpectraAccumulator(8, 64, S, 0.016, 64, ACTIVE)
    stream(acc, samples, 4)
    res = acc.result()
    i10 = C.SPECTRA_ROI_CENTRES_MHZ.index(10.0)
    expected = 2 * (0.2 * (S / 2) / NORM) ** 2
    assert res.roi_power[3, 20, i10] == pytest.approx(expected, rel=1e-3)
    assert int(np.argmax(res.median[3, 20, 1:])) + 1 == 160
    # other regions of that channel, and the 10 MHz region of the others: noise only
    assert np.delete(res.roi_power[3, 20], i10).max() < 1e-6 * expected
    others = res.roi_power[3, ACTIVE[3], i10]
    assert np.sort(others)[-2] < 1e-6 * expected
    # ADC mean: one channel of the ADC's 48 carries the sine
    assert res.roi_power_adc[3, i10] == pytest.approx(
        np.mean(res.roi_power[3, ACTIVE[3], i10]), rel=1e-12
    )
    assert res.roi_power_adc[3, i10] == pytest.approx(expected / 48, rel=2e-3)
    assert res.roi_power_adc.shape == (8, 11)
    assert np.isnan(res.roi_power[~ACTIVE]).all()


def test_epcb_median_and_to_dict() -> None:
    rng = np.random.default_rng(10)
    samples = (-28000 + rng.normal(0, 3, size=(4, 8, 64, 40))).astype(np.int16)
    # EPCB 0 = channels 4..9 of ADC 0: scale one channel's noise up (the median ignores it)
    samples[:, 0, 4] = (-28000 + rng.normal(0, 300, size=(4, 40))).astype(np.int16)
    valid = np.ones((4, 8, 64), bool)
    valid[:, 7, 4:10] = False  # the first EPCB of ADC 7 has no data at all
    acc = SpectraAccumulator(8, 64, 40, 0.016, 10, ACTIVE)
    stream(acc, samples, 4, valid)
    res = acc.result()
    epcb = res.epcb_median(CMAP)
    assert epcb.shape == (64, 21)
    for e in (0, 1, 13, 57):
        cells = res.median[CMAP.epcb == e]
        assert cells.shape == (6, 21)
        np.testing.assert_allclose(epcb[e], np.median(cells, axis=0), rtol=1e-12)
    assert np.isnan(epcb[7 * 8]).all()
    # 40 samples: 1.5625 MHz bins, so some ± 0.25 MHz regions hold no bin (NaN); the others
    # are finite for every ADC (the other channels of ADC 7 still count)
    assert (res.roi_n_bins == 0).any() and (res.roi_n_bins > 0).any()
    np.testing.assert_array_equal(
        np.isnan(res.roi_power_adc), np.broadcast_to(res.roi_n_bins == 0, (8, 11))
    )

    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN became None
    back = json.loads(text)
    assert back["n_events"] == 4 and back["n_bins"] == 21
    assert back["roi_centres_mhz"] == list(C.SPECTRA_ROI_CENTRES_MHZ)
    assert back["roi_half_width_mhz"] == C.SPECTRA_ROI_HALF_WIDTH_MHZ
    assert back["freq_step_mhz"] == pytest.approx(62.5 / 40)
    assert back["roi_power_v2"][0][0] == [None] * 11  # inactive channel 0
    assert len(back["roi_power_adc_v2"]) == 8
    assert "median" not in back


def test_no_event_gives_nan_and_bad_arguments() -> None:
    acc = SpectraAccumulator(8, 64, 32, 0.016, 3, ACTIVE)
    acc.add(make_batch(np.zeros((0, 8, 64, 32), np.int16)))
    res = acc.result()
    assert res.n_events == 0 and np.isnan(res.median).all() and np.isnan(res.roi_power_adc).all()
    json.dumps(res.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="max_events"):
        SpectraAccumulator(8, 64, 32, 0.016, 0, ACTIVE)
    with pytest.raises(ValueError, match="active"):
        SpectraAccumulator(8, 64, 32, 0.016, 3, ACTIVE[:4])
    with pytest.raises(ValueError, match="batch samples"):
        acc.add(make_batch(np.zeros((1, 8, 64, 31), np.int16)))


def test_on_a_simulated_flow_file(flow_file) -> None:
    # channel (1, 5) has invalid (all-zero) waveforms in ~half of the events
    path, _ = flow_file(n_events=40, faults=ChannelFaults(invalid=((1, 5),)), seed=4)
    picks = even_picks(40, 8)
    valid_rows = []
    with FlowLightReader(path, chunk_bytes=2**20) as reader:
        acc = SpectraAccumulator(
            reader.info.n_adcs,
            reader.info.n_channels,
            reader.info.n_samples,
            C.LIGHT_SAMPLE_PERIOD_US,
            8,
            ACTIVE,
            expected_events=reader.n_events,
        )
        for batch in reader.batches():
            acc.add(batch)
            index = batch.first_event + np.arange(batch.n_events)
            valid = np.ones((batch.n_events, 8, 64), bool) if batch.valid is None else batch.valid
            valid_rows.append(valid[np.isin(index, picks)])
    res = acc.result()
    np.testing.assert_array_equal(res.event_indices, picks)
    valid = np.concatenate(valid_rows)
    np.testing.assert_array_equal(res.n_waveforms, np.where(ACTIVE, valid.sum(axis=0), 0))
    assert 0 < res.n_waveforms[1, 5] < 8
    assert np.isfinite(res.median[ACTIVE]).all() and np.isnan(res.median[~ACTIVE]).all()
    # DC bin: baselines in [-28800, -27200] ADC16 -> 2 (b·S·v/(S/2+1))² in [22.0, 24.7] V²,
    # a little less with (positive) pulses in the window; the zeroed invalid waveforms of
    # (1, 5) are left out, so its median stays there too (they would give 0)
    dc = res.median[ACTIVE][:, 0]
    assert dc.min() > 20.0 and dc.max() < 24.8
    assert 20.0 < res.median[1, 5, 0] < 24.8
    assert np.isfinite(res.roi_power_adc).all()


def test_the_noisiest_channel_of_each_adc_and_its_power_ratio() -> None:
    """One channel with 3x the noise amplitude (9x the power) stands out of its ADC's median;
    an ADC with no active channel has none."""
    rng = np.random.default_rng(11)
    n_ev, n_samples = 6, 64
    samples = (-28000 + rng.normal(0, 20, size=(n_ev, 8, 64, n_samples))).astype(np.int16)
    samples[:, 3, 21] = (-28000 + rng.normal(0, 60, size=(n_ev, n_samples))).astype(np.int16)
    active = ACTIVE.copy()
    active[5] = False
    acc = SpectraAccumulator(8, 64, n_samples, 0.016, 100, active)
    stream(acc, samples, 3)
    res = acc.result()
    noisiest = res.noisiest_channels()
    assert noisiest[5] is None and len(noisiest) == 8
    worst = noisiest[3]
    assert worst is not None and worst.channel == 21
    total = np.nansum(res.median[3, :, 1:], axis=-1)
    assert worst.total_v2 == total[21]
    assert worst.ratio == total[21] / np.median(total[active[3]])
    assert 6 < worst.ratio < 12  # 9x the power, within the scatter of 6 events
    np.testing.assert_array_equal(worst.spectrum, res.median[3, 21])
    for a in (0, 1, 2, 4, 6, 7):
        n = noisiest[a]
        assert n is not None and active[a, n.channel] and n.ratio < 2


def test_the_spectra_page_draws_the_noisiest_channel_and_labels_the_rois() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from wavedqm.analysis.spectra import NoisiestChannel
    from wavedqm.exporters.light_pages import spectra_figure

    freq = np.linspace(0, 31.25, 33)
    epcb = np.full((64, 33), 1e-7)
    loud = NoisiestChannel(21, np.full(33, 9e-7), 1.0, 9.0)
    fig = spectra_figure(freq, epcb, epcb_per_adc=8, adcs=range(4), roi_centres_mhz=[1.9, 19.0],
                         roi_half_width_mhz=0.3, noisiest=[None, loud, None, None])  # fmt: skip
    ax = fig.axes[1]
    black = [ln for ln in ax.get_lines() if ln.get_color() == "black"]
    assert len(black) == 1 and np.allclose(black[0].get_ydata(), 9e-7)
    assert all(not [ln for ln in a.get_lines() if ln.get_color() == "black"]
               for a in (fig.axes[0], fig.axes[2], fig.axes[3]))  # fmt: skip
    texts = [t.get_text() for t in ax.texts]
    assert "noisiest: channel 21, 9.0× the ADC's median channel power" in texts
    assert {"1.9", "19"} <= set(texts)  # the top row is labelled, the bottom row is not
    assert not {"1.9", "19"} & {t.get_text() for t in fig.axes[2].texts}
