"""Nothing lost: `steelscan line --simulate` writing to PostgreSQL through the spool while the
database is killed mid-coil for 30 s and restored. Counts the defects and uninspected lengths the
runner handed over against what the database holds afterwards: lost and duplicated must be 0.

A PostgreSQL server of its own is started on a temp dir and port (Debian's binaries, as the
`postgres` user when run as root), killed with `pg_ctl -m immediate` (a crash, not a clean
shutdown) `--kill-after-s` into the run, and started again `--outage-s` later. The inspector is
the simulated line's truth (its painted masks), so the run measures the line and the spool, not a
model. Writes benchmarks/results/line_spool.{json,md}.

    .venv/bin/python benchmarks/line_spool.py [--coils 2 --coil-length-m 100 --outage-s 30]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.coils.store import CoilStore  # noqa: E402
from steelscan.line import LineConfig, LineRunner  # noqa: E402
from steelscan.line.simulate import SimulatedLine, TruthInspector  # noqa: E402
from steelscan.line.spool import SpoolingSink  # noqa: E402

PG_BIN = Path(os.environ.get("STEELSCAN_PG_BIN") or sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="steelscan-pg-bench-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        (self.root / "pw").write_text("bench\n")
        os.chmod(self.root / "pw", 0o644)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._run(PG_BIN / "initdb", "-D", self.root / "data", "-U", "steelscan", "--auth=scram-sha-256",
                  f"--pwfile={self.root / 'pw'}", "--no-sync")
        self.url = f"postgresql://steelscan:bench@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd) -> None:
        subprocess.run([*self.as_user, *map(str, cmd)], check=True, capture_output=True)

    def start(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.root / "data", "-l", self.root / "log", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "-w", "start")

    def kill(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        try:
            self.kill()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class Tee:
    """Passes every call to the spool and remembers what the runner handed over (no crops)."""

    def __init__(self, sink: SpoolingSink) -> None:
        self.sink, self.durable = sink, True
        self.defects: Counter = Counter()
        self.spans: Counter = Counter()
        self.max_pending = 0

    def upsert_coil(self, c):
        self.sink.upsert_coil(c)

    def add_defects(self, ds):
        self.defects.update(defect_key(d.__dict__) for d in ds)
        self.sink.add_defects(ds)
        self.max_pending = max(self.max_pending, self.sink.pending)

    def add_uninspected(self, ss):
        self.spans.update(span_key(s.__dict__) for s in ss)
        self.sink.add_uninspected(ss)

    def close_surface(self, s):
        self.sink.close_surface(s)

    def flush(self):
        self.sink.flush()

    def close(self):
        self.sink.close()


def defect_key(d: dict) -> tuple:
    return (d["coil_id"], d["surface"], d["class_id"], round(d["start_m"], 6), round(d["end_m"], 6),
            round(d["across_start_mm"], 3), round(d["across_end_mm"], 3))


def span_key(s: dict) -> tuple:
    return (s["coil_id"], s["surface"], round(s["start_m"], 6), round(s["end_m"], 6), s["reason"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coils", type=int, default=2)
    ap.add_argument("--coil-length-m", type=float, default=100.0)
    ap.add_argument("--density", type=float, default=5.0, help="synth-coil defect density (more rows to lose)")
    ap.add_argument("--kill-after-s", type=float, default=10.0)
    ap.add_argument("--outage-s", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    logging.basicConfig(level="WARNING", format="%(asctime)s %(message)s")

    pg = PostgresServer()
    spool_dir = Path(tempfile.mkdtemp(prefix="steelscan-spool-bench-"))
    try:
        pg.start()
        line = SimulatedLine(coils=args.coils, coil_length_m=args.coil_length_m, truth=True, density=args.density)
        spool = SpoolingSink(lambda: CoilStore(pg.url), spool_dir, retry_s=1.0, drain_s=120)
        tee = Tee(spool)
        events: dict[str, float] = {}

        def outage():
            time.sleep(args.kill_after_s)
            pg.kill()
            events["killed_at_s"] = time.perf_counter() - t0
            time.sleep(args.outage_s)
            pg.start()
            events["restored_at_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        killer = threading.Thread(target=outage, daemon=True)
        killer.start()
        summary = LineRunner(TruthInspector(line), tee, LineConfig()).run_source(line)
        run_s = time.perf_counter() - t0
        killer.join()
        deadline = time.monotonic() + 300   # close() leaves entries on disk while the database is down:
        while spool.pending and time.monotonic() < deadline:   # here it is back, wait for them to go in
            time.sleep(0.1)
        tee.close()
        drained_s = time.perf_counter() - t0
        with CoilStore(pg.url) as store:
            stored_d = Counter(defect_key(d) for c in line.coils for d in store.defects(c))
            stored_s = Counter(span_key(s) for c in line.coils for s in store.uninspected(c))
        lost = sum((tee.defects - stored_d).values()) + sum((tee.spans - stored_s).values())
        dup = sum((stored_d - tee.defects).values()) + sum((stored_s - tee.spans).values())
        result = {
            "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)",
            "coils": args.coils, "coil_length_m": args.coil_length_m, "frames": summary.frames,
            "run_s": round(run_s, 1), "frames_per_s": round(summary.frames / run_s, 1),
            "database_killed_at_s": round(events.get("killed_at_s", -1), 1),
            "database_restored_at_s": round(events.get("restored_at_s", -1), 1),
            "everything_stored_at_s": round(drained_s, 1),
            "defects_handed_over": sum(tee.defects.values()), "defects_stored": sum(stored_d.values()),
            "uninspected_handed_over": sum(tee.spans.values()), "uninspected_stored": sum(stored_s.values()),
            "lost": lost, "duplicated": dup, "outages_seen": spool.outages,
            "journal_entries": spool.journalled, "max_entries_waiting": tee.max_pending,
            "pass": lost == 0 and dup == 0 and spool.outages >= 1,
        }
    finally:
        pg.remove()
        shutil.rmtree(spool_dir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "line_spool.json", result)
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items())
    write_text(args.out / "line_spool.md", "# The spool: PostgreSQL killed mid-coil and restored\n\n"
               f"`{' '.join(['.venv/bin/python', 'benchmarks/line_spool.py', *sys.argv[1:]])}`\n\n"
               "| | |\n|---|---|\n" + rows + "\n")
    print(rows)


if __name__ == "__main__":
    main()
