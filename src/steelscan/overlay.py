"""Drawing defect masks over strip images: class colours, overlays, contact sheets.

Used by `steelscan synth --preview`, by prediction overlays and by reports. Works for
any image size and any number of classes. Colours follow the Okabe-Ito palette (safe
for the common colour-vision deficiencies); classes beyond it get evenly spread hues.
"""

from __future__ import annotations

import colorsys
import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import write_bytes
from .defaults import FRAME_WIDTH
from .errors import ImageError

# Okabe-Ito: orange, sky blue, bluish green, reddish purple, yellow, blue, vermillion.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167),
    (240, 228, 66), (0, 114, 178), (213, 94, 0),
)


def class_color(index: int) -> tuple[int, int, int]:
    """RGB colour of class channel `index` (0-based). The first len(CLASS_COLORS) come from
    the palette; later ones are hues spaced by the golden ratio (distinct, deterministic)."""
    if index < len(CLASS_COLORS):
        return CLASS_COLORS[index]
    hue = (0.11 + 0.618034 * (index - len(CLASS_COLORS))) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def class_colors(n: int) -> list[tuple[int, int, int]]:
    return [class_color(i) for i in range(n)]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A grey (H, W), (H, W, 1) or RGB(A) uint8 image as RGB uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    raise ImageError(f"expected an image of shape (H, W) or (H, W, 3), got {image.shape}")


def mask_outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels of a bool (H, W) mask that lie within `width` px of its border (4-neighbour)."""
    inner = mask.copy()
    for _ in range(max(1, width)):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def overlay_masks(image: np.ndarray, masks: np.ndarray, alpha: float = 0.45, outline: bool = True,
                  colors: Sequence[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Tint each class's mask pixels with its colour and outline the masks.

    image: uint8 (H, W) or (H, W, 3). masks: (C, H, W) bool/0-1 (or probabilities, taken
    as > 0.5). alpha: 0..1 opacity of the tint. Returns RGB uint8 (H, W, 3)."""
    rgb = as_rgb(image)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != rgb.shape[:2]:
        raise ImageError(f"masks of shape {masks.shape} do not fit an image of {rgb.shape[:2]}")
    binary = masks > 0.5 if masks.dtype.kind == "f" else masks.astype(bool)
    colors = list(colors) if colors is not None else class_colors(len(binary))
    out = rgb.astype(np.float32)
    edge_px = max(1, round(min(rgb.shape[:2]) / 200))
    for c, m in enumerate(binary):
        if not m.any():
            continue
        col = np.array(colors[c], np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * col
        if outline:
            out[mask_outline(m, edge_px)] = col
    return np.round(out).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow without scalable default font
        return ImageFont.load_default()


def draw_legend(entries: Sequence[tuple[str, tuple[int, int, int]]], width: int,
                font_size: int = 16, background=(32, 32, 32)) -> Image.Image:
    """A strip `width` px wide with one colour swatch + name per entry, wrapped into rows."""
    font = _font(font_size)
    pad, box = font_size // 2, font_size
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items, rows, x = [], [[]], pad
    for name, color in entries:
        text_w = int(probe.textlength(str(name), font=font))
        item_w = box + pad // 2 + text_w + 2 * pad
        if rows[-1] and x + item_w > width:
            rows.append([])
            x = pad
        rows[-1].append((name, color, x))
        x += item_w
    line_h = font_size + pad
    im = Image.new("RGB", (width, pad + line_h * len(rows)), background)
    draw = ImageDraw.Draw(im)
    for r, row in enumerate(rows):
        y = pad // 2 + r * line_h + (line_h - box) // 2
        for name, color, x in row:
            draw.rectangle([x, y, x + box, y + box], fill=tuple(color), outline=(255, 255, 255))
            draw.text((x + box + pad // 2, y + box // 2), str(name), fill=(235, 235, 235), font=font,
                      anchor="lm")
        items.extend(row)
    return im


def contact_sheet(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                  columns: int = 1, legend: Sequence[tuple[str, tuple[int, int, int]]] | None = None,
                  max_tile_width: int = FRAME_WIDTH, background=(32, 32, 32)) -> Image.Image:
    """Lay images out in a grid, each under its title, with an optional colour legend on top.

    images: uint8 (H, W) or (H, W, 3), any sizes (each is scaled to fit a common tile width,
    at most `max_tile_width` px). Returns a PIL RGB image."""
    if not images:
        raise ImageError("contact sheet needs at least one image")
    titles = list(titles) if titles is not None else [""] * len(images)
    columns = max(1, min(columns, len(images)))
    tile_w = min(max_tile_width, max(np.asarray(im).shape[1] for im in images))
    tiles = []
    for im in images:
        pil = Image.fromarray(as_rgb(np.asarray(im)))
        scale = tile_w / pil.width
        tiles.append(pil.resize((tile_w, max(1, round(pil.height * scale))), Image.BILINEAR)
                     if pil.width != tile_w else pil)
    font_size = int(np.clip(tile_w / 60, 11, 22))
    font = _font(font_size)
    pad = max(4, font_size // 2)
    title_h = font_size + pad if any(titles) else 0
    cell_h = max(t.height for t in tiles) + title_h + pad
    rows = -(-len(tiles) // columns)
    sheet_w = columns * tile_w + (columns + 1) * pad
    legend_im = draw_legend(legend, sheet_w, font_size, background) if legend else None
    top = legend_im.height if legend_im else pad
    sheet = Image.new("RGB", (sheet_w, top + rows * cell_h), background)
    if legend_im:
        sheet.paste(legend_im, (0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (tile, title) in enumerate(zip(tiles, titles)):
        r, c = divmod(i, columns)
        x = pad + c * (tile_w + pad)
        y = top + r * cell_h
        if title_h:
            draw.text((x, y + title_h // 2), str(title), fill=(235, 235, 235), font=font, anchor="lm")
        sheet.paste(tile, (x, y + title_h))
    return sheet


def save_png(path: str | Path, image: np.ndarray | Image.Image) -> Path:
    """Write an RGB/grey uint8 array or a PIL image as PNG, atomically."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(as_rgb(np.asarray(image)))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())
    return Path(path)


def preview_dataset(dataset, path: str | Path, count: int = 8, *, raw: bool = True,
                    descriptions: Sequence[str] | None = None) -> Path:
    """A contact sheet of the first `count` images of a KaggleDataset (layout.open_dataset):
    each image (if `raw`) beside its mask overlay, titled with its id and classes, under a
    class legend. Written as PNG to `path`."""
    from .images import load_image

    names = list(dataset.class_names) or [f"class_{i + 1}" for i in range(dataset.num_classes)]
    if descriptions:
        names = [f"{n}: {d}" for n, d in zip(names, descriptions)]
    legend = list(zip(names, class_colors(dataset.num_classes)))
    images, titles = [], []
    for record in list(dataset)[:count]:
        image = load_image(record.path)
        masks = dataset.masks(record, *image.shape[:2])
        label = ", ".join(str(c) for c in record.class_ids) or "clean"
        if raw:
            images.append(image)
            titles.append(f"{record.image_id}")
        images.append(overlay_masks(image, masks))
        titles.append(f"{record.image_id}  classes: {label}")
    return save_png(path, contact_sheet(images, titles, columns=2 if raw else 1, legend=legend))
