"""Cell codes of the two light masks (``constants.CELL_*``), from a file's light result.

- flatline mask ("Alive and dead channels"): known dead (status 1/3) -> known; new dead -> new.
- baseline mask ("Channels baseline status"): known baseline problem (status 2/3) -> known;
  newly flagged baseline -> one code per baseline status (out of range, spread, shift, both),
  so the mask says which test flagged it.
Inactive (not connected, or −1 in the status CSV) cells are blank; all other cells are healthy.
"""

from __future__ import annotations

import numpy as np

from wavedqm import constants as C
from wavedqm.analysis.light import LightResult

BASELINE_CELL = {
    C.BASELINE_OUT_OF_RANGE: C.CELL_BASELINE_OUT_OF_RANGE,
    C.BASELINE_SPREAD: C.CELL_BASELINE_SPREAD,
    C.BASELINE_SHIFT: C.CELL_BASELINE_SHIFT,
    C.BASELINE_SPREAD_AND_SHIFT: C.CELL_BASELINE_SPREAD_AND_SHIFT,
}
"""Baseline status code -> the baseline mask's cell code for a new problem."""


def _cells(
    result: LightResult, known_bit: int, new: list, code: dict[int, int] | None = None
) -> np.ndarray:
    cells = np.full(result.active.shape, C.CELL_OK, dtype=np.int8)
    known = (result.known_status > 0) & ((result.known_status & known_bit) != 0)
    cells[known] = C.CELL_KNOWN
    for adc, channel, *status in new:
        cells[adc, channel] = C.CELL_NEW if code is None else code[status[0]]
    cells[~result.monitored] = C.CELL_INACTIVE
    return cells


def flatline_cells(result: LightResult) -> np.ndarray:
    """(n_adcs, n_channels) cell codes of the "Alive and dead channels" mask."""
    return _cells(result, C.STATUS_KNOWN_DEAD, result.dead_new)


def baseline_cells(result: LightResult) -> np.ndarray:
    """(n_adcs, n_channels) cell codes of the "Channels baseline status" mask."""
    return _cells(result, C.STATUS_KNOWN_BASELINE, result.baseline_flagged, BASELINE_CELL)


def quality_cells(worst: np.ndarray, monitored: np.ndarray) -> np.ndarray:
    """(n_adcs, n_channels) cell codes of the quality mask from each channel's worst quality
    status (:class:`~wavedqm.analysis.quality.QualityResult`): ok, warning, error, or
    ``CELL_KNOWN`` (drawn as a grey dot) for "not enough data"; unmonitored blank."""
    code = {
        C.QUALITY_NOT_ENOUGH: C.CELL_KNOWN,
        C.QUALITY_OK: C.CELL_OK,
        C.QUALITY_WARNING: C.CELL_QUALITY_WARNING,
        C.QUALITY_ERROR: C.CELL_QUALITY_ERROR,
    }
    cells = np.full(worst.shape, C.CELL_INACTIVE, dtype=np.int8)
    for status, cell in code.items():
        cells[monitored & (worst == status)] = cell
    return cells
