"""The waveform with the largest sample-to-sample jump of a file (shown in the PDF report)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
