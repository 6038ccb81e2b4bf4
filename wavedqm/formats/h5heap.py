"""A check, before HDF5 reads it, of the global heap behind a variable-length attribute.

HDF5 (2.0.0 as bundled with h5py 3.16, and earlier) loads a global heap collection by walking
its objects; an object header zeroed by damage (index 0, size 0) makes the walk step by zero
bytes, and ``H5HG__cache_heap_deserialize`` loops forever while holding Python's GIL
(HDFGroup/hdf5#1707). No Python thread runs again, so no timeout can stop it. Found by
fuzzing: 3 of 10⁵ mutated ``.FLOW.hdf5`` files, all through the string attribute
``geometry_info.drift_direction``.

:func:`check_vlen_attribute` finds the attribute's message in its object's header (version 1
or 2), reads the heap addresses of its value and walks each collection the way HDF5 does,
on the raw bytes, raising ``InputFileError`` (``read_error``) where HDF5 would not advance. A
structure it does not recognise (dense attribute storage, a shared datatype, an odd header) is
left to HDF5: the check only ever refuses a walk that cannot end. Cost: a few ``pread`` calls
of at most a few KiB each (the object header and one collection), per attribute.

Layouts: HDF5 File Format Specification 3.0, sections III.A.2 (global heap), IV.A.1.a/b
(object headers v1/v2), IV.A.2.m (attribute message), IV.A.2.q (continuation).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import h5py

from wavedqm.errors import InputFileError

REASON_DAMAGED = "read_error"
_MSG_ATTRIBUTE = 0x000C
_MSG_CONTINUATION = 0x0010
_VLEN_CLASS = 9
_MAX_HEADER_BYTES = 1 << 20
"""Most object-header bytes read while looking for the attribute (a real one is < 64 KiB)."""
_MAX_BLOCKS = 64
"""Most header continuation blocks followed."""
_UNDEFINED = (1 << 64) - 1


class _Unknown(Exception):
    """A structure this check does not recognise: leave the attribute to HDF5."""


def check_vlen_attribute(obj: h5py.Group | h5py.Dataset, name: str, path: Path) -> None:
    """Raise ``InputFileError`` if reading the variable-length attribute ``name`` of ``obj``
    would send HDF5 into an endless loop on a damaged global heap (module doc); return
    otherwise, also when the attribute is not variable-length or its layout is not known."""
    try:
        aid = obj.attrs.get_id(name)
        if not (aid.get_type().get_class() == h5py.h5t.VLEN
                or aid.get_type().is_variable_str()):  # fmt: skip
            return
    except (KeyError, AttributeError, OSError, RuntimeError, ValueError, TypeError):
        return
    try:
        plist = obj.file.id.get_create_plist()
        sizeof_addr, sizeof_size = plist.get_sizes()
        base = int(plist.get_userblock())
        info = h5py.h5o.get_info(obj.id)
        header_addr = int(info.addr)
    except (AttributeError, OSError, RuntimeError, ValueError, TypeError):
        return
    if (sizeof_addr, sizeof_size) != (8, 8):
        return
    fd = os.open(obj.file.filename, os.O_RDONLY)
    try:
        reader = _Reader(fd, base)
        try:
            data = _attribute_data(reader, header_addr, name.encode())
            for heap_addr in _heap_addresses(data):
                _walk_collection(reader, heap_addr, path, f"{obj.name} attribute {name}")
        except _Unknown:
            return
    finally:
        os.close(fd)


class _Reader:
    def __init__(self, fd: int, base: int) -> None:
        self.fd, self.base = fd, base
        self.size = os.fstat(fd).st_size

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or addr >= _UNDEFINED or n < 0 or self.base + addr + n > self.size:
            raise _Unknown
        data = os.pread(self.fd, n, self.base + addr)
        if len(data) != n:
            raise _Unknown
        return data


def _messages_v1(reader: _Reader, addr: int) -> list[tuple[int, bytes]]:
    head = reader.read(addr, 16)
    if head[0] != 1:
        raise _Unknown
    n_messages, _refs, size = struct.unpack_from("<HII", head, 2)
    blocks, out = [(addr + 16, size)], []
    while blocks and len(out) <= n_messages:
        start, length = blocks.pop(0)
        if length > _MAX_HEADER_BYTES or len(blocks) + len(out) > _MAX_BLOCKS + n_messages:
            raise _Unknown
        block, p = reader.read(start, length), 0
        while p + 8 <= len(block):
            mtype, msize, _flags = struct.unpack_from("<HHB", block, p)
            body = block[p + 8 : p + 8 + msize]
            if mtype == _MSG_CONTINUATION and len(body) >= 16:
                blocks.append(struct.unpack_from("<QQ", body))
            out.append((mtype, body))
            p += 8 + msize
    return out


def _messages_v2(reader: _Reader, addr: int) -> list[tuple[int, bytes]]:
    head = reader.read(addr, 6)
    if head[:4] != b"OHDR" or head[4] != 2:
        raise _Unknown
    flags, p = head[5], 6
    p += 16 if flags & 0x20 else 0
    p += 4 if flags & 0x10 else 0
    width = 1 << (flags & 0x03)
    chunk0 = int.from_bytes(reader.read(addr + p, width), "little")
    blocks = [(addr + p + width, chunk0)]
    order = 2 if flags & 0x04 else 0
    out: list[tuple[int, bytes]] = []
    first = True
    while blocks:
        start, length = blocks.pop(0)
        if length > _MAX_HEADER_BYTES or len(out) > 10 * _MAX_BLOCKS:
            raise _Unknown
        if not first:  # "OCHK" + messages + checksum
            start, length = start + 4, length - 8
        first = False
        block, q = reader.read(start, length), 0
        while q + 4 + order <= len(block):
            mtype = block[q]
            (msize,) = struct.unpack_from("<H", block, q + 1)
            body = block[q + 4 + order : q + 4 + order + msize]
            if mtype == _MSG_CONTINUATION and len(body) >= 16:
                blocks.append(struct.unpack_from("<QQ", body))
            out.append((mtype, body))
            q += 4 + order + msize
    return out


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _attribute_data(reader: _Reader, header_addr: int, name: bytes) -> tuple[bytes, bytes]:
    """(datatype, data) of the attribute message named ``name`` in the object header."""
    version = reader.read(header_addr, 1)[0]
    messages = (
        _messages_v1(reader, header_addr) if version == 1 else _messages_v2(reader, header_addr)
    )
    for mtype, body in messages:
        if mtype != _MSG_ATTRIBUTE or len(body) < 8:
            continue
        v = body[0]
        name_size, dt_size, ds_size = struct.unpack_from("<HHH", body, 2)
        if v == 1:
            p = 8
            sizes = (_pad8(name_size), _pad8(dt_size), _pad8(ds_size))
        elif v in (2, 3):
            if body[1] & 0x03:  # shared datatype or dataspace
                raise _Unknown
            p = 8 if v == 2 else 9
            sizes = (name_size, dt_size, ds_size)
        else:
            raise _Unknown
        found = body[p : p + name_size].rstrip(b"\0")
        if found != name:
            continue
        dt = body[p + sizes[0] : p + sizes[0] + dt_size]
        return dt, body[p + sum(sizes) :]
    raise _Unknown  # dense attribute storage, or not where h5o said


def _heap_addresses(attribute: tuple[bytes, bytes]) -> list[int]:
    """Global heap collection addresses referenced by a vlen attribute's value."""
    dt, data = attribute
    if not dt or dt[0] & 0x0F != _VLEN_CLASS:
        raise _Unknown
    addrs = []
    for p in range(0, len(data) - 15, 16):  # length (4), collection address (8), index (4)
        (addr,) = struct.unpack_from("<Q", data, p + 4)
        if addr not in (0, _UNDEFINED) and addr not in addrs:
            addrs.append(addr)
    return addrs


def _walk_collection(reader: _Reader, addr: int, path: Path, what: str) -> None:
    """Walk the objects of the collection at ``addr`` as HDF5 does; raise where it would
    not advance."""
    head = reader.read(addr, 16)
    if head[:4] != b"GCOL":
        return  # HDF5 refuses it with an error of its own
    (size,) = struct.unpack_from("<Q", head, 8)
    if size < 16 or size > _MAX_HEADER_BYTES * 64:
        return
    try:
        chunk = reader.read(addr, size)
    except _Unknown:
        return  # past the end of the file: HDF5 raises, it does not loop
    p = 16
    while p < size:
        if p + 16 > size:
            return  # the rest is free space
        idx, _refs, _res, obj_size = struct.unpack_from("<HHIQ", chunk, p)
        need = (16 + ((obj_size + 7) & ~7)) if idx > 0 else obj_size
        if need == 0 or need >= 1 << 63:  # no step, or one that wraps HDF5's pointer
            raise InputFileError(
                path,
                REASON_DAMAGED,
                f"{what}: the global heap collection at byte {reader.base + addr} is damaged "
                f"(object {idx} at offset {p} declares {obj_size} bytes; HDF5 would loop "
                "forever on it, HDFGroup/hdf5#1707)",
                "an undamaged HDF5 file",
            )
        p += need


def read_attribute(obj: h5py.Group | h5py.Dataset, name: str, path: Path) -> Any:
    """``obj.attrs[name]``, after :func:`check_vlen_attribute` (every reader reads attributes
    through this)."""
    check_vlen_attribute(obj, name, path)
    return obj.attrs[name]
