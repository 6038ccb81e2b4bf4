"""The waveform with the largest sample-to-sample jump, tracked over streamed batches."""

from __future__ import annotations

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.jump import JumpTracker
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.light import light_features


def test_tracker_keeps_the_largest_over_batches_and_copies_it() -> None:
    active = np.zeros((2, 3), bool)
    active[:, 1:] = True
    tracker = JumpTracker(active, sample_period_us=0.016)
    buffer = np.zeros((2, 2, 3, 60), np.int16)
    for first, (event, adc, ch, at, size) in enumerate([(0, 1, 2, 54, 300), (1, 0, 1, 57, 900)]):
        buffer[:] = 0
        buffer[event, adc, ch, at + 1 :] = size
        buffer[1, 0, 0, 53:] = 5000  # inactive channel: ignored
        batch = WaveformBatch(buffer, None, np.array([0, 1], np.uint8), np.zeros(2), first * 2)
        features = light_features(buffer, C.PEDESTAL_SAMPLES, 500.0, C.LIGHT_CLIP_LEVEL_ADC16)
        tracker.add(batch, features)
    best = tracker.best
    assert best is not None
    assert (best.event, best.adc, best.channel, best.sample, best.jump_adc16) == (3, 0, 1, 57, 900)
    assert best.trig_type == 1
    buffer[:] = 0  # the reader reuses its buffer: the tracker must have copied the waveform
    assert best.samples[58] == 900
    assert best.time_us()[1] == 0.016


def test_invalid_waveforms_are_ignored() -> None:
    active = np.ones((1, 2), bool)
    samples = np.zeros((1, 1, 2, 60), np.int16)
    samples[0, 0, 0, 55:] = 4000  # big jump, but the waveform is not valid
    samples[0, 0, 1, 55:] = 40
    valid = np.array([[[False, True]]])
    batch = WaveformBatch(samples, valid, np.zeros(1, np.uint8), np.zeros(1), 0)
    tracker = JumpTracker(active, 0.016)
    tracker.add(batch, light_features(samples, 50, 500.0, 32760))
    assert tracker.best is not None
    assert (tracker.best.channel, tracker.best.jump_adc16) == (1, 40)
