"""Draw HashHouse's app icons with the standard library only (no Pillow needed).

    python assets/icons/make_icons.py        # rewrites the PNGs and favicon.ico

The mark is a gold house with a dark "#" in it on the app's dark background. Shapes are
signed distance functions, so one sample per pixel gives smooth (anti-aliased) edges.

- icons/icon-{192,512}.png         purpose "any": rounded dark tile, transparent corners
- icons/maskable-{192,512}.png     purpose "maskable": full-bleed background, the mark
                                   inside the central safe zone (radius 40 % of the size)
- apple-touch-icon.png (180)       opaque full-bleed, iOS rounds the corners itself
- favicon.ico (16, 32, 48)         PNG images in an ICO container
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent

BG = (0x0F, 0x11, 0x15)
GOLD = (0xF5, 0xB4, 0x00)

# The house, in a unit square (y grows downwards).
HOUSE = [(0.50, 0.14), (0.88, 0.47), (0.78, 0.47), (0.78, 0.86),
         (0.22, 0.86), (0.22, 0.47), (0.12, 0.47)]
# The "#": two vertical and two horizontal bars (centre x/y, half width, half height).
HASH_BARS = [(0.44, 0.655, 0.026, 0.145), (0.56, 0.655, 0.026, 0.145),
             (0.50, 0.595, 0.145, 0.026), (0.50, 0.715, 0.145, 0.026)]


# Signed distance functions: negative inside -------------------------------------------
def sd_polygon(px: float, py: float, pts: list[tuple[float, float]]) -> float:
    d = (px - pts[0][0]) ** 2 + (py - pts[0][1]) ** 2
    sign = 1.0
    n = len(pts)
    j = n - 1
    for i in range(n):
        vix, viy = pts[i]
        vjx, vjy = pts[j]
        ex, ey = vjx - vix, vjy - viy
        wx, wy = px - vix, py - viy
        t = max(0.0, min(1.0, (wx * ex + wy * ey) / (ex * ex + ey * ey)))
        bx, by = wx - ex * t, wy - ey * t
        d = min(d, bx * bx + by * by)
        c1 = py >= viy
        c2 = py < vjy
        c3 = ex * wy > ey * wx
        if (c1 and c2 and c3) or (not c1 and not c2 and not c3):
            sign = -sign
        j = i
    return sign * math.sqrt(d)


def sd_box(px: float, py: float, cx: float, cy: float, hw: float, hh: float,
           r: float = 0.0) -> float:
    qx = abs(px - cx) - hw + r
    qy = abs(py - cy) - hh + r
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def coverage(sd: float, pixel: float) -> float:
    """Fraction of a pixel covered by a shape at signed distance ``sd`` (unit scale)."""
    return max(0.0, min(1.0, 0.5 - sd / pixel))


# Rendering ----------------------------------------------------------------------------
Pixel = tuple[int, int, int, int]


def render(size: int, *, full_bleed: bool, scale: float) -> list[list[Pixel]]:
    """``scale`` shrinks the mark around the centre (1.0 = as drawn in the unit square)."""
    px_unit = 1.0 / size
    rows: list[list[Pixel]] = []
    for y in range(size):
        row: list[Pixel] = []
        for x in range(size):
            u = (x + 0.5) / size
            v = (y + 0.5) / size
            if full_bleed:
                tile = 1.0
            else:
                tile = coverage(sd_box(u, v, 0.5, 0.5, 0.5, 0.5, 0.22), px_unit)
            # Mark coordinates.
            mu = 0.5 + (u - 0.5) / scale
            mv = 0.5 + (v - 0.5) / scale
            mark_px = px_unit / scale
            house = coverage(sd_polygon(mu, mv, HOUSE), mark_px)
            hash_cov = 0.0
            if house > 0.0:
                hash_sd = min(sd_box(mu, mv, *bar) for bar in HASH_BARS)
                hash_cov = coverage(hash_sd, mark_px)
            gold = house * (1.0 - hash_cov)
            rgb = tuple(round(b + (g - b) * gold) for b, g in zip(BG, GOLD, strict=True))
            row.append((rgb[0], rgb[1], rgb[2], round(255 * tile)))
        rows.append(row)
    return rows


def png_bytes(rows: list[list[Pixel]]) -> bytes:
    height = len(rows)
    width = len(rows[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def ico_bytes(pngs: list[tuple[int, bytes]]) -> bytes:
    """An ICO file whose images are PNGs (supported by every current browser)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries = b""
    blobs = b""
    for size, data in pngs:
        dim = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        blobs += data
    return header + entries + blobs


def main() -> None:
    any_icon: Callable[[int], bytes] = lambda s: png_bytes(  # noqa: E731
        render(s, full_bleed=False, scale=0.92))
    maskable: Callable[[int], bytes] = lambda s: png_bytes(  # noqa: E731
        render(s, full_bleed=True, scale=0.72))
    outputs = {
        HERE / "icon-192.png": any_icon(192),
        HERE / "icon-512.png": any_icon(512),
        HERE / "maskable-192.png": maskable(192),
        HERE / "maskable-512.png": maskable(512),
        ASSETS / "apple-touch-icon.png": maskable(180),
        ASSETS / "favicon.ico": ico_bytes([(s, any_icon(s)) for s in (16, 32, 48)]),
    }
    for path, data in outputs.items():
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ASSETS.parent)} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
