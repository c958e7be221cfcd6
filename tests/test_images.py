"""The one image decoder: files and bytes agree; 16-bit is scaled (not clipped), RGBA loses
only its alpha, grey becomes three equal channels; failures are typed and name the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from steelscan.errors import ImageError
from steelscan.images import NotAnImageError, decode_image_bytes, image_size, load_image


def encode(array: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 60000, 5 * 7).reshape(5, 7).astype(np.uint16)
    data = encode(ramp)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really stored as 16-bit
    img = decode_image_bytes(data, "ramp.png")
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    grey = img[..., 0].astype(int).ravel()
    assert grey[0] == 0 and grey[-1] == 255 and np.all(np.diff(grey) >= 0)
    assert len(np.unique(grey)) == grey.size  # clipping at 255 would merge everything above 255
    np.testing.assert_allclose(grey, ramp.ravel() / 60000 * 255, atol=0.51)
    (tmp_path / "ramp.png").write_bytes(data)
    np.testing.assert_array_equal(load_image(tmp_path / "ramp.png"), img)


def test_rgba_drops_only_alpha_and_grey_becomes_three_channels():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (6, 9, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image_bytes(encode(rgba)), rgba[..., :3])
    grey = rng.integers(0, 256, (6, 9), dtype=np.uint8)
    for fmt in ("PNG", "BMP"):
        img = decode_image_bytes(encode(grey, fmt))
        assert all(np.array_equal(img[..., c], grey) for c in range(3))
    smooth = np.broadcast_to(np.linspace(40, 200, 32, dtype=np.uint8)[None, :, None], (16, 32, 3)).copy()
    jpeg = decode_image_bytes(encode(smooth, "JPEG", quality=95))
    assert jpeg.shape == (16, 32, 3) and np.abs(jpeg.astype(int) - smooth).max() <= 8


def test_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(NotAnImageError, match="notes.png: not a readable image"):
        decode_image_bytes(b"plain text, not pixels", "notes.png")
    with pytest.raises(ImageError, match="empty.png: empty file"):
        decode_image_bytes(b"", "empty.png")
    truncated = encode(np.zeros((64, 64), np.uint8))[:60]
    with pytest.raises(ImageError, match="cut.png: unreadable or corrupt PNG") as err:
        decode_image_bytes(truncated, "cut.png")
    assert not isinstance(err.value, NotAnImageError)  # recognised, then corrupt: a different answer
    with pytest.raises(ImageError, match=r"big.png: 20x10 pixels is more than 100"):
        decode_image_bytes(encode(np.zeros((10, 20), np.uint8)), "big.png", max_pixels=100)
    (tmp_path / "a.bmp").write_bytes(encode(np.zeros((3, 5), np.uint8), "BMP"))
    assert image_size(tmp_path / "a.bmp") == (3, 5)
    with pytest.raises(ImageError, match="missing.png: image not found"):
        load_image(tmp_path / "missing.png")
