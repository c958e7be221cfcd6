"""The cascade: the classifier gate really skips the segmenter on clean images; per-class
gating; verdicts and result lines; mismatched parts are refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steelscan.errors import ModelError
from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.rle import decode_rle


class BrightClassifier:
    """Class c+1 probability = 0.9 when some pixel of channel c is bright, else 0.1."""

    kind, num_classes, in_channels = "classifier", 3, 3

    def __call__(self, batch):
        return np.where(batch.max(axis=(2, 3)) > 0.8, 0.9, 0.1).astype(np.float32)


class CountingSegmenter:
    """Probability = channel value; remembers how many images it was asked about."""

    kind, num_classes, in_channels = "segmenter", 3, 3

    def __init__(self):
        self.images = 0

    def __call__(self, batch):
        self.images += len(batch)
        return batch.astype(np.float32).copy()


def make_images(n_clean=6, n_defect=4, seed=0):
    rng = np.random.default_rng(seed)
    images, ids = [], []
    for i in range(n_clean + n_defect):
        im = rng.integers(0, 60, (32, 96, 3), dtype=np.uint8)
        if i >= n_clean:
            im[5:12, 20:40, 1] = 240  # a class-2 defect
        images.append(im)
        ids.append(f"{'defect' if i >= n_clean else 'clean'}_{i}.png")
    return images, ids


def test_gate_skips_the_segmenter_on_clean_images():
    images, ids = make_images()
    seg = CountingSegmenter()
    inspector = Inspector(BrightClassifier(), seg, Thresholds.defaults(3), batch_size=3)
    results = inspector.inspect(images, ids)
    assert seg.images == 4
    assert inspector.stats.to_json() == {"images": 10, "segmented": 4, "skipped": 6}
    for r in results:
        clean = r.image_id.startswith("clean")
        assert r.segmenter_ran is (not clean)
        assert r.verdict == ("OK" if clean else "NG")
        assert r.masks.shape == (3, 32, 96)
    defect = results[-1]
    assert [(d.class_id, d.area, d.bbox) for d in defect.defects] == [(2, 140, [5, 20, 11, 39])]
    assert "segment" not in results[0].timings_ms and "segment" in defect.timings_ms


def test_without_classifier_every_image_is_segmented_and_scored_by_the_segmenter():
    images, ids = make_images()
    seg = CountingSegmenter()
    inspector = Inspector(None, seg, Thresholds.defaults(3))
    results = inspector.inspect(images, ids)
    assert seg.images == 10 and inspector.stats.skipped == 0
    assert results[-1].score_source == "segmenter"
    assert results[-1].class_scores[1] == pytest.approx(240 / 255, abs=1e-6)


def test_a_class_under_its_label_threshold_is_empty_even_if_segmented():
    images, ids = make_images(0, 1)
    images[0][20:25, 60:70, 0] = 250  # a class-1 defect too
    t = Thresholds.defaults(3).with_class(0, label_threshold=0.95)  # classifier says 0.9 for class 1
    result = Inspector(BrightClassifier(), CountingSegmenter(), t).inspect_image(images[0], "x")
    assert result.masks[0].sum() == 0 and result.masks[1].sum() == 140
    assert {d.class_id for d in result.defects} == {2}


def test_result_line_is_json_with_everything_a_line_needs():
    images, ids = make_images(0, 1)
    result = Inspector(BrightClassifier(), CountingSegmenter(), Thresholds.defaults(3, ["a", "b", "c"])
                       ).inspect_image(images[0], "strip.png")
    line = json.loads(json.dumps(result.to_json()))
    assert line["verdict"] == "NG" and line["height"] == 32 and line["width"] == 96
    assert line["segmenter_ran"] is True and line["error"] is None
    assert line["class_scores"] == {"a": 0.1, "b": 0.9, "c": 0.1}
    (d,) = line["defects"]
    assert d["class_name"] == "b" and d["area"] == 140 and 0.9 < d["score"] <= 1
    assert decode_rle(d["rle"], 32, 96).sum() == 140
    assert set(line["timings_ms"]) >= {"classify", "segment", "postprocess", "total"}


def test_mismatched_parts_are_refused():
    seg = CountingSegmenter()

    class FourClassClassifier(BrightClassifier):
        num_classes = 4

    class GreyClassifier(BrightClassifier):
        in_channels = 1

    with pytest.raises(ModelError, match="classifier predicts 4 classes but the segmenter 3"):
        Inspector(FourClassClassifier(), seg, Thresholds.defaults(3))
    with pytest.raises(ModelError, match="thresholds"):
        Inspector(None, seg, Thresholds.defaults(4))
    with pytest.raises(ModelError, match="1-channel"):
        Inspector(GreyClassifier(), seg, Thresholds.defaults(3))
