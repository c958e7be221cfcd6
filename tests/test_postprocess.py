"""Post-processing rules: one class per pixel, label gate, pixel threshold, small
components (8-connectivity), minimum area; defects and their RLEs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steelscan.errors import ConfigError
from steelscan.inference.postprocess import (component_rle, exclusive_classes, find_defects, label_components,
                                             postprocess, remove_small_components)
from steelscan.inference.thresholds import Thresholds, load_thresholds
from steelscan.rle import decode_rle, encode_rle


def test_one_class_per_pixel_highest_probability_wins_before_thresholds():
    probs = np.zeros((2, 4, 4), np.float32)
    probs[0, :2] = 0.6   # class 1 passes its threshold on rows 0-1 ...
    probs[1, 1:3] = 0.7  # ... but class 2 is more probable on row 1
    masks = postprocess(probs, Thresholds.defaults(2))
    assert masks[0].sum() == 4 and masks[0, 0].all() and not masks[0, 1].any()
    assert masks[1, 1:3].all() and masks[1].sum() == 8
    assert not (masks.sum(axis=0) > 1).any()
    ex = exclusive_classes(probs)
    assert ex[0, 1].max() == 0 and ex[1, 1].min() == pytest.approx(0.7)


def test_pixel_threshold_and_label_gate():
    probs = np.zeros((2, 5, 5), np.float32)
    probs[0, 0, :] = [0.2, 0.4, 0.5, 0.6, 0.9]
    probs[1, 4, :] = 0.9
    t = Thresholds.defaults(2).with_class(0, pixel_threshold=0.55)
    masks = postprocess(probs, t)
    assert masks[0, 0].tolist() == [0, 0, 0, 1, 1]
    assert masks[1].sum() == 5
    gated = postprocess(probs, t, class_scores=np.array([0.9, 0.3]))  # class 2 under label threshold 0.5
    assert gated[0].sum() == 2 and gated[1].sum() == 0


def test_small_components_removed_with_eight_connectivity():
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1  # a diagonal: ONE 8-connected component of 3 px
    mask[5:7, 5:7] = 1                        # a 4 px square
    mask[0, 7] = 1                            # a lone pixel
    labels, n = label_components(mask)
    assert n == 3
    out = remove_small_components(mask, 3)
    assert out[0, 0] == out[2, 2] == 1 and out[0, 7] == 0 and out[5:7, 5:7].all()
    assert remove_small_components(mask, 4).sum() == 4
    assert remove_small_components(mask, 0).sum() == mask.sum()


def test_min_component_and_min_area_in_postprocess():
    probs = np.zeros((1, 10, 10), np.float32)
    probs[0, 0:3, 0:3] = 0.9  # 9 px
    probs[0, 7, 7] = 0.9      # 1 px
    base = Thresholds.defaults(1)
    assert postprocess(probs, base)[0].sum() == 10
    assert postprocess(probs, base.with_class(0, min_component=2))[0].sum() == 9
    assert postprocess(probs, base.with_class(0, min_component=2, min_area=10))[0].sum() == 0
    assert postprocess(probs, base.with_class(0, min_area=10))[0].sum() == 10


def test_defects_bbox_area_score_and_rle():
    masks = np.zeros((2, 6, 9), np.uint8)
    probs = np.zeros((2, 6, 9), np.float32)
    masks[0, 1:3, 2:5] = 1
    probs[0, 1:3, 2:5] = 0.8
    probs[0, 1, 2] = 0.2
    masks[1, 4:6, 7:9] = 1
    masks[1, 0, 0] = 1
    probs[1] = 0.9
    defects = find_defects(masks, probs, ["a", "b"])
    assert [(d.class_id, d.class_name, d.area) for d in defects] == [(1, "a", 6), (2, "b", 1), (2, "b", 4)]
    d0 = defects[0]
    assert d0.bbox == [1, 2, 2, 4]
    assert d0.score == pytest.approx((5 * 0.8 + 0.2) / 6, abs=1e-4)
    assert np.array_equal(decode_rle(d0.rle, 6, 9), masks[0])
    assert defects[2].bbox == [4, 7, 5, 8]
    union = np.zeros((6, 9), np.uint8)
    for d in defects[1:]:
        union |= decode_rle(d.rle, 6, 9)
    assert np.array_equal(union, masks[1])
    json.dumps([d.to_json() for d in defects])


def test_component_rle_matches_full_image_encoding():
    rng = np.random.default_rng(0)
    mask = (rng.random((17, 23)) > 0.7).astype(np.uint8)
    labels, n = label_components(mask)
    for k in range(1, n + 1):
        xs = np.flatnonzero((labels == k).any(axis=0))
        assert component_rle(labels, k, xs.min(), xs.max()) == encode_rle(labels == k)


def test_thresholds_roundtrip_and_malformed_files(tmp_path):
    t = Thresholds.defaults(3, ["x", "y", "z"]).with_class(1, label_threshold=0.3, min_area=50)
    path = tmp_path / "thresholds.json"
    t.save(path)
    back = load_thresholds(path, 3)
    assert back.classes == t.classes
    with pytest.raises(ConfigError, match="4"):
        load_thresholds(path, 4)
    bad = tmp_path / "bad.json"
    bad.write_text('{"classes": [{"class_id": 1, "pixel_threshold": 1.5}]}')
    with pytest.raises(ConfigError, match=r"classes\[0\]\.pixel_threshold"):
        load_thresholds(bad, 1)
    bad.write_text('{"classes": [{"class_id": 1, "min_area": -3}]}')
    with pytest.raises(ConfigError, match="min_area"):
        load_thresholds(bad, 1)
    bad.write_text('{"classes": [')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_thresholds(bad, 1)
    with pytest.raises(ConfigError, match="not found"):
        load_thresholds(tmp_path / "nope.json", 1)
    assert load_thresholds(None, 2).classes[1].pixel_threshold == 0.5


def test_component_rles_in_one_pass_equal_each_component_encoded_alone():
    from scipy import ndimage

    from steelscan.inference.postprocess import component_rles

    rng = np.random.default_rng(4)
    mask = ndimage.gaussian_filter(rng.random((40, 90)), 1.5) > 0.5
    mask[-1, 10] = mask[0, 11] = True  # neighbours in column-major order across a column boundary
    labels, n = label_components(mask)
    assert n > 5
    assert component_rles(labels, n) == [encode_rle(labels == k) for k in range(1, n + 1)]
    assert component_rles(np.zeros((4, 5), np.int32), 0) == []


def test_find_defects_on_a_full_frame_with_several_classes_matches_per_component_encoding():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    probs = ndimage.gaussian_filter(rng.random((4, 256, 1600)).astype(np.float32), (0, 3, 3))
    probs = exclusive_classes((probs - probs.min()) / (probs.max() - probs.min()))
    masks = (probs >= 0.5).astype(np.uint8)
    defects = find_defects(masks, probs, ["a", "b", "c", "d"])
    assert len({d.class_id for d in defects}) == 4 and len(defects) > 100
    expected = []
    for c in range(4):
        labels, n = label_components(masks[c])
        for k, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
            expected.append((c + 1, [ys.start, xs.start, ys.stop - 1, xs.stop - 1],
                             component_rle(labels, k, xs.start, xs.stop - 1)))
    assert [(d.class_id, d.bbox, d.rle) for d in defects] == expected
