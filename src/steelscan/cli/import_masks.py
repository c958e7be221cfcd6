"""`steelscan import-masks`: images + mask PNGs (class-index or binary) -> Kaggle layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MAX_LISTED = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-masks", help="convert a folder of images + mask PNGs to the Kaggle layout",
                       description="Convert images with class-index masks (values 0..N, NEU-Seg style) or "
                                   "binary masks (one class) into train_images/ + train.csv + steelscan.json. "
                                   "Image bytes are copied unchanged; masks round-trip losslessly.")
    p.add_argument("--images", required=True, type=Path, help="folder of images")
    p.add_argument("--masks", required=True, type=Path, help="folder of masks, same file stems as the images")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--classes", type=int, help="number of classes N (mask values 0..N); 1 = binary masks "
                                               "(default: from --class-names or labels.txt, else 1)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="binary 0..255 masks: a pixel is a defect when value > T*255 (default 0.5)")
    p.add_argument("--class-names", help="comma-separated class names, e.g. inclusion,patch,scratch")
    p.add_argument("--missing-mask", choices=("error", "clean"), default="error",
                   help="an image without a mask: an error (default) or a clean image")
    p.add_argument("--overwrite", action="store_true", help="replace an existing train.csv in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.importer import MaskImportError, import_masks

    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    if names is not None and not all(names):
        from ..errors import DatasetError
        raise DatasetError(f"--class-names has an empty name: {args.class_names!r}")
    try:
        s = import_masks(args.images, args.masks, args.out, num_classes=args.classes, threshold=args.threshold,
                         class_names=names, missing_mask=args.missing_mask, overwrite=args.overwrite,
                         progress=sys.stderr.isatty())
    except MaskImportError as e:
        for line in e.problems[:MAX_LISTED]:
            print(f"  {line}", file=sys.stderr)
        if len(e.problems) > MAX_LISTED:
            print(f"  ... and {len(e.problems) - MAX_LISTED} more", file=sys.stderr)
        raise
    print(f"imported {s.n_images} images ({s.n_clean} clean) into {s.out_dir}: {s.num_classes} class(es)")
    for name, n in s.images_per_class.items():
        print(f"  {name:<16}{n:>7} images")
    if s.n_missing_mask:
        print(f"  {s.n_missing_mask} images had no mask and were imported as clean")
    return 0
