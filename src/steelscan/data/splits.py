"""Deterministic, stratified, grouped train/val(/test) splits.

Stratum = the combination of classes present (the tuple of class ids, () for clean),
taken over a whole group. Groups (default: one per image id; or a function of the image
id, e.g. the source strip of a crop; or one key per image) never straddle two sides.
Within each stratum the groups are shuffled with `seed` and the split fraction is met by
largest remainder over all strata, so the sides match the requested fraction to within
one group. A stratum is only split when at least one group stays on the train side, so
a class combination seen once stays in train (the model learns it; val cannot score it).
Fractions count groups (= images when each image is its own group).
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

import numpy as np

from .layout import KaggleDataset

Groups = Callable[[str], Hashable] | Sequence[Hashable] | None


def _presence_and_ids(data: KaggleDataset | np.ndarray, ids: Sequence[str] | None) -> tuple[np.ndarray, list]:
    if isinstance(data, KaggleDataset):
        return data.presence(), [r.image_id for r in data.records]
    presence = np.asarray(data).astype(bool)
    if presence.ndim != 2:
        raise ValueError(f"presence matrix must be (N, C), got shape {presence.shape}")
    ids = list(ids) if ids is not None else list(range(len(presence)))
    if len(ids) != len(presence):
        raise ValueError(f"{len(ids)} ids for {len(presence)} presence rows")
    return presence, ids


def _group_keys(ids: list, groups: Groups) -> list:
    if groups is None:
        return ids
    if callable(groups):
        return [groups(i) for i in ids]
    keys = list(groups)
    if len(keys) != len(ids):
        raise ValueError(f"{len(keys)} group keys for {len(ids)} images")
    return keys


def _split_groups(combos: list[tuple], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Bool per group: True = taken to the held-out side. combos: the stratum of each group."""
    strata: dict[tuple, list[int]] = {}
    for g, combo in enumerate(combos):
        strata.setdefault(combo, []).append(g)
    keys = sorted(strata)
    exact = np.array([len(strata[k]) * fraction for k in keys])
    cap = np.array([len(strata[k]) - 1 for k in keys])  # leave >= 1 group of each stratum in train
    take = np.minimum(np.floor(exact).astype(int), cap)
    target = min(int(round(len(combos) * fraction)), int(cap.sum()))
    # hand out the remaining slots by largest remainder; random tie-break, seeded
    order = np.lexsort((rng.random(len(keys)), -(exact - take)))
    while take.sum() < target:
        progressed = False
        for k in order:
            if take.sum() >= target:
                break
            if take[k] < cap[k]:
                take[k] += 1
                progressed = True
        if not progressed:
            break
    held = np.zeros(len(combos), dtype=bool)
    for k, n in zip(keys, take):
        members = np.array(strata[k])
        held[rng.permutation(members)[:n]] = True
    return held


def _split(presence: np.ndarray, keys: list, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    group_of: dict[Hashable, int] = {}
    gidx = np.array([group_of.setdefault(k, len(group_of)) for k in keys], dtype=np.int64)
    group_presence = np.zeros((len(group_of), presence.shape[1]), dtype=bool)
    np.logical_or.at(group_presence, gidx, presence)
    combos = [tuple(int(c) + 1 for c in np.flatnonzero(row)) for row in group_presence]
    held = _split_groups(combos, fraction, np.random.default_rng(seed))
    image_held = held[gidx]
    return np.flatnonzero(~image_held), np.flatnonzero(image_held)


def split_dataset(data: KaggleDataset | np.ndarray, val_fraction: float = 0.2, seed: int = 0,
                  groups: Groups = None, ids: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): sorted int64 image indices. data: a KaggleDataset or an (N, C)
    presence matrix (with `ids` when `groups` is a function of the image id)."""
    presence, image_ids = _presence_and_ids(data, ids)
    return _split(presence, _group_keys(image_ids, groups), val_fraction, seed)


def split_train_val_test(data: KaggleDataset | np.ndarray, val_fraction: float = 0.1, test_fraction: float = 0.1,
                         seed: int = 0, groups: Groups = None, ids: Sequence[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train_idx, val_idx, test_idx); test is split off first, then val from the rest, both
    stratified and grouped like `split_dataset`."""
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")
    presence, image_ids = _presence_and_ids(data, ids)
    keys = _group_keys(image_ids, groups)
    rest, test = _split(presence, keys, test_fraction, seed)
    inner = val_fraction / (1.0 - test_fraction) if val_fraction else 0.0
    train_r, val_r = _split(presence[rest], [keys[i] for i in rest], inner, seed + 1)
    return rest[train_r], rest[val_r], test
