"""Per-file power spectra: keep the spectra of a bounded sample of events, then summarise.

:class:`SpectraAccumulator` takes the streamed batches of a file and keeps the power spectra
(:func:`wavedqm.kernels.spectra.power_spectra`, V² per bin, 2.0 V range) of the active channels
of at most ``max_events`` events: ``max_events × n_active × (S//2 + 1) × 4 B`` of memory,
allocated once (49 MB for the default 64 events, 384 active channels, S = 1000; 77 MB for
100). Only the kept events are transformed, so the cost per file is bounded too (about
0.6 ms of CPU per event, ~80 ms per file with the defaults: benchmarks/bench_spectra.py).

Which events: given ``expected_events`` (the number of events the reader will yield), the
``max_events`` file indices ``unique(round(linspace(0, expected_events − 1, max_events)))``
— evenly spread over the file, as the old tool's ``pick_indices``; without it, the first
``max_events`` events (the old tool's ``wf[:powspec_nevts]``). ``selected_event_mask``
(e.g. one trigger type) removes events on top of that, so with both fewer than
``max_events`` events may be used.

:meth:`SpectraAccumulator.result` gives a :class:`SpectraResult`:

- ``median``, ``p16``, ``p84``: per (ADC, channel, bin), the median and the ``(1 ∓ cl)/2``
  quantiles (16%/84% for cl = 0.68) of the power over the kept events, numpy's 'linear'
  method; missing waveforms (``batch.valid`` False) are left out; NaN for inactive channels
  and channels without any valid waveform.
- ``roi_power`` (a, c, n_roi): the median spectrum summed over the bins whose frequency is
  within ± ``roi_half_width_mhz`` of each centre (inclusive), V². A region holding no bin
  (centre above the Nyquist frequency) is NaN.
- ``roi_power_adc`` (a, n_roi): the **mean** of ``roi_power`` over the ADC's active channels
  that have one (NaN channels left out): a per-channel level comparable between ADCs whatever
  the number of working channels (a sum would drop when a channel dies). NaN if none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.channels import ChannelMap
from wavedqm.analysis.stats import nan_quantiles
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.spectra import frequencies_mhz, n_bins, power_spectra

_ROI_TOLERANCE_MHZ = 1e-9
"""Bins at exactly ± half-width count in (rfftfreq values carry float rounding)."""


def roi_masks(
    freq_mhz: np.ndarray,
    centres_mhz: tuple[float, ...] | np.ndarray = C.SPECTRA_ROI_CENTRES_MHZ,
    half_width_mhz: float = C.SPECTRA_ROI_HALF_WIDTH_MHZ,
) -> np.ndarray:
    """bool ``(n_roi, n_bins)``: bin ``k`` is in region ``r`` if
    ``|freq_mhz[k] − centres_mhz[r]| ≤ half_width_mhz`` (MHz)."""
    freq = np.asarray(freq_mhz, dtype=np.float64)
    centres = np.asarray(centres_mhz, dtype=np.float64).reshape(-1, 1)
    return np.abs(freq[None, :] - centres) <= half_width_mhz + _ROI_TOLERANCE_MHZ


def roi_sums(
    freq_mhz: np.ndarray,
    power: np.ndarray,
    centres_mhz: tuple[float, ...] | np.ndarray = C.SPECTRA_ROI_CENTRES_MHZ,
    half_width_mhz: float = C.SPECTRA_ROI_HALF_WIDTH_MHZ,
) -> np.ndarray:
    """Power ``(..., n_bins)`` summed over each region of interest -> ``(..., n_roi)`` float64.

    NaN in a region's bins gives NaN (a channel without data); a region without any bin is NaN.
    """
    masks = roi_masks(freq_mhz, centres_mhz, half_width_mhz)
    power = np.asarray(power, dtype=np.float64)
    if power.shape[-1] != masks.shape[1]:
        raise ValueError(f"power: {power.shape[-1]} bins (expected {masks.shape[1]})")
    sums = np.stack([power[..., m].sum(axis=-1) for m in masks], axis=-1)
    sums[..., ~masks.any(axis=1)] = np.nan
    return sums


def even_picks(n_events: int, max_events: int) -> np.ndarray:
    """At most ``max_events`` indices of ``n_events`` evenly spread, first and last included:
    ``unique(round(linspace(0, n_events − 1, max_events)))`` (int64, sorted)."""
    if n_events <= 0 or max_events <= 0:
        return np.empty(0, np.int64)
    return np.unique(np.round(np.linspace(0, n_events - 1, max_events)).astype(np.int64))


def _nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN, NaN (no warning) where there is no finite value."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _json(a: np.ndarray) -> Any:
    """float array -> nested lists with NaN as None."""
    a = np.asarray(a, dtype=np.float64)
    obj = a.astype(object)
    obj[np.isnan(a)] = None
    return obj.tolist()


@dataclass(frozen=True, eq=False)
class NoisiestChannel:
    """The channel of an ADC with the most spectral power
    (:meth:`SpectraResult.noisiest_channels`)."""

    channel: int
    spectrum: np.ndarray
    """float64 ``(n_bins,)``: its median spectrum (V² per bin)."""
    total_v2: float
    """Its power summed over every bin but DC (V²)."""
    ratio: float
    """``total_v2`` over the median of that sum over the ADC's active channels."""


@dataclass(frozen=True, eq=False)
class SpectraResult:
    """Power spectra of one file. Powers in V² per bin (spec normalisation, 2.0 V range),
    frequencies in MHz; arrays are per (ADC, channel) unless said otherwise."""

    freq_mhz: np.ndarray
    """float64 ``(n_bins,)``: ``rfftfreq(S, period)``, 0 to 31.25 MHz for S = 1000, 16 ns."""
    median: np.ndarray
    """float64 ``(a, c, n_bins)``: median power over the kept events (V²); NaN if inactive."""
    p16: np.ndarray
    """float64 ``(a, c, n_bins)``: ``(1 − cl)/2`` quantile (16% for cl = 0.68), V²."""
    p84: np.ndarray
    """float64 ``(a, c, n_bins)``: ``(1 + cl)/2`` quantile (84% for cl = 0.68), V²."""
    active: np.ndarray
    """bool ``(a, c)``: channels whose spectra were computed."""
    n_waveforms: np.ndarray
    """int64 ``(a, c)``: valid waveforms behind each channel's quantiles (0 if inactive)."""
    roi_centres_mhz: np.ndarray
    """float64 ``(n_roi,)``."""
    roi_half_width_mhz: float
    roi_n_bins: np.ndarray
    """int64 ``(n_roi,)``: bins in each region."""
    roi_power: np.ndarray
    """float64 ``(a, c, n_roi)``: median spectrum summed over each region (V²)."""
    roi_power_adc: np.ndarray
    """float64 ``(a, n_roi)``: mean of ``roi_power`` over the ADC's active channels (V²)."""
    n_events: int
    """Events whose spectra were used."""
    event_indices: np.ndarray
    """int64 ``(n_events,)``: their indices in the file."""
    max_events: int
    confidence_level: float

    def epcb_median(self, channel_map: ChannelMap) -> np.ndarray:
        """float64 ``(n_epcb, n_bins)``: per EPCB, the median over its channels of their
        median spectra (V²), channels without data left out; NaN for an EPCB without any."""
        if channel_map.shape != self.active.shape:
            raise ValueError(
                f"channel map {channel_map.shape} does not match the spectra {self.active.shape}"
            )
        out = np.full((channel_map.n_epcb, self.freq_mhz.size), np.nan)
        for e in range(channel_map.n_epcb):
            cells = self.median[channel_map.epcb == e]  # (n_cells, n_bins)
            (out[e],) = nan_quantiles(cells, (0.5,))
        return out

    def noisiest_channels(self) -> list[NoisiestChannel | None]:
        """Per ADC, the active channel whose median spectrum holds the most power (summed
        over every bin but DC), against the median of that sum over the ADC's active
        channels; None for an ADC without spectra. What an EPCB median hides: one channel."""
        total = np.nansum(self.median[..., 1:], axis=-1)  # (a, c) V²
        out: list[NoisiestChannel | None] = []
        for a in range(self.active.shape[0]):
            ok = self.active[a] & np.isfinite(self.median[a, :, 1:]).any(axis=-1)
            if not ok.any():
                out.append(None)
                continue
            ch = int(np.flatnonzero(ok)[np.argmax(total[a][ok])])
            typical = float(np.median(total[a][ok]))
            ratio = float(total[a, ch] / typical) if typical > 0 else float("inf")
            out.append(NoisiestChannel(ch, self.median[a, ch], float(total[a, ch]), ratio))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ROI summary (the full spectra are too big: save ``median`` etc. apart)."""
        step = float(self.freq_mhz[1] - self.freq_mhz[0]) if self.freq_mhz.size > 1 else None
        return {
            "n_events": self.n_events,
            "max_events": self.max_events,
            "event_indices": self.event_indices.tolist(),
            "n_bins": int(self.freq_mhz.size),
            "freq_step_mhz": step,
            "confidence_level": self.confidence_level,
            "roi_centres_mhz": self.roi_centres_mhz.tolist(),
            "roi_half_width_mhz": self.roi_half_width_mhz,
            "roi_n_bins": self.roi_n_bins.tolist(),
            "roi_power_v2": _json(self.roi_power),
            "roi_power_adc_v2": _json(self.roi_power_adc),
        }


class SpectraAccumulator:
    """Keeps the power spectra of at most ``max_events`` events of one file (see module doc).

    - ``n_adcs``, ``n_channels``, ``n_samples``: the waveform layout of the file;
    - ``sample_period_us``: sample period in µs (0.016: 62.5 MHz);
    - ``max_events`` (≥ 1): events kept; memory ``max_events × n_active × (S//2+1) × 4 B``;
    - ``active``: bool ``(n_adcs, n_channels)``, the channels to transform;
    - ``expected_events``: events the reader will yield (spread the kept ones evenly over
      them); None: keep the first ones;
    - ``adc_range_v``, ``adc16_full_scale``: volts = ADC16 × adc_range_v / adc16_full_scale;
    - ``workers``: ``scipy.fft`` threads (None: the kernel's default);
    - ``roi_centres_mhz``, ``roi_half_width_mhz``: regions of interest (MHz);
    - ``confidence_level``: the quantiles reported are ``(1 ∓ cl)/2``.
    """

    def __init__(
        self,
        n_adcs: int,
        n_channels: int,
        n_samples: int,
        sample_period_us: float,
        max_events: int,
        active: np.ndarray,
        *,
        expected_events: int | None = None,
        adc_range_v: float = C.LIGHT_ADC_RANGE_V,
        adc16_full_scale: float = C.LIGHT_ADC16_MAX,
        workers: int | None = None,
        roi_centres_mhz: tuple[float, ...] = C.SPECTRA_ROI_CENTRES_MHZ,
        roi_half_width_mhz: float = C.SPECTRA_ROI_HALF_WIDTH_MHZ,
        confidence_level: float = C.CONFIDENCE_LEVEL,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events: {max_events} (expected at least 1)")
        if n_samples < 2:
            raise ValueError(f"n_samples: {n_samples} (expected at least 2)")
        if not sample_period_us > 0:
            raise ValueError(f"sample_period_us: {sample_period_us} (expected > 0)")
        if not 0.0 < confidence_level < 1.0:
            raise ValueError(f"confidence_level: {confidence_level} (expected between 0 and 1)")
        active = np.asarray(active, dtype=np.bool_)
        if active.shape != (n_adcs, n_channels):
            raise ValueError(f"active: shape {active.shape} (expected {(n_adcs, n_channels)})")
        if expected_events is not None and expected_events < 0:
            raise ValueError(f"expected_events: {expected_events} (expected >= 0 or None)")
        self.n_adcs, self.n_channels, self.n_samples = int(n_adcs), int(n_channels), int(n_samples)
        self.sample_period_us = float(sample_period_us)
        self.max_events = int(max_events)
        self.active = active.copy()
        self.adc_range_v = float(adc_range_v)
        self.adc16_full_scale = float(adc16_full_scale)
        self.workers = workers
        self.roi_centres_mhz = np.asarray(roi_centres_mhz, dtype=np.float64)
        self.roi_half_width_mhz = float(roi_half_width_mhz)
        self.confidence_level = float(confidence_level)
        self._channels = np.flatnonzero(self.active).astype(np.int64)
        self._targets: np.ndarray | None = None
        if expected_events is not None:
            self._targets = even_picks(expected_events, self.max_events)
        # allocated once; pages are only touched as events are stored
        self._power = np.empty(
            (self.max_events, self._channels.size, n_bins(self.n_samples)), np.float32
        )
        self._events = np.empty(self.max_events, np.int64)
        self._n = 0

    @property
    def n_events(self) -> int:
        """Events stored so far."""
        return self._n

    @property
    def full(self) -> bool:
        """No further event will be kept (``max_events`` reached)."""
        return self._n >= self.max_events

    @property
    def nbytes(self) -> int:
        """Bytes of the spectra store: ``max_events × n_active × (S//2+1) × 4``."""
        return int(self._power.nbytes)

    def add(self, batch: WaveformBatch, selected_event_mask: np.ndarray | None = None) -> int:
        """Transform and keep the events of ``batch`` that are picked (see module doc), until
        ``max_events`` are kept; ``selected_event_mask`` (bool ``(n,)``) excludes events.
        Returns the number of events kept from this batch. Nothing of ``batch`` is kept."""
        n = batch.n_events
        want = (n, self.n_adcs, self.n_channels, self.n_samples)
        if tuple(batch.samples.shape) != want:
            raise ValueError(f"batch samples {batch.samples.shape} (expected {want})")
        room = self.max_events - self._n
        if n == 0 or room <= 0:
            return 0
        keep = np.ones(n, np.bool_)
        if selected_event_mask is not None:
            mask = np.asarray(selected_event_mask, dtype=np.bool_)
            if mask.shape != (n,):
                raise ValueError(f"selected_event_mask: shape {mask.shape} (expected {(n,)})")
            keep &= mask
        if self._targets is not None:
            keep &= np.isin(batch.first_event + np.arange(n), self._targets)
        picked = np.flatnonzero(keep)[:room]
        k = int(picked.size)
        if k == 0:
            return 0
        store = self._power[self._n : self._n + k]
        power_spectra(
            batch.samples,
            self.adc_range_v,
            self.adc16_full_scale,
            out=store,
            workers=self.workers,
            channels=self._channels,
            events=picked,
        )
        if batch.valid is not None:
            valid = np.asarray(batch.valid, dtype=np.bool_).reshape(n, -1)
            store[~valid[picked][:, self._channels]] = np.nan
        self._events[self._n : self._n + k] = batch.first_event + picked
        self._n += k
        return k

    def result(self) -> SpectraResult:
        """Median and quantile spectra, ROI sums (see module doc)."""
        cl = self.confidence_level
        stored = self._power[: self._n]  # (m, n_active, n_bins)
        f = stored.shape[-1]
        n_cells = self.n_adcs * self.n_channels
        quantiles = nan_quantiles(stored, ((1 - cl) / 2, 0.5, (1 + cl) / 2))
        p16, median, p84 = (np.full((n_cells, f), np.nan) for _ in range(3))
        for full, part in zip((p16, median, p84), quantiles, strict=True):
            full[self._channels] = part
        shape = (self.n_adcs, self.n_channels, f)
        p16, median, p84 = p16.reshape(shape), median.reshape(shape), p84.reshape(shape)

        n_waveforms = np.zeros(n_cells, np.int64)
        n_waveforms[self._channels] = np.count_nonzero(~np.isnan(stored[..., 0]), axis=0)

        freq = frequencies_mhz(self.n_samples, self.sample_period_us)
        masks = roi_masks(freq, self.roi_centres_mhz, self.roi_half_width_mhz)
        roi_power = roi_sums(freq, median, self.roi_centres_mhz, self.roi_half_width_mhz)
        roi_power[~self.active] = np.nan
        return SpectraResult(
            freq_mhz=freq,
            median=median,
            p16=p16,
            p84=p84,
            active=self.active.copy(),
            n_waveforms=n_waveforms.reshape(self.n_adcs, self.n_channels),
            roi_centres_mhz=self.roi_centres_mhz.copy(),
            roi_half_width_mhz=self.roi_half_width_mhz,
            roi_n_bins=masks.sum(axis=1).astype(np.int64),
            roi_power=roi_power,
            roi_power_adc=_nan_mean(roi_power, axis=1),
            n_events=self._n,
            event_indices=self._events[: self._n].copy(),
            max_events=self.max_events,
            confidence_level=cl,
        )
