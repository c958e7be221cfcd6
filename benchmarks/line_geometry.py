"""Geometry of `steelscan line` with an oracle segmenter: run the line runner on a synthetic
coil's truth masks (train.csv) and compare every merged defect with the truth in coil
coordinates (defects.csv, written by `steelscan synth-coil`).

    steelscan synth-coil --out runs/geo --length-m 20 --width-mm 1250 --coils 2 --roll-diameter-mm 600
    .venv/bin/python benchmarks/line_geometry.py --coil runs/geo [--json benchmarks/results/line_geometry.json]

Reports: truth and found counts, the largest edge error over matched defects (start/end along,
across start/end, in mm and in pixels), and defects left unmatched on either side."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from steelscan.line import LineRunner, load_line_config, read_coils, read_frames
from steelscan.line.oracle import OracleInspector


class ListSink:
    def __init__(self):
        self.defects, self.spans, self.surfaces = [], [], []

    def upsert_coil(self, coil): pass
    def add_defects(self, d): self.defects += list(d)
    def add_uninspected(self, s): self.spans += list(s)
    def close_surface(self, s): self.surfaces.append(s)
    def flush(self): pass
    def close(self): pass


def edge_errors(truth: dict, found) -> dict:
    return {"start_mm": abs(found.start_m - float(truth["start_m"])) * 1000,
            "end_mm": abs(found.end_m - float(truth["end_m"])) * 1000,
            "across_start_mm": abs(found.across_start_mm - float(truth["across_start_mm"])),
            "across_end_mm": abs(found.across_end_mm - float(truth["across_end_mm"]))}


def overlap(t: dict, d) -> float:
    along = min(float(t["end_m"]), d.end_m) - max(float(t["start_m"]), d.start_m)
    across = min(float(t["across_end_mm"]), d.across_end_mm) - max(float(t["across_start_mm"]), d.across_start_mm)
    return max(along, 0) * 1000 * max(across, 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coil", type=Path, required=True, help="a synth-coil output folder")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cfg = load_line_config(args.coil / "line.yaml")
    table = read_frames(args.coil / "frames.csv")
    sink = ListSink()
    t0 = time.perf_counter()
    summary = LineRunner(OracleInspector(args.coil / "train.csv"), sink, cfg,
                         read_coils(args.coil / "coils.csv").coils).run(table, args.coil)
    seconds = time.perf_counter() - t0
    truth = list(csv.DictReader(open(args.coil / "defects.csv")))
    unmatched_found = list(sink.defects)
    worst = {"start_mm": 0.0, "end_mm": 0.0, "across_start_mm": 0.0, "across_end_mm": 0.0}
    unmatched_truth = []
    for t in truth:
        cands = [d for d in unmatched_found if d.coil_id == t["coil_id"] and d.surface == t["surface"]
                 and d.class_id == int(t["class_id"]) and overlap(t, d) > 0]
        if not cands:
            unmatched_truth.append(t)
            continue
        best = max(cands, key=lambda d: overlap(t, d))
        unmatched_found.remove(best)
        for k, v in edge_errors(t, best).items():
            worst[k] = max(worst[k], v)
    px = {"along_mm": cfg.pixel.along_mm, "across_mm": cfg.pixel.across_mm}
    worst_px = max(worst["start_mm"] / px["along_mm"], worst["end_mm"] / px["along_mm"],
                   worst["across_start_mm"] / px["across_mm"], worst["across_end_mm"] / px["across_mm"])
    result = {"coil": str(args.coil), "frames": summary.frames, "truth_defects": len(truth),
              "found_defects": len(sink.defects), "unmatched_truth": len(unmatched_truth),
              "unmatched_found": len(unmatched_found), "max_edge_error_mm": {k: round(v, 3) for k, v in worst.items()},
              "max_edge_error_px": round(worst_px, 3), "pixel": px, "uninspected_m": summary.uninspected_m,
              "seconds": round(seconds, 2), "frames_per_s": round(summary.frames / seconds, 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        from steelscan.atomic import write_json
        write_json(args.json, result)
    ok = worst_px <= 2 and len(truth) == len(sink.defects) and not unmatched_truth
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
