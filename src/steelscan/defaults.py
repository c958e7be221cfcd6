"""Defaults shared across the library: the one place each is written out.

Severstal's frames (the data the system was built for) are 256 px along the strip by
1600 px across it; inspection tiles default to one such frame, so an image no larger
than a frame goes through the model whole and a longer strip is cut into frame-sized,
overlapping tiles."""

from __future__ import annotations

FRAME_HEIGHT = 256  # px along the strip (rows)
FRAME_WIDTH = 1600  # px across the strip (columns)
FRAME_SIZE = (FRAME_HEIGHT, FRAME_WIDTH)  # (H, W)

TILE = FRAME_SIZE  # inspection tile (H, W) px, unless a model was trained on larger images
TILE_OVERLAP = (32, 200)  # (H, W) px shared by neighbouring tiles (at most a quarter of the tile)
BATCH_SIZE = 8  # images (tiles) per model call in batch inspection
