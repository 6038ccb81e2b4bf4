"""``wavedqm voxels merge A.h5 B.h5 ... --out M.h5``: merge the ``voxels.h5`` of runs exactly
(counts added, sums added with one rounding, M2 by Chan's formula); the grids must be the
same (a clear error names the difference otherwise)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wavedqm.analysis.voxels import merge_voxel_arrays
from wavedqm.errors import UsageError
from wavedqm.exporters.voxel_files import TALLY_ATTRS, VoxelArrays, read_voxels, write_voxels


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    voxels = sub.add_parser("voxels", help="voxel outputs of charge runs (merge)")
    vsub = voxels.add_subparsers(dest="voxels_command", required=True)
    merge = vsub.add_parser("merge", help="merge runs' voxels.h5 files exactly (same grid)")
    merge.add_argument("inputs", nargs="+", type=Path, help="voxels.h5 files")
    merge.add_argument("--out", type=Path, required=True, help="merged voxels.h5 to write")
    merge.add_argument("--run", default="merged", help="run name stored in the merged file")


def merge_files(inputs: list[Path], out: Path, run: str = "merged") -> VoxelArrays:
    if len(inputs) < 2:
        raise UsageError("merge: give at least two voxels.h5 files")
    first = read_voxels(inputs[0])
    count, sums, m2 = first.count, first.sum, first.m2
    files, tallies = list(first.files), dict(first.tallies)
    for path in inputs[1:]:
        other = read_voxels(path)
        difference = first.grid.difference(other.grid)
        if difference is not None:
            raise UsageError(
                f"merge: {path} has another grid than {inputs[0]}: {difference} "
                "(expected the same origin_cm, voxel_size_cm and shape)"
            )
        count, sums, m2 = merge_voxel_arrays((count, sums, m2), (other.count, other.sum, other.m2))
        files += other.files
        for key in TALLY_ATTRS:
            tallies[key] = tallies.get(key, 0) + other.tallies.get(key, 0)
    merged = VoxelArrays(run, first.grid, count, sums, m2, files, tallies)
    write_voxels(out, merged)
    return merged


def run(args: argparse.Namespace) -> int:
    merged = merge_files(list(args.inputs), args.out, args.run)
    print(
        f"merged {len(args.inputs)} voxel files ({len(merged.files)} data files, "
        f"{int(merged.count.sum())} hits in the grid) into {args.out}"
    )
    return 0
