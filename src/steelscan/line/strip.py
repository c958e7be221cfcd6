"""Find the strip in a frame: the camera's field is wider than the strip, and off the strip it
sees a dark background (the rolls, the pit). Edges are columns [left, right) with sub-pixel
precision (geometry's convention); the strip wanders sideways, so every frame gets its own.

Method, all on column profiles (no per-pixel Python):
1. Which columns are strip: the per-column median of every 4th row (middle channel; robust to
   defects and texture) against the midpoint between the background (its 2nd percentile) and
   the strip (the median of the columns at least `min_contrast` grey levels above the
   background; bright defects, glare or a dark strip do not move it). No such columns: the
   strip fills the frame.
2. Where exactly: the per-column mean grey as the covered fraction f of each column between the
   background and strip levels; the edge is where the summed coverage puts it,
   left = (L + k) - sum f[L-k : L+k] around the first strip column L (k = 2 columns each side),
   which is exact for an edge anti-aliased by area and unbiased for a symmetric blur.
"""

from __future__ import annotations

import numpy as np

EDGE_HALF_WINDOW = 2  # columns each side of the first/last strip column that may be partly covered
ROBUST_ROW_STEP = 4   # rows sampled for the median profile


def find_strip(image: np.ndarray, min_contrast: float = 20.0) -> tuple[float, float]:
    """Strip edges (left, right) in pixels, 0 <= left < right <= W, of a (H, W) or (H, W, 3)
    uint8 frame. A frame with no visible background gives (0, W)."""
    if image.ndim == 3:  # column sums without a float copy of the frame: (W, channels) -> (W,)
        height, width, channels = image.shape
        mean = image.sum(axis=0, dtype=np.uint32).sum(axis=1) / np.float32(height * channels)
        robust = np.median(image[::ROBUST_ROW_STEP, :, channels // 2], axis=0)
    else:
        height, width = image.shape
        mean = image.sum(axis=0, dtype=np.uint32) / np.float32(height)
        robust = np.median(image[::ROBUST_ROW_STEP], axis=0)
    low = float(np.percentile(robust, 2))
    above = robust[robust >= low + min_contrast]
    if not len(above):
        return 0.0, float(width)
    on = robust >= (low + float(np.median(above))) / 2
    cols = np.flatnonzero(on)
    first, last = int(cols[0]), int(cols[-1]) + 1
    background = float(np.median(mean[~on])) if (~on).any() else float(low)
    strip = float(np.median(mean[on]))
    if strip - background < min_contrast:
        return 0.0, float(width)
    cover = np.clip((mean - background) / (strip - background), 0.0, 1.0)
    k = EDGE_HALF_WINDOW
    left = (first + k) - float(cover[max(first - k, 0):first + k].sum()) if first + k <= width else float(first)
    right = (last - k) + float(cover[max(last - k, 0):min(last + k, width)].sum()) if last >= k else float(last)
    left, right = max(left, 0.0), min(right, float(width))
    if right <= left:
        return 0.0, float(width)
    return left, right
