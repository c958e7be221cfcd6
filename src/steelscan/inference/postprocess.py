"""From segmenter probabilities to per-class masks and defects.

The rules, in the order they are applied to one image's probabilities (C, H, W):
1. one class per pixel: at each pixel only the most probable class keeps its
   probability, the others get 0 (Severstal masks never overlap). Ties go to the
   lower class id. This uses every class's probability, gated or not, so the result
   does not depend on the classifier and tuning can treat classes independently.
2. label gate: a class whose classifier score is under its label_threshold is empty.
3. pixel threshold: probability >= pixel_threshold.
4. connected components (8-connectivity) with fewer than min_component pixels go.
5. a class with fewer than min_area pixels left is emptied.
A defect is one 8-connected component of a final class mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..rle import encode_rle
from .thresholds import ClassThresholds, Thresholds

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def exclusive_classes(probs: np.ndarray) -> np.ndarray:
    """(C, H, W) probabilities -> same shape, with every pixel's non-winning classes set to 0."""
    winner = probs.argmax(axis=0)
    keep = winner[None] == np.arange(probs.shape[0])[:, None, None]
    return np.where(keep, probs, np.zeros((), probs.dtype))


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a (H, W) mask: (labels int32 (H, W), 0 = background; count)."""
    labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
    return labels, int(n)


def remove_small_components(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 8-connected components of fewer than `min_size` pixels from a (H, W) mask."""
    if min_size <= 1 or not mask.any():
        return mask
    labels, n = label_components(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels].astype(mask.dtype)


def class_mask(prob: np.ndarray, rule: ClassThresholds) -> np.ndarray:
    """Rules 3-5 for one class: (H, W) probability -> (H, W) uint8 0/1 mask."""
    mask = (prob >= rule.pixel_threshold).astype(np.uint8)
    if rule.pixel_threshold <= 0.0:  # a 0 threshold would make all of an empty channel "defect"
        mask &= (prob > 0).astype(np.uint8)
    mask = remove_small_components(mask, rule.min_component)
    if rule.min_area > 0 and int(mask.sum()) < rule.min_area:
        mask[:] = 0
    return mask


def classes_passing(class_scores: np.ndarray | None, thresholds: Thresholds) -> np.ndarray:
    """(C,) bool: which classes pass their label threshold (all, when there is no classifier)."""
    if class_scores is None:
        return np.ones(thresholds.num_classes, dtype=bool)
    limits = np.array([c.label_threshold for c in thresholds.classes], dtype=np.float64)
    return np.asarray(class_scores, dtype=np.float64) >= limits


def postprocess(probs: np.ndarray, thresholds: Thresholds, class_scores: np.ndarray | None = None,
                *, exclusive: bool = True) -> np.ndarray:
    """All five rules: segmenter probabilities (C, H, W) + classifier scores (C,) or None
    -> masks (C, H, W) uint8 0/1."""
    if probs.shape[0] != thresholds.num_classes:
        raise ValueError(f"{probs.shape[0]} probability channels for {thresholds.num_classes} classes")
    if exclusive:
        probs = exclusive_classes(probs)
    passing = classes_passing(class_scores, thresholds)
    masks = np.zeros(probs.shape, dtype=np.uint8)
    for c in np.flatnonzero(passing):
        masks[c] = class_mask(probs[c], thresholds[c])
    return masks


@dataclass
class Defect:
    """One 8-connected component of a class mask.

    score: mean segmenter probability (0..1) over the component's pixels.
    area: pixels. bbox: [ymin, xmin, ymax, xmax], inclusive pixel coordinates.
    rle: Kaggle RLE of this component alone, in the full image's frame."""

    class_id: int
    class_name: str
    score: float
    area: int
    bbox: list[int]
    rle: str

    def to_json(self) -> dict:
        return asdict(self)


def component_rle(labels: np.ndarray, k: int, xmin: int, xmax: int) -> str:
    """RLE of component k of `labels` (H, W), encoding only columns xmin..xmax.

    Column-major order makes a full-height column band contiguous in the image's pixel
    numbering, so the band's runs only need shifting by xmin * H."""
    height = labels.shape[0]
    band = labels[:, xmin:xmax + 1] == k
    runs = np.array(encode_rle(band).split(), dtype=np.int64).reshape(-1, 2)
    runs[:, 0] += xmin * height
    return " ".join(map(str, runs.ravel().tolist()))


def component_rles(labels: np.ndarray, n: int) -> list[str]:
    """Kaggle RLE of each component 1..n of `labels` (H, W), in the full image's frame, from one
    pass over the label image: the runs of equal labels in column-major order, grouped by label
    (position order kept). Same strings as `encode_rle(labels == k)` for every k."""
    flat = labels.T.ravel()
    bounds = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], bounds))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    values = flat[starts]
    order = np.argsort(values, kind="stable")  # by label, runs of one label stay in pixel order
    starts, lengths, values = starts[order] + 1, lengths[order], values[order]
    first = np.searchsorted(values, np.arange(1, n + 2))
    pairs = np.column_stack((starts, lengths))
    return [" ".join(map(str, pairs[first[k]:first[k + 1]].ravel().tolist())) for k in range(n)]


def find_defects(masks: np.ndarray, probs: np.ndarray | None, class_names: list[str]) -> list[Defect]:
    """Split final masks (C, H, W) into defects, ordered by class then position.

    probs (C, H, W) gives each defect's score; without it (None) the score is 1.0."""
    defects: list[Defect] = []
    for c in range(masks.shape[0]):
        if not masks[c].any():
            continue
        labels, n = label_components(masks[c])
        index = np.arange(1, n + 1)
        areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        if probs is not None:
            scores = ndimage.mean(probs[c].astype(np.float64), labels, index)
        else:
            scores = np.ones(n)
        rles = component_rles(labels, n)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            ys, xs = sl
            bbox = [ys.start, xs.start, ys.stop - 1, xs.stop - 1]
            defects.append(Defect(c + 1, class_names[c], round(float(scores[k - 1]), 4), int(areas[k - 1]),
                                  bbox, rles[k - 1]))
    return defects
