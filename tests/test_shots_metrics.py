"""Shot kernels and metrics: against a plain numpy reference (random signals with NaNs),
hand-computed cases and analytic signals where the original Shot Explorer is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf

from tests import shot_reference as ref
from wavedqm.analysis.shots import (
    ChannelRules,
    channel_metrics,
    dominant_frequency,
    judge_timing,
    timing_reference,
)
from wavedqm.kernels import shots as K

DT = 1e-6


def _signal(seed: int, n: int, nan_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.5, 1.5, n)) * DT
    x = rng.normal(0, 1, n) + np.where(rng.random(n) < 0.1, rng.normal(5, 2, n), 0)
    x[rng.random(n) < nan_fraction] = np.nan
    x[rng.integers(0, n) : rng.integers(0, n) + 15] = 3.0  # a flat stretch, maybe
    return t, x


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3000), st.sampled_from([0.0, 0.05, 0.5]))
def test_channel_scan_matches_numpy(seed: int, n: int, nan_fraction: float) -> None:
    t, x = _signal(seed, n, nan_fraction)
    n_nan, vmax, imax, vmin, imin, auc, flat = K.channel_scan(t, x)
    assert n_nan == int(np.isnan(x).sum())
    assert flat == ref.longest_flat_run(x)
    if np.isnan(x).all():
        assert imax == K.NO_INDEX and math.isnan(vmax)
        return
    assert (vmax, imax) == (np.nanmax(x), int(np.nanargmax(x)))
    assert (vmin, imin) == (np.nanmin(x), int(np.nanargmin(x)))
    assert auc == pytest.approx(ref.trapezoid_nan(t, x), rel=1e-12, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 2000), st.integers(1, 300))
def test_region_moments_and_bin_means_match_numpy(seed: int, n: int, n_bins: int) -> None:
    _, x = _signal(seed, n, 0.2)
    start, stop = sorted(np.random.default_rng(seed).integers(0, n + 1, 2))
    k, mean, std = K.region_moments(x, int(start), int(stop))
    part = x[start:stop]
    assert k == int(np.isfinite(part).sum())
    if k:
        assert mean == pytest.approx(np.nanmean(part), rel=1e-12, abs=1e-12)
        assert std == pytest.approx(np.nanstd(part), rel=1e-9, abs=1e-12)
    n_bins = min(n_bins, n)
    got = K.bin_means(x, n_bins)
    edges = [b * n // n_bins for b in range(n_bins + 1)]
    for b in range(n_bins):
        block = x[edges[b] : edges[b + 1]]
        if np.isfinite(block).any():
            assert got[b] == pytest.approx(np.nanmean(block), rel=1e-12, abs=1e-12)
        else:
            assert math.isnan(got[b])


def test_all_eight_metrics_match_the_numpy_reference() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(20_000) * DT
    x = np.exp(-0.5 * ((t - 8e-3) / 4e-4) ** 2) + 0.2 * np.sin(2 * np.pi * 3210 * t)
    x += rng.normal(0, 0.01, t.size)
    x[rng.random(t.size) < 0.03] = np.nan
    got = channel_metrics("c", t, x, ChannelRules(), DT).metrics
    want = ref.metrics(t, x)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def test_hand_computed_metrics() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0]) * DT
    x = np.array([0.0, 1.0, 3.0, 1.0, 0.0])
    m = channel_metrics("c", t, x, ChannelRules(baseline_window_s=(0, 1.5e-6)), DT).metrics
    assert m["peak"] == 3.0 and m["min"] == 0.0 and m["peak_to_peak"] == 3.0
    assert m["time_of_peak"] == 2 * DT
    assert m["auc"] == pytest.approx(5.0 * DT)  # 0.5 + 2 + 2 + 0.5 (unit·µs)
    # baseline = mean(0, 1) = 0.5, amplitude 2.5: 10% at 0.75 (t = 0.75 µs), 90% at 2.75
    # (between 1 at 1 µs and 3 at 2 µs: 1.875 µs)
    assert m["rise_time_10_90"] == pytest.approx((1.875 - 0.75) * DT)


def test_rise_time_is_interpolated_between_samples() -> None:
    """A linear ramp whose 10-90% rise is 5.84 µs at 1 µs sampling: the original reads 6.0."""
    t = np.arange(2000) * DT
    ramp_s = 5.84e-6 / 0.8
    x = np.clip((t - 500.3e-6) / ramp_s, 0, 1)
    m = channel_metrics("pd", t, x, ChannelRules(), DT).metrics
    assert m["rise_time_10_90"] == pytest.approx(5.84e-6, rel=1e-9)


def test_rise_time_of_an_erf_edge_and_a_noise_spike_before_it() -> None:
    """10-90% of a Gaussian-smoothed step is 2·1.2816 σ; a spike over 10% long before the
    pulse does not stretch it (the original takes the first sample over 10%)."""
    t = np.arange(4000) * 0.1 * DT
    sigma = 3e-6
    x = 0.5 * (1 + erf((t - 200e-6) / (sigma * math.sqrt(2))))
    x[900] = 0.3  # a spike at 90 µs
    m = channel_metrics("pd", t, x, ChannelRules(), 0.1 * DT).metrics
    assert m["rise_time_10_90"] == pytest.approx(2 * 1.2815516 * sigma, rel=2e-3)


@pytest.mark.parametrize("f_hz", [12_345.0, 3_456.7, 49_999.1, 201_234.5])
def test_dominant_frequency_is_interpolated_between_bins(f_hz: float) -> None:
    """1 ms at 1 µs: bins 1 kHz apart. The original reads 12,345 Hz as 11,988 (no mean
    removed, no interpolation); within 1% of a bin here, with an offset and NaNs."""
    t = np.arange(1000) * DT
    x = np.sin(2 * math.pi * f_hz * t + 0.4) + 0.3
    x[::37] = np.nan
    assert dominant_frequency(x, DT) == pytest.approx(f_hz, abs=10.0)
    assert ref.dominant_freq(x, DT) == pytest.approx(dominant_frequency(x, DT), rel=1e-9)


def test_snr_regions_from_the_rules_work_for_a_5_us_shot() -> None:
    """The original hard-codes 0.1-0.2 ms: a 5 µs shot has SNR = NaN. Default regions: the
    first 10% and the rest; configured ones: times in s."""
    rng = np.random.default_rng(1)
    t = np.arange(500) * 0.01 * DT  # 5 µs
    x = rng.normal(0, 0.1, t.size)
    x[250:] += 1.0 * np.sin(np.arange(250) / 5)
    default = channel_metrics("c", t, x, ChannelRules(), 0.01 * DT).metrics["snr_estimate"]
    assert math.isfinite(default) and default > 3
    rules = ChannelRules(baseline_window_s=(0, 1.995e-6), signal_window_s=(2.495e-6, 5e-6))
    got = channel_metrics("c", t, x, rules, 0.01 * DT).metrics["snr_estimate"]
    assert got == pytest.approx(np.std(x[250:]) / np.std(x[:200]), rel=1e-9)


def test_which_metrics_apply_is_the_rules_not_the_channel_name() -> None:
    t = np.arange(100) * DT
    x = np.sin(t / 1e-5)
    m = channel_metrics("photodiode", t, x, ChannelRules(metrics=("peak", "auc")), DT).metrics
    assert set(m) == {"peak", "auc"}
    m = channel_metrics("anything", t, x, ChannelRules(), DT).metrics
    assert math.isfinite(m["rise_time_10_90"]) and math.isfinite(m["dominant_freq_hz"])


def _flags(x: np.ndarray, **rules: float) -> list[str]:
    t = np.arange(x.size) * DT
    return channel_metrics("c", t, x, ChannelRules(**rules), DT).flags  # type: ignore[arg-type]


def test_each_flag_on_a_hand_made_signal() -> None:
    rng = np.random.default_rng(2)
    clean = np.concatenate([rng.normal(0, 0.01, 200), 1 + rng.normal(0, 0.01, 800)])
    assert _flags(clean) == []
    missing = clean.copy()
    missing[::8] = np.nan  # 12.5% > 10%
    assert _flags(missing) == ["missing_data"]
    missing[::8] = clean[::8]
    missing[::11] = np.nan  # 9.1%
    assert _flags(missing) == []
    flat = clean.copy()
    flat[500:511] = 0.7  # 11 equal samples: 10 zero differences
    assert _flags(flat) == ["saturation"]
    flat[510] = 0.71  # 9 zero differences
    assert _flags(flat) == []
    clipped = np.minimum(clean, np.quantile(clean, 0.97))  # 3% at the max
    assert _flags(clipped) == ["saturation"]
    noisy = clean.copy()
    noisy[:100] += np.where(np.arange(100) % 2, 0.15, -0.15)  # std 0.15 / range ~1.15
    assert _flags(noisy) == ["noisy_baseline"]
    assert _flags(clean, low_signal_threshold=1.2) == ["low_signal"]
    assert _flags(clean, low_signal_threshold=0.5) == []


def test_timing_outlier_against_earlier_clean_shots() -> None:
    t = np.arange(1000) * DT
    noise = np.random.default_rng(4).normal(0, 0.001, t.size)

    def shot(t0: float) -> np.ndarray:
        return np.exp(-(t - t0) / 2e-4) * (t >= t0) + noise

    rules = ChannelRules()
    earlier = [300e-6, 302e-6, 298e-6, 301e-6, 299e-6]
    ref_ = timing_reference(earlier, DT, min_shots=5)
    assert ref_ is not None and ref_.median_s == 300e-6
    late = channel_metrics("c", t, shot(320e-6), rules, DT)
    judge_timing(late, earlier, DT, rules, min_shots=5)
    assert late.flags == ["timing_outlier"]
    normal = channel_metrics("c", t, shot(302e-6), rules, DT)
    judge_timing(normal, earlier, DT, rules, min_shots=5)
    assert normal.flags == []
    too_few = channel_metrics("c", t, shot(320e-6), rules, DT)
    judge_timing(too_few, earlier[:4], DT, rules, min_shots=5)
    assert too_few.flags == []
