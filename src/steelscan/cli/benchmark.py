"""`steelscan benchmark`: cascade vs the Kaggle baseline (smp Unet ResNet-34) on this CPU."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..benchmark import (DEFAULT_FRAMES, ENGINE_LABELS, PIXEL_SIZES_MM, PROBE_SECONDS, SEVERSTAL_DEFECT_RATE, STRIP_WIDTH_MM,
                             WARMUP)
    from ..defaults import FRAME_HEIGHT, FRAME_WIDTH, STREAM_BATCH_SIZE

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
    p.add_argument("--strip-width-mm", type=float, default=STRIP_WIDTH_MM, metavar="MM",
                   help=f"strip width for the line-speed table: frames across = ceil(width / pixel / "
                        f"{FRAME_WIDTH}) (default {STRIP_WIDTH_MM:g}; 0: one frame across)")
    p.add_argument("--pixel-mm", type=float, nargs="+", default=list(PIXEL_SIZES_MM), metavar="MM",
                   help=f"pixel sizes (mm on the strip) for the line-speed table (default "
                        f"{' '.join(f'{v:g}' for v in PIXEL_SIZES_MM)})")
    p.add_argument("--probe-seconds", type=float, default=PROBE_SECONDS, metavar="S",
                   help=f"seconds per hardware probe (fp32/bf16/int8 matmul peaks, memory bandwidth; "
                        f"default {PROBE_SECONDS})")
    p.add_argument("--stream-batch", type=int, default=STREAM_BATCH_SIZE, metavar="N",
                   help=f"frames per model call in the throughput-mode cascade row (default {STREAM_BATCH_SIZE})")
    p.add_argument("--engines", default=",".join(ENGINE_LABELS), metavar="LIST",
                   help=f"engines to time, comma-separated (default: all, {','.join(ENGINE_LABELS)}; those the "
                        "bundle lacks are skipped)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json, write_text
    from ..benchmark import parse_engines, run_benchmark, to_markdown
    from ..errors import ConfigError

    if args.frames < 1:
        raise ConfigError(f"must be at least 1, got {args.frames}", field="frames")
    if args.strip_width_mm < 0:
        raise ConfigError(f"must be >= 0, got {args.strip_width_mm}", field="strip-width-mm")
    if any(p <= 0 for p in args.pixel_mm):
        raise ConfigError(f"pixel sizes must be > 0, got {args.pixel_mm}", field="pixel-mm")
    if args.stream_batch < 1:
        raise ConfigError(f"must be >= 1, got {args.stream_batch}", field="stream-batch")
    if args.probe_seconds <= 0:
        raise ConfigError(f"must be > 0, got {args.probe_seconds}", field="probe-seconds")
    result = run_benchmark(args.model, frames=args.frames, defect_rate=args.defect_rate, data=args.data,
                           threads=args.threads, size=tuple(args.size), baseline_run=args.baseline_run,
                           dice_images=args.dice_images, warmup=args.warmup,
                           strip_width_mm=args.strip_width_mm or None, pixel_sizes=tuple(args.pixel_mm),
                           probe_seconds=args.probe_seconds, stream_batch=args.stream_batch,
                           engines=parse_engines(args.engines))
    report = to_markdown(result)
    print(report)
    if args.json:
        write_json(args.json, result)
    if args.markdown:
        write_text(args.markdown, report)
    return 0
