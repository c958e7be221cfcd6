"""Training-time augmentation and crop choice, in numpy.

Every random choice draws from a generator the caller seeds, so a sample's crop and
augmentation are a pure function of (seed, epoch, position) — which is what lets a
resumed run replay an interrupted one exactly, with or without worker processes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """The generator of one training sample (its crop and augmentation)."""
    return np.random.default_rng([seed, epoch, position, 0x5EED])


def choose_crop(rng: np.random.Generator, defect: np.ndarray, crop: tuple[int, int],
                defect_prob: float) -> tuple[int, int]:
    """Top-left (y0, x0) of a crop of size `crop` (H, W), already clamped to the image.

    defect: (H, W) bool union of all classes. With probability `defect_prob` (and when the
    image has defects) the crop contains a random defect pixel at a random place in the
    crop, so crops are not mostly empty; otherwise it is uniform over the image."""
    height, width = defect.shape
    ch, cw = crop
    if rng.random() < defect_prob:
        ys, xs = np.nonzero(defect)
        if ys.size:
            k = int(rng.integers(ys.size))
            y0 = int(ys[k]) - int(rng.integers(ch))
            x0 = int(xs[k]) - int(rng.integers(cw))
            return int(np.clip(y0, 0, height - ch)), int(np.clip(x0, 0, width - cw))
    return int(rng.integers(height - ch + 1)), int(rng.integers(width - cw + 1))


def translate(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift the last two axes by (dy, dx) pixels, filling with the edge values."""
    if dy == 0 and dx == 0:
        return a
    h, w = a.shape[-2:]
    pad = [(0, 0)] * (a.ndim - 2) + [(abs(dy), abs(dy)), (abs(dx), abs(dx))]
    p = np.pad(a, pad, mode="edge")
    y0, x0 = abs(dy) - dy, abs(dx) - dx
    return p[..., y0:y0 + h, x0:x0 + w]


@dataclass(frozen=True)
class Augment:
    """Flips, brightness/contrast jitter and small shifts, applied to an image and its masks alike.

    hflip/vflip: probabilities; brightness: +- additive on 0..1; contrast: +- relative;
    shift: +- pixels."""

    hflip: float = 0.5
    vflip: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    shift: int = 8

    def __call__(self, rng: np.random.Generator, image: np.ndarray,
                 masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """image: (3, H, W) float32 0..1; masks: (C, H, W) uint8. Returns new arrays."""
        # Draw every number whether or not it is used, so one setting never shifts the others.
        u = rng.random(4)
        shifts = rng.integers(-self.shift, self.shift + 1, size=2) if self.shift else np.zeros(2, int)
        b = (u[2] * 2 - 1) * self.brightness
        c = 1.0 + (u[3] * 2 - 1) * self.contrast
        if u[0] < self.hflip:
            image, masks = image[..., ::-1], masks[..., ::-1]
        if u[1] < self.vflip:
            image, masks = image[..., ::-1, :], masks[..., ::-1, :]
        image = translate(image, int(shifts[0]), int(shifts[1]))
        masks = translate(masks, int(shifts[0]), int(shifts[1]))
        if b or c != 1.0:
            mean = image.mean(dtype=np.float32)
            image = np.clip((image - mean) * np.float32(c) + mean + np.float32(b), 0.0, 1.0)
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(masks)
