"""`steelscan score`: the Kaggle mean Dice of a prediction CSV against a truth CSV.

Which images are scored:
- a full submission (`ImageId,EncodedPixels,ClassId` or legacy `ImageId_ClassId,...`,
  every image x class) is scored on exactly the images it names;
- a positives-only prediction (`ImageId,ClassId,EncodedPixels`) is scored on every
  image of `--images DIR` when given, otherwise on the images named in either file
  (clean images named in neither file cannot be known then; a note says so).
An (image, class) pair with no row is an empty mask. Image sizes come from the image
headers in --images, or --height/--width (default: a Severstal frame, 256x1600).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..defaults import FRAME_HEIGHT as DEFAULT_HEIGHT, FRAME_WIDTH as DEFAULT_WIDTH


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="Kaggle mean Dice of a submission/prediction CSV vs truth",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--truth", required=True, type=Path, help="truth label CSV (e.g. train.csv)")
    p.add_argument("--pred", required=True, type=Path, help="prediction CSV (submission or positives-only)")
    p.add_argument("--images", type=Path, help="images folder: sizes from headers; image set for positives-only preds")
    p.add_argument("--height", type=int, help=f"image height when --images is not given (default {DEFAULT_HEIGHT})")
    p.add_argument("--width", type=int, help=f"image width when --images is not given (default {DEFAULT_WIDTH})")
    p.add_argument("--classes", type=int, help="number of classes (default: steelscan.json beside the truth, else 4)")
    p.add_argument("--json", dest="json_out", type=Path, help="also write the scores to this JSON file")
    p.set_defaults(func=run)


def _labels(table, num_classes: int):
    """image -> {class: rle} and (image, class) -> line; duplicate pairs / bad classes raise."""
    from ..errors import DatasetError

    labels: dict[str, dict[int, str]] = {}
    lines: dict[tuple[str, int], int] = {}
    for r in table.rows:
        if r.class_id > num_classes:
            raise DatasetError(f"ClassId {r.class_id} out of range 1..{num_classes}", path=table.path,
                               line=r.line, field="ClassId")
        key = (r.image_id, r.class_id)
        if key in lines:
            raise DatasetError(f"duplicate row for {r.image_id} class {r.class_id} (first at line {lines[key]})",
                               path=table.path, line=r.line)
        lines[key] = r.line
        if r.rle:
            labels.setdefault(r.image_id, {})[r.class_id] = r.rle
    return labels, lines


def format_table(scores: dict) -> str:
    def f(x):
        return "   n/a" if x is None else f"{x:.4f}"
    out = [f"images {scores['n_images']}, pairs {scores['n_pairs']} "
           f"({scores['n_pos']} with a defect, {scores['n_neg']} clean)",
           f"{'kaggle mean Dice':<22}{f(scores['kaggle_dice'])}",
           f"{'Dice, defect pairs':<22}{f(scores['dice_pos'])}",
           f"{'Dice, clean pairs':<22}{f(scores['dice_neg'])}",
           "", f"{'class':<16}{'Dice':>8}{'Dice(pos)':>11}"]
    for name, d in scores["per_class"].items():
        out.append(f"{name:<16}{f(d):>8}{f(scores['per_class_pos'][name]):>11}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..atomic import write_json
    from ..data.layout import default_class_names, image_size, list_images, read_label_table, read_meta
    from ..errors import DatasetError
    from ..metrics import score_rles

    if args.images is not None and (args.height or args.width):
        raise DatasetError("give either --images or --height/--width, not both")
    if (args.height is not None and args.height <= 0) or (args.width is not None and args.width <= 0):
        raise DatasetError("--height and --width must be positive")
    truth_t = read_label_table(args.truth)
    pred_t = read_label_table(args.pred)
    meta = read_meta(args.truth.resolve().parent)
    top = max((r.class_id for r in truth_t.rows + pred_t.rows), default=0)
    num_classes = args.classes or int(meta.get("num_classes", max(4, top)))
    names = list(meta.get("class_names") or default_class_names(num_classes))[:num_classes]
    if len(names) < num_classes:
        names += default_class_names(num_classes)[len(names):]
    truth, truth_lines = _labels(truth_t, num_classes)
    pred, pred_lines = _labels(pred_t, num_classes)

    files: dict[str, Path] = {}
    if args.images is not None:
        if not args.images.is_dir():
            raise DatasetError("images folder not found", path=args.images)
        files = {p.name: p for p in list_images(args.images)}
    if pred_t.format != "current":
        image_ids = list(pred_t.images)
    elif files:
        image_ids = sorted(files)
    else:
        image_ids = list(dict.fromkeys(truth_t.images + pred_t.images))
        print(f"steelscan score: note: positives-only predictions without --images: scoring the "
              f"{len(image_ids)} images named in either file (clean images named in neither are not counted)",
              file=sys.stderr)
    if not image_ids:
        raise DatasetError("no images to score", path=args.pred)
    scored = set(image_ids)
    missing_truth = [i for i in truth if i not in scored]
    if missing_truth:
        print(f"steelscan score: note: {len(missing_truth)} labelled truth images are not in the scored set "
              f"(e.g. {missing_truth[0]})", file=sys.stderr)
    if truth_t.format != "current":
        unknown = [i for i in image_ids if i not in set(truth_t.images)]
        if unknown:
            print(f"steelscan score: note: {len(unknown)} scored images are not listed in the truth file "
                  f"(taken as clean; e.g. {unknown[0]})", file=sys.stderr)

    if files:
        absent = [i for i in image_ids if i not in files]
        if absent:
            raise DatasetError(f"{len(absent)} scored images are not in the images folder (e.g. {absent[0]})",
                               path=args.images)

        def size(image_id: str) -> tuple[int, int]:
            return image_size(files[image_id])
    else:
        size = (args.height or DEFAULT_HEIGHT, args.width or DEFAULT_WIDTH)  # type: ignore[assignment]

    def locate(side: str, image_id: str, class_id: int):
        table, lines = (pred_t, pred_lines) if side == "pred" else (truth_t, truth_lines)
        return table.path, lines.get((image_id, class_id))

    with tqdm(total=len(image_ids), desc="scoring", unit="img", file=sys.stderr,
              disable=True if len(image_ids) < 500 else None) as bar:
        scores = score_rles(pred, truth, image_ids, size, num_classes, names, locate=locate, progress=bar)
    scores["truth"], scores["pred"] = str(args.truth), str(args.pred)
    print(format_table(scores))
    print(json.dumps({k: scores[k] for k in ("kaggle_dice", "dice_pos", "dice_neg", "per_class", "n_images")}))
    if args.json_out:
        write_json(args.json_out, scores)
    return 0
