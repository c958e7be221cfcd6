"""RLE codec throughput: steelscan.rle vs a straightforward pure-Python codec, same run.

Uses the real Severstal RLE strings (../shared/data/severstal/labels/train_rle_recovered.csv,
256x1600 masks) when present, otherwise synthetic blob masks. Reports masks/s (median of
repeats) for encode and decode and the speed-up ratio, prints a table and writes
benchmarks/results/rle.json and benchmarks/results/rle.md.

    .venv/bin/python benchmarks/rle.py [--repeats 5] [--limit N] [--ref-limit 200]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.rle import decode_rle, encode_rle  # noqa: E402

REAL_CSV = REPO / ".." / "shared" / "data" / "severstal" / "labels" / "train_rle_recovered.csv"
H, W = 256, 1600


# --- the reference: plain Python, no numpy in the algorithm ---------------------------------

def ref_decode(rle: str, height: int, width: int) -> np.ndarray:
    """Pure-Python decode into a bytearray (wrapped, not copied, as an (H, W) array)."""
    flat = bytearray(height * width)
    tokens = rle.split()
    for i in range(0, len(tokens), 2):
        start, length = int(tokens[i]) - 1, int(tokens[i + 1])
        flat[start:start + length] = b"\x01" * length
    return np.frombuffer(flat, dtype=np.uint8).reshape(width, height).T


def ref_encode(pixels: list[int]) -> str:
    """Pure-Python encode of a column-major flat list of 0/1 pixels."""
    out: list[str] = []
    run_start = -1
    for i, v in enumerate(pixels):
        if v and run_start < 0:
            run_start = i
        elif not v and run_start >= 0:
            out.append(f"{run_start + 1} {i - run_start}")
            run_start = -1
    if run_start >= 0:
        out.append(f"{run_start + 1} {len(pixels) - run_start}")
    return " ".join(out)


# --- data -----------------------------------------------------------------------------------

def load_rles(limit: int | None) -> tuple[list[str], str]:
    if REAL_CSV.is_file():
        with open(REAL_CSV, newline="") as f:
            rles = [row["EncodedPixels"] for row in csv.DictReader(f)]
        source = f"real Severstal masks ({REAL_CSV.name})"
    else:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:H, :W]
        rles = []
        for _ in range(1000):
            cy, cx, r = rng.integers(0, H), rng.integers(0, W), rng.integers(5, 60)
            rles.append(encode_rle(((yy - cy) ** 2 + ((xx - cx) / 3) ** 2 < r * r).astype(np.uint8)))
        source = "synthetic ellipse masks (real data absent)"
    return (rles[:limit] if limit else rles), source


def time_rate(fn, items, repeats: int) -> tuple[float, list[float]]:
    """Median items/s over `repeats` passes of fn over items."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        rates.append(len(items) / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N masks")
    ap.add_argument("--ref-limit", type=int, default=200,
                    help="masks for the (slow) pure-Python encoder; decode uses them all")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)

    rles, source = load_rles(args.limit)
    masks = [decode_rle(r, H, W) for r in rles]
    ref_subset = masks[: args.ref_limit]
    ref_pixels = [m.T.ravel().tolist() for m in ref_subset]
    # correctness first: both codecs agree on every mask timed
    for r, m in zip(rles, masks):
        assert np.array_equal(ref_decode(r, H, W), m)
    for r, px in zip(rles, ref_pixels):
        assert ref_encode(px) == r

    rows = []
    for op, fast_fn, fast_items, ref_fn, ref_items in [
        ("decode", lambda r: decode_rle(r, H, W), rles, lambda r: ref_decode(r, H, W), rles),
        ("encode", encode_rle, masks, ref_encode, ref_pixels),
    ]:
        fast, fast_all = time_rate(fast_fn, fast_items, args.repeats)
        ref, ref_all = time_rate(ref_fn, ref_items, args.repeats)
        rows.append({"op": op, "steelscan_masks_per_s": round(fast, 1), "reference_masks_per_s": round(ref, 1),
                     "ratio": round(fast / ref, 2), "n_masks": len(fast_items), "n_masks_reference": len(ref_items),
                     "steelscan_runs": [round(x, 1) for x in fast_all], "reference_runs": [round(x, 1) for x in ref_all]})

    result = {
        "benchmark": "rle", "source": source, "mask_size": [H, W], "repeats": args.repeats,
        "statistic": "median masks/s over repeats", "mean_area_px": round(float(np.mean([m.sum() for m in masks])), 1),
        "mean_runs": round(float(np.mean([len(r.split()) / 2 for r in rles])), 1),
        "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
        "reference": "pure Python: decode = slice assignment into a bytearray; encode = loop over a "
                     "column-major list of pixels",
        "results": rows,
    }
    header = f"{'op':<8}{'steelscan masks/s':>20}{'pure-Python masks/s':>22}{'ratio':>9}"
    lines = [f"RLE codec, {source}, {H}x{W}, median of {args.repeats}", header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['op']:<8}{r['steelscan_masks_per_s']:>20,.0f}{r['reference_masks_per_s']:>22,.0f}"
                     f"{r['ratio']:>8.1f}x")
    print("\n".join(lines))

    md = [f"# RLE codec benchmark", "", f"Data: {source}, {len(rles)} masks of {H}x{W} "
          f"(mean area {result['mean_area_px']} px, mean {result['mean_runs']} runs).",
          f"Median masks/s over {args.repeats} repeats; Python {result['python']}, numpy {result['numpy']}.",
          f"Reference: {result['reference']} (encode reference timed on the first {len(ref_pixels)} masks).", "",
          "| op | steelscan masks/s | pure-Python masks/s | ratio |", "|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['op']} | {r['steelscan_masks_per_s']:,.0f} | {r['reference_masks_per_s']:,.0f} "
                  f"| {r['ratio']:.1f}x |")
    md += ["", "Reproduce: `.venv/bin/python benchmarks/rle.py`", ""]
    write_json(args.out / "rle.json", result)
    write_text(args.out / "rle.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
