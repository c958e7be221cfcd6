"""Stratified, grouped, seeded splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from steelscan.data.layout import KaggleLayoutWriter, open_dataset
from steelscan.data.splits import split_dataset, split_train_val_test


def _presence(n=1000, seed=0):
    """Severstal-like: ~47 % clean, class 3 common, a few two-class and one three-class image."""
    rng = np.random.default_rng(seed)
    p = np.zeros((n, 4), bool)
    kinds = rng.choice(5, size=n, p=[0.47, 0.07, 0.03, 0.36, 0.07])
    for i, k in enumerate(kinds):
        if k:
            p[i, k - 1] = True
    p[:40, 2] = p[:40, 0] = True  # 40 images with classes 1+3
    p[n - 1, :3] = True  # a single (1, 2, 3) image
    return p


def _combos(p, idx):
    return Counter(tuple(np.flatnonzero(p[i]) + 1) for i in idx)


def test_deterministic_disjoint_and_complete():
    p = _presence()
    a = split_dataset(p, 0.2, seed=3)
    b = split_dataset(p, 0.2, seed=3)
    c = split_dataset(p, 0.2, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    train, val = a
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 1000
    assert train.dtype == np.int64 and np.all(np.diff(val) > 0)
    assert len(val) == 200


def test_stratified_by_class_combination():
    p = _presence()
    train, val = split_dataset(p, 0.2, seed=0)
    total, in_val = _combos(p, range(len(p))), _combos(p, val)
    for combo, n in total.items():
        if n >= 10:
            assert abs(in_val[combo] - 0.2 * n) <= 1, (combo, in_val[combo], n)
    # the one-off (1, 2, 3) image stays in train
    assert 999 in train and in_val[(1, 2, 3)] == 0


def test_groups_never_straddle():
    p = _presence(600)
    ids = [f"strip{i // 3}_crop{i % 3}.jpg" for i in range(600)]
    train, val = split_dataset(p, 0.25, seed=1, ids=ids, groups=lambda s: s.split("_")[0])
    strips_train = {ids[i].split("_")[0] for i in train}
    strips_val = {ids[i].split("_")[0] for i in val}
    assert strips_train.isdisjoint(strips_val)
    assert len(val) == 3 * round(200 * 0.25)
    # explicit keys, one per image, give the same split
    keys = [s.split("_")[0] for s in ids]
    t2, v2 = split_dataset(p, 0.25, seed=1, groups=keys)
    assert np.array_equal(val, v2)


def test_small_strata_keep_one_in_train():
    p = np.zeros((7, 2), bool)
    p[0] = [1, 0]
    p[1:3] = [0, 1]
    train, val = split_dataset(p, 0.5, seed=0)
    assert 0 in train  # a singleton combination never goes to val
    assert len(set(train) & {1, 2}) >= 1
    assert len(val) == 4  # round(3.5): 1 of the pair, the rest from the 4 clean images (1 stays in train)
    assert len(set(train) & {3, 4, 5, 6}) >= 1


def test_three_way_split():
    p = _presence()
    train, val, test = split_train_val_test(p, 0.1, 0.2, seed=5)
    assert len(train) + len(val) + len(test) == 1000
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert len(test) == 200 and abs(len(val) - 100) <= 1
    again = split_train_val_test(p, 0.1, 0.2, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again))
    assert 999 in train
    with pytest.raises(ValueError, match="< 1"):
        split_train_val_test(p, 0.5, 0.5)


def test_from_dataset(tmp_path):
    w = KaggleLayoutWriter(tmp_path, 2)
    for k in range(10):
        m = np.zeros((2, 4, 4), np.uint8)
        m[k % 2, 0, 0] = k < 8
        w.add(f"i{k}.png", np.zeros((4, 4), np.uint8), m)
    w.close()
    ds = open_dataset(tmp_path)
    train, val = split_dataset(ds, 0.5, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert len(val) == 5
    assert [ds.subset(val).presence().sum(0)[c] for c in (0, 1)] == [2, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="fraction"):
        split_dataset(np.zeros((4, 2), bool), 1.0)
    with pytest.raises(ValueError, match="3 group keys for 4 images"):
        split_dataset(np.zeros((4, 2), bool), groups=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        split_dataset(np.zeros(4, bool))
