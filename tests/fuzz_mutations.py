"""Byte-level mutations of valid files for the fuzz targets (tests/fuzz_targets.py): flip a bit, set a byte,
truncate, insert a run, delete a run, overwrite a 16/32-bit field with an edge value (either byte order).
Positions wrap around the file, so the same edits apply to seeds of any length."""
from __future__ import annotations

import struct
import zlib

from hypothesis import strategies as st

OPS = ("flip", "set", "truncate", "insert", "delete", "int16", "int32")
EDGE_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    """Apply (op, position, value) edits in turn; positions wrap around the current length."""
    buf = bytearray(data)
    for op, pos, value in ops:
        at = pos % (len(buf) + 1)
        if op == "flip" and at < len(buf):
            buf[at] ^= 1 << (value % 8)
        elif op == "set" and at < len(buf):
            buf[at] = value % 256
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = bytes([value % 256]) * (1 + (value >> 8) % 64)
        elif op == "delete":
            del buf[at:at + 1 + value % 64]
        elif op in ("int16", "int32"):
            size, code = (2, "H") if op == "int16" else (4, "I")
            edge = EDGE_INTS[value % len(EDGE_INTS)] & ((1 << 8 * size) - 1)
            order = ">" if (value // len(EDGE_INTS)) % 2 else "<"
            buf[at:at + size] = struct.pack(order + code, edge)
    return bytes(buf)


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC of a PNG (as far as its length fields hold), so edits pass the CRC check."""
    buf, at = bytearray(data), 8
    while at + 12 <= len(buf):
        length = int.from_bytes(buf[at:at + 4], "big")
        end = at + 8 + length
        if end + 4 > len(buf):
            break
        buf[end:end + 4] = zlib.crc32(bytes(buf[at + 4:end])).to_bytes(4, "big")
        at = end + 4
    return bytes(buf)


_ops = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
                min_size=1, max_size=6)


def mutated(seeds: list[bytes], png: bool = False) -> st.SearchStrategy[bytes]:
    """A seed file with 1-6 byte edits (PNG: CRCs recomputed afterwards half of the time)."""
    edited = st.builds(mutate, st.sampled_from(seeds), _ops)
    return st.tuples(edited, st.booleans()).map(lambda t: fix_png_crcs(t[0]) if png and t[1] else t[0])
