"""`steelscan export`: training runs -> a model bundle with ONNX (and int8) graphs,
checked for parity with PyTorch before it is written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="bundle a classifier + segmenter run as PyTorch + ONNX (+ int8), parity-checked",
        description="Write MODEL_DIR with manifest.json, thresholds.json, safetensors weights and "
                    "ONNX graphs (dynamic batch/height/width, opset 17). Every export ends with a "
                    "parity check against PyTorch fp32 through the whole cascade; it fails (exit 2, "
                    "one line with the numbers) when the mask Dice agreement is under 0.99 (fp32 "
                    "ONNX) or 0.97 (int8).")
    p.add_argument("--classifier", metavar="RUN_DIR", help="classifier training run (omit: no gating)")
    p.add_argument("--segmenter", metavar="RUN_DIR", required=True, help="segmenter training run")
    p.add_argument("--out", metavar="MODEL_DIR", required=True, help="bundle folder to write")
    p.add_argument("--int8", action="store_true", help="also write static int8 (QDQ) graphs")
    p.add_argument("--thresholds", metavar="FILE", help="thresholds.json (default: 0.5 everywhere)")
    p.add_argument("--calib-data", metavar="DIR",
                   help="Kaggle-layout folder: int8 calibration + parity frames (default: synthetic frames)")
    p.add_argument("--calib-images", type=int, default=16, metavar="N", help="calibration frames (default 16)")
    p.add_argument("--parity-images", type=int, default=8, metavar="N", help="parity frames (default 8)")
    p.add_argument("--name", help="bundle name (default: the folder name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.exporter import export_bundle

    manifest = export_bundle(args.out, args.classifier, args.segmenter, thresholds=args.thresholds,
                             name=args.name, int8=args.int8, calib_data=args.calib_data,
                             calib_images=args.calib_images, parity_images=args.parity_images)
    parity = {k: v for k, v in manifest["parity"].items() if isinstance(v, dict)}
    print(json.dumps({"model_dir": str(Path(args.out)), "name": manifest["name"],
                      "parity": {k: {f: v[f] for f in ("mask_dice_agreement", "max_abs_prob_segmenter",
                                                       "max_abs_prob_classifier", "passed")}
                                 for k, v in parity.items()}}, indent=2))
    return 0
