"""Image crops of defects: cut from the frame(s) the defect lies in, stitched along the strip,
scaled down to a bounded size and stored as PNG bytes.

A crop part is a rectangle of one frame in *stream pixels*: rows counted from the coil head
(`round(frame_m / along) + y`), columns of the camera image, so the parts of a defect that
crosses frame boundaries paste into one picture. A long defect keeps only its first
`max_rows` rows (its head): memory per open defect is bounded."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class CropPart:
    row: int            # stream row of pixels[0]
    col: int            # image column of pixels[:, 0]
    pixels: np.ndarray  # (h, w, 3) uint8, a copy

    @property
    def stop(self) -> int:
        return self.row + self.pixels.shape[0]


def cut_part(image: np.ndarray, bbox: tuple[int, int, int, int], rows: tuple[int, int], margin: int,
             stream_row0: int) -> CropPart:
    """The box [ymin, xmin, ymax, xmax] (inclusive, frame pixels) of `image` plus `margin` px,
    kept within the segment's rows [rows[0], rows[1]) and the frame."""
    y0, x0, y1, x1 = bbox
    ya, yb = max(y0 - margin, rows[0]), min(y1 + 1 + margin, rows[1])
    xa, xb = max(x0 - margin, 0), min(x1 + 1 + margin, image.shape[1])
    return CropPart(stream_row0 + ya, xa, np.array(image[ya:yb, xa:xb]))


def keep_head(parts: list[CropPart], max_rows: int) -> list[CropPart]:
    """The parts within the first `max_rows` stream rows of the earliest part (the last one cut)."""
    if not parts:
        return parts
    first = min(p.row for p in parts)
    out = []
    for p in parts:
        if p.row >= first + max_rows:
            continue
        if p.stop > first + max_rows:
            p = CropPart(p.row, p.col, p.pixels[:first + max_rows - p.row])
        out.append(p)
    return out


def render_crop(parts: list[CropPart], max_px: int) -> bytes | None:
    """Paste the parts onto one canvas (black where no part is), fit it in max_px x max_px, PNG."""
    if not parts:
        return None
    r0, r1 = min(p.row for p in parts), max(p.stop for p in parts)
    c0, c1 = min(p.col for p in parts), max(p.col + p.pixels.shape[1] for p in parts)
    canvas = np.zeros((r1 - r0, c1 - c0, 3), np.uint8)
    for p in parts:
        canvas[p.row - r0:p.stop - r0, p.col - c0:p.col - c0 + p.pixels.shape[1]] = p.pixels
    im = Image.fromarray(canvas)
    im.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
