"""Draw ScoreBridge's icon (a bar chart under a bridge arc) as PNGs, with no imaging library.

    python excel_addin/tools/make_icons.py excel_addin/src/icons 16 32 64 80
"""
from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

ACCENT = (31, 78, 121)
WHITE = (255, 255, 255)


def pixel(x: float, y: float) -> tuple[int, int, int, int]:
    """The colour at (x, y) in a unit square: a rounded tile, three bars and an arc."""
    r = 0.18
    cx, cy = min(max(x, r), 1 - r), min(max(y, r), 1 - r)
    if math.hypot(x - cx, y - cy) > r:
        return (0, 0, 0, 0)
    for left, top in ((0.22, 0.58), (0.43, 0.45), (0.64, 0.32)):
        if left <= x <= left + 0.14 and top <= y <= 0.80:
            return (*WHITE, 255)
    d = math.hypot(x - 0.5, y - 0.62)
    if 0.36 <= d <= 0.43 and y < 0.55:
        return (*WHITE, 255)
    return (*ACCENT, 255)


def png(size: int) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray([0])
        for i in range(size):
            samples = [pixel((i + (a + 0.5) / 4) / size, (j + (b + 0.5) / 4) / size)
                       for a in range(4) for b in range(4)]  # 4x4 supersampling
            alpha = sum(s[3] for s in samples) / 16
            colour = [sum(s[k] * s[3] for s in samples) / max(sum(s[3] for s in samples), 1)
                      for k in range(3)]
            row += bytes([round(c) for c in colour] + [round(alpha)])
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for size in map(int, sys.argv[2:]):
        (out / f"icon-{size}.png").write_bytes(png(size))
