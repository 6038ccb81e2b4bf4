"""Channel map (active channels, EPCB and TPC grouping) and the channel-status CSV.

Channel-status codes (spec: flow-hdf5.md): −1 inactive (not connected), 0 good, 1 known dead,
2 known baseline problem, 3 both. The CSV has no header: one row per ADC, one value per channel,
integers or floats (``-1.0``); blank trailing lines are tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavedqm import constants as C
from wavedqm.atomic import atomic_write_text
from wavedqm.config import LightConfig
from wavedqm.errors import ConfigError

_VALID_CODES = (C.STATUS_INACTIVE, *range(C.STATUS_GOOD, 2 * C.STATUS_KNOWN_NOISY))
"""−1, and 0..7: the bits known dead (1), known baseline problem (2), known noisy (4)."""


@dataclass(frozen=True, eq=False)
class ChannelMap:
    """Which (ADC, channel) cells are connected and which EPCB / TPC each belongs to.

    All arrays have shape ``(n_adcs, n_channels)``. An EPCB is ``epcb_size`` consecutive active
    channels of one ADC, numbered globally ``adc * epcb_per_adc + local`` (8 per ADC for the 2x2).
    TPCs: ADC pair ``(a0, a1)`` number ``p`` of ``tpc_adc_pairs`` reads TPC ``2p`` with channels
    below ``tpc_split_channel`` and TPC ``2p + 1`` with the others. −1 marks "no group"
    (inactive channel, or an ADC in no pair).
    """

    active: np.ndarray
    """bool: channel is connected."""
    epcb: np.ndarray
    """int64: global EPCB index, −1 for inactive channels."""
    tpc: np.ndarray
    """int64: TPC index, −1 for inactive channels and ADCs in no pair."""
    n_epcb: int
    n_tpc: int
    epcb_per_adc: int

    @property
    def n_adcs(self) -> int:
        return int(self.active.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.active.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_adcs, self.n_channels)

    @classmethod
    def from_config(cls, cfg: LightConfig) -> ChannelMap:
        n_adcs, n_channels = cfg.n_adcs, cfg.n_channels
        channels = cfg.active_channel_list()
        if cfg.epcb_size < 1:
            raise ConfigError(f"light.epcb_size: {cfg.epcb_size} (expected at least 1)")
        active = np.zeros((n_adcs, n_channels), np.bool_)
        active[:, list(channels)] = True

        epcb_per_adc = -(-len(channels) // cfg.epcb_size)  # ceil
        epcb = np.full((n_adcs, n_channels), -1, np.int64)
        local = np.arange(len(channels)) // cfg.epcb_size
        for adc in range(n_adcs):
            epcb[adc, list(channels)] = adc * epcb_per_adc + local

        tpc = np.full((n_adcs, n_channels), -1, np.int64)
        low = np.arange(n_channels) < cfg.tpc_split_channel
        seen: set[int] = set()
        for pair_index, pair in enumerate(cfg.tpc_adc_pairs):
            for adc in pair:
                if adc in seen:
                    raise ConfigError(
                        f"light.tpc_adc_pairs: ADC {adc} appears in more than one pair"
                    )
                seen.add(adc)
                tpc[adc] = np.where(low, 2 * pair_index, 2 * pair_index + 1)
        tpc[~active] = -1
        for a in (epcb, tpc):
            a.flags.writeable = False
        active.flags.writeable = False
        return cls(
            active=active,
            epcb=epcb,
            tpc=tpc,
            n_epcb=epcb_per_adc * n_adcs,
            n_tpc=2 * len(cfg.tpc_adc_pairs),
            epcb_per_adc=epcb_per_adc,
        )

    def groups(self, granularity: str) -> tuple[np.ndarray, int]:
        """``(group index per cell (a×c, −1 none), number of groups)`` for "epcb" or "tpc"."""
        if granularity == "epcb":
            return self.epcb, self.n_epcb
        if granularity == "tpc":
            return self.tpc, self.n_tpc
        raise ValueError(f"granularity: {granularity!r} (expected 'epcb' or 'tpc')")


def has_status_bit(status: np.ndarray, bit: int) -> np.ndarray:
    """Where a channel-status code (−1, 0..7) has ``bit`` (1 dead, 2 baseline, 4 noisy) set;
    never for −1 (inactive)."""
    status = np.asarray(status)
    return (status > 0) & ((status & bit) != 0)


def default_channel_status(channel_map: ChannelMap) -> np.ndarray:
    """Status with no known problem: −1 for inactive channels, 0 for active ones (int8 a×c)."""
    return np.where(channel_map.active, C.STATUS_GOOD, C.STATUS_INACTIVE).astype(np.int8)


def read_channel_status(path: str | Path, n_adcs: int, n_channels: int) -> np.ndarray:
    """Read a channel-status CSV into an int8 ``(n_adcs, n_channels)`` array.

    Raises ConfigError naming the file, the row and what was expected for a missing file, a
    wrong number of rows or values, a value that is not a number, a non-integer or an unknown
    code.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: channel-status file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read channel-status file: {e}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != n_adcs:
        raise ConfigError(
            f"{path}: {len(lines)} rows (expected {n_adcs} rows, one per ADC, "
            f"of {n_channels} values)"
        )
    status = np.empty((n_adcs, n_channels), np.int8)
    for row, line in enumerate(lines):
        cells = line.split(",")
        if len(cells) != n_channels:
            raise ConfigError(f"{path}: row {row + 1}: {len(cells)} values (expected {n_channels})")
        for col, cell in enumerate(cells):
            text_value = cell.strip()
            try:
                value = float(text_value)
            except ValueError:
                raise ConfigError(
                    f"{path}: row {row + 1}, column {col + 1}: {text_value!r} is not a number "
                    f"(expected one of {list(_VALID_CODES)})"
                ) from None
            if not value.is_integer() or int(value) not in _VALID_CODES:
                raise ConfigError(
                    f"{path}: row {row + 1}, column {col + 1}: {text_value!r} "
                    f"(expected one of {list(_VALID_CODES)})"
                )
            status[row, col] = int(value)
    return status


def write_channel_status(path: str | Path, status: np.ndarray) -> None:
    """Write ``status`` (a×c ints) as a channel-status CSV, atomically.

    The text goes to a temporary file in the same folder and is renamed over ``path``: a reader
    sees the old file or the new one, never half of one.
    """
    status = np.asarray(status)
    if status.ndim != 2:
        raise ValueError(f"status: shape {status.shape} (expected (n_adcs, n_channels))")
    atomic_write_text(path, "".join(",".join(str(int(v)) for v in row) + "\n" for row in status))
