"""How fast does `steelscan line --simulate` go with a real model, and does it skip honestly when
the strip is faster than that? (issue 11 "Numbers", issue 13 "the line runner" in throughput mode)

1. Sustained: `steelscan line --simulate --coils 1 --coil-length-m L` (frames 256 x 1600 px at
   1 mm, top and bottom) as fast as inspection goes, `--runs` times: frames/s over the run
   (the summary line's, model loading excluded) and the strip speed that keeps up with:
   v = frames/s / surfaces x frame length (0.256 m; the simulated strip, 1250 mm wide, is one
   1600-px frame across at 1 mm).
2. Before/after (`--old-src DIR`): the same runs with the runner of another source tree, e.g.
   the per-batch runner before it went through the inference stream:
   `git archive 4e64d1c src | tar -x -C /tmp/line_old` -> `--old-src /tmp/line_old/src`. Old and
   new runs alternate so that load from other jobs falls on both alike.
3. Realtime: `--realtime --speed-m-s (factor x v)` with `--max-lag-s S`: the share of frames
   skipped (reason `behind`) against 1 - 1/factor (what a runner that keeps up only with v must
   skip), and per coil and surface: inspected length + uninspected lengths = the coil's length
   (every skipped metre recorded, none twice).

Records go to a JSON-lines file (`--db run.jsonl`), the line's state to a temp folder.

    nice -n 10 .venv/bin/python benchmarks/line_speed.py --model models/neu-seg --threads 2 \\
        --coil-length-m 2000 [--runs 3] [--old-src /tmp/line_old/src] [--oracle-truth]

Writes benchmarks/results/line_speed.{json,md} (`--out` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAME_M = 0.256          # 256 rows of 1 mm
SUMMARY = re.compile(r"(\d+) frames \((\d+) inspected\).*?([\d.]+) frames/s")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_line(args, src: Path, work: Path, tag: str, *, realtime_speed: float | None = None) -> dict:
    db = work / f"{tag}.jsonl"
    cmd = [sys.executable, "-m", "steelscan", "line", "--simulate", "--coils", "1",
           "--coil-length-m", str(args.coil_length_m), "--db", str(db), "--state", str(work / f"{tag}.state"),
           "--quiet", "--threads", str(args.threads), "--engine", args.engine]
    cmd += ["--oracle", "truth"] if args.oracle_truth else ["--model", args.model]
    if realtime_speed is not None:
        cmd += ["--realtime", "--speed-m-s", f"{realtime_speed:.4f}", "--max-lag-s", str(args.max_lag_s)]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = SUMMARY.search(proc.stdout)
    if m is None:
        sys.exit(f"line_speed: {tag}: no summary line (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    frames, inspected, fps = int(m[1]), int(m[2]), float(m[3])
    out = {"tag": tag, "src": str(src), "command": shlex.join(cmd[1:]), "wall_s": round(wall, 1), "frames": frames,
           "inspected": inspected, "frames_per_s": fps, "summary": proc.stdout.strip().splitlines()[-1]}
    out.update(coverage(db))
    print(f"  {tag}: {out['summary']}  ({wall:.0f} s wall)", flush=True)
    return out


def coverage(db: Path) -> dict:
    """Per (coil, surface): inspected + uninspected metres (by reason) against the coil's length."""
    lengths, inspected, spans = {}, {}, defaultdict(lambda: defaultdict(float))
    for line in db.read_text().splitlines():
        r = json.loads(line)
        if r["kind"] == "coil":
            lengths[r["coil_id"]] = r["length_m"]
        elif r["kind"] == "surface":
            inspected[(r["coil_id"], r["surface"])] = r["inspected_m"]
        elif r["kind"] == "uninspected":
            spans[(r["coil_id"], r["surface"])][r["reason"]] += r["end_m"] - r["start_m"]
    rows = []
    for (coil, surface), m in sorted(inspected.items()):
        sp = spans[(coil, surface)]
        rows.append({"coil_id": coil, "surface": surface, "length_m": lengths.get(coil), "inspected_m": round(m, 3),
                     "uninspected_m": {k: round(v, 3) for k, v in sorted(sp.items())},
                     "accounted_m": round(m + sum(sp.values()), 3)})
    behind = sum(s["uninspected_m"].get("behind", 0.0) for s in rows)
    total = sum(s["length_m"] or 0.0 for s in rows)
    return {"surfaces": rows, "behind_m": round(behind, 3),
            "every_metre_accounted": all(s["length_m"] is not None and abs(s["accounted_m"] - s["length_m"]) < 1e-3
                                         for s in rows),
            "skipped_share_m": round(behind / total, 4) if total else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="synthetic-strip", help="model bundle (a shipped name or a folder)")
    p.add_argument("--oracle-truth", action="store_true", help="no model: the painted masks (the line's own cost)")
    p.add_argument("--engine", default="torch", choices=("torch", "onnx", "onnx-int8"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--coil-length-m", type=float, default=2000.0)
    p.add_argument("--runs", type=int, default=3, help="as-fast-as-possible runs per source tree (median)")
    p.add_argument("--old-src", type=Path, help="a src/ folder with another runner, for the before/after")
    p.add_argument("--realtime-factor", type=float, default=1.5, help="realtime run at this x the kept-up speed; "
                   "0: none")
    p.add_argument("--max-lag-s", type=float, default=2.0, help="the realtime run's --max-lag-s")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "line_speed")
    p.add_argument("--note", default="", help="a line for the Markdown (e.g. why the coil is short)")
    args = p.parse_args()

    load = os.getloadavg()
    new_src = ROOT / "src"
    work = Path(tempfile.mkdtemp(prefix="line_speed_"))
    trees = [("stream", new_src)] + ([("per-batch", args.old_src)] if args.old_src else [])
    runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
    print(f"line_speed: {args.coil_length_m:g} m coil, {args.threads} threads, "
          f"{'truth masks' if args.oracle_truth else args.model}; work {work}", flush=True)
    for i in range(args.runs):
        for name, src in trees:
            runs[name].append(run_line(args, src, work, f"{name}-{i + 1}"))
    surfaces = 2
    result = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "loadavg_at_start": [round(x, 2) for x in load],
                          "under_load": "shared machine: other jobs (training runs, test suites) ran at the same "
                                        "time, several at higher priority; this ran under nice -n 10"},
              "threads": args.threads, "engine": args.engine,
              "model": "simulated truth (no model)" if args.oracle_truth else args.model,
              "coil_length_m": args.coil_length_m, "frame_m": FRAME_M, "surfaces": surfaces, "runs": runs,
              "note": args.note}
    speed = {}
    for name, rs in runs.items():
        fps = statistics.median(r["frames_per_s"] for r in rs)
        speed[name] = {"frames_per_s_median": round(fps, 3), "frames_per_s": [r["frames_per_s"] for r in rs],
                       "keeps_up_m_s": round(fps / surfaces * FRAME_M, 4),
                       "keeps_up_m_min": round(fps / surfaces * FRAME_M * 60, 2)}
    result["speed"] = speed
    if "per-batch" in speed:
        result["stream_vs_per_batch"] = round(speed["stream"]["frames_per_s_median"]
                                              / speed["per-batch"]["frames_per_s_median"], 3)
    if args.realtime_factor > 0:
        v = speed["stream"]["keeps_up_m_s"] * args.realtime_factor
        print(f"line_speed: realtime at {v:.3f} m/s ({args.realtime_factor:g} x {speed['stream']['keeps_up_m_s']})",
              flush=True)
        rt = run_line(args, new_src, work, "realtime", realtime_speed=v)
        rt.update({"speed_m_s": round(v, 4), "factor": args.realtime_factor,
                   "expected_skipped_share": round(1 - 1 / args.realtime_factor, 4),
                   "skipped_share_frames": None})
        m = re.search(r"(\d+) frames \(([\d.]+) m\) skipped behind", rt["summary"])
        if m:
            rt["skipped_frames"] = int(m[1])
            rt["skipped_share_frames"] = round(int(m[1]) / rt["frames"], 4)
        result["realtime"] = rt
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result, args))
    print(markdown(result, args))
    return 0


def markdown(r: dict, args) -> str:
    m = r["machine"]
    lines = ["# `steelscan line --simulate`: sustained speed and honest skipping", "",
             f"Command: `nice -n 10 .venv/bin/python benchmarks/line_speed.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
             "", f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; **{r['threads']} threads**, "
             f"engine {r['engine']}, model `{r['model']}`. **The machine was under load from other jobs** "
             f"({m['under_load']}; load average at start {m['loadavg_at_start']}): absolute numbers are low and "
             "noisy; old and new runs alternated so the load fell on both.", "",
             f"Coil: {r['coil_length_m']:g} m, frames 256 x 1600 px at 1 mm ({r['frame_m']} m), top and bottom."]
    if r.get("note"):
        lines += ["", r["note"]]
    lines += ["", "| runner | runs | frames/s (median) | each run | keeps up with (m/s) | (m/min) |",
              "|---|---|---|---|---|---|"]
    for name, s in r["speed"].items():
        lines.append(f"| {name} | {len(r['runs'][name])} | {s['frames_per_s_median']} | "
                     f"{', '.join(str(x) for x in s['frames_per_s'])} | {s['keeps_up_m_s']} | {s['keeps_up_m_min']} |")
    if "stream_vs_per_batch" in r:
        lines += ["", f"Stream path / per-batch path: **{r['stream_vs_per_batch']}x** frames/s (medians, same run)."]
    rt = r.get("realtime")
    if rt:
        lines += ["", f"## Realtime at {rt['speed_m_s']} m/s ({rt['factor']}x the kept-up speed), "
                  f"--max-lag-s {args.max_lag_s:g}", "",
                  f"- {rt['summary']}",
                  f"- skipped share: {rt['skipped_share_frames']} of the frames, {rt['skipped_share_m']} of the "
                  f"metres; a runner that keeps up with 1/{rt['factor']} of the speed must skip "
                  f"{rt['expected_skipped_share']} (the first --max-lag-s of the run is not skipped)",
                  f"- every metre recorded: **{rt['every_metre_accounted']}** (inspected + uninspected = coil "
                  "length, per coil and surface):", "",
                  "| coil | surface | length m | inspected m | uninspected m by reason | sum m |", "|---|---|---|---|---|---|"]
        for s in rt["surfaces"]:
            lines.append(f"| {s['coil_id']} | {s['surface']} | {s['length_m']} | {s['inspected_m']} | "
                         f"{s['uninspected_m']} | {s['accounted_m']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
