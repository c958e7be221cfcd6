"""NEU-Seg: scores and speed of a steelscan model on a held-out split, beside published numbers.

    python benchmarks/neu_seg.py --model neu-seg --data DATA_DIR [--split FILE_OF_IDS] [--engine torch]

DATA_DIR is NEU-Seg imported with `steelscan import-masks` (see models/neu-seg/README.md).
Scores: Kaggle-style mean Dice over image x class pairs (an empty prediction on an empty truth
counts 1), Dice on pairs with a defect, per-class Dice, and IoU per class over the whole split
(intersection and union summed over images) with its mean. Speed: median frames/s at 200x200,
batch 1, after warm-up. Writes benchmarks/results/neu_seg.json and benchmarks/neu_seg.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = [  # Sime et al., Multimedia Tools and Applications 2024, NEU-Seg standard test split (840 images)
    ("UNet, SE-ResNeXt encoder", 93.08),
    ("FPN, EfficientNet-b5 encoder (best CNN)", 94.31),
    ("best of 40 models", 95.22),
]


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from steelscan.data.layout import open_dataset
    from steelscan.images import load_image
    from steelscan.metrics import score_pairs
    from steelscan.runtime import build_inspector, read_manifest, resolve_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="neu-seg")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", help="file with one image id per line (default: the model's validation ids)")
    ap.add_argument("--engine", default="torch", choices=["torch", "onnx", "onnx-int8"])
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--speed-frames", type=int, default=50)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "neu_seg.json"))
    ap.add_argument("--markdown", default=str(ROOT / "benchmarks" / "neu_seg.md"))
    args = ap.parse_args(argv)

    inspector = build_inspector(args.model, engine=args.engine, precision=args.precision, threads=args.threads,
                                batch_size=16)
    manifest, thresholds = read_manifest(resolve_model(args.model)), inspector.thresholds
    data = open_dataset(args.data)
    if args.split:
        ids = [line.strip() for line in Path(args.split).read_text().splitlines() if line.strip()]
    else:
        ids = list(manifest["segmenter"]["config"]["data"]["val_ids"])
    by_id = {r.image_id: r for r in data.records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        print(f"error: {len(missing)} split ids are not in {args.data} (e.g. {missing[0]})", file=sys.stderr)
        return 2
    C = thresholds.num_classes
    preds, truths = [], []
    for start in tqdm(range(0, len(ids), 64), desc="neu-seg", unit="batch"):
        chunk = [by_id[i] for i in ids[start:start + 64]]
        images = [load_image(r.path) for r in chunk]
        for r, im, res in zip(chunk, images, inspector.inspect(images, [r.image_id for r in chunk])):
            preds.append(res.masks.astype(bool))
            truths.append(data.masks(r, *im.shape[:2]).astype(bool))
    pred, truth = np.stack(preds), np.stack(truths)
    scores = score_pairs(pred, truth, data.class_names)
    inter = (pred & truth).sum(axis=(0, 2, 3)).astype(float)
    union = (pred | truth).sum(axis=(0, 2, 3)).astype(float)
    iou = {name: float(inter[c] / union[c]) if union[c] else 1.0 for c, name in enumerate(data.class_names)}

    frame = load_image(by_id[ids[0]].path)
    for _ in range(5):
        inspector.inspect([frame], ["warm"])
    times = []
    for _ in range(args.speed_frames):
        t0 = time.perf_counter()
        inspector.inspect([frame], ["t"])
        times.append(time.perf_counter() - t0)
    median_ms = statistics.median(times) * 1000

    result = {
        "model": str(args.model), "engine": args.engine, "precision": args.precision,
        "n_images": len(ids), "num_classes": C, "class_names": data.class_names,
        "kaggle_dice": scores["kaggle_dice"], "dice_pos": scores["dice_pos"], "dice_neg": scores["dice_neg"],
        "per_class_dice": scores["per_class"], "iou": iou, "mean_iou": float(np.mean(list(iou.values()))),
        "median_ms_per_frame": round(median_ms, 2), "frames_per_s": round(1000 / median_ms, 2),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "published_test_split": PUBLISHED,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.markdown).write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


def to_markdown(r: dict) -> str:
    per = r["per_class_dice"]
    lines = [
        "# NEU-Seg: steelscan's shipped model beside published results", "",
        f"Model `{r['model']}`, engine {r['engine']} ({r['precision']}), {r['n_images']} held-out images "
        "(our validation split; the standard 840-image test split is not available here).", "",
        "| class | Dice (image x class pairs) | IoU (summed over the split) |", "|---|---:|---:|",
    ]
    for name in r["class_names"]:
        d = per[name] if isinstance(per, dict) else per[r["class_names"].index(name)]
        d = d["dice"] if isinstance(d, dict) else d
        lines.append(f"| {name} | {100 * d:.2f} | {100 * r['iou'][name]:.2f} |")
    lines += [f"| **mean** | **{100 * r['kaggle_dice']:.2f}** (Kaggle-style) | **{100 * r['mean_iou']:.2f}** |", "",
              f"Dice on pairs with a defect: {100 * r['dice_pos']:.2f}; on clean pairs: {100 * r['dice_neg']:.2f}.", "",
              f"Speed: {r['frames_per_s']:.1f} frames/s (median {r['median_ms_per_frame']:.1f} ms per 200x200 frame, "
              "batch 1, this 2-core CPU).", "",
              "| model | mean Dice | split |", "|---|---:|---|"]
    lines += [f"| {name} | {score:.2f} | NEU-Seg test (840), Sime et al. 2024 |" for name, score in r["published_test_split"]]
    lines += [f"| steelscan `{r['model']}` | {100 * r['kaggle_dice']:.2f} | our validation split ({r['n_images']}) |", "",
              "Same metric (mean over image x class pairs, empty on empty = 1), different images: the published "
              "numbers are on the standard test split, ours on a held-out part of the 3,630 images we have.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
