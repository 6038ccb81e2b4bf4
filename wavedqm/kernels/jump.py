"""Largest sample-to-sample jump |s[i+1] − s[i]| over a batch of waveforms (ADC16 counts)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _largest_jump(flat: np.ndarray, use: np.ndarray) -> tuple[int, int, int]:
    """(waveform index, sample index i, |s[i+1] − s[i]|) of the largest jump; -1 if none."""
    best, best_w, best_i = -1, -1, -1
    n_samples = flat.shape[1]
    for w in range(flat.shape[0]):
        if not use[w]:
            continue
        prev = np.int32(flat[w, 0])
        for i in range(1, n_samples):
            cur = np.int32(flat[w, i])
            d = abs(cur - prev)
            if d > best:
                best, best_w, best_i = d, w, i - 1
            prev = cur
    return best_w, best_i, best


def largest_jump(samples: np.ndarray, use: np.ndarray) -> tuple[int, int, int]:
    """Over ``samples`` int16 (n, a, c, S) where ``use`` (n, a, c) is true:
    (flat waveform index into (n, a, c), sample index i, jump in ADC16 counts), or (-1, -1, -1).
    """
    n_samples = samples.shape[-1]
    flat = np.ascontiguousarray(samples).reshape(-1, n_samples)
    mask = np.ascontiguousarray(use, dtype=np.bool_).reshape(-1)
    if flat.shape[0] == 0 or n_samples < 2:
        return -1, -1, -1
    w, i, d = _largest_jump(flat, mask)
    return int(w), int(i), int(d)
