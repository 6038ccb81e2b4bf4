"""Track the waveform with the largest sample-to-sample jump over a streamed file."""

from __future__ import annotations

import numpy as np

from wavedqm.analysis.jump import JumpEvent
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import LightFeatures


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
