"""Inspect images of any size with a model trained on fixed-size images.

An image no larger than the tile goes through the model whole. A larger one (a long
strip, e.g. 256x8000 for a model trained at 256x1600) is cut into overlapping tiles
along the width (and the height, when it is taller than the tile); tile starts are
spread evenly so every tile lies inside the image and neighbours overlap by at least
the asked overlap. Segmenter tiles are stitched by a weighted mean whose weights ramp
linearly from ~0 to 1 across the overlap at every inner tile edge (image borders keep
weight 1), so predictions near a tile's cut, where the network sees the least context,
count the least and there is no seam. Classifier scores of a tiled image are the
maximum over its tiles: a small defect must not be diluted by a long clean strip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..defaults import BATCH_SIZE, TILE, TILE_OVERLAP


@dataclass(frozen=True)
class Window:
    """One tile of one image: rows y0:y0+height, columns x0:x0+width (pixels)."""

    image: int
    y0: int
    x0: int
    height: int
    width: int


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering 0..length with >= `overlap` shared pixels."""
    if length <= tile:
        return [0]
    overlap = min(max(overlap, 0), tile - 1)
    stride = tile - overlap
    n = -(-(length - tile) // stride) + 1  # ceil division
    return np.round(np.linspace(0, length - tile, n)).astype(int).tolist()


def ramp(length: int, start: int, tile: int, overlap: int) -> np.ndarray:
    """(tile,) float32 blend weight of a tile at `start` of an axis `length` long."""
    w = np.ones(tile, dtype=np.float32)
    ramp_len = min(max(overlap, 1), tile // 2)
    up = (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len
    if start > 0:
        w[:ramp_len] = up
    if start + tile < length:
        w[tile - ramp_len:] = np.minimum(w[tile - ramp_len:], up[::-1])
    return w


@dataclass(frozen=True)
class Tiling:
    """Tile size and overlap, (height, width) pixels."""

    tile: tuple[int, int] = TILE
    overlap: tuple[int, int] = TILE_OVERLAP

    def windows(self, index: int, height: int, width: int) -> list[Window]:
        th, tw = min(self.tile[0], height), min(self.tile[1], width)
        return [Window(index, y0, x0, th, tw)
                for y0 in tile_starts(height, self.tile[0], self.overlap[0])
                for x0 in tile_starts(width, self.tile[1], self.overlap[1])]

    def weight(self, win: Window, height: int, width: int) -> np.ndarray:
        """(h, w) float32 blend weight of a window inside an image of height x width."""
        wy = ramp(height, win.y0, win.height, self.overlap[0])
        wx = ramp(width, win.x0, win.width, self.overlap[1])
        return wy[:, None] * wx[None, :]


def _batches(windows: list[Window], batch_size: int) -> Iterator[list[Window]]:
    """Windows grouped by size (a batch must be one array), batch_size at a time."""
    by_size: dict[tuple[int, int], list[Window]] = {}
    for w in windows:
        by_size.setdefault((w.height, w.width), []).append(w)
    for group in by_size.values():
        for i in range(0, len(group), batch_size):
            yield group[i:i + batch_size]


def _crops(images: list[np.ndarray], batch: list[Window]) -> np.ndarray:
    return np.stack([images[w.image][:, w.y0:w.y0 + w.height, w.x0:w.x0 + w.width] for w in batch])


def tiled_segment(runner: Callable[[np.ndarray], np.ndarray], images: list[np.ndarray],
                  tiling: Tiling = Tiling(), batch_size: int = BATCH_SIZE) -> list[np.ndarray]:
    """Segmenter probabilities of images (each (3, H, W) float32 0..1, any sizes)
    -> list of (C, H, W) float32, stitched from tiles where an image exceeds the tile."""
    windows = [w for i, im in enumerate(images) for w in tiling.windows(i, *im.shape[1:])]
    sums: list[np.ndarray | None] = [None] * len(images)
    weights = [np.zeros(im.shape[1:], np.float32) for im in images]
    for batch in _batches(windows, batch_size):
        probs = runner(_crops(images, batch))
        for w, p in zip(batch, probs):
            h, wd = images[w.image].shape[1:]
            if sums[w.image] is None:
                sums[w.image] = np.zeros((p.shape[0], h, wd), np.float32)
            if w.height == h and w.width == wd:  # the whole image in one window
                sums[w.image] = p.astype(np.float32, copy=False)
                weights[w.image][:] = 1.0
                continue
            k = tiling.weight(w, h, wd)
            sums[w.image][:, w.y0:w.y0 + w.height, w.x0:w.x0 + w.width] += p * k
            weights[w.image][w.y0:w.y0 + w.height, w.x0:w.x0 + w.width] += k
    return [s / wt[None] for s, wt in zip(sums, weights)]


def tiled_classify(runner: Callable[[np.ndarray], np.ndarray], images: list[np.ndarray],
                   tiling: Tiling = Tiling(), batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Classifier probabilities (N, C) of images of any sizes: the max over each image's tiles."""
    windows = [w for i, im in enumerate(images) for w in tiling.windows(i, *im.shape[1:])]
    scores: np.ndarray | None = None
    for batch in _batches(windows, batch_size):
        probs = runner(_crops(images, batch))
        if scores is None:
            scores = np.zeros((len(images), probs.shape[1]), np.float32)
        for w, p in zip(batch, probs):
            scores[w.image] = np.maximum(scores[w.image], p)
    return scores if scores is not None else np.zeros((0, 0), np.float32)
