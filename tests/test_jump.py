"""Largest sample-to-sample jump: kernel against numpy, tracker over streamed batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wavedqm.analysis.jumps import JumpTracker
from wavedqm.formats.batch import WaveformBatch
from wavedqm.kernels.jump import largest_jump


def _reference(samples: np.ndarray, use: np.ndarray) -> int:
    d = np.abs(np.diff(samples.astype(np.int64), axis=-1))
    d[~use] = -1
    return int(d.max()) if d.size else -1


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.int16,
        st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(2, 40)),
    ),
    st.data(),
)
def test_kernel_matches_numpy(samples: np.ndarray, data: st.DataObject) -> None:
    use = data.draw(arrays(np.bool_, samples.shape[:-1]))
    w, i, jump = largest_jump(samples, use)
    expected = _reference(samples, use)
    if not use.any():
        assert (w, i, jump) == (-1, -1, -1)
        return
    assert jump == expected
    flat = samples.reshape(-1, samples.shape[-1]).astype(np.int64)
    assert use.reshape(-1)[w]
    assert abs(flat[w, i + 1] - flat[w, i]) == expected


def test_extreme_values_do_not_overflow() -> None:
    samples = np.array([[[[-32768, 32767, 0]]]], dtype=np.int16)
    assert largest_jump(samples, np.ones((1, 1, 1), bool)) == (0, 0, 65535)


def test_tracker_keeps_the_largest_over_batches_and_copies_it() -> None:
    active = np.zeros((2, 3), bool)
    active[:, 1:] = True
    tracker = JumpTracker(active, sample_period_us=0.016)
    buffer = np.zeros((2, 2, 3, 10), np.int16)
    for first, (event, adc, ch, at, size) in enumerate([(0, 1, 2, 4, 300), (1, 0, 1, 7, 900)]):
        buffer[:] = 0
        buffer[event, adc, ch, at + 1 :] = size
        buffer[1, 0, 0, 3:] = 5000  # inactive channel: ignored
        batch = WaveformBatch(buffer, None, np.array([0, 1], np.uint8), np.zeros(2), first * 2)
        tracker.add(batch)
    best = tracker.best
    assert best is not None
    assert (best.event, best.adc, best.channel, best.sample, best.jump_adc16) == (3, 0, 1, 7, 900)
    assert best.trig_type == 1
    buffer[:] = 0  # the reader reuses its buffer: the tracker must have copied the waveform
    assert best.samples[8] == 900
    assert best.time_us()[1] == 0.016
