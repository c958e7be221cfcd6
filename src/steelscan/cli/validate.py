"""`steelscan validate DATA_DIR`: statistics and every problem of a Kaggle-layout dataset.

Exit 0 when no problems were found, 1 when some were (listed), 2 on bad usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a dataset folder and print its statistics and problems",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="folder with train_images/ + train.csv")
    p.add_argument("--csv", type=Path, help="label CSV (default: DATA_DIR/train.csv or labels.csv)")
    p.add_argument("--images", type=Path, help="images folder (default: DATA_DIR/train_images or images)")
    p.add_argument("--height", type=int, help="expected image height: other sizes are problems")
    p.add_argument("--width", type=int, help="expected image width: other sizes are problems")
    p.add_argument("--classes", type=int, help="number of classes (default: steelscan.json, else 4)")
    p.add_argument("--deep", action="store_true", help="decode every image fully (slow) to find corrupt data")
    p.add_argument("--max-problems", type=int, default=50, help="problems listed on screen (all go to --json)")
    p.add_argument("--json", dest="json_out", type=Path, help="write the full report to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json
    from ..data.validate import validate_dataset
    from ..errors import DatasetError

    if (args.height is None) != (args.width is None):
        raise DatasetError("give both --height and --width, or neither")
    for flag in ("height", "width", "classes"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise DatasetError(f"--{flag} must be positive, got {value}")
    report = validate_dataset(args.data_dir, csv_path=args.csv, images_dir=args.images, height=args.height,
                              width=args.width, num_classes=args.classes, deep=args.deep,
                              progress=sys.stderr.isatty())
    print(report.format_text(max_problems=max(args.max_problems, 0)))
    if args.json_out:
        write_json(args.json_out, report.to_dict())
    return 0 if report.ok else 1
