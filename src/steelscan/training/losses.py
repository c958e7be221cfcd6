"""Losses: BCE with per-class positive weights (classifier), BCE + soft Dice (segmenter)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def positive_weights(positive_fraction: np.ndarray, max_weight: float) -> torch.Tensor:
    """BCE pos_weight per class (C,) = negatives / positives, clipped to [1, max_weight].

    positive_fraction: (C,) share of positive images (classifier) or pixels (segmenter)
    in what the model is trained on; a class never seen gets `max_weight`."""
    f = np.asarray(positive_fraction, dtype=np.float64)
    w = np.where(f > 0, (1.0 - f) / np.maximum(f, 1e-12), max_weight)
    return torch.tensor(np.clip(w, 1.0, max(max_weight, 1.0)), dtype=torch.float32)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per class over the whole batch, averaged over classes.

    logits, target: (N, C, H, W); target 0/1. Pooling a class over the batch keeps the
    loss defined when a crop holds none of that class."""
    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    denom = p.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()


class SegmentationLoss(nn.Module):
    """BCE (pos_weight per class) + dice_weight * soft Dice. logits, target: (N, C, H, W)."""

    def __init__(self, pos_weight: torch.Tensor, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight.view(-1, 1, 1))
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)
        return bce + self.dice_weight * soft_dice_loss(logits, target)


class ClassificationLoss(nn.Module):
    """BCE with a positive weight per class. logits, target: (N, C)."""

    def __init__(self, pos_weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)
