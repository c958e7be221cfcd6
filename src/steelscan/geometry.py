"""Coil coordinates: where a pixel of a frame lies on the coil. One home for the conventions.

- Image rows (y, height) run **along** the strip, row 0 nearest the coil head; columns (x) run
  across. A Severstal frame is 1600 px across and 256 px along.
- A frame's `position_m` is metres from the coil head to the top edge of its row 0.
- `PixelSize(along_mm, across_mm)`: the size of one pixel on the strip.
- Pixel boxes are inclusive: rows y0..y1 span `frame_m + y0*along/1000` to
  `frame_m + (y1+1)*along/1000` metres; columns the same rule across.
- The strip occupies columns [left, right) of the frame (floats: sub-pixel edges). Across
  positions are millimetres from the **drive-side** strip edge: the left edge when the
  surface's `drive_side` is "left" in the image, else the right edge (the bottom camera
  usually sees the strip mirrored).
- A column is on the strip when its centre (x + 0.5) lies in [left, right) (`strip_columns`).
  Across positions of boxes are clamped to [0, strip width] (`box_to_coil(..., clamp=True)`):
  a half-covered edge column does not put a defect off the strip.
- `length_mm` is the extent along the strip, `width_mm` across.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DRIVE_SIDES = ("left", "right")


@dataclass(frozen=True)
class PixelSize:
    """mm per pixel along the strip (rows) and across it (columns)."""

    along_mm: float = 1.0
    across_mm: float = 1.0

    def __post_init__(self) -> None:
        if not (self.along_mm > 0 and self.across_mm > 0):
            raise ValueError(f"pixel size must be > 0 mm, got along={self.along_mm} across={self.across_mm}")


@dataclass(frozen=True)
class CoilBox:
    """A box in coil coordinates: metres along from the head, mm across from the drive-side edge."""

    start_m: float
    end_m: float
    across_start_mm: float
    across_end_mm: float

    @property
    def length_mm(self) -> float:
        return (self.end_m - self.start_m) * 1000.0

    @property
    def width_mm(self) -> float:
        return self.across_end_mm - self.across_start_mm


def rows_to_m(frame_m: float, y0: int, y1: int, pixel: PixelSize) -> tuple[float, float]:
    """Inclusive rows y0..y1 of a frame whose row 0 is at `frame_m` -> (start_m, end_m)."""
    return frame_m + y0 * pixel.along_mm / 1000.0, frame_m + (y1 + 1) * pixel.along_mm / 1000.0


def cols_to_mm(x0: int, x1: int, strip: tuple[float, float], drive_side: str,
               pixel: PixelSize) -> tuple[float, float]:
    """Inclusive columns x0..x1 -> (across_start_mm, across_end_mm) from the drive-side edge of
    a strip that occupies columns [strip[0], strip[1])."""
    left, right = strip
    if drive_side == "left":
        return (x0 - left) * pixel.across_mm, (x1 + 1 - left) * pixel.across_mm
    if drive_side == "right":
        return (right - (x1 + 1)) * pixel.across_mm, (right - x0) * pixel.across_mm
    raise ValueError(f"drive_side must be one of {DRIVE_SIDES}, got {drive_side!r}")


def strip_columns(strip: tuple[float, float], width: int) -> tuple[int, int]:
    """Columns [first, stop) of a `width`-px frame whose centres lie on the strip [left, right)."""
    left, right = strip
    first = min(max(int(math.ceil(left - 0.5)), 0), width)
    stop = min(max(int(math.ceil(right - 0.5)), first), width)
    return first, stop


def strip_width_mm(strip: tuple[float, float], pixel: PixelSize) -> float:
    return (strip[1] - strip[0]) * pixel.across_mm


def box_to_coil(bbox: tuple[int, int, int, int] | list[int], frame_m: float, strip: tuple[float, float],
                drive_side: str, pixel: PixelSize, *, clamp: bool = False) -> CoilBox:
    """A frame's inclusive pixel box [ymin, xmin, ymax, xmax] (the `Defect.bbox` order) -> CoilBox.
    `clamp`: across positions limited to [0, strip width] mm."""
    y0, x0, y1, x1 = (int(v) for v in bbox)
    start_m, end_m = rows_to_m(frame_m, y0, y1, pixel)
    a0, a1 = cols_to_mm(x0, x1, strip, drive_side, pixel)
    if clamp:
        width = strip_width_mm(strip, pixel)
        a0, a1 = min(max(a0, 0.0), width), min(max(a1, 0.0), width)
    return CoilBox(start_m, end_m, a0, a1)
