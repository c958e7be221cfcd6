"""Threshold search: beats the defaults where they are wrong, agrees with the real
post-processing, keeps defaults for classes with too few positives; `steelscan tune`."""

from __future__ import annotations

import numpy as np
import pytest

from steelscan.inference.postprocess import postprocess
from steelscan.inference.thresholds import Thresholds
from steelscan.inference.tune import (ProbabilityCache, build_cache, choose_factor, pool, search, size_grid,
                                      split_ids)
from steelscan.errors import ConfigError, DatasetError
from steelscan.metrics import kaggle_dice


def synthetic_cache(n=40, seed=0):
    """Class 1: a true block predicted at p=0.4 (under the default 0.5) plus 0.6 specks
    (false positives, 1-2 px); clean images carry specks only, and a classifier score that
    separates them at 0.3. Class 2: 3 positive images only."""
    rng = np.random.default_rng(seed)
    h, w = 32, 64
    probs, truth, scores = [], [], []
    for i in range(n):
        p = np.zeros((2, h, w), np.float32)
        t = np.zeros((2, h, w), bool)
        s = np.array([0.1, 0.1])
        if i % 2 == 0:
            y, x = rng.integers(0, 20), rng.integers(0, 40)
            t[0, y:y + 10, x:x + 20] = True
            p[0][t[0]] = 102 / 255  # ~0.4
            s[0] = 0.6
        for _ in range(4):
            yy, xx = rng.integers(0, h), rng.integers(0, w)
            if not t[0, yy, xx]:
                p[0, yy, xx] = 153 / 255  # ~0.6
        if i < 3:
            t[1, :4, :4] = True
            p[1, :4, :4] = 0.9
        probs.append(p)
        truth.append(t)
        scores.append(s)
    cache = ProbabilityCache([f"i{i}" for i in range(n)], [np.round(p * 255).astype(np.uint8) for p in probs],
                             truth, np.array(scores), 1, np.full(n, h * w), ["pits", "grooves"])
    return cache, np.stack(probs), np.stack(truth), np.array(scores)


def test_search_beats_defaults_and_matches_postprocess():
    cache, probs, truth, scores = synthetic_cache()
    report = search(cache, min_positives=10)
    t = report.thresholds
    assert report.classes[0].tuned_dice > report.classes[0].default_dice + 0.3
    assert t[0].pixel_threshold <= 0.4 and (t[0].min_component >= 2 or t[0].min_area > 8 or t[0].label_threshold > 0.1)
    # the score the search claims is what post-processing with those thresholds gives
    pred = np.stack([postprocess(p, t, s) for p, s in zip(probs, scores)])
    assert kaggle_dice(pred[:, :1], truth[:, :1]) == pytest.approx(report.classes[0].tuned_dice, abs=1e-9)
    default = np.stack([postprocess(p, Thresholds.defaults(2), s) for p, s in zip(probs, scores)])
    assert kaggle_dice(default[:, :1], truth[:, :1]) == pytest.approx(report.classes[0].default_dice, abs=1e-9)
    assert report.score("tuned_dice") > report.score("default_dice") > 0
    assert report.score("empty_dice") == pytest.approx(np.mean([1 - 20 / 40, 1 - 3 / 40]))


def test_too_few_positives_keeps_defaults_with_a_warning():
    cache, *_ = synthetic_cache()
    report = search(cache, min_positives=10)
    assert report.thresholds[1] == Thresholds.defaults(2, ["pits", "grooves"])[1]
    assert report.classes[1].kept_default and any("grooves" in w and "3 positive" in w for w in report.warnings)


def test_without_classifier_label_threshold_stays_default():
    cache, *_ = synthetic_cache()
    cache.scores = None
    report = search(cache, min_positives=1)
    assert all(c.label_threshold == 0.5 for c in report.thresholds.classes)
    assert report.classes[0].tuned_dice > report.classes[0].default_dice


def test_pooling_and_cache_budget():
    a = np.zeros((1, 5, 7), np.float32)
    a[0, :2, :2] = 1
    pooled = pool(a, 2)
    assert pooled.shape == (1, 3, 4) and pooled[0, 0, 0] == 1 and pooled[0, 1, 1] == 0
    assert choose_factor(1000 * 256 * 1600, 4, 2 * 1024 ** 3) == 2
    assert choose_factor(10 * 256 * 1600, 4, 2 * 1024 ** 3) == 1
    assert size_grid(256 * 1600)[0] == 0 and size_grid(256 * 1600)[-1] == 10486


def test_build_cache_runs_the_segmenter_once_per_image():
    calls = []

    def seg(batch):
        calls.append(len(batch))
        return np.repeat(batch[:, :1], 2, axis=1)

    rng = np.random.default_rng(0)
    items = [(f"{i}", rng.integers(0, 255, (16, 24, 3), dtype=np.uint8), np.zeros((2, 16, 24), np.uint8))
             for i in range(5)]
    cache = build_cache(None, seg, iter(items), ["a", "b"], batch_size=2)
    assert sum(calls) == 5 and len(cache.probs) == 5 and cache.scores is None
    assert cache.probs[0].dtype == np.uint8 and cache.probs[0][1].max() == 0  # class 2 loses every tie


def test_split_ids():
    seg = {"data": {"val_ids": ["a", "b", "c"]}}
    cls = {"data": {"val_ids": ["b", "c", "d"]}}
    assert split_ids("val", seg, cls, ["a", "b", "c", "d", "e"]) == ["b", "c"]
    assert split_ids("all", seg, None, ["a", "e"]) == ["a", "e"]
    with pytest.raises(ConfigError, match="val_ids"):
        split_ids("val", {"data": {}}, None, ["a"])
    with pytest.raises(DatasetError):
        split_ids("val", {"data": {"val_ids": ["z"]}}, None, ["a"])


def test_min_label_threshold_keeps_the_classifier_gating(tmp_path):
    from types import SimpleNamespace

    from steelscan.data.layout import open_dataset
    from steelscan.data.synth import synthesize_dataset
    from steelscan.inference.tiling import Tiling
    from steelscan.inference.tune import tune_on_dataset

    data = open_dataset(synthesize_dataset(tmp_path / "d", 16, seed=2, height=32, width=96, progress=False))
    truths: list = []

    def perfect_segmenter(batch):  # called once per image batch, in order (the frames fit one tile)
        return np.stack([truths.pop(0) for _ in range(len(batch))]).astype(np.float32)

    cascade = SimpleNamespace(
        classifier=lambda b: np.full((len(b), 4), 0.35, np.float32),    # under the default 0.5: gated out
        segmenter=perfect_segmenter, class_names=data.class_names, tiling=Tiling(), batch_size=8,
        thresholds=Thresholds.defaults(4, data.class_names))
    ids = [r.image_id for r in data.records]

    def labels(**kw):
        truths[:] = [data.masks(r, 32, 96) for r in data.records]
        report = tune_on_dataset(cascade, data, ids, min_positives=1, progress=False, **kw)
        return [c.chosen["label_threshold"] for c in report.classes if c.chosen]

    assert min(labels()) <= 0.35                     # opening the gate pays off on some class
    floored = labels(min_label_threshold=0.4)
    assert floored and min(floored) >= 0.4
