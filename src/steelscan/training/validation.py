"""Validation scores of a model on full-size images, summed over data-parallel ranks.

segmenter: loss, kaggle_dice (mean Dice over all (image, class) pairs of masks thresholded
at `threshold`), dice_pos (pairs with a true defect), dice_class_k.
classifier: loss, macro_f1, any_f1 (image has any defect), f1_class_k."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..metrics import pair_dice
from . import distributed
from .machine import Machine


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, kind: str, num_classes: int,
             threshold: float, machine: Machine) -> dict[str, float]:
    """Scores of this rank's share of `loader`, summed with the other ranks' (see module doc)."""
    model.eval()
    segmenter, C = kind == "segmenter", num_classes
    # sums: loss, images, then per kind: dice per class (C), dice of positive pairs, positive pairs
    #                                   or tp/fp/fn per class (3C) and for "any defect" (3)
    sums = torch.zeros(2 + (C + 2 if segmenter else 3 * C + 3), dtype=torch.float64)
    for batch in loader:
        valid = batch["valid"]
        if not valid.any():
            continue
        x = machine.inputs(batch["image"][valid])
        y = (batch["masks"] if segmenter else batch["labels"])[valid].to(machine.device)
        with machine.autocast():
            logits = model(x)
        sums[0] += float(loss_fn(logits.float(), y)) * len(x)
        sums[1] += len(x)
        pred = (torch.sigmoid(logits.float()) > threshold).cpu().numpy()
        truth = y.cpu().numpy() > 0.5
        if segmenter:
            d = pair_dice(pred, truth)                         # (N, C)
            pos = truth.any(axis=(2, 3))
            sums[2:2 + C] += torch.from_numpy(d.sum(0))
            sums[2 + C] += float(d[pos].sum())
            sums[3 + C] += float(pos.sum())
        else:
            counts = [(pred & truth).sum(0), (pred & ~truth).sum(0), (~pred & truth).sum(0)]
            sums[2:2 + 3 * C] += torch.from_numpy(np.concatenate(counts).astype(np.float64))
            p_any, t_any = pred.any(1), truth.any(1)
            sums[2 + 3 * C:] += torch.tensor([(p_any & t_any).sum(), (p_any & ~t_any).sum(),
                                              (~p_any & t_any).sum()], dtype=torch.float64)
    s = distributed.sum_over_ranks(sums, machine.ranks).numpy()
    n = max(s[1], 1.0)
    out = {"loss": float(s[0] / n)}
    if segmenter:
        out["kaggle_dice"] = float(s[2:2 + C].sum() / (n * C))
        out["dice_pos"] = float(s[2 + C] / s[3 + C]) if s[3 + C] else float("nan")
        out.update({f"dice_class_{c + 1}": float(s[2 + c] / n) for c in range(C)})
    else:
        tp, fp, fn = s[2:2 + C], s[2 + C:2 + 2 * C], s[2 + 2 * C:2 + 3 * C]
        f1 = f1_score(tp, fp, fn)
        out["macro_f1"] = float(f1.mean())
        out["any_f1"] = float(f1_score(*s[2 + 3 * C:])[()])
        out.update({f"f1_class_{c + 1}": float(f1[c]) for c in range(C)})
    return out


def f1_score(tp, fp, fn) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn); 1.0 where there is nothing to find and nothing was found."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 1.0)
