"""Kaggle mean Dice: per-mask Dice, batched pairs, pos/neg split and the streaming RLE scorer."""

from __future__ import annotations

import numpy as np
import pytest

from steelscan.errors import RLEError
from steelscan.metrics import DiceAccumulator, dice, kaggle_dice, pair_dice, score_pairs, score_rles
from steelscan.rle import encode_rle


def _masks(seed=0, n=6, c=3, h=12, w=20, p=0.3):
    rng = np.random.default_rng(seed)
    m = rng.random((n, c, h, w)) < p
    m[rng.random((n, c)) < 0.4] = False  # many empty pairs
    return m


def test_dice_basic_values():
    a = np.zeros((4, 4), np.uint8)
    b = np.zeros((4, 4), np.uint8)
    assert dice(a, b) == 1.0  # empty/empty
    b[0, 0] = 1
    assert dice(a, b) == 0.0  # empty pred on a defect
    assert dice(b, a) == 0.0  # false alarm on a clean mask
    a[0, :2] = 1
    assert dice(a, b) == pytest.approx(2 * 1 / (2 + 1))
    assert dice(b, b) == 1.0


def test_pair_dice_matches_loop_and_shape_errors():
    p, t = _masks(1), _masks(2)
    got = pair_dice(p, t)
    assert got.shape == (6, 3)
    for i in range(6):
        for c in range(3):
            assert got[i, c] == pytest.approx(dice(p[i, c], t[i, c]))
    with pytest.raises(ValueError, match="shape"):
        pair_dice(p, t[:, :2])


def test_kaggle_dice_perfect_and_all_empty():
    t = _masks(3)
    assert kaggle_dice(t, t) == 1.0
    empty_fraction = float((~t.any(axis=(2, 3))).mean())
    assert kaggle_dice(np.zeros_like(t), t) == pytest.approx(empty_fraction)


def test_score_pairs_keys_and_values():
    p, t = _masks(4), _masks(5)
    s = score_pairs(p, t, ["a", "b", "c"])
    pairs = pair_dice(p, t)
    pos = t.any(axis=(2, 3))
    assert s["kaggle_dice"] == pytest.approx(pairs.mean())
    assert s["dice_pos"] == pytest.approx(pairs[pos].mean())
    assert s["dice_neg"] == pytest.approx(pairs[~pos].mean())
    assert list(s["per_class"]) == ["a", "b", "c"]
    assert s["per_class"]["b"] == pytest.approx(pairs[:, 1].mean())
    assert s["per_class_pos"]["c"] == pytest.approx(pairs[pos[:, 2], 2].mean())
    assert (s["n_images"], s["n_pairs"], s["n_pos"], s["n_neg"]) == (6, 18, int(pos.sum()), 18 - int(pos.sum()))


def test_score_pairs_single_image_and_no_positive_pairs():
    t = np.zeros((2, 5, 5), bool)
    s = score_pairs(t, t)
    assert s["kaggle_dice"] == 1.0 and s["dice_pos"] is None and s["dice_neg"] == 1.0 and s["n_images"] == 1


def test_accumulator_batches_equal_one_shot():
    p, t = _masks(6), _masks(7)
    acc = DiceAccumulator(3)
    acc.update(p[:2], t[:2])
    acc.update(p[2:], t[2:])
    assert acc.result() == score_pairs(p, t)


def _rles(m):
    return {f"img{i}": {c + 1: encode_rle(m[i, c]) for c in range(m.shape[1]) if m[i, c].any()}
            for i in range(m.shape[0])}


def test_score_rles_equals_score_pairs():
    p, t = _masks(8), _masks(9)
    ids = [f"img{i}" for i in range(6)]
    got = score_rles(_rles(p), _rles(t), ids, (12, 20), 3)
    want = score_pairs(p, t)
    assert got.keys() == want.keys()
    for k in ("kaggle_dice", "dice_pos", "dice_neg"):
        assert got[k] == pytest.approx(want[k])
    assert got["per_class"] == pytest.approx(want["per_class"])


def test_score_rles_missing_images_are_clean_and_sizes_per_image():
    t = {"a": {1: "1 4"}}
    sizes = {"a": (2, 2), "b": (3, 3)}
    s = score_rles({}, t, ["a", "b"], sizes.__getitem__, 2)
    assert s["kaggle_dice"] == pytest.approx(3 / 4)
    assert s["n_pos"] == 1 and s["dice_pos"] == 0.0


def test_score_rles_bad_rle_is_located():
    with pytest.raises(RLEError, match=r"sub.csv:7: a class 2: run 1 .* runs past the end .*image is 2x2"):
        score_rles({"a": {2: "1 5"}}, {}, ["a"], (2, 2), 2, locate=lambda side, i, c: ("sub.csv", 7))
    with pytest.raises(RLEError, match="class id 3 outside 1..2"):
        score_rles({}, {"a": {3: "1 1"}}, ["a"], (2, 2), 2)
