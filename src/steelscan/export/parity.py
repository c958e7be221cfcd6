"""Does an exported model say what the PyTorch model says?

Both engines run the same frames; we compare
- max |candidate - reference| of the classifier and segmenter probabilities (0..1), and
- the final masks after the same cascade and post-processing (`Inspector`):
  mask Dice agreement = Kaggle-style mean Dice over every (image, class) pair of the
  candidate's masks against the reference's (an empty pair counts 1), plus the pooled
  pixel Dice over all pairs and the fraction of identical OK/NG verdicts.
An export fails when the mask Dice agreement is under the engine's tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..defaults import FRAME_SIZE
from ..inference.cascade import Inspector, to_batch_array
from ..inference.thresholds import Thresholds

# Minimum mask Dice agreement with PyTorch fp32 for an export to pass.
MIN_MASK_DICE = {"onnx": 0.99, "onnx-int8": 0.97}
PARITY_IMAGES = 8
SYNTH_SEED = 20190722  # first day of the Severstal competition


def frames_from_data(root: str | Path, count: int, skip: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Up to `count` RGB uint8 frames (H, W, 3) of a Kaggle-layout folder, after the first
    `skip` images (so calibration and parity can use different frames when there are enough)."""
    from ..data.layout import open_dataset
    from ..images import load_image

    records = open_dataset(root).records
    if len(records) >= skip + count:
        chosen = records[skip:skip + count]
    else:
        chosen = records[:count]
    return [load_image(r.path) for r in chosen], [r.image_id for r in chosen]


def synthetic_frames(count: int, size: tuple[int, int] = FRAME_SIZE, seed: int = SYNTH_SEED,
                     first: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """`count` generated steel frames (steelscan.data.synth), RGB uint8 (H, W, 3)."""
    from ..data.synth import generate_image, image_rng, synthetic_image_id

    images = [generate_image(image_rng(seed, first + i), *size)[0] for i in range(count)]
    return images, [synthetic_image_id(seed, first + i) for i in range(count)]


def _probabilities(runner, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [runner(to_batch_array(im)[None])[0] for im in images]


def _max_abs(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(max((np.abs(x - y).max() for x, y in zip(a, b)), default=0.0))


def measure_parity(reference: tuple, candidate: tuple, thresholds: Thresholds,
                   images: Sequence[np.ndarray]) -> dict:
    """reference, candidate: (classifier Runner | None, segmenter Runner). images: RGB uint8.

    Returns {"n_images", "max_abs_prob_classifier", "max_abs_prob_segmenter",
    "mask_dice_agreement", "pooled_pixel_dice", "verdict_agreement"}."""
    from ..metrics import kaggle_dice

    out: dict = {"n_images": len(images)}
    (ref_cls, ref_seg), (cand_cls, cand_seg) = reference, candidate
    out["max_abs_prob_classifier"] = (None if ref_cls is None else
                                      round(_max_abs(_probabilities(ref_cls, images),
                                                     _probabilities(cand_cls, images)), 6))
    out["max_abs_prob_segmenter"] = round(_max_abs(_probabilities(ref_seg, images),
                                                   _probabilities(cand_seg, images)), 6)
    ids = [f"parity_{i}" for i in range(len(images))]
    ref = Inspector(ref_cls, ref_seg, thresholds, batch_size=1).inspect(images, ids)
    cand = Inspector(cand_cls, cand_seg, thresholds, batch_size=1).inspect(images, ids)
    ref_masks = np.stack([r.masks for r in ref]).astype(bool)
    cand_masks = np.stack([r.masks for r in cand]).astype(bool)
    out["mask_dice_agreement"] = round(kaggle_dice(cand_masks, ref_masks), 6)
    total = int(ref_masks.sum() + cand_masks.sum())
    pooled = 1.0 if total == 0 else 2.0 * int((ref_masks & cand_masks).sum()) / total
    out["pooled_pixel_dice"] = round(pooled, 6)
    out["verdict_agreement"] = round(float(np.mean([a.verdict == b.verdict for a, b in zip(ref, cand)])), 6)
    out["reference_ng"] = int(sum(r.verdict == "NG" for r in ref))
    return out


def parity_line(engine: str, result: dict) -> str:
    """One line with the numbers, for logs and error messages."""
    cls = result["max_abs_prob_classifier"]
    cls_text = "n/a" if cls is None else f"{cls:.2e}"
    return (f"{engine}: mask Dice agreement {result['mask_dice_agreement']:.4f} "
            f"(min {result['min_mask_dice']:.2f}), pooled pixel Dice {result['pooled_pixel_dice']:.4f}, "
            f"verdicts {result['verdict_agreement']:.0%} equal, max |dp| classifier {cls_text} "
            f"segmenter {result['max_abs_prob_segmenter']:.2e} on {result['n_images']} images")
