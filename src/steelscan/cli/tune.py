"""`steelscan tune`: pick per-class thresholds that maximise Kaggle Dice on held-out images.

    steelscan tune --classifier runs/cls --segmenter runs/seg --data DIR --split val --out thresholds.json

The models run once over the images; the search then tries every combination of label
threshold, pixel threshold, minimum component size and minimum area per class. Writes
thresholds.json and, beside it, <name>_report.json (what was gained, and warnings).
"""

from __future__ import annotations

import argparse
import sys

from ..defaults import BATCH_SIZE


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="search per-class thresholds on held-out images",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifier", metavar="RUN_DIR", help="classifier run (optional)")
    p.add_argument("--segmenter", metavar="RUN_DIR", required=True, help="segmenter run")
    p.add_argument("--data", required=True, metavar="DIR", help="Kaggle-layout data folder")
    p.add_argument("--split", default="val", metavar="val|all|FILE",
                   help="val: the runs' held-out ids (config.json data.val_ids); all; or a file of ids")
    p.add_argument("--out", required=True, metavar="FILE", help="thresholds.json to write")
    p.add_argument("--min-positives", type=int, default=None, metavar="N",
                   help="classes with fewer positive images keep the defaults (default 20)")
    p.add_argument("--min-label-threshold", type=float, default=0.0, metavar="P",
                   help="search classifier thresholds from P up (default 0: the whole grid)")
    p.add_argument("--memory-gb", type=float, default=2.0, help="probability cache budget (GiB)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=None, metavar="N")
    p.add_argument("--tta", action="store_true",
                   help="tune for flip test-time augmentation (bundle it with the same setting)")
    p.add_argument("--tile-width", type=int, default=None, metavar="W")
    p.add_argument("--tile-height", type=int, default=None, metavar="H")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..atomic import write_json
    from ..data.layout import open_dataset
    from ..errors import ConfigError
    from ..inference.tune import DEFAULT_MIN_POSITIVES, format_report, split_ids, tune_on_dataset
    from ..runtime import build_inspector, check_runs

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError("--out must be a file name (thresholds.json), not a folder", path=out)
    cls_cfg, seg_cfg = check_runs(args.classifier, args.segmenter)
    dataset = open_dataset(args.data)
    ids = split_ids(args.split, seg_cfg, cls_cfg, [r.image_id for r in dataset.records])
    inspector = build_inspector(classifier=args.classifier, segmenter=args.segmenter, device=args.device,
                                precision=args.precision, threads=args.threads, tta=args.tta,
                                batch_size=args.batch_size, tile=(args.tile_height, args.tile_width))
    report = tune_on_dataset(inspector, dataset, ids,
                             memory_bytes=int(args.memory_gb * 1024 ** 3),
                             min_positives=DEFAULT_MIN_POSITIVES if args.min_positives is None else args.min_positives,
                             min_label_threshold=args.min_label_threshold,
                             progress=not args.quiet)
    report.thresholds.save(out)
    summary = report.to_json()
    summary.update({"split": args.split, "data": str(args.data), "classifier": args.classifier,
                    "segmenter": args.segmenter})
    write_json(out.with_name(out.stem + "_report.json"), summary)
    print(format_report(report), file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0
