"""``python -m stress.hangpoint [wavedqm arguments...]``: run ``wavedqm`` in which opening an
HDF5 file whose name starts with ``poison`` blocks inside a C call that holds Python's GIL,
as HDF5 did on a damaged global heap (HDFGroup/hdf5#1707, now refused before HDF5 reads it:
``wavedqm.formats.h5heap``). No Python thread of the daemon runs meanwhile: the test of the
poison-file guard (``tests/test_stall.py``) needs a hang nothing in Python can interrupt.
The library is not changed: ``h5py.File`` is wrapped in this process only.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

HANG_SECONDS = 3600
"""How long the C call blocks (s): far longer than any test waits."""


def arm() -> None:
    import h5py

    libc = ctypes.PyDLL(None)  # a PyDLL call keeps the GIL, unlike ctypes.CDLL
    original = h5py.File.__init__

    def init(self: Any, name: Any, *args: Any, **kwargs: Any) -> None:
        named = isinstance(name, str | bytes | os.PathLike)  # h5py also takes a FileID
        if named and os.path.basename(os.fsdecode(name)).startswith("poison"):
            libc.sleep(HANG_SECONDS)
        original(self, name, *args, **kwargs)

    h5py.File.__init__ = init


def main() -> int:
    arm()
    from wavedqm.cli import main as wavedqm_main

    return int(wavedqm_main(sys.argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
