"""`steelscan synth-coil`: a recorded line of synthetic coils with its truth in coil coordinates.

    steelscan synth-coil --out runs/coil --length-m 200 --width-mm 1250 --roll-diameter-mm 600
    steelscan synth-coil --out runs/line --length-m 50 --width-mm 1000 --coils 3 --surfaces top \\
        --roll-diameter-mm 600 750 --miss-rate 0.3 --jitter-mm 3 --wear 0.005 --wander-mm 40

Writes frames/*.jpg, frames.csv, coils.csv, defects.csv (truth, one row per physical defect),
train.csv (Kaggle RLE per frame), line.yaml, rolls.csv and steelscan.json. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import sys


def _frame_size(text: str) -> tuple[int, int]:
    from ..errors import ConfigError

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"expected HxW such as 256x1600, got {text!r}", field="--frame-size") from None
    return h, w


def register(subparsers) -> None:
    from ..data.synth_coil import SynthCoilConfig

    d = SynthCoilConfig(length_m=1.0, width_mm=1.0)  # the defaults' one home
    p = subparsers.add_parser(
        "synth-coil", help="synthetic coils: frames + frames.csv + coils.csv + truth defects.csv",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--length-m", type=float, required=True, help="length of each coil in metres")
    p.add_argument("--width-mm", type=float, required=True, help="strip width in mm")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--roll-diameter-mm", type=float, nargs="+", action="extend", default=[],
                   metavar="D", help="a damaged roll of diameter D marks the strip every pi x D; "
                                     "roll i marks surface i mod (surfaces)")
    p.add_argument("--coils", type=int, default=d.coils, help=f"coils welded one after the other "
                                                              f"(default {d.coils})")
    p.add_argument("--pixel-mm", type=float, nargs=2, metavar=("ALONG", "ACROSS"),
                   default=[d.pixel.along_mm, d.pixel.across_mm],
                   help=f"pixel size on the strip (default {d.pixel.along_mm:g} {d.pixel.across_mm:g})")
    p.add_argument("--frame-size", default=f"{d.frame_height}x{d.frame_width}",
                   metavar="HxW", help=f"frame rows (along) x columns (across) "
                                       f"(default {d.frame_height}x{d.frame_width})")
    p.add_argument("--surfaces", default=",".join(d.surfaces),
                   help=f"surfaces to record (default {','.join(d.surfaces)})")
    p.add_argument("--miss-rate", type=float, default=d.miss_rate,
                   help="probability that a roll turn leaves no mark (default 0)")
    p.add_argument("--jitter-mm", type=float, default=d.jitter_mm,
                   help="each roll mark shifted by up to +-J mm along the strip (default 0)")
    p.add_argument("--wear", type=float, default=d.wear,
                   help="period scale: true period = pi x D x (1 + W) (default 0)")
    p.add_argument("--wander-mm", type=float, default=d.wander_mm,
                   help="a roll's mark drifts sideways within +-M mm of its mean position "
                        "relative to the drive-side strip edge (default 0)")
    p.add_argument("--density", type=float, default=d.density,
                   help="scale the random defect rates (default 1: ~8 clusters per 100 m and surface)")
    p.add_argument("--truth-only", action="store_true",
                   help="no frames: only the truth (defects.csv, coils.csv, rolls.csv, line.yaml), "
                        "the same as with frames; fast, for defect-list tools such as roll-mark detection")
    p.add_argument("--preview", metavar="PNG", help="also draw the truth as coil maps into this PNG")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synth_coil import SynthCoilConfig, draw_truth_map, synthesize_coils
    from ..errors import ConfigError
    from ..geometry import PixelSize

    try:
        pixel = PixelSize(*args.pixel_mm)
    except ValueError as e:
        raise ConfigError(str(e), field="--pixel-mm") from None
    cfg = SynthCoilConfig(
        length_m=args.length_m, width_mm=args.width_mm, seed=args.seed,
        roll_diameters_mm=tuple(args.roll_diameter_mm), coils=args.coils, pixel=pixel,
        frame_height=_frame_size(args.frame_size)[0], frame_width=_frame_size(args.frame_size)[1],
        surfaces=tuple(s.strip() for s in args.surfaces.split(",") if s.strip()),
        miss_rate=args.miss_rate, jitter_mm=args.jitter_mm, wear=args.wear,
        wander_mm=args.wander_mm, density=args.density)
    summary = synthesize_coils(args.out, cfg, workers=args.workers, progress=not args.quiet,
                               truth_only=args.truth_only)
    per_class = " ".join(f"class_{c}={n}" for c, n in summary.per_class.items())
    what = f"{summary.frames} frames of" if summary.frames else "the truth (no frames) of"
    print(f"wrote {what} {summary.coils} coil(s) to {summary.out}: "
          f"{summary.defects} truth defects ({summary.roll_marks} roll marks; {per_class or 'none'})")
    speed = f"{summary.frames_per_s:.1f} frames/s, " if summary.frames else ""
    print(f"{speed}{summary.seconds:.1f} s, {args.workers} worker(s)", file=sys.stderr)
    if args.preview:
        print(f"preview: {draw_truth_map(summary.out, args.preview)}", file=sys.stderr)
    return 0
