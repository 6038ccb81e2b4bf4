"""The waveform with the largest sample-to-sample jump of a file (shown in the PDF report):
:class:`JumpEvent`, and :class:`JumpTracker`, which finds it over a streamed file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import LightFeatures


@dataclass(frozen=True)
class JumpEvent:
    """One waveform: where the largest |s[i+1] − s[i]| of the file happened.

    ``samples`` is a copy of that single waveform (raw ADC16 counts, int16, (n_samples,)).
    """

    event: int
    """Index of the event in the file."""
    adc: int
    channel: int
    jump_adc16: int
    """The largest |s[i+1] − s[i]| of the file (ADC16 counts)."""
    sample: int
    """Index i of the jump in the waveform."""
    trig_type: int
    samples: np.ndarray
    sample_period_us: float

    def time_us(self) -> np.ndarray:
        """Sample times (µs) from the start of the waveform."""
        return np.arange(self.samples.shape[0]) * self.sample_period_us


class JumpTracker:
    """Keeps a copy of the one waveform (active channels, valid only) with the largest jump.

    The fused light kernel already gives each waveform's largest step (``max_jump``): this only
    picks the batch's largest and copies that one waveform.
    """

    def __init__(self, active: np.ndarray, sample_period_us: float) -> None:
        self.active = np.asarray(active, dtype=bool)
        self.sample_period_us = sample_period_us
        self.best: JumpEvent | None = None

    def add(self, batch: WaveformBatch, features: LightFeatures) -> None:
        jumps = np.where(self.active, features.max_jump, -1)
        if batch.valid is not None:
            jumps = np.where(batch.valid, jumps, -1)
        if jumps.size == 0:
            return
        flat = int(np.argmax(jumps))
        jump = int(jumps.reshape(-1)[flat])
        if jump < 0 or (self.best is not None and jump <= self.best.jump_adc16):
            return
        event, adc, channel = np.unravel_index(flat, jumps.shape)
        samples = batch.samples[event, adc, channel].copy()
        steps = np.abs(np.diff(samples.astype(np.int32)))
        self.best = JumpEvent(
            event=batch.first_event + int(event),
            adc=int(adc),
            channel=int(channel),
            jump_adc16=jump,
            sample=int(np.argmax(steps)) if steps.size else 0,
            trig_type=int(batch.trig_type[event]),
            samples=samples,
            sample_period_us=self.sample_period_us,
        )
