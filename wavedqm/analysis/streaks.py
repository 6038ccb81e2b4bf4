"""Consecutive-file counts of newly dead channels, so that an alert fires on a channel dead in
two files in a row and not on one blip."""

from __future__ import annotations

import numpy as np


def update_dead_streaks(previous: np.ndarray | None, dead_new: np.ndarray) -> np.ndarray:
    """Files in a row (up to and including this one) in which each channel was newly dead.

    ``dead_new``: bool (n_adcs, n_channels) for this file; ``previous``: the counts after the
    file before (``None`` or a different shape: start from zero). A live channel resets to 0.
    """
    dead = np.asarray(dead_new, dtype=bool)
    if previous is None or np.shape(previous) != dead.shape:
        previous = np.zeros(dead.shape, dtype=np.int64)
    return np.where(dead, np.asarray(previous, dtype=np.int64) + 1, 0)
