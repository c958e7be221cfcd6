"""Does `steelscan line` scale with coil length? A 2 km synthetic coil against a 200 m one, into
SQLite and into PostgreSQL: frames/s, peak RSS after warm-up (flat: 2 km within 10 % of 200 m),
database writer busy time / wall time (target < 5 %).

The coils are written once by `steelscan synth-coil --workers 2` (JPEG frames on disk, both
surfaces, 256 x 1600 px at 1 mm) and replayed by `steelscan line --frames DIR --oracle
DIR/train.csv --state STATE` (the spool on, as on a live line). The oracle inspector answers with
the truth masks, so no model time is in the numbers: what is measured is the line's own cost
(JPEG decode, strip edges, defect finding on the masks, coil coordinates, merging, crops, the
spool, the database writer). `--simulate` is not used: it renders every frame in the line's
process (about 4x slower than the line itself here), which would hide the line's own costs.

Each (database, coil) run is a fresh process (this file with --child) that runs the CLI's main()
in-process: RSS is read from /proc/self/status; after `--warmup-frames` frames have been
inspected VmHWM is reset (`5` into /proc/self/clear_refs) and read again when the line has
finished, so the peak excludes imports and warm-up. Writer busy time is CoilStore.busy_s (time
inside database transactions, summed over the stores the run opened) over the run's wall time.
PostgreSQL: a throwaway server on a temp dir and free port (tests/pg_server.py, durable defaults:
fsync on), a fresh database per run; SQLite: a fresh file per run.

    nice -n 5 .venv/bin/python benchmarks/line_scale.py [--lengths-m 200 2000] [--work DIR]

Writes benchmarks/results/line_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

WIDTH_MM = 1250.0
BACKENDS = ("sqlite", "postgresql", "postgresql-fast")


def proc_status_kb(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(m.group(1)) if m else -1


# --- the child: one line run, measured from inside ------------------------------------------
def child(coil: Path, db: str, state: Path, warmup_frames: int) -> dict:
    from steelscan.cli import main as steelscan
    from steelscan.coils.store import CoilStore
    from steelscan.line.oracle import OracleInspector

    stores: list[CoilStore] = []
    init = CoilStore.__init__

    def counting_init(self, *a, **k):
        init(self, *a, **k)
        stores.append(self)

    CoilStore.__init__ = counting_init
    writer_cpu: list[float] = []
    run = CoilStore._run

    def timed_run(self):   # the writer thread's own CPU time (load does not inflate it, unlike busy_s)
        try:
            run(self)
        finally:
            writer_cpu.append(time.thread_time())

    CoilStore._run = timed_run
    seen = {"frames": 0, "warm_at": None, "rss_max_kb": 0, "rss_at_warm_kb": None}
    inspect = OracleInspector.inspect

    def counting_inspect(self, images, ids):
        out = inspect(self, images, ids)
        seen["frames"] += len(ids)
        if seen["warm_at"] is None and seen["frames"] >= warmup_frames:
            Path("/proc/self/clear_refs").write_text("5")     # VmHWM := VmRSS from here on
            seen["warm_at"], seen["warm_frames"] = time.perf_counter(), seen["frames"]
            seen["rss_at_warm_kb"] = proc_status_kb("VmRSS")
        return out

    OracleInspector.inspect = counting_inspect
    inputs_kb = {}   # RSS taken by what the replay loads at start, O(coil length): frames.csv, the truth
    import steelscan.line as line_pkg
    read_frames, oracle_init = line_pkg.read_frames, OracleInspector.__init__

    def measured_read_frames(*a, **k):
        before = proc_status_kb("VmRSS")
        out = read_frames(*a, **k)
        inputs_kb["frames_table"] = proc_status_kb("VmRSS") - before
        return out

    def measured_oracle_init(self, *a, **k):
        before = proc_status_kb("VmRSS")
        oracle_init(self, *a, **k)
        inputs_kb["oracle_truth"] = proc_status_kb("VmRSS") - before

    line_pkg.read_frames, OracleInspector.__init__ = measured_read_frames, measured_oracle_init
    done = threading.Event()

    def sample():   # VmRSS every 0.2 s after warm-up: the peak's shape, beside VmHWM
        while not done.wait(0.2):
            if seen["warm_at"] is not None:
                seen["rss_max_kb"] = max(seen["rss_max_kb"], proc_status_kb("VmRSS"))

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    rc = steelscan(["line", "--frames", str(coil), "--oracle", str(coil / "train.csv"), "--db", db,
                    "--state", str(state), "--quiet"])
    t1 = time.perf_counter()
    done.set()
    hwm = proc_status_kb("VmHWM")
    warm_at = seen["warm_at"] or t1
    return {"rc": rc, "frames": seen["frames"], "wall_s": t1 - t0, "frames_per_s": seen["frames"] / (t1 - t0),
            "frames_per_s_after_warmup": (seen["frames"] - seen.get("warm_frames", 0)) / (t1 - warm_at),
            "warmup_frames": seen.get("warm_frames"),
            "rss_at_warmup_mb": (seen["rss_at_warm_kb"] or -1) / 1024,
            "peak_rss_after_warmup_mb": hwm / 1024,
            "replay_inputs_mb": sum(inputs_kb.values()) / 1024,
            "frames_table_mb": inputs_kb.get("frames_table", 0) / 1024,
            "oracle_truth_mb": inputs_kb.get("oracle_truth", 0) / 1024,
            "line_rss_after_warmup_mb": (hwm - sum(inputs_kb.values())) / 1024, "sampled_rss_max_after_warmup_mb": seen["rss_max_kb"] / 1024,
            "ru_maxrss_whole_run_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "writer_busy_s": sum(s.busy_s for s in stores), "transactions": sum(s.transactions for s in stores),
            "stores_opened": len(stores), "writer_cpu_s": sum(writer_cpu),
            "writer_cpu_pct": 100 * sum(writer_cpu) / (t1 - t0),
            "writer_busy_pct": 100 * sum(s.busy_s for s in stores) / (t1 - t0)}


# --- the parent: coils, servers, one child per run, the table ----------------------------------
def make_coil(work: Path, length_m: float, seed: int) -> tuple[Path, float | None]:
    """The synth-coil folder for this length (reused when already complete): path, seconds taken."""
    out = work / f"coil-{length_m:g}m"
    if (out / "frames.csv").is_file() and (out / "train.csv").is_file():
        return out, None
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "steelscan", "synth-coil", "--out", str(out), "--length-m", f"{length_m:g}",
                    "--width-mm", f"{WIDTH_MM:g}", "--coils", "1", "--seed", str(seed), "--workers", "2"],
                   check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return out, time.perf_counter() - t0


def run_child(coil: Path, db: str, work: Path, warmup: int) -> dict:
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    p = subprocess.run([sys.executable, __file__, "--child", str(coil), "--db-url", db, "--state", str(state),
                        "--warmup-frames", str(warmup)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    if p.returncode != 0:
        raise SystemExit(f"line run failed ({coil.name}, {db.split(':')[0]}): {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths-m", type=float, nargs=2, default=[200.0, 2000.0], metavar=("SHORT", "LONG"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-frames", type=int, default=300)
    ap.add_argument("--db", choices=BACKENDS, nargs="+", default=list(BACKENDS),
                    help="postgresql: durable defaults (fsync on); postgresql-fast: fsync and synchronous "
                         "commit off (the tests' server), to tell commit latency from the writer's own cost")
    ap.add_argument("--work", type=Path, help="keep the coils here (reused when present; default: a temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--db-url", dest="db_url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db_url, args.state, args.warmup_frames)))
        return 0

    command = " ".join(["nice -n", str(os.getpriority(os.PRIO_PROCESS, 0)), ".venv/bin/python",
                        "benchmarks/line_scale.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    load_start = os.getloadavg()
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="line_scale_")
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    coils = {}
    for length in args.lengths_m:
        coils[length] = make_coil(work, length, args.seed)
    servers = {}
    runs = []
    try:
        for backend in args.db:
            if backend.startswith("postgresql"):
                from pg_server import PostgresServer, unavailable

                why = unavailable()
                if why:
                    raise SystemExit(f"line_scale: no PostgreSQL: {why} (or pass --db sqlite)")
                servers[backend] = PostgresServer("bench", fast=backend.endswith("fast"), prefix="steelscan-pg-scale-")
                servers[backend].start()
        for backend in args.db:
            for length in args.lengths_m:
                name = f"scale_{backend.replace('-', '_')}_{length:g}m"
                if backend == "sqlite":
                    url = f"sqlite:///{work / (name + '.db')}"
                    Path(url[len('sqlite:///'):]).unlink(missing_ok=True)
                else:
                    import psycopg

                    server = servers[backend]
                    with psycopg.connect(server.url, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                        conn.execute(f'CREATE DATABASE "{name}"')
                    url = server.url.rsplit("/", 1)[0] + f"/{name}"
                load = os.getloadavg()[0]
                r = run_child(coils[length][0], url, work, args.warmup_frames)
                r.update(backend=backend, length_m=length, load_1min_before=load)
                runs.append(r)
                print(f"{backend:10s} {length:6g} m: {r['frames']} frames, {r['frames_per_s']:.1f} frames/s "
                      f"({r['frames_per_s_after_warmup']:.1f} after warm-up), peak RSS after warm-up "
                      f"{r['peak_rss_after_warmup_mb']:.0f} MB, writer busy {r['writer_busy_pct']:.2f} %",
                      flush=True)
    finally:
        for server in servers.values():
            server.remove()
    load_end = os.getloadavg()

    short, long_ = args.lengths_m
    verdict = {}
    for backend in args.db:
        a = next(r for r in runs if r["backend"] == backend and r["length_m"] == short)
        b = next(r for r in runs if r["backend"] == backend and r["length_m"] == long_)
        verdict[backend] = {
            "rss_long_over_short": round(b["peak_rss_after_warmup_mb"] / a["peak_rss_after_warmup_mb"], 4),
            "rss_flat_within_10pct": abs(b["peak_rss_after_warmup_mb"] / a["peak_rss_after_warmup_mb"] - 1) <= 0.10,
            "line_rss_long_over_short": round(b["line_rss_after_warmup_mb"] / a["line_rss_after_warmup_mb"], 4),
            "line_rss_flat_within_10pct":
                abs(b["line_rss_after_warmup_mb"] / a["line_rss_after_warmup_mb"] - 1) <= 0.10,
            "fps_long_over_short": round(b["frames_per_s_after_warmup"] / a["frames_per_s_after_warmup"], 3),
            "writer_busy_below_5pct": max(a["writer_busy_pct"], b["writer_busy_pct"]) < 5.0}
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    result = {"command": command, "machine": machine,
              "load_average_at_start": [round(x, 2) for x in load_start],
              "load_average_at_end": [round(x, 2) for x in load_end],
              "coil_generation_s": {f"{k:g}": (round(v[1], 1) if v[1] else None) for k, v in coils.items()},
              "width_mm": WIDTH_MM, "seed": args.seed, "warmup_frames": args.warmup_frames,
              "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
              "verdict": verdict}
    lines = ["| database | coil | frames | frames/s (whole run / after warm-up) | RSS at warm-up MB "
             "| peak RSS after warm-up MB | of which replay inputs MB | line alone MB | writer busy s | busy / wall "
             "| writer thread CPU / wall | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['backend']} | {r['length_m']:g} m | {r['frames']} | {r['frames_per_s']:.1f} / "
                     f"{r['frames_per_s_after_warmup']:.1f} | {r['rss_at_warmup_mb']:.0f} | "
                     f"{r['peak_rss_after_warmup_mb']:.0f} | {r['replay_inputs_mb']:.1f} | "
                     f"{r['line_rss_after_warmup_mb']:.0f} | {r['writer_busy_s']:.2f} | {r['writer_busy_pct']:.2f} % | "
                     f"{r['writer_cpu_pct']:.2f} % | {r['load_1min_before']:.1f} |")
    checks = "\n".join(
        f"- {b}: peak RSS {long_:g} m / {short:g} m = {v['rss_long_over_short']:.3f} "
        f"(**{'flat' if v['rss_flat_within_10pct'] else 'NOT flat'}**, limit 10 %), without the replay inputs "
        f"{v['line_rss_long_over_short']:.3f} (**{'flat' if v['line_rss_flat_within_10pct'] else 'NOT flat'}**); "
        f"writer busy "
        f"**{'below' if v['writer_busy_below_5pct'] else 'NOT below'} 5 %** of wall time; frames/s after warm-up "
        f"{long_:g} m / {short:g} m = {v['fps_long_over_short']:.2f}" for b, v in verdict.items())
    md = (f"# `steelscan line` on a {long_:g} m coil vs a {short:g} m coil\n\n"
          f"`{command}`\n\n"
          f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}, Python {machine['python']}. "
          f"Load average at start {' / '.join(f'{x:.2f}' for x in load_start)} (1 / 5 / 15 min), at the end "
          f"{' / '.join(f'{x:.2f}' for x in load_end)}: **the machine was shared with other jobs, so the absolute "
          f"frames/s were measured under load; the ratios (2 km vs 200 m) and the RSS are what count.**\n\n"
          f"Coils: `steelscan synth-coil --length-m L --width-mm {WIDTH_MM:g} --coils 1 --seed {args.seed} "
          f"--workers 2` (JPEG frames 256 x 1600 px, 1 mm/px, top + bottom), replayed by `steelscan line --frames "
          f"DIR --oracle DIR/train.csv --state STATE` in a fresh process per run. The oracle inspector answers with "
          f"the truth masks, so no model time is in these numbers: they are the line's own costs (JPEG decode, strip "
          f"edges, defect finding, coil coordinates, merging, crops, spool, database writer). Peak RSS: VmHWM reset "
          f"after {args.warmup_frames} frames and read when the line has finished. Replay inputs: the RSS taken "
          f"when the run loaded frames.csv (the replay's frame table) and train.csv (the oracle's truth) at start; "
          f"both grow with the coil's length and neither exists on a live line (camera, watched folder), so "
          f"`line alone` = peak - replay inputs is the line's own memory. Writer busy: CoilStore.busy_s "
          f"(wall time inside database transactions, which under load includes waiting for a CPU) / the run's wall "
          f"time; writer thread CPU: the writer thread's own CPU time (for PostgreSQL without the server's). PostgreSQL: a local server on the "
          f"same machine (tests/pg_server.py), a new database per run; `postgresql`: PostgreSQL's durable defaults "
          f"(fsync and synchronous commit on, what a plant runs), `postgresql-fast`: both off (the tests' server), "
          f"which shows how much of the busy time is waiting for the commit to reach the disk.\n\n"
          + "\n".join(lines) + "\n\n" + checks + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    from steelscan.atomic import write_json, write_text

    write_json(args.out / "line_scale.json", result)
    write_text(args.out / "line_scale.md", md)
    print(md)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
