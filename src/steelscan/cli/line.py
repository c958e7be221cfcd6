"""`steelscan line`: inspect coils (recorded or live) and store defects in coil coordinates.

    steelscan line --model MODEL --db coils.db --frames DIR [--coils coils.csv] [--config line.yaml]
    steelscan line --model MODEL --db coils.db --watch DIR [--state DIR] [--max-lag-s S]
    steelscan line [--model MODEL] --db coils.db --simulate [--coils N] [--coil-length-m L]
                   [--speed-m-s V] [--realtime]          (default model: the shipped synthetic-strip;
                                                          --oracle truth: the painted masks, no model)
    steelscan line --model MODEL --db coils.db --camera --surface top [--cti FILE]   (pip install steelscan[camera])
    ... [--rules FILE_OR_DIR]   grade each coil when it closes (stored in the database, graded_by "line")

Sources: `--frames DIR` replays a recorded coil and never skips a frame; `--watch DIR` inspects
frames as a camera writes them into DIR (complete files only: write, then rename; metadata in
`<stem>.json` beside each image or in a growing DIR/frames.csv) until stopped; `--simulate` runs
a synthetic line (synth-coil's coils, welded; endless unless `--coils N`). Live sources
(`--watch`, `--simulate --realtime`, `--camera`) skip frames on purpose when inspection falls
more than `--max-lag-s` behind, and store them as uninspected lengths with reason `behind`.

Ctrl-C / SIGTERM stop cleanly: what was inspected is stored, open coils stay open; the place on
the line is kept in `--state DIR` (default: `<db>.line/` beside a file database, else
`./steelscan-line/`; always for --watch/--simulate, for --frames only when given) and a restart
goes on from there. Database writes go through a spool in the state folder: if the database goes
away, results wait on disk and are written, in order and once, when it returns.

Roll marks: `--rolls rolls.csv` watches each surface's open coil for periodic defects and raises an
alarm once a mark has `--alarm-min-occurrences` (5) detected occurrences (steelscan.line.alarms):
recorded on the coil and carried to the next coils of the line until acknowledged (the service's
POST /v1/alarms/{id}/ack) or the roll's `installed_at` in rolls.csv (re-read at each coil) is later
than the alarm; `--alarm-webhook URL` POSTs raised/closed/acknowledged events as JSON. With
--simulate, `--roll-diameter-mm D` puts roll marks on the synthetic line (and, without --rolls,
their own roll table R1, R2, ... is used).

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
    from .predict import add_stream_arguments

    p = subparsers.add_parser("line", help="inspect recorded coils: defects and coverage in coil coordinates",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", type=Path, metavar="DIR", help="recorded coil: folder with frames.csv and images")
    src.add_argument("--watch", type=Path, metavar="DIR", help="live: frames a camera writes into DIR")
    src.add_argument("--simulate", action="store_true", help="live: a synthetic line (synth-coil)")
    src.add_argument("--camera", action="store_true", help="live: a GenICam camera (needs steelscan[camera])")
    p.add_argument("--db", required=True, metavar="URL_OR_PATH", help="defect database (or FILE.jsonl)")
    p.add_argument("--model", metavar="NAME_OR_DIR", help="model bundle (a shipped name or a folder); "
                   "--simulate without it: the shipped synthetic-strip")
    p.add_argument("--oracle", type=Path, metavar="TRAIN_CSV", help="inspect with these truth masks instead "
                   "(with --simulate: `--oracle truth`, the masks the generator painted)")
    p.add_argument("--coils", metavar="CSV|N", help="level-2 coil data (default: DIR/coils.csv); with "
                   "--simulate: the number of coils (default: endless)")
    p.add_argument("--coil-length-m", type=float, default=200.0, metavar="L", help="--simulate: metres per coil "
                   "(default 200)")
    p.add_argument("--speed-m-s", type=float, default=2.0, metavar="V", help="--simulate: strip speed (default 2)")
    p.add_argument("--realtime", action="store_true", help="--simulate: frames at the strip speed (default: as "
                   "fast as inspection goes)")
    p.add_argument("--seed", type=int, default=0, help="--simulate: the synthetic line's seed")
    p.add_argument("--roll-diameter-mm", type=float, nargs="+", default=(), metavar="D", help="--simulate: rolls "
                   "that mark the strip (synth-coil's roll marks)")
    p.add_argument("--rolls", type=Path, metavar="CSV", help="roll table (name,diameter_mm[,elongation,stand,"
                   "surface,installed_at]): raise periodic alarms while coils run")
    p.add_argument("--alarm-min-occurrences", type=int, default=5, metavar="N", help="a roll mark is an alarm "
                   "once it has N detected occurrences (default 5)")
    p.add_argument("--alarm-webhook", metavar="URL", help="POST alarm events (JSON) here; never holds up the line")
    p.add_argument("--state", type=Path, metavar="DIR", help="where the runner keeps its place and the spool")
    p.add_argument("--max-lag-s", type=float, default=10.0, metavar="S", help="live sources: skip frames (reason "
                   "behind) when inspection is more than S seconds behind (default 10)")
    p.add_argument("--reorder-frames", type=int, default=8, metavar="N", help="--watch: frames held to sort "
                   "a camera's order (default 8)")
    p.add_argument("--reorder-s", type=float, default=1.0, metavar="S", help="--watch: longest a frame is held "
                   "for reordering (default 1)")
    p.add_argument("--cti", type=Path, metavar="FILE", help="--camera: GenTL producer (default: "
                   "GENICAM_GENTL64_PATH)")
    p.add_argument("--no-spool", action="store_true", help="write to the database directly (no disk spool)")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics (lag, frames skipped "
                   "behind) on this port")
    p.add_argument("--rules", type=Path, metavar="FILE_OR_DIR", help="grade each coil when it closes (stored, "
                   "graded_by line): a rule file, or a folder with one per order or customer (<order>.yaml, "
                   "<customer>.yaml, else default.yaml)")
    p.add_argument("--config", type=Path, metavar="YAML", help="line config (default: DIR/line.yaml)")
    p.add_argument("--pixel-mm", type=float, nargs=2, metavar=("ALONG", "ACROSS"), help="mm per pixel")
    p.add_argument("--surface", choices=("top", "bottom"), help="only this surface's frames (one process "
                   "per camera)")
    p.add_argument("--engine", choices=("torch", "onnx", "onnx-int8"), default="torch")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model")
    p.add_argument("--batch-size", type=int, metavar="N", help="frames per inspection batch (default: config)")
    add_stream_arguments(p, "frames", "decoding (rendering, for --simulate), models and post-processing overlap, "
                         "as in predict")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
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


def state_dir(args: argparse.Namespace) -> Path:
    """--state, else beside a file database (`coils.db` -> `coils.db.line/`), else ./steelscan-line/."""
    if args.state:
        return args.state
    db = str(args.db)
    if db.startswith("sqlite:///"):
        db = db[len("sqlite:///"):]
    if "://" not in db:
        return Path(db + ".line")
    return Path("steelscan-line")


def _source(args, config, coils, problems):
    """The frame source the flags name, and the runner's resume/state setting for it."""
    from ..errors import ConfigError
    from ..line import read_frames
    from ..line.sources import ReplaySource

    if args.frames is not None:
        if not args.frames.is_dir():
            raise ConfigError("frames folder not found", path=args.frames)
        table = read_frames(args.frames / "frames.csv")
        if args.surface:
            table.frames = [f for f in table.frames if f.surface == args.surface]
        problems += [str(e) for e in table.problems]
        return ReplaySource(table, args.frames, coils, prefetch_depth=config.prefetch, resumed=args.state is not None)
    if args.watch is not None:
        from ..line.watch import WatchSource

        if not args.watch.is_dir():
            raise ConfigError("watched folder not found", path=args.watch)
        if args.reorder_frames < 0 or args.reorder_s < 0:
            raise ConfigError("must be >= 0", field="--reorder-frames/--reorder-s")
        return WatchSource(args.watch, reorder_frames=args.reorder_frames, reorder_s=args.reorder_s,
                           surface=args.surface, on_problem=_say)
    if args.simulate:
        from ..line.simulate import SimulatedLine

        n = None
        if args.coils is not None:
            try:
                n = int(args.coils)
            except ValueError:
                raise ConfigError(f"with --simulate, the number of coils; got {args.coils!r}", field="--coils") from None
        surfaces = (args.surface,) if args.surface else ("top", "bottom")
        size = tuple(config.frame_size) if config.frame_size else (256, 1600)
        return SimulatedLine(coils=n, coil_length_m=args.coil_length_m, speed_m_s=args.speed_m_s,
                             realtime=args.realtime, seed=args.seed, pixel_mm=tuple(config.pixel_mm),
                             frame_size=size, surfaces=surfaces, roll_diameters_mm=tuple(args.roll_diameter_mm))
    from ..line.camera import CameraSource

    if not args.surface:
        raise ConfigError("one camera per process: give --surface top|bottom", field="--surface")
    # harvesters and a GenTL producer are checked first: the one-line errors users will meet
    return CameraSource(args.surface, position=_no_encoder, coil=_no_encoder, cti=args.cti)


def _no_encoder():
    from ..errors import ConfigError

    raise ConfigError("no encoder/level-2 connection is configured for --camera in this build", field="--camera")


def _say(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"steelscan line: {text}", file=sys.stderr)


def _open_sink(args, state: Path | None):
    """The database (through the spool in the state folder) or a JSON-lines file."""
    if str(args.db).endswith(".jsonl") or args.no_spool or state is None:
        return open_sink(args.db)
    from ..line.spool import SpoolingSink

    open_sink(args.db).close()   # a database that does not answer at start: one clear line, exit 2
    return SpoolingSink(lambda: open_sink(args.db), state / f"spool-{args.surface or 'all'}")


PRUNE_EVERY_S = 600.0


def _start_pruner(db: str, config, stop):
    """With a crop budget in the line config: prune the database's crops now and every
    PRUNE_EVERY_S while the line runs; each pruning that removed something says so."""
    if str(db).endswith(".jsonl") or (config.crop_max_age_days is None and config.crop_max_mb is None):
        return None
    import threading

    from ..coils.prune import prune_crops
    from ..db import open_database

    def loop():
        while True:
            try:
                database = open_database(db)
                try:
                    report = prune_crops(database, max_age_days=config.crop_max_age_days,
                                         max_bytes=int(config.crop_max_mb * 1e6) if config.crop_max_mb else None)
                finally:
                    database.dispose()
                if report.removed or report.over_budget:
                    _say(report.line())
            except Exception as e:   # pruning waits for the next round; inspection goes on
                _say(f"crop pruning failed: {str(e).splitlines()[0][:200]}")
            if stop.wait(PRUNE_EVERY_S):
                return

    t = threading.Thread(target=loop, name="crop-pruner", daemon=True)
    t.start()
    return t


def _alarms(args, source):
    """The periodic-alarm keeper the flags ask for (None: no roll table, no alarms) and its webhook."""
    from ..errors import ConfigError

    if args.roll_diameter_mm and not args.simulate:
        raise ConfigError("roll marks are drawn on a simulated line only", field="--roll-diameter-mm")
    simulated = args.simulate and args.roll_diameter_mm
    if args.rolls is None and not simulated:
        if args.alarm_webhook:
            raise ConfigError("alarms need a roll table: give --rolls rolls.csv", field="--alarm-webhook")
        return None, None
    from ..line.alarm_webhook import AlarmWebhook
    from ..line.alarms import LiveAlarms

    alarms = LiveAlarms(None if args.rolls else source.roll_table(), rolls_path=args.rolls,
                        min_occurrences=args.alarm_min_occurrences)
    if args.alarm_webhook:
        alarms.webhook = AlarmWebhook(args.alarm_webhook)
    return alarms, alarms.webhook


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from ..errors import ConfigError
    from ..coils.coil_table import read_coils
    from ..line import LineRunner, load_line_config
    from ..line.config import CONFIG_FILE
    from ..line.state import LineState

    logging.basicConfig(level=args.log_level, format="steelscan line: %(message)s")
    if (args.model is None) == (args.oracle is None):
        if args.simulate and args.model is None and args.oracle is None:
            from ..line.simulate import DEFAULT_MODEL
            from ..runtime import shipped_model

            args.model = str(shipped_model(DEFAULT_MODEL))   # <repo>/models/synthetic-strip, or one clear line
        else:
            raise ConfigError("give --model or --oracle (one of them)", field="--model")
    folder = args.frames or args.watch
    coils_path = None
    if not args.simulate:
        coils_path = Path(args.coils) if args.coils else (
            folder / "coils.csv" if folder is not None and (folder / "coils.csv").is_file() else None)
    coils = read_coils(coils_path)
    config_path = args.config or (folder / CONFIG_FILE if folder is not None and (folder / CONFIG_FILE).is_file()
                                  else None)
    config = load_line_config(config_path, pixel_mm=tuple(args.pixel_mm) if args.pixel_mm else None)
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ConfigError(f"must be >= 1, got {args.batch_size}", field="--batch-size")
        config = config.model_copy(update={"batch_size": args.batch_size})
    if args.decode_workers < 1:
        raise ConfigError(f"must be >= 1, got {args.decode_workers}", field="--decode-workers")
    if not args.max_lag_s > 0:
        raise ConfigError(f"must be > 0, got {args.max_lag_s}", field="--max-lag-s")
    rules = _rules(args)
    problems = [str(e) for e in coils.problems]
    source = _source(args, config, coils.coils, problems)
    alarms, webhook = _alarms(args, source)
    for p in problems:
        print(f"steelscan line: {p}", file=sys.stderr)

    keep_place = args.state is not None or args.frames is None
    state_folder = state_dir(args)
    state = LineState(state_folder, args.surface or "all") if keep_place else None
    if state is not None:
        state.lock()
    if state is not None and args.simulate:
        opened = [(state.surface(s) or {}).get("coil") for s in state.surfaces()]
        source.resume(next((c["coil_id"] for c in opened if c), None))

    if args.oracle and args.simulate:
        from ..line.simulate import TruthInspector

        if str(args.oracle) != "truth":
            raise ConfigError(f"with --simulate, --oracle truth (the painted masks); got {args.oracle}",
                              field="--oracle")
        source.truth = True
        inspector = TruthInspector(source)
    elif args.oracle:
        from ..line.oracle import OracleInspector

        inspector = OracleInspector(args.oracle)
    else:
        from ..runtime import build_inspector

        inspector = build_inspector(model=args.model, engine=args.engine, device=args.device,
                                    threads=args.threads, batch_size=config.batch_size)
    sink = _open_sink(args, state_folder if not str(args.db).endswith(".jsonl") else None)
    stop = threading.Event()
    grader = None
    if rules is not None:
        from ..line.grading import CloseGrader

        grader = CloseGrader(args.db, rules, (args.surface,) if args.surface else tuple(config.surfaces),
                             on_problem=lambda text: runner.problem(text))
    runner = LineRunner(inspector, sink, config, coils.coils, progress=not args.quiet, on_problem=_say,
                        stop=stop, state=state, max_lag_s=args.max_lag_s, alarms=alarms,
                        on_coil_closed=grader.coil_closed if grader is not None else None,
                        mode=args.mode, decode_workers=args.decode_workers)

    def on_signal(signum, frame):
        if stop.is_set():
            return
        stop.set()
        _say(f"{signal.Signals(signum).name}: stopping after this batch (open coils stay open)")

    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port)
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on port {args.metrics_port} ({e.strerror})",
                              field="--metrics-port") from None
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    pruner = _start_pruner(args.db, config, stop)
    try:
        summary = runner.run_source(source)
    finally:
        stop.set()
        if pruner is not None:
            pruner.join(timeout=30)
        try:
            sink.close()
            if webhook is not None:
                webhook.close()
        finally:
            if grader is not None:   # after the sink: the closed coils' records are stored by now
                grader.close()
            for s, h in old.items():
                signal.signal(s, h)
    summary.problems[:0] = problems
    print(summary.line())
    if grader is not None:
        decisions = [g["decision"] for g in grader.graded]
        print(f"graded {len(decisions)} coil(s) at close: " + ", ".join(
            f"{decisions.count(d)} {d}" for d in ("ACCEPT", "DOWNGRADE", "HOLD", "REJECT")))
    return 1 if summary.problems else 0


def _rules(args):
    """--rules: every rule file read and checked before the line starts (a bad one: exit 2)."""
    from ..errors import ConfigError

    if args.rules is None:
        return None
    if str(args.db).endswith(".jsonl"):
        raise ConfigError("grading at coil close stores grades in the defect database: --db must be a "
                          "database, not a .jsonl file", field="--rules")
    from ..coils.rule_source import RuleSource

    source = RuleSource(args.rules)
    source.check()
    return source
