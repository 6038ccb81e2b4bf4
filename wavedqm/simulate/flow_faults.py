"""What a simulated ``.FLOW.hdf5`` file was given and holds: the channel faults
(:class:`ChannelFaults`, (adc, channel) pairs), their ``ADC:CHANNEL`` command-line form, and
the truth of a file (:class:`SimulationTruth`, ADC16 counts, unix s).


Faults (``ChannelFaults``, lists of (adc, channel)):
- dead: baseline + noise only, never a pulse (max - baseline stays far below 300);
- clipped: ~30% of events carry a pulse that saturates at 32764 (≥ 32760 counts as clipped);
- noisy: extra pickup, a sine at 10 or 11.25 MHz with random phase, total std 150-240
  (5-9x a typical channel); its amplitude (≤ 340) never reaches baseline - 500, so a noisy
  channel is not also a "negative" one;
- baseline_off: baseline around -20000 (outside [-30000, -26000]);
- negative: an undershoot of 800-1500 below baseline in ~20% of events;
- invalid: ``wvfm_valid`` = 0 and samples 0 in ~50% of events.
Inactive channels (0-3, 16-19, 32-35, 48-51) hold baseline + noise only. Healthy active
channels never clip, never go below baseline - 500 and always have pulses ≥ 1000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wavedqm import constants as C

Pairs = tuple[tuple[int, int], ...]

# --- faults and truth -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelFaults:
    """Channels (adc, channel) given each simulated problem; a channel may have several."""

    dead: Pairs = ()
    clipped: Pairs = ()
    noisy: Pairs = ()
    baseline_off: Pairs = ()
    negative: Pairs = ()
    invalid: Pairs = ()

    def __post_init__(self) -> None:
        for name in self.kinds():
            pairs = tuple((int(a), int(c)) for a, c in getattr(self, name))
            for a, c in pairs:
                if not (0 <= a < C.LIGHT_N_ADCS and 0 <= c < C.LIGHT_N_CHANNELS):
                    raise ValueError(
                        f"faults.{name}: ({a}, {c}) is outside ADC 0..{C.LIGHT_N_ADCS - 1}, "
                        f"channel 0..{C.LIGHT_N_CHANNELS - 1}"
                    )
            object.__setattr__(self, name, pairs)

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return ("dead", "clipped", "noisy", "baseline_off", "negative", "invalid")

    def mask(self, kind: str) -> np.ndarray:
        """bool (n_adcs, n_channels): True on the channels given ``kind``."""
        out = np.zeros((C.LIGHT_N_ADCS, C.LIGHT_N_CHANNELS), dtype=bool)
        for a, c in getattr(self, kind):
            out[a, c] = True
        return out

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {k: [[a, c] for a, c in sorted(getattr(self, k))] for k in self.kinds()}


@dataclass
class SimulationTruth:
    """What was simulated. ADC16 counts; arrays are (n_adcs, n_channels)."""

    baseline_adc16: np.ndarray
    """Generating baseline of each channel."""
    noise_adc16: np.ndarray
    """Std of the stored (quantised) pedestal samples: sqrt(sigma² + pickup² / 2 + 16/12)."""
    n_events: int
    n_beam: int
    n_self: int
    faults: ChannelFaults
    n_samples: int = 0
    seed: int = 0
    compression: str | None = None
    time_start_s: float = 0.0
    time_end_s: float = 0.0
    pedestal_mean_median_adc16: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Realised median over valid events of the mean of the first PEDESTAL_SAMPLES samples."""
    pedestal_std_median_adc16: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Realised median over valid events of their std (ddof=0)."""
    n_charge_events: int = 0
    n_charge_hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_adc16": np.asarray(self.baseline_adc16).tolist(),
            "noise_adc16": np.asarray(self.noise_adc16).tolist(),
            "n_events": self.n_events,
            "n_beam": self.n_beam,
            "n_self": self.n_self,
            "faults": self.faults.to_dict(),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "compression": self.compression,
            "time_start_s": self.time_start_s,
            "time_end_s": self.time_end_s,
            "pedestal_mean_median_adc16": np.asarray(self.pedestal_mean_median_adc16).tolist(),
            "pedestal_std_median_adc16": np.asarray(self.pedestal_std_median_adc16).tolist(),
            "n_charge_events": self.n_charge_events,
            "n_charge_hits": self.n_charge_hits,
        }


def parse_channel_pairs(spec: str) -> Pairs:
    """``"0:5,3:17"`` -> ``((0, 5), (3, 17))``; empty -> ``()``. ValueError names the bad part."""
    pairs = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        adc, sep, channel = part.partition(":")
        try:
            if not sep:
                raise ValueError
            a, c = int(adc), int(channel)
        except ValueError:
            raise ValueError(
                f"{part!r} in {spec!r} is not ADC:CHANNEL (expected e.g. '0:5,3:17')"
            ) from None
        if not (0 <= a < C.LIGHT_N_ADCS and 0 <= c < C.LIGHT_N_CHANNELS):
            raise ValueError(
                f"{part!r} in {spec!r}: expected ADC 0..{C.LIGHT_N_ADCS - 1} and channel "
                f"0..{C.LIGHT_N_CHANNELS - 1}"
            )
        pairs.append((a, c))
    return tuple(pairs)
