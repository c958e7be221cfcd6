"""Torch datasets and the seeded epoch order over a KaggleDataset.

A training item is keyed by (index, epoch, position): the image, its crop and its
augmentation depend only on that key and the run's seed (see augment.py), and the
epoch's order depends only on (seed, epoch). Validation items are full-size images.
"""

from __future__ import annotations

import sys
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data.layout import KaggleDataset, image_size, load_image
from ..errors import ImageError
from .augment import Augment, choose_crop, sample_rng

_REPORTED: set[str] = set()


def report_unreadable(path: object, reason: str) -> None:
    """One warning line per unreadable image and process."""
    key = str(path)
    if key not in _REPORTED:
        _REPORTED.add(key)
        print(f"warning: skipping unreadable image {key} ({reason})", file=sys.stderr, flush=True)


def scan_images(data: KaggleDataset) -> tuple[KaggleDataset, list[tuple[int, int]], list[str]]:
    """Read every image header (cheap, no decoding): drop the unreadable ones with a warning.

    Returns (readable subset, their (H, W) sizes, ids of the skipped images)."""
    keep: list[int] = []
    sizes: list[tuple[int, int]] = []
    skipped: list[str] = []
    for i, rec in enumerate(data.records):
        try:
            sizes.append(image_size(rec.path))
            keep.append(i)
        except ImageError as e:
            report_unreadable(rec.path, e.message)
            skipped.append(rec.image_id)
    return data.subset(keep), sizes, skipped


def class_balance_weights(presence: np.ndarray) -> np.ndarray:
    """Sampling weight per image (N,) from its class presence (N, C) bool.

    Each image weighs 1 / frequency of its rarest class (clean images: of "clean"), so
    each class and the clean images are drawn about equally often."""
    n, c = presence.shape
    groups = np.concatenate([presence, ~presence.any(1, keepdims=True)], axis=1)  # (N, C+1)
    inv = 1.0 / np.maximum(groups.sum(0), 1)
    weights = np.where(groups, inv[None, :], 0.0).max(1)
    return weights / weights.sum()


def epoch_order(num_items: int, weights: np.ndarray | None, seed: int, epoch: int) -> np.ndarray:
    """The global order of an epoch: `num_items` image indices; a pure function of (seed, epoch).

    Without weights a permutation; with weights a draw with replacement (the numpy
    equivalent of WeightedRandomSampler, so the order does not depend on torch's RNG)."""
    rng = np.random.default_rng([seed, epoch, 0x0DE2])
    if weights is None:
        return rng.permutation(num_items)
    return rng.choice(num_items, size=num_items, replace=True, p=weights)


class EpochSampler(Sampler):
    """Yields training keys (index, epoch, position) of this rank's share of the epoch.

    Every rank computes the same global order and takes positions rank, rank+world, ...;
    all ranks get the same number of samples (the tail that does not divide is dropped).
    `max_samples` caps each rank's share (quick runs). Call `set_epoch` before iterating."""

    def __init__(self, num_items: int, weights: np.ndarray | None, seed: int, *, rank: int = 0,
                 world: int = 1, max_samples: int = 0) -> None:
        self.num_items, self.weights, self.seed = num_items, weights, seed
        self.rank, self.world = rank, world
        per_rank = num_items // world
        self.length = min(per_rank, max_samples) if max_samples else per_rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        order = epoch_order(self.num_items, self.weights, self.seed, self.epoch)
        positions = np.arange(self.rank, self.length * self.world, self.world)
        for p in positions:
            yield int(order[p]), self.epoch, int(p)


class DefectDataset(Dataset):
    """Images as float32 (3, H, W) in 0..1 with masks (C, H, W) and labels (C,) as float32.

    Training (`crop`/`augment` given, keys from EpochSampler): a random crop of `crop`
    (H, W), biased to defects, then augmentation. Validation (keys are plain indices):
    the full image. An image that fails to decode is reported once; training substitutes
    the next image, validation returns zeros with valid=False (left out of the metrics)."""

    def __init__(self, data: KaggleDataset, sizes: list[tuple[int, int]], *, seed: int = 0,
                 crop: tuple[int, int] | None = None, augment: Augment | None = None,
                 defect_crop_prob: float = 0.0, with_masks: bool = True) -> None:
        self.data, self.sizes, self.seed = data, sizes, seed
        self.crop, self.augment, self.defect_crop_prob = crop, augment, defect_crop_prob
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.data)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (3, H, W) float32 0..1, masks (C, H, W) uint8) of record `index`."""
        rec = self.data.records[index]
        image = load_image(rec.path)
        h, w = image.shape[:2]
        masks = self.data.masks(rec, h, w)
        return image.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0), masks

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, (tuple, list)):
            return self.training_item(*key)
        try:
            image, masks = self.load(int(key))
            valid = True
        except ImageError as e:
            report_unreadable(self.data.records[int(key)].path, e.message)
            h, w = self.sizes[int(key)]
            image = np.zeros((3, h, w), np.float32)
            masks = np.zeros((self.data.num_classes, h, w), np.uint8)
            valid = False
        return self.pack(image, masks, valid)

    def training_item(self, index: int, epoch: int, position: int) -> dict[str, torch.Tensor]:
        rng = sample_rng(self.seed, epoch, position)
        for attempt in range(len(self.data)):
            i = (index + attempt) % len(self.data)
            try:
                image, masks = self.load(i)
                break
            except ImageError as e:
                report_unreadable(self.data.records[i].path, e.message)
        else:
            raise ImageError("no readable image left in the training set", path=self.data.images_dir)
        if self.crop is not None:
            ch, cw = min(self.crop[0], image.shape[1]), min(self.crop[1], image.shape[2])
            y0, x0 = choose_crop(rng, masks.any(0), (ch, cw), self.defect_crop_prob)
            image, masks = image[:, y0:y0 + ch, x0:x0 + cw], masks[:, y0:y0 + ch, x0:x0 + cw]
        if self.augment is not None:
            image, masks = self.augment(rng, image, masks)
        return self.pack(image, masks, True)

    def pack(self, image: np.ndarray, masks: np.ndarray, valid: bool) -> dict[str, torch.Tensor]:
        item = {"image": torch.from_numpy(np.ascontiguousarray(image)),
                "labels": torch.from_numpy(masks.reshape(masks.shape[0], -1).any(1).astype(np.float32)),
                "valid": torch.tensor(valid)}
        if self.with_masks:
            item["masks"] = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))
        return item


def size_batches(sizes: list[tuple[int, int]], batch_size: int, *, rank: int = 0,
                 world: int = 1) -> list[list[int]]:
    """Validation batches of same-size images (full images cannot be stacked otherwise).

    Images are sharded over ranks first (rank, rank+world, ...), then grouped by size."""
    mine = list(range(rank, len(sizes), world))
    by_size: dict[tuple[int, int], list[int]] = {}
    for i in mine:
        by_size.setdefault(tuple(sizes[i]), []).append(i)
    return [idx[k:k + batch_size] for idx in by_size.values() for k in range(0, len(idx), batch_size)]


def worker_init(_: int) -> None:
    """DataLoader workers decode JPEGs in numpy: one torch thread each is enough."""
    torch.set_num_threads(1)
