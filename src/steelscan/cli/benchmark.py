"""`steelscan benchmark`: cascade vs the Kaggle baseline (smp Unet ResNet-34) on this CPU."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..benchmark import DEFAULT_FRAMES, SEVERSTAL_DEFECT_RATE, WARMUP
    from ..defaults import FRAME_HEIGHT, FRAME_WIDTH

    p = subparsers.add_parser(
        "benchmark", help="time the cascade in every engine against the Kaggle baseline",
        description=f"Median/p99 latency and frames/s on {FRAME_WIDTH}x{FRAME_HEIGHT} frames, batch 1: the smp Unet "
                    "ResNet-34 baseline (fp32 PyTorch, no gating), our segmenter alone in each engine, "
                    "and the cascade at a defect rate. Prints the speed-up and a line-speed table.")
    p.add_argument("--model", metavar="MODEL_DIR",
                   help="bundle to time (default: our default architectures, random weights: speed only)")
    p.add_argument("--json", metavar="FILE", help="write every row and speedup_vs_baseline as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, metavar="N",
                   help=f"timed frames per row (default {DEFAULT_FRAMES})")
    p.add_argument("--warmup", type=int, default=WARMUP, metavar="N", help=f"untimed calls per row (default {WARMUP})")
    p.add_argument("--defect-rate", type=float, default=SEVERSTAL_DEFECT_RATE,
                   help=f"fraction of frames the cascade segments (default {SEVERSTAL_DEFECT_RATE}, Severstal's)")
    p.add_argument("--data", metavar="DIR", help="Kaggle-layout validation folder: adds Kaggle Dice per row")
    p.add_argument("--dice-images", type=int, metavar="N", help="use only the first N images of --data")
    p.add_argument("--baseline-run", metavar="RUN_DIR", help="trained smp Unet run for the baseline's Dice")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: all cores)")
    p.add_argument("--size", type=int, nargs=2, default=(FRAME_HEIGHT, FRAME_WIDTH), metavar=("H", "W"),
                   help=f"frame size (default {FRAME_HEIGHT} {FRAME_WIDTH})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json, write_text
    from ..benchmark import run_benchmark, to_markdown
    from ..errors import ConfigError

    if args.frames < 1:
        raise ConfigError(f"must be at least 1, got {args.frames}", field="frames")
    result = run_benchmark(args.model, frames=args.frames, defect_rate=args.defect_rate, data=args.data,
                           threads=args.threads, size=tuple(args.size), baseline_run=args.baseline_run,
                           dice_images=args.dice_images, warmup=args.warmup)
    report = to_markdown(result)
    print(report)
    if args.json:
        write_json(args.json, result)
    if args.markdown:
        write_text(args.markdown, report)
    return 0
