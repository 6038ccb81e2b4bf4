"""Fused light kernel: against the plain numpy reference and against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wavedqm import constants as C
from wavedqm.kernels.light import LightFeatures, light_features, warm_up

import reference as ref

PTP = float(C.PTP_THRESHOLD_ADC16)
CLIP = C.LIGHT_CLIP_LEVEL_ADC16
PED = C.PEDESTAL_SAMPLES


def assert_matches_reference(
    feats: LightFeatures, samples: np.ndarray, pedestal: int, ptp: float, clip: int
) -> None:
    r = ref.features(samples, pedestal, ptp, clip)
    assert feats.shape == samples.shape[:-1]
    for name in ("baseline", "noise", "max_above_baseline"):
        assert getattr(feats, name).dtype == np.float32
    # the mean of integers and max - mean are formed in float64 then rounded: bit-exact
    np.testing.assert_array_equal(feats.baseline, r.baseline.astype(np.float32))
    np.testing.assert_array_equal(feats.max_above_baseline, r.max_above_baseline.astype(np.float32))
    # the kernel's variance is exact; numpy's two-pass std has float64 rounding error only
    np.testing.assert_allclose(feats.noise, r.noise, rtol=2e-7, atol=1e-6)
    np.testing.assert_array_equal(feats.clipped, r.clipped)
    np.testing.assert_array_equal(feats.negative, r.negative)
    assert feats.max_jump.dtype == np.int32
    np.testing.assert_array_equal(feats.max_jump, r.max_jump)


@st.composite
def waveforms(draw: st.DrawFn) -> tuple[np.ndarray, int, float, int]:
    n_samples = draw(st.integers(2, 90))
    shape = (
        draw(st.integers(0, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        n_samples,
    )
    extremes = st.sampled_from([-32768, -32767, 32766, 32767, 0, CLIP - 1, CLIP])
    values = st.one_of(st.integers(-32768, 32767), extremes)
    samples = draw(hnp.arrays(np.int16, shape, elements=values))
    pedestal = draw(st.integers(2, n_samples))
    ptp = draw(st.sampled_from([0.0, 1.5, PTP, 30000.0]))
    clip = draw(st.sampled_from([CLIP, 0, -32768, 32767]))
    return samples, pedestal, ptp, clip


@settings(max_examples=150, deadline=None)
@given(waveforms(), st.sampled_from([None, False, True]))
def test_kernel_matches_numpy_reference(
    case: tuple[np.ndarray, int, float, int], parallel: bool | None
) -> None:
    samples, pedestal, ptp, clip = case
    feats = light_features(samples, pedestal, ptp, clip, parallel=parallel)
    assert_matches_reference(feats, samples, pedestal, ptp, clip)


@pytest.mark.parametrize("parallel", [False, True])
def test_kernel_matches_reference_on_realistic_block(parallel: bool) -> None:
    """Many waveforms on one thread and on all, realistic baselines, pulses and both flags."""
    rng = np.random.default_rng(7)
    shape = (6, 8, 64, 200)
    base = rng.uniform(-29000, -27000, size=shape[:-1])[..., None]
    samples = np.rint(base + rng.normal(0, 40, size=shape)).astype(np.int16)
    samples[0, 1, 5, 120:125] = CLIP
    samples[2, 3, 7, 150] = -32768
    samples[4, :, :, 100:110] += 4000
    feats = light_features(samples, PED, PTP, CLIP, parallel=parallel)
    assert_matches_reference(feats, samples, PED, PTP, CLIP)
    assert feats.clipped.sum() == 1 and feats.clipped[0, 1, 5]
    assert feats.negative[2, 3, 7]


def test_pedestal_ramp_gives_exact_mean_and_std() -> None:
    p = PED
    wave = np.full(2 * p, -28000, np.int16)
    wave[:p] = 4 * np.arange(p)  # 0, 4, 8, ..., 196
    feats = light_features(wave.reshape(1, 1, 1, -1), p, PTP, CLIP)
    assert feats.baseline[0, 0, 0] == np.float32(4 * (p - 1) / 2)  # 98
    # population variance of 0..p-1 is (p^2 - 1)/12; times 4^2
    assert feats.noise[0, 0, 0] == np.float32(4 * np.sqrt((p * p - 1) / 12))
    assert feats.max_above_baseline[0, 0, 0] == np.float32(196 - 98)


def test_noise_is_exact_far_from_zero() -> None:
    """Alternating 32000/32001: std exactly 0.5 despite the large offset (no cancellation)."""
    wave = np.tile(np.array([32000, 32001], np.int16), 25)
    feats = light_features(wave.reshape(1, 1, 1, -1), 50, PTP, CLIP)
    assert feats.baseline[0, 0, 0] == np.float32(32000.5)
    assert feats.noise[0, 0, 0] == np.float32(0.5)
    flat = np.full((1, 1, 1, 60), -28000, np.int16)
    assert light_features(flat, 50, PTP, CLIP).noise[0, 0, 0] == 0.0


def _with_sample(value: int, baseline: int = -28000) -> np.ndarray:
    wave = np.full((1, 1, 1, 100), baseline, np.int16)
    wave[..., 80] = value
    return wave


def test_clip_level_is_inclusive() -> None:
    assert light_features(_with_sample(32760), PED, PTP, CLIP).clipped[0, 0, 0]
    assert not light_features(_with_sample(32759), PED, PTP, CLIP).clipped[0, 0, 0]
    assert CLIP == 32760


def test_negative_is_strictly_below_baseline_minus_ptp() -> None:
    assert not light_features(_with_sample(-28500), PED, PTP, CLIP).negative[0, 0, 0]
    assert light_features(_with_sample(-28501), PED, PTP, CLIP).negative[0, 0, 0]
    feats = light_features(_with_sample(-27700), PED, PTP, CLIP)
    assert feats.max_above_baseline[0, 0, 0] == 300.0
    assert not feats.negative[0, 0, 0] and not feats.clipped[0, 0, 0]


def test_pedestal_only_uses_the_leading_samples() -> None:
    wave = np.zeros((1, 1, 1, 10), np.int16)
    wave[..., :4] = [1, 2, 3, 6]
    wave[..., 4:] = 1000
    feats = light_features(wave, 4, PTP, CLIP)
    assert feats.baseline[0, 0, 0] == 3.0
    assert feats.noise[0, 0, 0] == np.float32(np.sqrt(3.5))
    assert feats.max_above_baseline[0, 0, 0] == 997.0


def test_non_contiguous_input_gives_same_result() -> None:
    rng = np.random.default_rng(3)
    big = rng.integers(-32768, 32767, size=(4, 3, 6, 120), dtype=np.int16)
    view = big[::2, :, 1::2, ::2]
    assert not view.flags.c_contiguous
    feats = light_features(view, 20, PTP, CLIP)
    assert_matches_reference(feats, np.ascontiguousarray(view), 20, PTP, CLIP)
    transposed = np.ascontiguousarray(big.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    again = light_features(transposed, 20, PTP, CLIP)
    np.testing.assert_array_equal(again.noise, light_features(big, 20, PTP, CLIP).noise)


def test_out_buffers_are_reused_only_when_they_fit() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(-30000, -26000, size=(2, 2, 3, 64), dtype=np.int16)
    b = rng.integers(-30000, -26000, size=(2, 2, 3, 64), dtype=np.int16)
    first = light_features(a, PED, PTP, CLIP)
    second = light_features(b, PED, PTP, CLIP, out=first)
    assert second is first
    assert_matches_reference(second, b, PED, PTP, CLIP)
    smaller = light_features(b[:1], PED, PTP, CLIP, out=first)
    assert smaller is not first and smaller.shape == (1, 2, 3)
    assert_matches_reference(smaller, b[:1], PED, PTP, CLIP)


def test_empty_batch() -> None:
    feats = light_features(np.zeros((0, 8, 64, 100), np.int16), PED, PTP, CLIP)
    assert feats.shape == (0, 8, 64)


@pytest.mark.parametrize(
    ("samples", "pedestal", "match"),
    [
        (np.zeros((1, 1, 1, 10), np.float32), 5, "int16"),
        (np.zeros((1, 1, 1, 10), np.int32), 5, "int16"),
        (np.zeros((1, 1, 1, 10), np.int16), 0, "pedestal_samples"),
        (np.zeros((1, 1, 1, 10), np.int16), 11, "pedestal_samples"),
        (np.zeros(10, np.int16), 5, "shape"),
    ],
)
def test_refuses_bad_input(samples: np.ndarray, pedestal: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        light_features(samples, pedestal, PTP, CLIP)


def test_warm_up_compiles_and_read_only_input_works() -> None:
    warm_up()
    wave = _with_sample(-27000)
    wave.flags.writeable = False
    feats = light_features(wave, PED, PTP, CLIP)
    assert feats.max_above_baseline[0, 0, 0] == 1000.0
    assert feats.baseline[0, 0, 0] == -28000.0
