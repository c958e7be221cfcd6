"""Coil coordinates (steelscan.geometry): inclusive pixel boxes, drive side, mirrored bottom camera."""

from __future__ import annotations

import pytest

from steelscan.geometry import PixelSize, box_to_coil, cols_to_mm, rows_to_m, strip_columns, strip_width_mm

PIXEL = PixelSize(along_mm=2.0, across_mm=0.5)


def test_rows_are_inclusive_and_start_at_the_frame_position():
    assert rows_to_m(1.0, 2, 5, PIXEL) == pytest.approx((1.004, 1.012))
    assert rows_to_m(0.0, 0, 0, PIXEL) == pytest.approx((0.0, 0.002))  # one row is one pixel long


def test_drive_side_left_measures_from_the_left_strip_edge():
    box = box_to_coil([2, 10, 5, 20], 1.0, (4.5, 104.5), "left", PIXEL)
    assert (box.start_m, box.end_m) == pytest.approx((1.004, 1.012))
    assert (box.across_start_mm, box.across_end_mm) == pytest.approx((2.75, 8.25))
    assert box.length_mm == pytest.approx(8.0) and box.width_mm == pytest.approx(5.5)


def test_mirrored_bottom_camera_gives_the_same_coil_position():
    """The bottom camera sees the strip mirrored: a defect at image column x on a mirrored
    image (x -> W-1-x, strip likewise) with drive side right lands where the top's did."""
    width, strip, box = 200, (4.5, 104.3), [2, 10, 5, 20]
    top = box_to_coil(box, 0.5, strip, "left", PIXEL)
    mirrored = [box[0], width - 1 - box[3], box[2], width - 1 - box[1]]
    bottom = box_to_coil(mirrored, 0.5, (width - strip[1], width - strip[0]), "right", PIXEL)
    assert (bottom.across_start_mm, bottom.across_end_mm) == pytest.approx((top.across_start_mm, top.across_end_mm))
    assert (bottom.start_m, bottom.end_m) == pytest.approx((top.start_m, top.end_m))
    # and on the same image the two drive sides are each other's complement across the strip
    right = cols_to_mm(10, 20, strip, "right", PIXEL)
    assert right[0] == pytest.approx(strip_width_mm(strip, PIXEL) - top.across_end_mm)


def test_sub_pixel_strip_columns_and_clamping():
    assert strip_columns((10.3, 20.6), 30) == (10, 21)    # centres 10.5 .. 20.5 lie on the strip
    assert strip_columns((10.6, 20.4), 30) == (11, 20)
    assert strip_columns((-3.0, 40.0), 30) == (0, 30)
    box = box_to_coil([0, 10, 0, 12], 0.0, (10.3, 20.6), "left", PIXEL, clamp=True)
    assert box.across_start_mm == 0.0 and box.across_end_mm == pytest.approx((13 - 10.3) * 0.5)
    with pytest.raises(ValueError):
        cols_to_mm(0, 1, (0, 5), "up", PIXEL)
    with pytest.raises(ValueError):
        PixelSize(0.0, 1.0)
