"""Geometry of `steelscan line` against a synthetic coil's truth in coil coordinates.

With the oracle (default) the runner inspects with the truth masks (train.csv), so the numbers
measure strip edges, coil coordinates and merging alone; with `--model` a real model inspects and
the numbers are the whole system's position and count errors.

    steelscan synth-coil --out runs/geo --length-m 20 --width-mm 1250 --coils 2 --roll-diameter-mm 600
    .venv/bin/python benchmarks/line_geometry.py --coil runs/geo [--model M] [--json benchmarks/results/line_geometry.json]

Truth (defects.csv) and found defects are matched greedily (same coil, surface and class, largest
box overlap). Reports counts, unmatched on either side, per matched defect the largest of its four
edge errors (start/end along, across start/end) as median, 95th percentile and max in mm and
pixels. Exit 1 when an oracle run misses the goal: every edge within 2 px, counts equal."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from steelscan.line import LineRunner, load_line_config, read_coils, read_frames
from steelscan.line.oracle import OracleInspector


class ListSink:
    """A DefectSink that keeps everything in lists."""

    def __init__(self):
        self.defects, self.spans, self.surfaces = [], [], []

    def upsert_coil(self, coil): pass
    def add_defects(self, d): self.defects += list(d)
    def add_uninspected(self, s): self.spans += list(s)
    def close_surface(self, s): self.surfaces.append(s)
    def flush(self): pass
    def close(self): pass


def overlap_mm2(t: dict, d) -> float:
    along = min(float(t["end_m"]), d.end_m) - max(float(t["start_m"]), d.start_m)
    across = min(float(t["across_end_mm"]), d.across_end_mm) - max(float(t["across_start_mm"]), d.across_start_mm)
    return max(along, 0.0) * 1000 * max(across, 0.0)


def edge_error_px(t: dict, d, along_mm: float, across_mm: float) -> float:
    """The largest of the four edge errors of a matched pair, in pixels."""
    return max(abs(d.start_m - float(t["start_m"])) * 1000 / along_mm,
               abs(d.end_m - float(t["end_m"])) * 1000 / along_mm,
               abs(d.across_start_mm - float(t["across_start_mm"])) / across_mm,
               abs(d.across_end_mm - float(t["across_end_mm"])) / across_mm)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coil", type=Path, required=True, help="a synth-coil output folder")
    ap.add_argument("--model", help="inspect with this model instead of the oracle")
    ap.add_argument("--engine", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="write the result here (and a .md beside it)")
    args = ap.parse_args(argv)
    cfg = load_line_config(args.coil / "line.yaml")
    if args.model:
        from steelscan.runtime import build_inspector
        inspector = build_inspector(model=args.model, engine=args.engine, device=args.device,
                                    batch_size=cfg.batch_size)
    else:
        inspector = OracleInspector(args.coil / "train.csv")
    sink = ListSink()
    t0 = time.perf_counter()
    summary = LineRunner(inspector, sink, cfg, read_coils(args.coil / "coils.csv").coils).run(
        read_frames(args.coil / "frames.csv"), args.coil)
    seconds = time.perf_counter() - t0
    truth = list(csv.DictReader(open(args.coil / "defects.csv")))
    left, errors, missed = list(sink.defects), [], 0
    for t in truth:
        cands = [d for d in left if (d.coil_id, d.surface, d.class_id) == (t["coil_id"], t["surface"], int(t["class_id"]))
                 and overlap_mm2(t, d) > 0]
        if not cands:
            missed += 1
            continue
        best = max(cands, key=lambda d: overlap_mm2(t, d))
        left.remove(best)
        errors.append(edge_error_px(t, best, *cfg.pixel_mm))
    e = np.array(errors or [np.nan])
    px = {"along_mm": cfg.pixel.along_mm, "across_mm": cfg.pixel.across_mm}
    result = {"coil": str(args.coil), "inspector": args.model or "oracle", "frames": summary.frames,
              "truth_defects": len(truth), "found_defects": len(sink.defects),
              "count_error": len(sink.defects) - len(truth), "matched": len(errors),
              "unmatched_truth": missed, "unmatched_found": len(left),
              "edge_error_px": {"median": round(float(np.median(e)), 3),
                                "p95": round(float(np.percentile(e, 95)), 3), "max": round(float(e.max()), 3)},
              "pixel": px, "uninspected_m": round(summary.uninspected_m, 3),
              "seconds": round(seconds, 2), "frames_per_s": round(summary.frames / seconds, 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        from steelscan.atomic import write_json, write_text
        write_json(args.json, result)
        err = result["edge_error_px"]
        write_text(args.json.with_suffix(".md"), "\n".join([
            "| coil | inspector | truth | found | matched | edge error px median / p95 / max | frames/s |",
            "|---|---|---|---|---|---|---|",
            f"| {args.coil.name} | {result['inspector']} | {len(truth)} | {len(sink.defects)} | {len(errors)} | "
            f"{err['median']} / {err['p95']} / {err['max']} | {result['frames_per_s']} |", ""]))
    ok = result["edge_error_px"]["max"] <= 2 and result["count_error"] == 0 and not missed
    return 0 if ok or args.model else 1


if __name__ == "__main__":
    sys.exit(main())
