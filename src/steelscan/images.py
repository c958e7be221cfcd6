"""The one image decoder: files and in-memory bytes (uploads) -> RGB uint8 (H, W, 3).

Reads what Pillow reads (JPEG, PNG, BMP, TIFF, ...): grey, palette, RGB, RGBA (alpha
dropped), 8- and 16-bit. 16-bit and float images are min-max scaled to 0..255 per image
(never clipped, which would turn a 16-bit frame white); 16-bit RGB is reduced by Pillow
to its high bytes. Grey becomes three equal channels. Every failure is an `ImageError`
naming the file: `NotAnImageError` when the bytes are no image format at all (a service
answers 415), plain `ImageError` when they are a corrupt or oversized image (422)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # more than 8 bits per pixel
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class NotAnImageError(ImageError):
    """Bytes in no image format Pillow knows (as opposed to a corrupt image)."""


def to_rgb(im: Image.Image) -> np.ndarray:
    """A loaded PIL image as RGB uint8 (H, W, 3); wide grey (16-bit, float) min-max scaled."""
    if im.mode in WIDE_MODES:
        a = np.asarray(im, dtype=np.float32)
        low, span = float(a.min()), float(a.max() - a.min())
        a = (a - low) / max(span, 1e-6) * 255.0
        return np.repeat(a.round().astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _decode(source: str | Path | BinaryIO, name: object, max_pixels: int | None) -> np.ndarray:
    try:
        im = Image.open(source)
    except FileNotFoundError:
        raise ImageError("image not found", path=name) from None
    except UnidentifiedImageError:
        # a file "is" an image by its name, so it is corrupt; bytes are just not an image
        lead = "unreadable or corrupt image" if isinstance(source, Path) else "not a readable image"
        raise NotAnImageError(f"{lead}: no known image format (JPEG, PNG, BMP or TIFF expected)",
                              path=name) from None
    except _READ_ERRORS as e:
        raise ImageError(f"unreadable or corrupt image ({e.__class__.__name__}: {e})", path=name) from None
    with im:
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise ImageError(f"{w}x{h} pixels is more than {max_pixels:,}", path=name)
        try:
            im.load()
            return to_rgb(im)
        except _READ_ERRORS as e:  # truncated/corrupt data in a recognised format
            detail = " ".join(str(e).split())[:120]
            raise ImageError(f"unreadable or corrupt {im.format or 'image'} ({e.__class__.__name__}: {detail})",
                             path=name) from None


def load_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """The image file at `path` as RGB uint8, shape (H, W, 3)."""
    return _decode(Path(path), Path(path), max_pixels)


def decode_image_bytes(data: bytes, name: str = "<upload>", *, max_pixels: int | None = None) -> np.ndarray:
    """Like `load_image` for in-memory bytes (uploads); `name` appears in errors."""
    if not data:
        raise ImageError("empty file", path=name)
    return _decode(io.BytesIO(data), name, max_pixels)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return h, w
    except FileNotFoundError:
        raise ImageError("image not found", path=path) from None
    except (UnidentifiedImageError, *_READ_ERRORS) as e:
        raise ImageError(f"unreadable or corrupt image ({e.__class__.__name__})", path=path) from None
