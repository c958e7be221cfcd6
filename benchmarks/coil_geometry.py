"""Coil geometry with an oracle segmenter: synth-coil -> steelscan line (truth masks as the
inspector) -> compare the stored defects with the generator's truth (defects.csv).

The oracle removes every model error, so what is measured is the geometry alone: strip edges
found in the frames, pixel boxes to coil coordinates, mirrored bottom camera, welds, merging of
defects across frames. Pass: every defect edge (start, end, across start, across end) within
2 px (in mm) of the truth, max over defects, and the merged defect count equal to the truth's.
Prints a table and writes benchmarks/results/coil_geometry.{json,md}.

    .venv/bin/python benchmarks/coil_geometry.py [--length-m 200 --coils 2 --workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.cli import main as steelscan  # noqa: E402
from steelscan.data.synth_coil import SynthCoilConfig, synthesize_coils  # noqa: E402
from steelscan.geometry import PixelSize  # noqa: E402

EDGES = ("start_m", "end_m", "across_start_mm", "across_end_mm")


def read_truth(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{**r, "class_id": int(r["class_id"]), **{k: float(r[k]) for k in EDGES + ("area_mm2",)}}
                for r in csv.DictReader(f)]


def read_found(path: Path) -> list[dict]:
    out = []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "defect":
                out.append(rec)
    return out


def overlap(a: dict, b: dict) -> float:
    """Intersection over union of two boxes in coil coordinates (m x mm)."""
    along = min(a["end_m"], b["end_m"]) - max(a["start_m"], b["start_m"])
    across = min(a["across_end_mm"], b["across_end_mm"]) - max(a["across_start_mm"], b["across_start_mm"])
    if along <= 0 or across <= 0:
        return 0.0
    inter = along * 1000 * across
    area = lambda d: (d["end_m"] - d["start_m"]) * 1000 * (d["across_end_mm"] - d["across_start_mm"])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def match(truth: list[dict], found: list[dict]) -> list[tuple[dict, dict]]:
    """Greedy one-to-one matching by box IoU within (coil, surface, class)."""
    pairs = []
    for t in truth:
        for f in found:
            if (t["coil_id"], t["surface"], t["class_id"]) == (f["coil_id"], f["surface"], f["class_id"]):
                iou = overlap(t, f)
                if iou > 0:
                    pairs.append((iou, id(t), id(f), t, f))
    pairs.sort(key=lambda p: -p[0])
    used_t, used_f, out = set(), set(), []
    for _, it, jf, t, f in pairs:
        if it not in used_t and jf not in used_f:
            used_t.add(it)
            used_f.add(jf)
            out.append((t, f))
    return out


def edge_errors(t: dict, f: dict) -> dict:
    """|found - truth| of each edge in mm."""
    return {"start_mm": abs(f["start_m"] - t["start_m"]) * 1000, "end_mm": abs(f["end_m"] - t["end_m"]) * 1000,
            "across_start_mm": abs(f["across_start_mm"] - t["across_start_mm"]),
            "across_end_mm": abs(f["across_end_mm"] - t["across_end_mm"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length-m", type=float, default=200.0)
    ap.add_argument("--width-mm", type=float, default=1250.0)
    ap.add_argument("--coils", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pixel-mm", type=float, nargs=2, default=[1.0, 1.0])
    ap.add_argument("--roll-diameter-mm", type=float, nargs="+", default=[600.0, 750.0])
    ap.add_argument("--miss-rate", type=float, default=0.3)
    ap.add_argument("--jitter-mm", type=float, default=3.0)
    ap.add_argument("--wear", type=float, default=0.005)
    ap.add_argument("--wander-mm", type=float, default=40.0)
    ap.add_argument("--density", type=float, default=2.0, help="random defect rate scale")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="keep the coil here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)

    pixel = PixelSize(*args.pixel_mm)
    cfg = SynthCoilConfig(length_m=args.length_m, width_mm=args.width_mm, seed=args.seed, coils=args.coils,
                          pixel=pixel, roll_diameters_mm=tuple(args.roll_diameter_mm), miss_rate=args.miss_rate,
                          jitter_mm=args.jitter_mm, wear=args.wear, wander_mm=args.wander_mm, density=args.density)
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="coil_geometry_")
    work = args.work or Path(tmp.name)
    coil_dir, db = work / "coil", work / "defects.jsonl"
    synth = synthesize_coils(coil_dir, cfg, workers=args.workers)
    t0 = time.perf_counter()
    rc = steelscan(["line", "--frames", str(coil_dir), "--oracle", str(coil_dir / "train.csv"), "--db", str(db)])
    line_s = time.perf_counter() - t0
    if rc != 0:
        print(f"steelscan line exited {rc}", file=sys.stderr)
        return 1
    truth, found = read_truth(coil_dir / "defects.csv"), read_found(db)
    pairs = match(truth, found)

    groups = sorted({(t["surface"], t["class_id"]) for t in truth} | {(f["surface"], f["class_id"]) for f in found},
                    key=lambda g: (["top", "bottom"].index(g[0]), g[1]))
    rows = []
    for surface, class_id in groups:
        tg = [t for t in truth if (t["surface"], t["class_id"]) == (surface, class_id)]
        fg = [f for f in found if (f["surface"], f["class_id"]) == (surface, class_id)]
        pg = [(t, f) for t, f in pairs if (t["surface"], t["class_id"]) == (surface, class_id)]
        errs = [edge_errors(t, f) for t, f in pg]
        rows.append({
            "surface": surface, "class_id": class_id, "truth": len(tg), "found": len(fg), "matched": len(pg),
            "roll_marks": sum(t["source"].startswith("roll:") for t in tg),
            "longest_m": round(max((t["end_m"] - t["start_m"] for t in tg), default=0.0), 3),
            "max_along_err_mm": round(max((max(e["start_mm"], e["end_mm"]) for e in errs), default=0.0), 3),
            "max_across_err_mm": round(max((max(e["across_start_mm"], e["across_end_mm"]) for e in errs),
                                           default=0.0), 3),
        })
    all_errs = [edge_errors(t, f) for t, f in pairs]
    max_along = max((max(e["start_mm"], e["end_mm"]) for e in all_errs), default=0.0)
    max_across = max((max(e["across_start_mm"], e["across_end_mm"]) for e in all_errs), default=0.0)
    along_px, across_px = max_along / pixel.along_mm, max_across / pixel.across_mm
    multi_frame = sum(1 for f in found if len(f.get("frames", [])) > 1)
    passed = len(found) == len(truth) == len(pairs) and max(along_px, across_px) <= 2.0

    result = {
        "command": "python benchmarks/coil_geometry.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "coil": {"coils": args.coils, "length_m": args.length_m, "width_mm": args.width_mm,
                 "pixel_mm": list(args.pixel_mm), "frames": synth.frames, "seed": args.seed,
                 "rolls_mm": list(args.roll_diameter_mm), "miss_rate": args.miss_rate,
                 "jitter_mm": args.jitter_mm, "wear": args.wear, "wander_mm": args.wander_mm,
                 "density": args.density},
        "synth_frames_per_s": round(synth.frames_per_s, 1),
        "line_frames_per_s": round(synth.frames / line_s, 1),
        "truth_defects": len(truth), "found_defects": len(found), "matched": len(pairs),
        "found_over_several_frames": multi_frame,
        "max_along_err_mm": round(max_along, 4), "max_across_err_mm": round(max_across, 4),
        "max_along_err_px": round(along_px, 3), "max_across_err_px": round(across_px, 3),
        "pass": passed, "per_surface_class": rows,
    }
    header = ("| surface | class | truth | found | matched | roll marks | longest (m) | max along err (mm) "
              "| max across err (mm) |\n|---|---|---|---|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {r['surface']} | {r['class_id']} | {r['truth']} | {r['found']} | {r['matched']} | {r['roll_marks']} "
        f"| {r['longest_m']} | {r['max_along_err_mm']} | {r['max_across_err_mm']} |\n" for r in rows)
    md = (f"# Coil geometry with an oracle segmenter\n\n"
          f"`{result['command']}` on {result['machine']['platform']} ({result['machine']['cpus']} CPUs, "
          f"shared with other jobs).\n\n"
          f"{args.coils} coil(s) x {args.length_m:g} m, strip {args.width_mm:g} mm wandering in a "
          f"{1600 * pixel.across_mm:g} mm camera field, pixel {pixel.along_mm:g} x {pixel.across_mm:g} mm, "
          f"top + bottom (mirrored), rolls {', '.join(f'{d:g}' for d in args.roll_diameter_mm)} mm "
          f"(miss {args.miss_rate:g}, jitter +-{args.jitter_mm:g} mm, wear {args.wear:g}, "
          f"wander +-{args.wander_mm:g} mm): {synth.frames} frames.\n\n"
          f"**{'PASS' if passed else 'FAIL'}**: {len(found)} defects stored for {len(truth)} in the truth "
          f"({len(pairs)} matched one to one, {multi_frame} merged across frames); worst edge error "
          f"{max_along:.3f} mm along ({along_px:.2f} px), {max_across:.3f} mm across ({across_px:.2f} px); "
          f"the limit is 2 px.\n\n{table}\n"
          f"synth-coil {result['synth_frames_per_s']} frames/s ({args.workers} workers); steelscan line with the "
          f"oracle {result['line_frames_per_s']} frames/s.\n")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "coil_geometry.json", result)
    write_text(args.out / "coil_geometry.md", md)
    print(md)
    if tmp is not None:
        tmp.cleanup()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
