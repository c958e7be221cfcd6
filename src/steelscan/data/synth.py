"""Synthetic steel strip: steelscan's embedded default data (what `make demo` trains on).

What is modelled. A Severstal frame shows a 256-px stretch of strip (rows) across
1600 px of its width (columns); the rolling direction runs down the rows, so the
surface texture is made of *vertical* streaks. The background is grey (three equal
channels) and built as: a base grey level; vertically elongated low-contrast streak
noise plus a perfectly straight fine column profile (roll marks); faint horizontal
scan lines; optional soft dark stains elongated along the rows (as on clean real
frames); a smooth multiplicative illumination (lobes across the width, a gradient
down the rows, sometimes a bright glare band along the top or bottom edge); grain
noise and sparse dust specks; and, on some frames, a black off-strip region left or
right of a slightly tilted strip edge. Defects are drawn *from* their masks: each
defect component first gets a binary shape, then a brightness change that is
non-zero on every mask pixel (soft towards the edge but never below MIN_CONTRAST
grey levels) and exactly zero outside, so the masks cover exactly what is drawn.
Class 1 = clusters of small pits (speckled bright/dark blobs); class 2 = thin, dark,
wavy vertical grooves with a bright lip; class 3 = long scratches (straight bands,
mostly along the rolling direction, some diagonal, full of striations parallel to
the band), the most frequent class; class 4 = large dark irregular patches with
bright flaky scale. Component counts, sizes (height/width log-normal with the real
correlation), how often a defect spans the full height or touches the top/bottom
edge, how far a mask's components spread across the width, the class frequencies,
the class pairs and the clean fraction all follow the real Kaggle train statistics
embedded below. Later classes never overwrite earlier ones: mask pixels are
exclusive. Sizes scale with the image height (256 px = 1), positions with the
width, so any size works (128x800, 200x200, ...). Every image has its own random
generator derived from (seed, index): same seed, same bytes; parallel-safe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from ..defaults import FRAME_HEIGHT, FRAME_WIDTH
from ..errors import DatasetError
from .layout import KaggleLayoutWriter, default_class_names, read_meta

# --------------------------------------------------------------------------------------------
# Real statistics, computed once from ../shared/data/severstal/labels/ (12,568 Kaggle train
# images) and embedded here:
# - image_level_all_train.csv: clean fraction 5902/12568 = 0.47; images with 1/2/3 classes
#   6239/425/2; pairs of classes (the `has_class_1..4` pattern of two-class images) 3+4: 284,
#   1+3: 91, 1+2: 35, 2+3: 14, 2+4: 1 (the two 1+2+3 images are folded into 1+3);
#   single-class counts = masks per class (897/247/5150/801) minus the masks in pairs.
#   Mask area per class (pixels at 256x1600), quantiles 5/25/50/75/95 % of `area_class_k`.
# - train_bboxes_all_defects.csv: the boxes of the 8-connected components of each of the
#   7,095 masks: components per mask (quantiles), component height/width in pixels as a
#   bivariate log-normal (mean and std of log h / log w, their correlation), the share of
#   components spanning the full height (h >= 250) and touching the top or bottom row, and
#   the spread of a mask's components across the width (max xmax - min xmin, quantiles).
# --------------------------------------------------------------------------------------------

REFERENCE_HEIGHT, REFERENCE_WIDTH = FRAME_HEIGHT, FRAME_WIDTH  # sizes below are px of a Severstal frame;
# they scale with height / REFERENCE_HEIGHT, positions with width / REFERENCE_WIDTH
CLEAN_FRACTION = 0.47
NUM_CLASSES = 4
SINGLE_CLASS_COUNTS = {1: 769, 2: 195, 3: 4759, 4: 516}
PAIR_COUNTS = {(3, 4): 284, (1, 3): 91, (1, 2): 35, (2, 3): 14, (2, 4): 1}
QUANTILE_LEVELS = (0.05, 0.25, 0.50, 0.75, 0.95)
MIN_CONTRAST = 14  # grey levels: the least brightness change of any defect pixel
SOURCE = "steelscan synth"  # steelscan.json "source" of a generated data set
JPEG_QUALITY = 90  # the real Kaggle JPEGs use quality ~90 tables with 4:2:0 chroma


@dataclass(frozen=True)
class DefectPrior:
    """Real shape statistics of one class (see the derivation above)."""

    class_id: int
    description: str
    components: tuple[float, ...]  # components per mask, quantiles at QUANTILE_LEVELS
    log_h: tuple[float, float]  # mean, std of log(component height, px)
    log_w: tuple[float, float]  # mean, std of log(component width, px)
    corr_hw: float  # correlation of log h and log w
    full_height: float  # share of components spanning the whole height
    touch_edge: float  # share of components touching the top or bottom row
    spread: tuple[float, ...]  # width spanned by a mask's components (px), quantiles
    area: tuple[float, ...]  # mask area (px at 256x1600), quantiles, for checks


CLASS_PRIORS: dict[int, DefectPrior] = {
    1: DefectPrior(1, "pit clusters", (1, 1, 2, 5, 10), (3.874, 0.551), (3.290, 0.343), 0.37,
                   0.018, 0.17, (20, 31, 58, 373, 1211), (798, 1762, 3326, 5795, 11502)),
    2: DefectPrior(2, "thin vertical marks", (1, 1, 1, 2, 2), (5.067, 0.398), (2.948, 0.376), 0.48,
                   0.171, 0.69, (12, 17, 24, 33, 61), (989, 1948, 2944, 4338, 7138)),
    3: DefectPrior(3, "long scratches", (1, 1, 2, 4, 7), (4.767, 0.869), (3.756, 1.027), 0.07,
                   0.35, 0.56, (21, 77, 306, 804, 1440), (1829, 5054, 11954, 29030, 94007)),
    4: DefectPrior(4, "large dark patches", (1, 1, 2, 3, 6), (4.505, 0.740), (4.786, 0.870), 0.72,
                   0.05, 0.31, (92, 189, 363, 708, 1335), (5115, 13114, 25357, 45221, 98530)),
}
CLASS_DESCRIPTIONS = [CLASS_PRIORS[c].description for c in range(1, NUM_CLASSES + 1)]


@dataclass
class SynthSample:
    """One generated frame: `image` RGB uint8 (H, W, 3); `masks` (C, H, W) uint8 0/1,
    exclusive; `background` grey uint8 (H, W), the same frame before any defect was drawn
    (equal to the image outside the masks); `class_ids` the 1-based classes present."""

    image: np.ndarray
    masks: np.ndarray
    background: np.ndarray
    class_ids: list[int]


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of image `index` of a data set made with `seed`."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def synthetic_image_id(seed: int, index: int) -> str:
    return f"synth{seed}_{index:06d}.jpg"


# --------------------------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------------------------

def _from_quantiles(rng: np.random.Generator, q: Sequence[float], low: float, high: float) -> float:
    """Draw from the piecewise-linear distribution through the quantiles at QUANTILE_LEVELS,
    extended to `low` at 0 and `high` at 1."""
    return float(np.interp(rng.random(), (0.0, *QUANTILE_LEVELS, 1.0), (low, *q, high)))


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell_h: float,
                  cell_w: float) -> np.ndarray:
    """Smooth zero-mean noise (about unit std) of shape (height, width): a coarse normal grid
    with cells of cell_h x cell_w pixels, upsampled bicubically (cheap, no convolution)."""
    gh = max(2, int(round(height / max(cell_h, 1.0))) + 1)
    gw = max(2, int(round(width / max(cell_w, 1.0))) + 1)
    coarse = rng.standard_normal((gh, gw), dtype=np.float32)
    up = Image.fromarray(coarse, mode="F").resize((width, height), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32)


def _noise_1d(rng: np.random.Generator, n: int, cell: float) -> np.ndarray:
    """Smooth 1-D noise of length n (about unit std), knots every `cell` samples."""
    k = max(2, int(n / max(cell, 1.0)) + 2)
    knots = rng.standard_normal(k)
    return np.interp(np.linspace(0, k - 1, n), np.arange(k), knots).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Background: the clean strip
# --------------------------------------------------------------------------------------------

def render_strip(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean strip frame. Returns (grey float32 (H, W) in 0..255, on-strip bool (H, W):
    where defects may be drawn, i.e. not on the black off-strip margin or its edge)."""
    img = strip_texture(rng, height, width)
    on_strip = np.ones((height, width), dtype=bool)
    if rng.random() < 0.12:
        _add_margin(rng, img, on_strip, height / REFERENCE_HEIGHT)
    return np.clip(img, 0, 255), on_strip


def strip_texture(rng: np.random.Generator, height: int, width: int,
                  level: float | None = None) -> np.ndarray:
    """The strip's surface filling the whole frame (no margin): grey float32 (H, W), not yet
    clipped to 0..255. Rolling texture, stains, illumination, glare, grain and specks.
    `level`: the strip's base grey (default: drawn per frame, 40..125; a coil keeps one)."""
    s = height / REFERENCE_HEIGHT
    drawn = 40 + 85 * rng.beta(2.0, 2.5)  # drawn even when given: the same random stream
    level = drawn if level is None else level
    # Rolling texture: long faint streaks down the rows, straight roll marks (one value per
    # column), faint horizontal scan lines and a low-frequency cloudy mottle.
    img = level + rng.uniform(2, 5.5) * _smooth_noise(rng, height, width, 64 * s, 3 * s)
    img += rng.uniform(2, 6) * _smooth_noise(rng, height, width, 40 * s, 90 * s)
    img += rng.uniform(1.0, 3.5) * rng.standard_normal(width).astype(np.float32)[None, :]
    img += rng.uniform(0.3, 1.5) * rng.standard_normal(height).astype(np.float32)[:, None]
    if rng.random() < 0.55:  # dark stains with ragged edges, elongated along the rolling direction
        field = _smooth_noise(rng, height, width, 110 * s, 16 * s)
        field = field + 0.35 * _smooth_noise(rng, height, width, 8 * s, 3 * s)
        stain = np.clip((field - rng.uniform(0.7, 1.5)) * 4.0, 0.0, 1.0)
        img -= rng.uniform(8, 20) * stain
    # Illumination: lobes across the width, a gradient down the rows, sometimes glare.
    light_x = 1.0 + rng.uniform(0.04, 0.18) * _noise_1d(rng, width, width / rng.uniform(1.5, 4))
    ramp = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    light_y = 1.0 + rng.uniform(-0.15, 0.15) * ramp
    if rng.random() < 0.08:
        centre = rng.choice([rng.uniform(0.0, 0.12), rng.uniform(0.88, 1.0)]) * height
        band = np.exp(-0.5 * ((np.arange(height) - centre) / (rng.uniform(3, 10) * s)) ** 2)
        light_y = light_y + rng.uniform(0.6, 1.4) * band.astype(np.float32)
    img *= light_y[:, None] * light_x[None, :].astype(np.float32)
    img += rng.uniform(3.5, 6.5) * rng.standard_normal((height, width), dtype=np.float32)
    _add_specks(rng, img, s)
    return img


def _add_specks(rng: np.random.Generator, img: np.ndarray, s: float) -> None:
    """Sparse 1-3 px dust specks (bright or dark), in place."""
    h, w = img.shape
    n = int(rng.integers(0, 60) * (h * w) / (REFERENCE_HEIGHT * REFERENCE_WIDTH)) + 1
    size = max(1, int(round(2 * s)))
    ys = rng.integers(0, max(1, h - size), n)
    xs = rng.integers(0, max(1, w - size), n)
    vals = rng.choice([-1.0, 1.0], n) * rng.uniform(15, 40, n)
    for dy in range(size):
        for dx in range(size):
            img[ys + dy, xs + dx] += vals.astype(np.float32)


def _add_margin(rng: np.random.Generator, img: np.ndarray, on_strip: np.ndarray, s: float) -> None:
    """Black off-strip region left or right of a slightly tilted strip edge, in place."""
    h, w = img.shape
    edge0 = rng.uniform(0.08, 0.7) * w
    tilt = rng.uniform(-0.03, 0.03) * h
    edge = edge0 + tilt * np.linspace(-0.5, 0.5, h, dtype=np.float32)  # (H,) edge column
    x = np.arange(w, dtype=np.float32)[None, :]
    left = rng.random() < 0.5
    dist = (edge[:, None] - x) if left else (x - edge[:, None])  # > 0 off the strip
    soft = rng.uniform(1.5, 5) * s
    off = np.clip(0.5 + dist / (2 * soft), 0.0, 1.0)
    dark = rng.uniform(2, 12) + 1.5 * rng.standard_normal(img.shape, dtype=np.float32)
    rim = rng.uniform(-25, 35) * np.exp(-np.abs(dist + 6 * s) / (4 * s))  # bright/dark rim
    img[:] = (img + rim) * (1 - off) + dark * off
    on_strip &= dist < -(soft + 10 * s)


# --------------------------------------------------------------------------------------------
# Defect shapes (binary mask + 0..1 "depth", on a crop)
# --------------------------------------------------------------------------------------------

def _blob(rng: np.random.Generator, h: int, w: int, roughness: float, cell: float,
          radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Irregular ellipse filling an h x w crop. Returns (mask bool, depth 0..1: 1 at the
    centre falling to 0 at the outline)."""
    v = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    u = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    r = np.sqrt(v[:, None] ** 2 + u[None, :] ** 2)
    radius = radius + roughness * _smooth_noise(rng, h, w, cell, cell)
    mask = r < radius
    depth = np.clip(1 - r / np.maximum(radius, 0.05), 0, 1)
    return mask, depth


def _band(rng: np.random.Generator, length: int, breadth: int, thickness: float, wobble: float,
          taper_start: bool, taper_end: bool, ragged: float) -> tuple[np.ndarray, np.ndarray]:
    """A band running along axis 0 of a (length, breadth) crop from one side of the crop to
    the other (diagonal when breadth >> thickness), with edges made ragged by `ragged`
    (pixels). Returns (mask bool, across -1..1: the signed position across the band)."""
    t = np.linspace(0.0, 1.0, length, dtype=np.float32)
    half = thickness / 2
    a, b = half, max(half, breadth - half)
    if rng.random() < 0.5:
        a, b = b, a
    if breadth <= 2.5 * thickness:  # narrow crop: (nearly) straight along the axis
        a = b = breadth / 2
    centre = a + (b - a) * t + wobble * _noise_1d(rng, length, max(8.0, length / 3))
    hw = half * (1 + 0.2 * _noise_1d(rng, length, max(6.0, length / 6)))
    taper = np.ones(length, np.float32)
    ramp = max(2, int(0.12 * length))
    if taper_start:
        taper[:ramp] = np.sqrt(np.linspace(0.2, 1, ramp))
    if taper_end:
        taper[-ramp:] = np.sqrt(np.linspace(1, 0.2, ramp))
    hw = np.maximum(hw * taper, 0.6)
    x = np.arange(breadth, dtype=np.float32)[None, :] + 0.5
    across = (x - centre[:, None]) / hw[:, None]
    if ragged > 0:
        cell = max(1.5, min(half, 3.0))
        noise = _smooth_noise(rng, length, breadth, 3 * cell, cell)
        across = across + (ragged / hw[:, None]) * noise
    return np.abs(across) < 1, np.clip(across, -1, 1)


# --------------------------------------------------------------------------------------------
# Defect appearance: brightness change (grey levels) on a crop, non-zero on every mask pixel
# --------------------------------------------------------------------------------------------

def _pits(rng, h, w, s):
    """A pit cluster component: dark speckled blob with a few bright (specular) grains."""
    mask, depth = _blob(rng, h, w, roughness=0.2, cell=6 * s)
    grain = _smooth_noise(rng, h, w, 4 * s, 3 * s)
    bright = grain > rng.uniform(0.6, 1.1)
    amp = rng.uniform(36, 60)
    dark = -amp * (0.6 + 0.4 * depth) * (1 + 0.3 * np.tanh(grain))
    return mask, np.where(bright, 1.2 * amp, dark)


def _groove(rng, h, w, s, touch_top, touch_bottom):
    """A thin dark wavy groove along the rolling direction with a bright lip on one side."""
    thickness = max(3.0, w * rng.uniform(0.5, 0.85))
    mask, across = _band(rng, h, w, thickness, wobble=rng.uniform(0.5, 2.0) * s,
                         taper_start=not touch_top, taper_end=not touch_bottom, ragged=1.5 * s)
    lip = rng.choice([-1.0, 1.0])
    amp = rng.uniform(40, 65)
    profile = 1 - 0.45 * np.abs(across)  # darkest on the groove axis
    return mask, np.where(across * lip > 0.6, 0.9 * amp, -amp * profile)


def _scratch(rng, h, w, s, touch_top, touch_bottom):
    """A scratch: a band of scraped metal, bright (mostly) or dark, full of fine striations
    parallel to it and rough, streaky texture along it."""
    thickness = float(np.exp(rng.normal(np.log(26 * s), 0.5)))
    if min(w, h) < 2.5 * thickness:
        thickness = min(w, h) * rng.uniform(0.7, 1.0)  # the band fills its box's breadth
    elif rng.random() < 0.5:  # a wide diagonal swath of scratches across a large box
        thickness = max(thickness, min(w, h) * rng.uniform(0.2, 0.4))
    thickness = max(3.0, thickness)
    wobble = rng.uniform(0.2, 1.2) * s
    if w > 2.5 * h:  # shallow scratch: runs across the width
        mask, across = _band(rng, w, h, thickness, wobble, True, True, ragged=2 * s)
        mask, across = mask.T, across.T
        streaks = _smooth_noise(rng, h, w, 1.5 * s, 14 * s)
    else:
        mask, across = _band(rng, h, w, thickness, wobble, not touch_top, not touch_bottom,
                             ragged=2 * s)
        streaks = _smooth_noise(rng, h, w, 14 * s, 1.5 * s)
    k = int(rng.integers(5, 12))
    stripe = np.interp(across, np.linspace(-1, 1, k), rng.uniform(-1, 1, k)).astype(np.float32)
    sign = 1.0 if rng.random() < 0.6 else -1.0
    amp = rng.uniform(34, 60)
    texture = 0.55 + 0.45 * np.abs(stripe) + 0.35 * np.abs(streaks)
    # a few striations of the opposite brightness (scraped edges catch / lose the light)
    flip = np.where((stripe > 0.7) | (streaks > 1.4), -0.9, 1.0)
    return mask, sign * amp * texture * flip


def _patch(rng, h, w, s):
    """A large dark patch with a ragged outline, grainy interior and bright flaky scale."""
    mask, depth = _blob(rng, h, w, roughness=0.25, cell=max(4.0, min(h, w) / 4), radius=0.88)
    edge = _smooth_noise(rng, h, w, 3 * s, 3 * s)
    mask &= depth > 0.06 * (1 + edge)  # ragged outline
    grain = _smooth_noise(rng, h, w, 2.5 * s, 2.5 * s)
    scale = _smooth_noise(rng, h, w, 4 * s, 12 * s)
    amp = rng.uniform(45, 75)
    dark = -amp * (0.55 + 0.3 * np.sqrt(depth)) * (1 + 0.3 * grain)
    flakes = (scale > 1.25) & (depth > 0.1)
    return mask, np.where(flakes, 0.8 * amp * (1 + 0.3 * grain), dark)


# --------------------------------------------------------------------------------------------
# Placing a class's components
# --------------------------------------------------------------------------------------------

def _component_size(rng: np.random.Generator, prior: DefectPrior, height: int, width: int,
                    s: float) -> tuple[int, int, bool]:
    """(h, w, full_height) of one component in pixels of this frame."""
    z1, z2 = rng.standard_normal(2)
    lh = prior.log_h[0] + prior.log_h[1] * z1
    lw = prior.log_w[0] + prior.log_w[1] * (prior.corr_hw * z1 + np.sqrt(1 - prior.corr_hw ** 2) * z2)
    full = rng.random() < prior.full_height
    h = height if full else int(np.clip(np.exp(lh) * s, 4 * s + 2, 0.97 * height))
    w = int(np.clip(np.exp(lw) * s, 3 * s + 2, 0.9 * width))
    return max(h, 3), max(w, 3), full


def _place(rng: np.random.Generator, prior: DefectPrior, full: bool, cx: float, spread: float,
           h: int, w: int, height: int, width: int) -> tuple[int, int]:
    """Top-left (x0, y0) of an h x w component of a mask centred at column cx."""
    x0 = int(np.clip(cx + rng.uniform(-0.5, 0.5) * max(spread - w, 0) - w / 2, 0, width - w))
    if full:
        return x0, 0
    if rng.random() < prior.touch_edge:
        return x0, (0 if rng.random() < 0.5 else height - h)
    return x0, int(rng.integers(0, height - h + 1))


def _draw_class(rng: np.random.Generator, class_id: int, img: np.ndarray, bg: np.ndarray,
                allowed: np.ndarray, s: float) -> np.ndarray:
    """Draw every component of one class into `img` (float32 H x W, in place) where `allowed`;
    return the class mask (H, W) bool."""
    prior = CLASS_PRIORS[class_id]
    height, width = img.shape
    out = np.zeros((height, width), dtype=bool)
    cols = np.flatnonzero(allowed.any(axis=0))
    if cols.size == 0:
        return out
    n = max(1, int(round(_from_quantiles(rng, prior.components, 1, 1.5 * prior.components[-1]))))
    spread = _from_quantiles(rng, prior.spread, prior.spread[0] / 2, REFERENCE_WIDTH) * width / REFERENCE_WIDTH
    cx = rng.uniform(cols[0], cols[-1] + 1)
    for _ in range(n):
        h, w, full = _component_size(rng, prior, height, width, s)
        for tries in range(5):  # prefer a spot apart from this class's earlier components
            x0, y0 = _place(rng, prior, full, cx, spread * 1.6 ** tries, h, w, height, width)
            if not out[y0:y0 + h, x0:x0 + w].any():
                break
        mask, delta = paint_defect(rng, class_id, h, w, s, y0 == 0, y0 + h == height)
        box = (slice(y0, y0 + h), slice(x0, x0 + w))
        mask = largest_component(mask) & allowed[box]
        apply_defect(img[box], bg[box], mask, delta)
        out[box] |= mask
    return out


def paint_defect(rng: np.random.Generator, class_id: int, h: int, w: int, s: float,
                 touch_top: bool = False, touch_bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One defect component of class `class_id` on an h x w crop (s = painter scale, 1 at a
    256-high frame). Returns (mask bool (h, w), brightness change float (h, w) in grey levels).
    `touch_top/bottom`: the component runs out of the crop there (no taper at that end)."""
    if class_id == 1:
        return _pits(rng, h, w, s)
    if class_id == 2:
        return _groove(rng, h, w, s, touch_top, touch_bottom)
    if class_id == 3:
        return _scratch(rng, h, w, s, touch_top, touch_bottom)
    return _patch(rng, h, w, s)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (ragged edges may shed crumbs; a
    real annotation is one polygon per component)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def apply_defect(region: np.ndarray, bg: np.ndarray, mask: np.ndarray, delta: np.ndarray) -> None:
    """Write bg + delta into region on mask pixels, guaranteeing a change of at least
    MIN_CONTRAST grey levels after clipping to 0..255 (flip the sign where it clips)."""
    new = bg + delta
    weak = np.abs(np.clip(new, 0, 255) - bg) < MIN_CONTRAST + 1
    if weak.any():
        sign = np.where(bg >= 128, -1.0, 1.0)
        new = np.where(weak, bg + sign * np.maximum(np.abs(delta), MIN_CONTRAST + 1), new)
    region[mask] = np.clip(new, 0, 255)[mask]


# --------------------------------------------------------------------------------------------
# Frames and data sets
# --------------------------------------------------------------------------------------------

def _choose_classes(rng: np.random.Generator, clean_fraction: float) -> list[int]:
    if rng.random() < clean_fraction:
        return []
    combos = [(c,) for c in SINGLE_CLASS_COUNTS] + list(PAIR_COUNTS)
    weights = np.array(list(SINGLE_CLASS_COUNTS.values()) + list(PAIR_COUNTS.values()), float)
    return list(combos[int(rng.choice(len(combos), p=weights / weights.sum()))])


def render_sample(rng: np.random.Generator, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH, *,
                  clean_fraction: float = CLEAN_FRACTION,
                  class_ids: Sequence[int] | None = None) -> SynthSample:
    """Generate one frame. `class_ids` forces the defect classes (empty = clean); otherwise
    the frame is clean with probability `clean_fraction` and else carries one class or a
    pair, with the real frequencies."""
    if height < 8 or width < 8:
        raise DatasetError(f"synthetic image size must be at least 8x8, got {height}x{width}")
    s = height / REFERENCE_HEIGHT
    bg, on_strip = render_strip(rng, height, width)
    wanted = _choose_classes(rng, clean_fraction) if class_ids is None else sorted(class_ids)
    img = bg.copy()
    masks = np.zeros((NUM_CLASSES, height, width), dtype=np.uint8)
    occupied = ~on_strip
    min_area = max(12, int(20 * s * s))
    for c in wanted:
        if not 1 <= c <= NUM_CLASSES:
            raise DatasetError(f"class id {c} outside 1..{NUM_CLASSES}")
        for _attempt in range(4):  # a component may land on the margin or an earlier class
            m = _draw_class(rng, c, img, bg, ~occupied, s)
            if m.sum() >= min_area:
                break
            img[m] = bg[m]
            m[:] = False
        masks[c - 1] = m
        occupied |= m
    grey = np.round(img).astype(np.uint8)
    present = [c + 1 for c in range(NUM_CLASSES) if masks[c].any()]
    return SynthSample(np.repeat(grey[:, :, None], 3, axis=2), masks,
                       np.round(bg).astype(np.uint8), present)


def generate_image(rng: np.random.Generator, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH, *,
                   clean_fraction: float = CLEAN_FRACTION,
                   class_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic frame: (image RGB uint8 (H, W, 3), masks (C=4, H, W) uint8 0/1)."""
    sample = render_sample(rng, height, width, clean_fraction=clean_fraction, class_ids=class_ids)
    return sample.image, sample.masks


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _render_encoded(job: tuple[int, int, int, int, float]) -> tuple[bytes, np.ndarray]:
    """Worker: (seed, index, height, width, clean_fraction) -> (JPEG bytes, packed masks)."""
    seed, index, height, width, clean_fraction = job
    image, masks = generate_image(image_rng(seed, index), height, width,
                                  clean_fraction=clean_fraction)
    return encode_jpeg(image), np.packbits(masks, axis=-1)


def synthesize_dataset(out_dir: str | Path, n: int, seed: int, height: int = FRAME_HEIGHT,
                       width: int = FRAME_WIDTH, *, clean_fraction: float = CLEAN_FRACTION,
                       workers: int = 1, progress: bool = True) -> Path:
    """Write n synthetic frames in the Kaggle layout (train_images/*.jpg, train.csv,
    steelscan.json) under out_dir and return out_dir. Image i depends only on (seed, i)."""
    if n < 1:
        raise DatasetError(f"--n must be at least 1, got {n}")
    if not 0.0 <= clean_fraction <= 1.0:
        raise DatasetError(f"clean fraction must be within 0..1, got {clean_fraction}")
    from tqdm import tqdm

    out = Path(out_dir)
    stale = previous_outputs(out, "train_images", SOURCE)
    writer = KaggleLayoutWriter(out, NUM_CLASSES, default_class_names(NUM_CLASSES), extra_meta={
        "source": SOURCE, "seed": seed, "n": n, "height": height, "width": width,
        "clean_fraction": clean_fraction, "class_descriptions": CLASS_DESCRIPTIONS})
    jobs = [(seed, i, height, width, clean_fraction) for i in range(n)]
    bar = tqdm(total=n, desc="synth", unit="img", disable=not progress)
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = pool.map(_render_encoded, jobs, chunksize=8)
            _write_all(writer, jobs, results, width, bar)
    else:
        _write_all(writer, jobs, map(_render_encoded, jobs), width, bar)
    bar.close()
    for path in stale - {synthetic_image_id(seed, i) for i in range(n)}:
        (writer.images_dir / path).unlink(missing_ok=True)
    writer.close()
    return out


def previous_outputs(out: Path, folder: str, source: str) -> set[str]:
    """Names of the files an earlier run of the generator `source` left in out/folder (they are
    replaced or removed, so a smaller rerun leaves nothing stale). Refuses a folder holding files
    of anything else."""
    images = out / folder
    existing = {p.name for p in images.iterdir() if p.is_file()} if images.is_dir() else set()
    if existing and read_meta(out).get("source") != source:
        raise DatasetError(f"output folder already holds files not made by {source}; "
                           "choose a new or empty folder", path=images)
    return existing


def _write_all(writer, jobs, results, width, bar) -> None:
    for (seed, i, *_), (jpeg, packed) in zip(jobs, results):
        masks = np.unpackbits(packed, axis=-1, count=width)
        writer.add(synthetic_image_id(seed, i), jpeg, masks)
        bar.update(1)
