"""Track the waveform with the largest sample-to-sample jump over a streamed file."""

from __future__ import annotations

import numpy as np

from wavedqm.analysis.jump import JumpEvent
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.jump import largest_jump


class JumpTracker:
    """Keeps a copy of the one waveform (active channels, valid only) with the largest jump."""

    def __init__(self, active: np.ndarray, sample_period_us: float) -> None:
        self.active = np.asarray(active, dtype=bool)
        self.sample_period_us = sample_period_us
        self.best: JumpEvent | None = None

    def add(self, batch: WaveformBatch) -> None:
        use = np.broadcast_to(self.active, batch.samples.shape[:-1])
        if batch.valid is not None:
            use = use & batch.valid
        w, i, jump = largest_jump(batch.samples, use)
        if w < 0 or (self.best is not None and jump <= self.best.jump_adc16):
            return
        event, adc, channel = np.unravel_index(w, batch.samples.shape[:-1])
        self.best = JumpEvent(
            event=batch.first_event + int(event),
            adc=int(adc),
            channel=int(channel),
            jump_adc16=jump,
            sample=i,
            trig_type=int(batch.trig_type[event]),
            samples=batch.samples[event, adc, channel].copy(),
            sample_period_us=self.sample_period_us,
        )
