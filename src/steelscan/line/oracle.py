"""An inspector that knows the truth: it answers each frame with its ground-truth masks from a
Kaggle-layout label CSV (`train.csv`: ImageId,ClassId,EncodedPixels per frame). Plugged into the
line runner in place of a model it measures the geometry alone (strip edges, coil coordinates,
merging), with no model error in the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.layout import DEFAULT_NUM_CLASSES, decode_masks, default_class_names, read_label_table, read_meta
from ..errors import SteelscanError
from ..inference.cascade import InspectionResult
from ..inference.postprocess import find_defects


class OracleInspector:
    """`inspect(images, ids)` with truth masks: ids are frame files, matched by their name
    (`frames/000012.png` finds ImageId `000012.png`). Frames with no label row are clean."""

    def __init__(self, truth_csv: str | Path, *, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None) -> None:
        path = Path(truth_csv)
        table = read_label_table(path)
        self.labels = table.by_image()
        meta = read_meta(path.parent)
        top = max((r.class_id for r in table.rows if r.rle), default=0)
        self.num_classes = int(num_classes or meta.get("num_classes") or max(DEFAULT_NUM_CLASSES, top))
        self.class_names = list(class_names or meta.get("class_names") or default_class_names(self.num_classes))
        self.model_info = {"name": "oracle", "version": str(path), "sha256": None}

    def inspect(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[InspectionResult]:
        return [self._one(im, i) for im, i in zip(images, image_ids)]

    def _one(self, image: np.ndarray, image_id: str) -> InspectionResult:
        h, w = image.shape[:2]
        rles = self.labels.get(image_id, self.labels.get(Path(image_id).name, {}))
        try:
            masks = decode_masks(rles, h, w, self.num_classes)
        except SteelscanError as e:
            return InspectionResult(image_id, None, None, None, [], False, {}, f"truth: {e}",
                                    list(self.class_names), "oracle")
        defects = find_defects(masks, None, self.class_names)
        scores = masks.reshape(self.num_classes, -1).any(axis=1).astype(np.float32)
        return InspectionResult(image_id, "NG" if defects else "OK", masks, scores, defects, True, {}, None,
                                list(self.class_names), "oracle")
