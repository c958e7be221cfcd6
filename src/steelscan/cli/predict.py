"""`steelscan predict`: inspect images with a trained cascade and write verdicts.

    steelscan predict --classifier runs/cls --segmenter runs/seg --images DIR_OR_FILES... --out OUT
    steelscan predict --model NAME_OR_DIR --images strip.png --out OUT --engine onnx

--mode throughput (default) overlaps decoding, the models (--batch-size frames per call) and
post-processing + overlays on separate threads; --mode latency inspects one image at a time
(what a single request gets). Both write the same results in the same order.
"""

from __future__ import annotations

import argparse
import sys

from ..defaults import BATCH_SIZE, TILE


def add_stream_arguments(p: argparse.ArgumentParser, items: str, throughput: str) -> None:
    """--mode and --decode-workers of the inference stream (`inference.stream.inspect_stream`), for
    predict and the line runner; `throughput` says what that mode overlaps for this command."""
    p.add_argument("--mode", choices=("throughput", "latency"), default="throughput",
                   help=f"throughput: {throughput}; latency: one {items[:-1]} at a time (default throughput)")
    p.add_argument("--decode-workers", type=int, default=1, metavar="N",
                   help=f"threads decoding {items} ahead of the models in throughput mode (default 1)")


def add_model_arguments(p: argparse.ArgumentParser, *, require_images: bool = True) -> None:
    """Flags shared by predict and evaluate (which can run predict itself)."""
    g = p.add_argument_group("models")
    g.add_argument("--classifier", metavar="RUN_DIR", help="classifier run folder (optional: "
                   "without it every image goes to the segmenter)")
    g.add_argument("--segmenter", metavar="RUN_DIR", help="segmenter run folder")
    g.add_argument("--model", metavar="NAME_OR_DIR", help="a model bundle (folder, or a shipped name) "
                   "instead of --classifier/--segmenter")
    g.add_argument("--thresholds", metavar="FILE", help="thresholds.json (from `steelscan tune`); "
                   "default: the bundle's, else 0.5 / 0.5 / 0 / 0 for every class")
    g.add_argument("--engine", choices=("torch", "onnx", "onnx-int8", "auto"), default="torch",
                   help="inference engine (onnx engines need --model; auto: the fastest the bundle has)")
    g.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the bundle's setting; off for run folders)")
    r = p.add_argument_group("runtime")
    r.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N", help="images (tiles) per batch")
    r.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    r.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    r.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for the model")
    r.add_argument("--tile-width", type=int, default=None, metavar="W",
                   help=f"images wider than this are inspected in overlapping tiles (default {TILE[1]})")
    r.add_argument("--tile-height", type=int, default=None, metavar="H",
                   help=f"images taller than this are tiled too (default {TILE[0]})")
    r.add_argument("--no-overlays", action="store_true", help="skip overlays/<image>.png")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="inspect images: verdicts, defects, submission.csv, overlays",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", nargs="+", required=True, metavar="DIR_OR_FILE",
                   help="image files and/or folders of images")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder")
    add_stream_arguments(p, "images", "decode, models and post-processing overlap, frames batched (many frames)")
    add_model_arguments(p)
    p.set_defaults(func=run, batch_size=None)  # by mode: STREAM_BATCH_SIZE (throughput), 1 (latency)


def inspector_from_args(args):
    """The Inspector the model flags name (steelscan.runtime.build_inspector)."""
    from ..runtime import build_inspector

    return build_inspector(args.model, classifier=args.classifier, segmenter=args.segmenter,
                           thresholds=args.thresholds, engine=args.engine, device=args.device,
                           precision=args.precision, threads=args.threads, tta=args.tta,
                           batch_size=args.batch_size, tile=(args.tile_height, args.tile_width))


def run(args) -> int:
    from ..errors import ConfigError
    from ..inference.predict import collect_images, predict_files

    if args.decode_workers < 1:
        raise ConfigError(f"must be >= 1, got {args.decode_workers}", field="decode-workers")
    if args.batch_size is None:
        from ..defaults import STREAM_BATCH_SIZE
        args.batch_size = STREAM_BATCH_SIZE if args.mode == "throughput" else 1
    paths = collect_images(args.images)
    inspector = inspector_from_args(args)
    summary = predict_files(inspector, paths, args.out, overlays=not args.no_overlays, progress=not args.quiet,
                            mode=args.mode, workers=args.decode_workers)
    s = summary.to_json()
    print(f"{s['images']} images: {s['ng']} NG, {s['ok']} OK, {s['errors']} unreadable; segmenter ran on "
          f"{s['segmenter_ran']}, skipped {s['segmenter_skipped']} (classifier said clean); "
          f"{s['seconds']:.1f} s ({s['images_per_second'] or 0:.2f} img/s) -> {args.out}", file=sys.stderr)
    return 0
