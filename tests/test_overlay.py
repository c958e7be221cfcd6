"""Mask overlays, class colours, legends and contact sheets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from steelscan.errors import ImageError
from steelscan.overlay import (CLASS_COLORS, class_color, class_colors, contact_sheet, mask_outline,
                               overlay_masks, save_png)


def _masks(h=40, w=60, c=3):
    m = np.zeros((c, h, w), np.uint8)
    m[0, 5:15, 5:20] = 1
    m[1, 20:35, 30:55] = 1
    return m


def test_class_colours_are_distinct_and_extend_past_the_palette():
    cols = class_colors(12)
    assert cols[: len(CLASS_COLORS)] == list(CLASS_COLORS)
    assert len(set(cols)) == 12
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in cols)
    assert class_color(20) == class_color(20)


def test_overlay_tints_only_mask_pixels_and_outlines():
    image = np.full((40, 60, 3), 100, np.uint8)
    masks = _masks()
    out = overlay_masks(image, masks, alpha=0.5, outline=True)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    outside = ~masks.any(axis=0)
    assert (out[outside] == 100).all()
    # interior pixel: half way between grey and the class colour
    expect = np.round(0.5 * 100 + 0.5 * np.array(CLASS_COLORS[0]))
    assert np.abs(out[10, 12].astype(int) - expect).max() <= 1
    # border pixel: the full class colour
    assert tuple(out[5, 10]) == CLASS_COLORS[0]
    assert tuple(out[27, 30]) == CLASS_COLORS[1]
    # empty class 3 leaves no trace; outline=False keeps borders tinted only
    plain = overlay_masks(image, masks, alpha=0.5, outline=False)
    assert tuple(plain[5, 10]) == tuple(out[10, 12])


def test_overlay_accepts_grey_bool_and_probability_masks():
    grey = np.full((20, 30), 50, np.uint8)
    probs = np.zeros((5, 20, 30), np.float32)
    probs[4, 2:8, 2:8] = 0.9
    probs[4, 10:12, 10:12] = 0.2  # below 0.5: not drawn
    out = overlay_masks(grey, probs)
    assert out.shape == (20, 30, 3)
    assert (out[11, 11] == 50).all() and not (out[4, 4] == 50).all()
    out_bool = overlay_masks(grey, probs > 0.5)
    assert np.array_equal(out, out_bool)


def test_overlay_rejects_mismatched_masks():
    with pytest.raises(ImageError):
        overlay_masks(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 10, 11), np.uint8))
    with pytest.raises(ImageError):
        overlay_masks(np.zeros((10, 10, 3), np.float32), np.zeros((2, 10, 10), np.uint8))


def test_mask_outline_is_the_border_ring():
    m = np.zeros((10, 10), bool)
    m[2:8, 2:8] = True
    ring = mask_outline(m)
    assert ring.sum() == 36 - 16 and ring[2, 2] and not ring[4, 4]


def test_contact_sheet_lays_out_mixed_sizes_with_legend_and_titles(tmp_path):
    images = [np.full((40, 200, 3), 80, np.uint8), np.full((100, 100), 160, np.uint8),
              np.full((30, 300, 3), 30, np.uint8)]
    legend = [(f"class_{i + 1}", c) for i, c in enumerate(class_colors(6))]
    sheet = contact_sheet(images, ["a", "b", "c"], columns=2, legend=legend)
    assert isinstance(sheet, Image.Image) and sheet.mode == "RGB"
    arr = np.asarray(sheet)
    assert arr.shape[1] >= 2 * 300
    # every legend colour appears as a swatch
    flat = arr.reshape(-1, 3)
    for _, colour in legend:
        assert (flat == np.array(colour, np.uint8)).all(axis=1).any()
    path = save_png(tmp_path / "sub" / "sheet.png", sheet)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == sheet.size
    assert not list((tmp_path / "sub").glob(".*.tmp"))


def test_contact_sheet_without_titles_and_save_array(tmp_path):
    sheet = contact_sheet([np.zeros((8, 8, 3), np.uint8)], columns=3)
    assert sheet.size[0] >= 8
    save_png(tmp_path / "a.png", np.zeros((5, 7), np.uint8))
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (7, 5) and im.mode == "RGB"
    with pytest.raises(ImageError):
        contact_sheet([])
