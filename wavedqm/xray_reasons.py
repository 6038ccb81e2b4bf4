"""Why an S2 frame is (not) an X-ray event: the vocabulary shared by the S2 kernel (which
assigns a code per frame), the analysis, the exporters (JSON labels, metric labels) and the
simulator. A module of its own so that exporters need not import a kernel."""

from __future__ import annotations

import enum


class XrayReason(enum.IntEnum):
    """Why an event is (not) an X-ray; stored as int8 per frame. ``label`` is the JSON name."""

    PASSED_ALL_CUTS = 0
    S1_AREA_TOO_LARGE = 1
    """Sum of the samples above threshold before S1 > max_area_s1."""
    S2_AREA_TOO_LARGE = 2
    """Sum of the samples above threshold from the S2 start on > max_area_s2."""
    EMPTY_WINDOW = 3
    """The drift window t_s1 ≤ t ≤ t_s2_start has fewer samples than the moving average."""
    NO_SIGNAL = 4
    """No smoothed sample above threshold in the drift window."""
    TOO_CLOSE_TO_S1 = 5
    """The signal starts not more than min_s1_sep after S1."""
    TOO_CLOSE_TO_S2 = 6
    """The signal ends not more than min_s2_sep before the S2 start."""
    AREA_TOO_SMALL = 7
    """Area < min_xray_area."""

    @property
    def label(self) -> str:
        """``passed_all_cuts``, ``s1_area_too_large``, …"""
        return self.name.lower()


XRAY_REASON_LABELS: tuple[str, ...] = tuple(r.label for r in XrayReason)
"""Index by reason code."""
