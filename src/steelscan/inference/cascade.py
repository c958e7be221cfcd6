"""The inspection cascade: classifier gate -> segmenter -> post-processing -> verdict.

1. The classifier (optional) scores every image per class (max over tiles for images
   larger than a tile). A class under its label threshold is empty on that image.
2. The segmenter runs only on images where at least one class passed; the others are
   "OK" without segmentation (counted in `Inspector.stats`: that is the speed-up).
   Without a classifier every image goes to the segmenter.
3. `postprocess` turns probabilities into masks; `find_defects` into defects.
Verdict: "NG" when any defect is left, else "OK".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..defaults import BATCH_SIZE
from ..errors import ModelError
from .postprocess import Defect, classes_passing, exclusive_classes, find_defects, postprocess
from .runners import Runner
from .thresholds import Thresholds
from .tiling import Tiling, tiled_classify, tiled_segment


@dataclass
class InspectionResult:
    """What the cascade says about one image.

    masks: (C, H, W) uint8 0/1 final masks (None for an image that could not be read).
    class_scores: (C,) 0..1, the classifier's probability per class; without a
    classifier, the segmenter's highest pixel probability of the class (score_source).
    timings_ms: this image's share of each stage's batch time, milliseconds."""

    image_id: str
    verdict: str | None  # "OK" | "NG"; None with `error`
    masks: np.ndarray | None
    class_scores: np.ndarray | None
    defects: list[Defect]
    segmenter_ran: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    class_names: list[str] = field(default_factory=list)
    score_source: str = "classifier"

    @property
    def height(self) -> int | None:
        return None if self.masks is None else int(self.masks.shape[1])

    @property
    def width(self) -> int | None:
        return None if self.masks is None else int(self.masks.shape[2])

    @classmethod
    def failed(cls, image_id: str, error: str) -> "InspectionResult":
        return cls(image_id, None, None, None, [], False, {}, error)

    def to_json(self) -> dict:
        """One results.jsonl line."""
        if self.error is not None:
            return {"image_id": self.image_id, "verdict": None, "error": self.error}
        scores = {name: round(float(s), 4) for name, s in zip(self.class_names, self.class_scores)}
        return {
            "image_id": self.image_id,
            "verdict": self.verdict,
            "height": self.height,
            "width": self.width,
            "segmenter_ran": self.segmenter_ran,
            "class_scores": scores,
            "score_source": self.score_source,
            "defects": [d.to_json() for d in self.defects],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "error": None,
        }


@dataclass
class InspectorStats:
    images: int = 0
    segmented: int = 0
    skipped: int = 0  # images the classifier passed as clean: no segmenter run

    def to_json(self) -> dict:
        return {"images": self.images, "segmented": self.segmented, "skipped": self.skipped}


def check_compatible(classifier: Runner | None, segmenter: Runner, thresholds: Thresholds) -> None:
    """ModelError unless the models and thresholds agree on classes and input channels."""
    seg_c = getattr(segmenter, "num_classes", None)
    if seg_c and seg_c != thresholds.num_classes:
        raise ModelError(f"the segmenter predicts {seg_c} classes but the thresholds name "
                         f"{thresholds.num_classes} ({thresholds.source})")
    if classifier is None:
        return
    cls_c = getattr(classifier, "num_classes", None)
    if cls_c and seg_c and cls_c != seg_c:
        raise ModelError(f"the classifier predicts {cls_c} classes but the segmenter {seg_c}")
    if cls_c and cls_c != thresholds.num_classes:
        raise ModelError(f"the classifier predicts {cls_c} classes but the thresholds name "
                         f"{thresholds.num_classes} ({thresholds.source})")
    cls_ch, seg_ch = getattr(classifier, "in_channels", None), getattr(segmenter, "in_channels", None)
    if cls_ch and seg_ch and cls_ch != seg_ch:
        raise ModelError(f"the classifier takes {cls_ch}-channel images but the segmenter {seg_ch}-channel")


def to_batch_array(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W) in 0..1."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


class Inspector:
    """The cascade: a classifier (or None), a segmenter and their thresholds, run over
    images of any size, `batch_size` images at a time.

    Build one with `steelscan.runtime.build_inspector` (from a bundle or run folders);
    the constructor takes ready runners (tests, benchmarks). `settings` says where the
    models came from and how they run (sources, engine, tile, ...: for reports);
    `model_info` = {"name", "version", "sha256"} identifies the models (for records)."""

    def __init__(self, classifier: Runner | None, segmenter: Runner, thresholds: Thresholds,
                 class_names: list[str] | None = None, tile: tuple[int, int] | None = None,
                 overlap: tuple[int, int] | None = None, batch_size: int = BATCH_SIZE, *,
                 settings: dict | None = None, model_info: dict | None = None) -> None:
        check_compatible(classifier, segmenter, thresholds)
        self.classifier = classifier
        self.segmenter = segmenter
        self.thresholds = thresholds
        self.class_names = class_names or thresholds.class_names
        base = Tiling()
        tile = tile or base.tile
        overlap = overlap or (min(base.overlap[0], tile[0] // 4), min(base.overlap[1], tile[1] // 4))
        self.tiling = Tiling(tuple(tile), tuple(overlap))
        self.batch_size = max(1, int(batch_size))
        self.stats = InspectorStats()
        self.settings = {**(settings or {}), "tile": list(self.tiling.tile), "overlap": list(self.tiling.overlap),
                         "batch_size": self.batch_size, "gated": classifier is not None}
        self.model_info = dict(model_info or {"name": None, "version": None, "sha256": None})

    def inspect(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[InspectionResult]:
        """images: RGB uint8 (H, W, 3), any sizes. Returns one result per image, in order."""
        results: list[InspectionResult] = []
        for i in range(0, len(images), self.batch_size):
            results += self._inspect_batch(list(images[i:i + self.batch_size]),
                                           list(image_ids[i:i + self.batch_size]))
        return results

    def inspect_image(self, image: np.ndarray, image_id: str = "image") -> InspectionResult:
        return self.inspect([image], [image_id])[0]

    def _inspect_batch(self, images: list[np.ndarray], ids: list[str]) -> list[InspectionResult]:
        n = len(images)
        arrays = [to_batch_array(im) for im in images]
        timings = [dict() for _ in range(n)]
        scores: np.ndarray | None = None
        if self.classifier is not None:
            t0 = time.perf_counter()
            scores = tiled_classify(self.classifier, arrays, self.tiling, self.batch_size)
            share = (time.perf_counter() - t0) * 1000 / n
            for t in timings:
                t["classify"] = share
            passing = np.stack([classes_passing(s, self.thresholds) for s in scores])
            to_segment = np.flatnonzero(passing.any(axis=1))
        else:
            to_segment = np.arange(n)
        probs: dict[int, np.ndarray] = {}
        if len(to_segment):
            t0 = time.perf_counter()
            out = tiled_segment(self.segmenter, [arrays[j] for j in to_segment], self.tiling, self.batch_size)
            share = (time.perf_counter() - t0) * 1000 / len(to_segment)
            for j, p in zip(to_segment, out):
                probs[int(j)] = p
                timings[j]["segment"] = share
        self.stats.images += n
        self.stats.segmented += len(to_segment)
        self.stats.skipped += n - len(to_segment)
        return [self._result(ids[j], images[j].shape[:2], probs.get(j),
                             None if scores is None else scores[j], timings[j]) for j in range(n)]

    def _result(self, image_id: str, size: tuple[int, int], probs: np.ndarray | None,
                scores: np.ndarray | None, timings: dict) -> InspectionResult:
        t0 = time.perf_counter()
        C = self.thresholds.num_classes
        source = "classifier"
        if probs is None:  # gated: the classifier found nothing
            masks = np.zeros((C, *size), np.uint8)
            defects: list[Defect] = []
        else:
            exclusive = exclusive_classes(probs)
            masks = postprocess(exclusive, self.thresholds, scores, exclusive=False)
            defects = find_defects(masks, exclusive, self.class_names)
            if scores is None:
                scores = exclusive.reshape(C, -1).max(axis=1) if exclusive.size else np.zeros(C)
                source = "segmenter"
        timings["postprocess"] = (time.perf_counter() - t0) * 1000
        timings["total"] = sum(timings.values())
        return InspectionResult(image_id, "NG" if defects else "OK", masks, np.asarray(scores, np.float32),
                                defects, probs is not None, timings, None, list(self.class_names), source)
