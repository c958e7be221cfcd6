"""`steelscan line`: inspect recorded coils and store defects in coil coordinates.

    steelscan line --model MODEL --db coils.db --frames DIR [--coils coils.csv] [--config line.yaml]

DIR holds the images and `frames.csv` (`file,coil_id,surface,position_m[,camera_id,timestamp]`);
`coils.csv` and `line.yaml` are read from DIR too when the flags do not name them. `--db` is a
SQLAlchemy URL or a SQLite path (a `.jsonl` path writes JSON lines instead). `--oracle TRAIN_CSV`
inspects with the truth masks instead of a model (the geometry benchmark).

Exit codes: 0 when every row and frame was fine; 1 when the run finished but some input had
problems (bad or duplicate CSV rows, unreadable or wrong-size frames: one line each on stderr; the
good rows and frames were inspected and stored, the bad frames stored as uninspected lengths);
2 when it could not run (bad flags, unreadable frames.csv header, bad config, a database that
does not answer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("line", help="inspect recorded coils: defects and coverage in coil coordinates",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", required=True, type=Path, metavar="DIR", help="folder with frames.csv and images")
    p.add_argument("--db", required=True, metavar="URL_OR_PATH", help="defect database (or FILE.jsonl)")
    p.add_argument("--model", metavar="NAME_OR_DIR", help="model bundle (a shipped name or a folder)")
    p.add_argument("--oracle", type=Path, metavar="TRAIN_CSV", help="inspect with these truth masks instead")
    p.add_argument("--coils", type=Path, metavar="CSV", help="level-2 coil data (default: DIR/coils.csv)")
    p.add_argument("--config", type=Path, metavar="YAML", help="line config (default: DIR/line.yaml)")
    p.add_argument("--pixel-mm", type=float, nargs=2, metavar=("ALONG", "ACROSS"), help="mm per pixel")
    p.add_argument("--surface", choices=("top", "bottom"), help="only this surface's frames (one process "
                   "per camera)")
    p.add_argument("--engine", choices=("torch", "onnx", "onnx-int8"), default="torch")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model")
    p.add_argument("--batch-size", type=int, metavar="N", help="frames per inspection batch (default: config)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def open_sink(db: str):
    """The coil database for a URL or path; a JSON-lines file for `*.jsonl`."""
    if str(db).endswith(".jsonl"):
        from ..line.jsonl_sink import JsonlSink

        return JsonlSink(db)
    from ..errors import ConfigError

    try:
        from ..coils.store import CoilStore
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("steelscan.coils"):
            raise ConfigError("the coil database is not in this build; use --db FILE.jsonl", field="--db") from None
        raise
    return CoilStore(db)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import ConfigError
    from ..line import LineRunner, load_line_config, read_coils, read_frames
    from ..line.config import CONFIG_FILE

    if (args.model is None) == (args.oracle is None):
        raise ConfigError("give --model or --oracle (one of them)", field="--model")
    if not args.frames.is_dir():
        raise ConfigError("frames folder not found", path=args.frames)
    table = read_frames(args.frames / "frames.csv")
    if args.surface:
        table.frames = [f for f in table.frames if f.surface == args.surface]
    coils_path = args.coils or (args.frames / "coils.csv" if (args.frames / "coils.csv").is_file() else None)
    coils = read_coils(coils_path)
    config_path = args.config or (args.frames / CONFIG_FILE if (args.frames / CONFIG_FILE).is_file() else None)
    config = load_line_config(config_path, pixel_mm=tuple(args.pixel_mm) if args.pixel_mm else None)
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ConfigError(f"must be >= 1, got {args.batch_size}", field="--batch-size")
        config = config.model_copy(update={"batch_size": args.batch_size})
    problems = [str(e) for e in table.problems + coils.problems]
    for p in problems:
        print(f"steelscan line: {p}", file=sys.stderr)

    if args.oracle:
        from ..line.oracle import OracleInspector

        inspector = OracleInspector(args.oracle)
    else:
        from ..runtime import build_inspector

        inspector = build_inspector(model=args.model, engine=args.engine, device=args.device,
                                    threads=args.threads, batch_size=config.batch_size)
    sink = open_sink(args.db)
    runner = LineRunner(inspector, sink, config, coils.coils, progress=not args.quiet,
                        on_problem=lambda text: tqdm.write(f"steelscan line: {text}", file=sys.stderr))
    try:
        summary = runner.run(table, args.frames)
    finally:
        sink.close()
    summary.problems[:0] = problems
    print(summary.line())
    return 1 if summary.problems else 0
