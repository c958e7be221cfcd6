"""`steelscan synth`: write a synthetic steel-strip data set in the Kaggle layout."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.synth import CLEAN_FRACTION
    from ..defaults import FRAME_HEIGHT, FRAME_WIDTH

    p = subparsers.add_parser(
        "synth", help="generate synthetic strip images + masks (Kaggle layout)",
        description="Generate synthetic steel-strip frames with defects of four classes whose "
                    "shapes, sizes and frequencies follow the real Severstal statistics, written "
                    "as train_images/*.jpg + train.csv + steelscan.json. Same seed, same bytes.")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--height", type=int, default=FRAME_HEIGHT, help=f"image height in px (default {FRAME_HEIGHT})")
    p.add_argument("--width", type=int, default=FRAME_WIDTH, help=f"image width in px (default {FRAME_WIDTH})")
    p.add_argument("--clean-fraction", type=float, default=CLEAN_FRACTION,
                   help=f"share of defect-free images (default {CLEAN_FRACTION})")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--preview", metavar="PNG", help="also write a contact sheet of the first "
                   "images with mask overlays to this PNG")
    p.add_argument("--preview-count", type=int, default=8, help="images on the preview (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.layout import open_dataset
    from ..data.synth import CLASS_DESCRIPTIONS, synthesize_dataset
    from ..errors import ConfigError

    for name in ("n", "height", "width", "workers", "preview_count"):
        if getattr(args, name) < 1:
            raise ConfigError(f"must be at least 1, got {getattr(args, name)}",
                              field=f"--{name.replace('_', '-')}")
    if min(args.height, args.width) < 8:
        raise ConfigError(f"image size must be at least 8x8, got {args.height}x{args.width}",
                          field="--height/--width")
    if not 0.0 <= args.clean_fraction <= 1.0:
        raise ConfigError(f"must be within 0..1, got {args.clean_fraction}", field="--clean-fraction")
    out = synthesize_dataset(args.out, args.n, args.seed, args.height, args.width,
                             clean_fraction=args.clean_fraction, workers=args.workers,
                             progress=not args.quiet)
    ds = open_dataset(out)
    presence = ds.presence()
    per_class = " ".join(f"{n}={int(k)}" for n, k in zip(ds.class_names, presence.sum(0)))
    print(f"wrote {len(ds)} images to {out} (clean {int((~presence.any(1)).sum())}; masks {per_class})")
    if args.preview:
        from ..overlay import preview_dataset

        path = preview_dataset(ds, args.preview, args.preview_count, descriptions=CLASS_DESCRIPTIONS)
        print(f"preview: {path}", file=sys.stderr)
    return 0
