"""Which reader a file needs, from its first bytes (not its name).

Every kind of input file wavedqm knows is one :class:`FileFormat`: its name (the ``format`` of
``summary.json`` and the key processors accept), the glob patterns the daemon watches for it,
the signatures that identify it and the suffixes that identify it when it has none. The router
(:mod:`wavedqm.processors.router`) and ``wavedqm inspect`` detect a file once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from wavedqm.errors import InputFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HEAD_BYTES = 512
"""Bytes read from the start of a file to detect its format."""
FLOW = "flow-hdf5"
WFM = "tektronix-wfm"
WFM_SUFFIX = ".wfm"
SHOT = "shot"


@dataclass(frozen=True)
class FileFormat:
    """One kind of input file.

    ``signatures``: ``(offset, bytes)`` pairs; the file is of this format when its first
    :data:`HEAD_BYTES` bytes hold any of them. ``suffixes``: lower-case name endings that
    identify the format when no signature of any format matched (an HDF5 file with a user
    block, a text format with no magic). ``inspect``: ``"module:function"`` returning a dict
    describing a file, for ``wavedqm inspect`` (imported only when used).
    """

    name: str
    patterns: tuple[str, ...]
    signatures: tuple[tuple[int, bytes], ...] = ()
    suffixes: tuple[str, ...] = ()
    description: str = ""
    inspect: str = ""

    def has_signature(self, head: bytes) -> bool:
        return any(head[off : off + len(sig)] == sig for off, sig in self.signatures)

    def has_suffix(self, path: Path) -> bool:
        name = path.name.lower()
        return any(name.endswith(s) for s in self.suffixes)

    def matches_name(self, path: Path) -> bool:
        """The file name matches one of the watch patterns (case as written)."""
        return any(fnmatchcase(path.name, p) for p in self.patterns)


FLOW_FORMAT = FileFormat(
    FLOW,
    patterns=("*.FLOW.hdf5",),
    signatures=((0, HDF5_SIGNATURE),),
    # HDF5 allows a user block: the signature may sit at 512, 1024, ... (h5py finds it)
    suffixes=(".hdf5", ".h5"),
    description="an HDF5 file (.FLOW.hdf5)",
    inspect="wavedqm.formats.charge:inspect_flow_file",
)
WFM_FORMAT = FileFormat(
    WFM,
    patterns=("*.wfm",),
    signatures=((0, b"\x0f\x0f:WFM#"), (0, b"\xf0\xf0:WFM#")),
    suffixes=(WFM_SUFFIX,),  # the reader names what is wrong (not_wfm, truncated, ...)
    description="a Tektronix WFM#001-003 file",
    inspect="wavedqm.formats.wfm:inspect_wfm",
)
SHOT_FORMAT = FileFormat(
    SHOT,
    patterns=("shot_*.csv", "shot_*.npz"),
    signatures=((0, b"t,"), (0, b"\xef\xbb\xbft,"), (0, b"PK\x03\x04")),
    suffixes=(".csv", ".npz"),  # the reader names what is wrong (no_time_column, ...)
    description="a shot CSV (t,<channel>,...) or NPZ",
    inspect="wavedqm.formats.shots:inspect_shot",
)
BUILTIN_FORMATS: tuple[FileFormat, ...] = (FLOW_FORMAT, WFM_FORMAT, SHOT_FORMAT)


def read_head(path: Path) -> bytes:
    """The first :data:`HEAD_BYTES` bytes of ``path`` (raises OSError)."""
    with Path(path).open("rb") as fh:
        return fh.read(HEAD_BYTES)


def detect(path: Path, formats: Sequence[FileFormat] = BUILTIN_FORMATS) -> FileFormat:
    """The format of ``path`` among ``formats``: a signature first, then a suffix.
    InputFileError (``empty`` or ``unsupported``) for anything else."""
    path = Path(path)
    head = read_head(path)
    expected = " or ".join(f.description or f.name for f in formats)
    if not head:
        raise InputFileError(path, "empty", "the file is empty", expected)
    for fmt in formats:
        if fmt.has_signature(head):
            return fmt
    for fmt in formats:
        if fmt.has_suffix(path):
            return fmt
    raise InputFileError(
        path, "unsupported", "not a file of any known format (unknown signature)", expected
    )


def detect_format(path: Path, formats: Sequence[FileFormat] = BUILTIN_FORMATS) -> str:
    """The name of the format of ``path`` (:func:`detect`)."""
    return detect(path, formats).name
