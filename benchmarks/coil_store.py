"""CoilStore write throughput: what the line runner's frame loop pays per call, and what the
background writer spends in the database.

Hands N defects (each with a ~2 KB PNG crop) to a CoilStore in calls of K (one call per frame),
as fast as it can, then flushes. Reports, per database: the caller's time inside add_defects
(per call, max), wall time to flush, writer busy time, transactions, defects/s. Writes
benchmarks/results/coil_store.{json,md}.

    .venv/bin/python benchmarks/coil_store.py [--n 20000] [--per-call 4] [--db URL ...]

Without --db: a temporary SQLite file. PostgreSQL: pass its URL (e.g. a local server).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.coils.records import CoilInfo, DefectRecord  # noqa: E402
from steelscan.coils.store import CoilStore  # noqa: E402
from steelscan.db import masked_url  # noqa: E402
from steelscan.db.url import database_url  # noqa: E402


def crop() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.normal(128, 12, (32, 64)).clip(0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def run(url: str, n: int, per_call: int) -> dict:
    png = crop()
    coil_id = f"BENCH-{time.time_ns()}"
    records = [DefectRecord(coil_id, "top", "cam-top", 1 + i % 4, "c", 0.9, i * 0.01, i * 0.01 + 0.005, 10.0,
                            30.0, 5.0, 20.0, 70.0, [f"f{i // per_call}.png"], png, "bench", "1", "0" * 64)
               for i in range(n)]
    store = CoilStore(url)
    store.upsert_coil(CoilInfo(coil_id, line_id="bench"))
    store.flush()
    t_busy0, t_tx0 = store.busy_s, store.transactions
    calls = []
    t0 = time.perf_counter()
    for i in range(0, n, per_call):
        c0 = time.perf_counter()
        store.add_defects(records[i:i + per_call])
        calls.append(time.perf_counter() - c0)
    t_handed = time.perf_counter() - t0
    store.flush()
    wall = time.perf_counter() - t0
    busy, tx = store.busy_s - t_busy0, store.transactions - t_tx0
    store.close()
    parsed = database_url(url)
    return {"db": masked_url(parsed), "backend": parsed.get_backend_name(), "defects": n, "per_call": per_call,
            "calls": len(calls),
            "call_us_mean": 1e6 * float(np.mean(calls)), "call_us_max": 1e6 * float(np.max(calls)),
            "handed_over_s": t_handed, "wall_to_flush_s": wall, "writer_busy_s": busy, "transactions": tx,
            "defects_per_s": n / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--per-call", type=int, default=4)
    ap.add_argument("--db", action="append", help="database URL (repeatable); default a temp SQLite file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(url, args.n, args.per_call) for url in (args.db or [f"sqlite:///{tmp}/bench.db"])]
    lines = ["| database | defects | calls | caller µs/call (mean / max) | wall to flush s | writer busy s | "
             "transactions | defects/s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['defects']} | "
                     f"{r['calls']} | {r['call_us_mean']:.0f} / {r['call_us_max']:.0f} | {r['wall_to_flush_s']:.2f} | "
                     f"{r['writer_busy_s']:.2f} | {r['transactions']} | {r['defects_per_s']:.0f} |")
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
               f"{os.getloadavg()[0]:.1f} at the end")
    text = (f"# CoilStore writes\n\n`{' '.join(sys.argv)}` on {machine}.\n"
            "PostgreSQL: a local 15 server on the same machine.\n"
            f"Each defect carries a {len(crop())}-byte PNG crop.\n\n" + "\n".join(lines) + "\n")
    print(text)
    write_json(REPO / "benchmarks" / "results" / "coil_store.json", {"machine": machine, "runs": rows})
    write_text(REPO / "benchmarks" / "results" / "coil_store.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
