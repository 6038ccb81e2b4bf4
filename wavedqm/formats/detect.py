"""Which reader a file needs, from its first bytes (not its name)."""

from __future__ import annotations

from pathlib import Path

from wavedqm.errors import InputFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FLOW = "flow-hdf5"
WFM = "tektronix-wfm"


def detect_format(path: Path) -> str:
    """``"flow-hdf5"`` or ``"tektronix-wfm"``; InputFileError for anything else."""
    with Path(path).open("rb") as fh:
        head = fh.read(16)
    if not head:
        raise InputFileError(path, "empty", "the file is empty", "an HDF5 or Tektronix .wfm file")
    if head.startswith(HDF5_SIGNATURE):
        return FLOW
    if head[:2] in (b"\x0f\x0f", b"\xf0\xf0") and head[2:7] == b":WFM#":
        return WFM
    # HDF5 allows a user block: the signature may sit at 512, 1024, ... (h5py finds it)
    if Path(path).suffix in (".hdf5", ".h5"):
        return FLOW
    raise InputFileError(
        path,
        "not_hdf5",
        "neither an HDF5 nor a Tektronix .wfm file (unknown signature)",
        "an HDF5 file (.FLOW.hdf5) or a Tektronix WFM#001-003 file",
    )
