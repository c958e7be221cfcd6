"""`steelscan import-masks`: images + mask files (class-index or binary) -> Kaggle layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MAX_LISTED = 20


def register(sub: argparse._SubParsersAction) -> None:
    from ..data.importer import DEFAULT_THRESHOLD, MISSING_MASK_CHOICES
    from ..data.mask_values import MASK_MODES

    p = sub.add_parser("import-masks", help="convert a folder of images + masks to the Kaggle layout",
                       description="Convert images with class-index masks (values 0..N, NEU-Seg style) or "
                                   "binary masks (one class; or one folder per class) into train_images/ + "
                                   "train.csv + steelscan.json. The mask mode is decided once for the whole "
                                   "dataset from the histogram of mask values. Image bytes are copied "
                                   "unchanged; masks round-trip losslessly.")
    p.add_argument("--images", required=True, type=Path, help="folder of images")
    p.add_argument("--masks", type=Path,
                   help="folder of masks (default: beside the images, which needs --mask-pattern)")
    p.add_argument("--out", type=Path, help="output dataset folder (not needed with --dry-run)")
    p.add_argument("--mask-pattern", metavar="PATTERN",
                   help="mask file name from the image stem, e.g. '{stem}_label.bmp' "
                        "(default: same stem, any image suffix, PNG preferred)")
    p.add_argument("--class-from-folder", action="store_true",
                   help="masks/<class name or number>/<mask>: one binary mask per class folder")
    p.add_argument("--classes", type=int, help="number of classes N (mask values 0..N); 1 = binary masks "
                                               "(default: from --class-names, class folders or labels.txt, "
                                               "else 1)")
    p.add_argument("--mask-mode", choices=MASK_MODES, default="auto",
                   help="index: value k is class k; binary: one class, non-zero (0/1 masks) or >= threshold "
                        "(0..255 masks); auto (default): decided from the values of all masks")
    p.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                   help=f"0..255 binary masks: a pixel is a defect when its value >= T (default {DEFAULT_THRESHOLD})")
    p.add_argument("--class-names", help="comma-separated class names, e.g. inclusion,patch,scratch")
    p.add_argument("--missing-mask", choices=MISSING_MASK_CHOICES, default="error",
                   help="an image without a mask: an error (default) or a clean image")
    p.add_argument("--overwrite", action="store_true", help="replace an existing train.csv in --out")
    p.add_argument("--dry-run", action="store_true",
                   help="print the pairing (image -> mask(s), class), the unpaired files and the mask mode; "
                        "write nothing")
    p.set_defaults(func=run)


def _listed(lines: list[str], file=None) -> None:
    for line in lines[:MAX_LISTED]:
        print(f"  {line}", file=file)
    if len(lines) > MAX_LISTED:
        print(f"  ... and {len(lines) - MAX_LISTED} more", file=file)


def _print_pairing(plan) -> None:
    def shown(path: Path) -> str:
        return str(path.relative_to(plan.pairing.masks_dir))

    print(f"pairing ({len(plan.pairing.pairs)} images -> mask(s), class):")
    for pair in plan.pairing.pairs:  # every pair: the dry run is where people check them
        masks = ", ".join(f"{shown(path)} ({plan.mask_class(key)})" for key, path in pair.masks.items())
        print(f"  {pair.image.name} -> {masks or '(no mask)'}")
    unpaired = plan.pairing.unpaired_images
    print(f"images without a mask: {len(unpaired)}")
    _listed([str(p) for p in unpaired])
    print(f"mask files without an image: {len(plan.pairing.unpaired_masks)}")
    _listed([str(p) for p in plan.pairing.unpaired_masks])


def _print_summary(s) -> None:
    from ..data.mask_values import format_values

    verb = "dry run: would import" if s.dry_run else "imported"
    where = f" into {s.out_dir}" if s.out_dir is not None else ""
    print(f"{verb} {s.n_images} images ({s.n_clean} clean){where}: {s.num_classes} class(es)")
    rule = {"index": "value k is class k", "0/1": "0/1 masks, non-zero is defect", "nonzero": "non-zero is defect",
            "threshold": f"0..255 masks, defect where value >= {s.mode.threshold}"}[s.mode.rule]
    print(f"mask mode: {s.mode.kind}, {rule} ({s.mode.reason})")
    print(f"mask values: {format_values(s.values) if s.values else 'no masks'}")
    print(f"  {'class':<16}{'images':>8}{'defect px':>14}")
    for name, n in s.images_per_class.items():
        print(f"  {name:<16}{n:>8}{s.pixels_per_class[name]:>14,}")
    if s.stray_files:
        print(f"stray values (counted as defect) in {len(s.stray_files)} file(s):")
        _listed([f"{p}: {', '.join(map(str, v))}" for p, v in s.stray_files.items()])
    if s.n_missing_mask and not s.dry_run:
        print(f"  {s.n_missing_mask} images had no mask and were imported as clean")
    if s.unpaired_masks and not s.dry_run:
        print(f"{len(s.unpaired_masks)} mask file(s) name no image and were ignored, e.g. {s.unpaired_masks[0]}")


def run(args: argparse.Namespace) -> int:
    from ..data.importer import MaskImportError, import_masks, plan_import
    from ..errors import DatasetError

    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    if names is not None and not all(names):
        raise DatasetError(f"--class-names has an empty name: {args.class_names!r}")
    if args.out is None and not args.dry_run:
        raise DatasetError("--out is required (or --dry-run)")
    if args.dry_run:
        _print_pairing(plan_import(args.images, args.masks, pattern=args.mask_pattern,
                                   class_from_folder=args.class_from_folder, num_classes=args.classes,
                                   class_names=names))
    try:
        s = import_masks(args.images, args.masks, args.out, num_classes=args.classes,
                         threshold=args.threshold, class_names=names, mask_mode=args.mask_mode,
                         pattern=args.mask_pattern, class_from_folder=args.class_from_folder,
                         missing_mask=args.missing_mask, overwrite=args.overwrite, dry_run=args.dry_run,
                         progress=sys.stderr.isatty())
    except MaskImportError as e:
        _listed(e.problems, file=sys.stderr)
        raise
    _print_summary(s)
    return 0
