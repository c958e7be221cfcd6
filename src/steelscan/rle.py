"""Kaggle run-length encoding of binary masks.

Convention (Severstal / Kaggle): "start length" pairs separated by spaces, starts
1-indexed, pixels numbered top-to-bottom then left-to-right (column-major), runs
sorted and non-overlapping. The empty string is the empty mask."""

from __future__ import annotations

import numpy as np

from .errors import RLEError

__all__ = ["decode_rle", "encode_rle", "rle_area", "RLEError"]


def _parse_runs(rle: str, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return validated 0-indexed (starts, lengths) as int64 arrays."""
    if not isinstance(rle, str):
        raise RLEError(f"expected a string, got {type(rle).__name__}")
    tokens = rle.split()
    if not tokens:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(tokens) % 2:
        raise RLEError(f"odd number of tokens ({len(tokens)}): RLE needs 'start length' pairs")
    try:
        values = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        bad = next((t for t in tokens if not t.lstrip("+-").isdigit()), None)
        if bad is None:  # all digits, but too large for int64
            bad = max(tokens, key=len)
            raise RLEError(f"token {bad[:30]!r} is too large") from None
        raise RLEError(f"token {bad!r} is not an integer") from None
    starts = values[0::2] - 1
    lengths = values[1::2]
    if (lengths <= 0).any():
        i = int(np.flatnonzero(lengths <= 0)[0])
        raise RLEError(f"run {i + 1} has length {int(lengths[i])}; lengths must be positive")
    if (starts < 0).any() or (starts >= n_pixels).any():
        i = int(np.flatnonzero((starts < 0) | (starts >= n_pixels))[0])
        raise RLEError(f"run {i + 1} starts at {int(starts[i]) + 1}, outside 1..{n_pixels}")
    ends = starts + lengths
    if (ends > n_pixels).any():
        i = int(np.flatnonzero(ends > n_pixels)[0])
        raise RLEError(f"run {i + 1} ({int(starts[i]) + 1} {int(lengths[i])}) runs past the end "
                       f"of the image ({n_pixels} pixels)")
    if len(starts) > 1:
        clash = starts[1:] < ends[:-1]
        if clash.any():
            i = int(np.flatnonzero(clash)[0]) + 1
            kind = "unsorted" if starts[i] < starts[i - 1] else "overlapping"
            raise RLEError(f"runs {i} and {i + 1} are {kind}: run {i + 1} starts at pixel "
                           f"{int(starts[i]) + 1}, not after pixel {int(ends[i - 1])} where run {i} ends")
    return starts, lengths


def decode_rle(rle: str, height: int, width: int) -> np.ndarray:
    """Decode a Kaggle RLE string into a uint8 mask of shape (height, width), values 0/1.

    The result is a fresh, writable array in column-major (Fortran) memory order, the
    RLE's own pixel order; use np.ascontiguousarray if C order matters. Invalid strings
    (see `_parse_runs`) raise RLEError: nothing is ever clipped to fit."""
    if height <= 0 or width <= 0:
        raise RLEError(f"mask size must be positive, got {height}x{width}")
    n = height * width
    starts, lengths = _parse_runs(rle, n)
    flat = np.zeros(n, dtype=np.uint8)
    total = int(lengths.sum())
    if total:
        # Work is O(mask area), not O(image size): pixel k of the concatenated runs sits at
        # k + (start of its run - number of pixels in the runs before it).
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        flat[np.arange(total) + offsets] = 1
    # Column-major pixel order: the flat vector is W columns of H pixels.
    return flat.reshape(width, height).T


def encode_rle(mask: np.ndarray) -> str:
    """Encode a 2-D binary mask (bool or 0/1 integers, HxW) as a Kaggle RLE string."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise RLEError(f"mask must be 2-D (HxW), got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.size and (mask.min() < 0 or mask.max() > 1):
            raise RLEError(f"mask values must be 0/1, found range {mask.min()}..{mask.max()}")
        mask = mask.astype(bool)
    flat = np.concatenate([[False], mask.T.ravel(), [False]])
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    if changes.size == 0:
        return ""
    runs = changes.reshape(-1, 2)
    runs[:, 1] -= runs[:, 0]
    runs[:, 0] += 1
    return " ".join(map(str, runs.ravel().tolist()))


def rle_area(rle: str, height: int, width: int) -> int:
    """Number of mask pixels of a validated RLE string, without building the mask."""
    _, lengths = _parse_runs(rle, height * width)
    return int(lengths.sum())
