"""The Kaggle Severstal metric: mean Dice over every (image, class) pair.

Dice of one pair = 2|P∩T| / (|P| + |T|), and 1 when both masks are empty (an empty
prediction on a clean pair scores 1, any pixel predicted on a clean pair scores 0).
The score is the mean over all pairs, so it is dominated by clean pairs: predicting
every mask empty already scores the fraction of empty pairs.

Masks are binary (nonzero = defect). Batched functions take (..., H, W) arrays and
reduce over the last two axes. `score_rles` streams RLE labels image by image so
scoring a whole dataset never holds more than one image's masks in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from .errors import RLEError
from .rle import decode_rle, rle_area

__all__ = ["dice", "pair_dice", "kaggle_dice", "score_pairs", "score_rles", "DiceAccumulator"]


def _binary(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == bool else a != 0


def _dice_from_counts(inter: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    """Elementwise Dice from intersection and the two areas (pixels); 1 where both are 0."""
    inter = np.asarray(inter, dtype=np.float64)
    denom = np.asarray(pred_area, dtype=np.float64) + np.asarray(true_area, dtype=np.float64)
    out = np.ones(np.broadcast(inter, denom).shape, dtype=np.float64)
    np.divide(2.0 * inter, denom, out=out, where=denom > 0)
    return out


def pair_dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of each mask pair. pred, truth: (..., H, W) binary -> (...) float64."""
    p, t = _binary(pred), _binary(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != truth shape {t.shape}")
    if p.ndim < 2:
        raise ValueError(f"masks need at least 2 dims (H, W), got shape {p.shape}")
    axes = (-2, -1)
    return _dice_from_counts(np.logical_and(p, t).sum(axes), p.sum(axes), t.sum(axes))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of one (H, W) mask pair; empty vs empty = 1.0."""
    return float(pair_dice(np.asarray(pred)[None], np.asarray(truth)[None])[0])


def kaggle_dice(pred_masks: np.ndarray, true_masks: np.ndarray) -> float:
    """Kaggle score: mean Dice over every (image, class) pair. Inputs (N, C, H, W) binary
    (or (C, H, W) for one image)."""
    return float(pair_dice(pred_masks, true_masks).mean())


@dataclass
class DiceAccumulator:
    """Collects per-pair Dice for (N, C) pairs batch by batch; memory O(images x classes)."""

    num_classes: int
    _dice: list[np.ndarray] = field(default_factory=list)
    _positive: list[np.ndarray] = field(default_factory=list)

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        """pred, truth: (N, C, H, W) binary masks of a batch of N images."""
        if np.ndim(pred) != 4 or np.shape(pred)[1] != self.num_classes:
            raise ValueError(f"expected (N, {self.num_classes}, H, W) masks, got shape {np.shape(pred)}")
        t = _binary(truth)
        self._dice.append(pair_dice(pred, t))
        self._positive.append(t.any(axis=(-2, -1)))

    def update_counts(self, inter: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> None:
        """Per-pair pixel counts, each (N, C) (or (C,) for one image)."""
        inter, pred_area, true_area = (np.atleast_2d(np.asarray(x)) for x in (inter, pred_area, true_area))
        self._dice.append(_dice_from_counts(inter, pred_area, true_area))
        self._positive.append(true_area > 0)

    def result(self, class_names: list[str] | None = None) -> dict:
        names = class_names or [f"class_{i}" for i in range(1, self.num_classes + 1)]
        d = np.concatenate(self._dice) if self._dice else np.zeros((0, self.num_classes))
        pos = np.concatenate(self._positive) if self._positive else np.zeros((0, self.num_classes), bool)
        return summarise(d, pos, names)


def _mean_or_none(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def summarise(pair: np.ndarray, positive: np.ndarray, class_names: list[str]) -> dict:
    """Scores from per-pair Dice (N, C) and truth-non-empty flags (N, C).

    Returns kaggle_dice (mean over all pairs), dice_pos / dice_neg (pairs whose truth is
    non-empty / empty; None when there are no such pairs), per_class (mean Dice per class
    over all images), per_class_pos (mean Dice over that class's positive pairs), and counts."""
    n, c = pair.shape
    return {
        "kaggle_dice": _mean_or_none(pair),
        "dice_pos": _mean_or_none(pair[positive]),
        "dice_neg": _mean_or_none(pair[~positive]),
        "per_class": {class_names[k]: _mean_or_none(pair[:, k]) for k in range(c)},
        "per_class_pos": {class_names[k]: _mean_or_none(pair[positive[:, k], k]) for k in range(c)},
        "n_images": int(n),
        "n_pairs": int(n * c),
        "n_pos": int(positive.sum()),
        "n_neg": int(n * c - positive.sum()),
    }


def score_pairs(pred_masks: np.ndarray, true_masks: np.ndarray, class_names: list[str] | None = None) -> dict:
    """All scores for (N, C, H, W) binary predictions vs truth; see `summarise` for the keys."""
    p, t = _binary(pred_masks), _binary(true_masks)
    if p.ndim == 3:
        p, t = p[None], t[None]
    if p.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) masks, got shape {p.shape}")
    acc = DiceAccumulator(p.shape[1])
    acc.update(p, t)
    return acc.result(class_names)


Locate = Callable[[str, str, int], tuple[object, int | None]]


def _image_counts(pred: Mapping[int, str], truth: Mapping[int, str], h: int, w: int, num_classes: int,
                  image_id: str, locate: Locate | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inter, pred_area, true_area), each (C,), for one image; decodes only pairs where both
    masks are non-empty (otherwise the intersection is 0 and the run lengths give the areas)."""
    inter = np.zeros(num_classes, np.int64)
    areas = {"pred": np.zeros(num_classes, np.int64), "truth": np.zeros(num_classes, np.int64)}
    for side, rles in (("pred", pred), ("truth", truth)):
        for c, rle in rles.items():
            try:
                if not 1 <= c <= num_classes:
                    raise RLEError(f"class id {c} outside 1..{num_classes}")
                areas[side][c - 1] = rle_area(rle, h, w)
            except RLEError as e:
                path, line = locate(side, image_id, c) if locate else (side, None)
                raise RLEError(f"{image_id} class {c}: {e.message} (image is {h}x{w})",
                               path=path, line=line) from None
    for c in range(1, num_classes + 1):
        if areas["pred"][c - 1] and areas["truth"][c - 1]:
            inter[c - 1] = int(np.logical_and(decode_rle(pred[c], h, w), decode_rle(truth[c], h, w)).sum())
    return inter, areas["pred"], areas["truth"]


def score_rles(pred: Mapping[str, Mapping[int, str]], truth: Mapping[str, Mapping[int, str]],
               image_ids: Iterable[str], size: tuple[int, int] | Callable[[str], tuple[int, int]],
               num_classes: int, class_names: list[str] | None = None,
               locate: Locate | None = None, progress: Iterator | None = None) -> dict:
    """Score RLE predictions against RLE truth over `image_ids`, one image at a time.

    pred, truth: image id -> {class id (1-based): RLE}; a missing image or class is an
    empty mask. size: (height, width) for every image, or a function of the image id.
    locate(side, image_id, class_id) -> (path, line) names where a bad RLE came from
    (side is "pred" or "truth"). Returns the dict of `summarise`."""
    acc = DiceAccumulator(num_classes)
    ids = list(image_ids)
    inter = np.zeros((len(ids), num_classes), np.int64)
    pa, ta = np.zeros_like(inter), np.zeros_like(inter)
    for i, image_id in enumerate(ids):
        h, w = size(image_id) if callable(size) else size
        inter[i], pa[i], ta[i] = _image_counts(pred.get(image_id, {}), truth.get(image_id, {}), h, w,
                                               num_classes, image_id, locate)
        if progress is not None:
            progress.update(1)  # type: ignore[attr-defined]
    acc.update_counts(inter, pa, ta)
    return acc.result(class_names)
