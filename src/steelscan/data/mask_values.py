"""What the stored values of a dataset's masks mean, decided once for the whole dataset.

A mask file stores integers. They are read one of two ways (the *mask mode*):
- `index`: value k is class k, 0 background (NEU-Seg style, several classes in one file);
- `binary`: one class per file, by one of two rules chosen from the value histogram of all masks:
  `0/1` - non-zero is defect (0/1 masks; a few stray values such as a 2 count as defect and
  their files are named), or `threshold` - value >= T is defect (0..255 masks, whose
  anti-aliased edges below T stay background, so defects are not fattened).
Deciding per file would flip a single odd file of a 0/1 dataset into another mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

MASK_MODES = ("auto", "index", "binary")
STRAY_SHARE = 0.95  # 0/1 masks: value 1 holds at least this share of the non-zero pixels
INDEX_LIKE_MAX = 16  # auto, one class: values all <= this and not mostly 1 look like class indices


def read_mask(path: Path) -> np.ndarray:
    """A mask file as a 2-D integer array of its stored values (palette indices for 'P')."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                a = np.asarray(im).astype(np.int64 if im.mode.startswith("I") else np.uint8)
                if a.size and a.min() < 0:
                    raise DatasetError(f"negative mask value {int(a.min())}", path=path)
                return a
            a = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"unreadable mask ({e.__class__.__name__})", path=path) from None
    if not ((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()):
        raise DatasetError("colour mask: expected a single-channel class-index or binary mask", path=path)
    return a[..., 0]


def value_counts(mask: np.ndarray) -> dict[int, int]:
    """Stored value -> number of pixels, for the values present."""
    counts = np.bincount(mask.ravel())
    present = np.flatnonzero(counts)
    return dict(zip(present.tolist(), counts[present].tolist()))


def format_values(values: dict[int, int], limit: int = 8) -> str:
    """'0: 1,200 px, 1: 34 px, 2: 3 px'; many values: the `limit` most frequent and the rest summed."""
    shown = sorted(sorted(values, key=lambda v: -values[v])[:limit])
    text = ", ".join(f"{v}: {values[v]:,} px" for v in shown)
    rest = [v for v in values if v not in shown]
    if rest:
        text += (f", and {len(rest)} other values ({min(rest)}..{max(rest)}): "
                 f"{sum(values[v] for v in rest):,} px")
    return text


@dataclass(frozen=True)
class MaskMode:
    """How stored values become classes. kind: 'index' | 'binary'; rule: 'index' | '0/1'
    (non-zero is defect, values other than 0/1 are strays) | 'nonzero' | 'threshold' (>= threshold)."""

    kind: str
    rule: str
    threshold: int
    reason: str

    def labels(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) stored values -> (H, W) class per pixel (0 background; binary: 1 defect)."""
        if self.rule == "index":
            return mask
        if self.rule == "threshold":
            return (mask >= self.threshold).astype(np.uint8)
        return (mask != 0).astype(np.uint8)

    def value_classes(self, values: dict[int, int]) -> dict[int, int]:
        """The class of each stored value (0 background), the same rule as `labels`."""
        v = np.array(sorted(values), dtype=np.int64)
        return dict(zip(v.tolist(), self.labels(v).tolist()))

    def stray_values(self, values: dict[int, int]) -> list[int]:
        """Values of a 0/1 dataset other than 0 and 1 (counted as defect, worth naming)."""
        return sorted(v for v in values if v > 1) if self.rule == "0/1" else []


def decide_mask_mode(values: dict[int, int], num_classes: int, *, requested: str = "auto",
                     threshold: int = 128, one_class_per_file: bool = False) -> MaskMode:
    """Choose the mask mode from the value histogram of every mask of a dataset (value -> pixels).

    `one_class_per_file`: masks come one folder per class, so each file is binary.
    Raises DatasetError when the request cannot apply, or when one-class masks look like
    class indices and nothing said which they are."""
    if requested not in MASK_MODES:
        raise DatasetError(f"--mask-mode must be one of {', '.join(MASK_MODES)}, got {requested!r}")
    if requested == "index":
        if one_class_per_file:
            raise DatasetError("--mask-mode index needs class-index masks, not one folder per class "
                               "(--class-from-folder)")
        return MaskMode("index", "index", threshold, f"--mask-mode index, {num_classes} class(es)")
    if not one_class_per_file and num_classes > 1:
        if requested == "binary":
            raise DatasetError(f"--mask-mode binary gives one class per mask, but there are {num_classes} "
                               f"classes: use --classes 1, or --class-from-folder")
        return MaskMode("index", "index", threshold, f"{num_classes} classes")

    how = "--mask-mode binary" if requested == "binary" else "one class per mask"
    nonzero = {v: n for v, n in values.items() if v}
    total = sum(nonzero.values())
    top = max(nonzero, default=0)
    share1 = nonzero.get(1, 0) / total if total else 1.0
    if top <= 1:
        return MaskMode("binary", "0/1", threshold, f"{how}, values 0/1")
    if share1 >= STRAY_SHARE:
        strays = ", ".join(str(v) for v in sorted(nonzero) if v > 1)
        return MaskMode("binary", "0/1", threshold, f"{how}; value 1 holds {share1:.2%} of the non-zero pixels, "
                                                    f"so the other values ({strays}) are strays")
    if top < threshold:
        if requested == "auto" and not one_class_per_file and top <= INDEX_LIKE_MAX:
            raise DatasetError(f"mask values reach only {top} ({format_values(nonzero)}): they look like "
                               f"class indices, not binary masks; pass --classes {top}, or --mask-mode binary "
                               f"to count every non-zero value as a defect")
        return MaskMode("binary", "nonzero", threshold, f"{how}; every value is below the threshold {threshold}")
    halo = sum(n for v, n in nonzero.items() if v < threshold)
    return MaskMode("binary", "threshold", threshold,
                    f"{how}, values up to {top}; {halo:,} pixels with 0 < value < {threshold} "
                    f"(anti-aliased edges) stay background")
