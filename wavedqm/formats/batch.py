"""The one type every reader yields: a chunk of raw waveforms with per-event metadata."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class WaveformBatch:
    """A chunk of consecutive events of one file, raw as stored.

    ``samples`` may be a view into a buffer the reader reuses: it is valid until the reader
    yields its next batch. Consumers that keep data must copy what they keep (kernels reduce
    it to a few numbers per waveform, so they never need to).
    """

    samples: np.ndarray
    """Raw ADC counts, shape ``(n_events, *channel_shape, n_samples)``. Light: int16 ADC16
    counts, ``(n, n_adcs, n_channels, n_samples)``."""
    valid: np.ndarray | None
    """bool ``(n_events, *channel_shape)``: the waveform is present; ``None``: all present."""
    trig_type: np.ndarray
    """uint8 ``(n_events,)``: 0 self/threshold trigger, 1 beam trigger."""
    time_s: np.ndarray
    """float64 ``(n_events,)``: unix time of each event in s."""
    first_event: int
    """Index in the file of the first event of this batch."""

    @property
    def n_events(self) -> int:
        return int(self.samples.shape[0])
