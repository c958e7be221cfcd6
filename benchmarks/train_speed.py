"""Training-step throughput on this machine: fp32 vs channels-last + bf16 autocast, same run.

One step = forward, the training loss (steelscan.training.losses), backward, AdamW step, on
random 256x400 crops (batch --batch). Models: the ResNet-18 classifier and the ResUNet
segmenter (base width 16) at their steelscan specs. Reports images/s (median over
--steps timed steps after --warmup), prints a table and writes
benchmarks/results/train_speed.json and benchmarks/results/train_speed.md.

    .venv/bin/python benchmarks/train_speed.py [--batch 4] [--steps 5] [--warmup 2] [--threads 0]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.models import build_model  # noqa: E402
from steelscan.training.config import TrainConfig  # noqa: E402
from steelscan.training.losses import ClassificationLoss, SegmentationLoss  # noqa: E402
from steelscan.training.machine import cpu_supports_bf16  # noqa: E402
from steelscan.training.trainer import param_groups  # noqa: E402

CROP = (256, 400)
MODELS = {
    "classifier resnet18": {"kind": "classifier", "arch": "resnet18", "num_classes": 4, "weights": "none"},
    "segmenter resunet w16": {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "base_width": 16},
}
MODES = {"fp32": (False, "fp32"), "channels-last + bf16": (True, "bf16")}


def step_times(spec: dict, channels_last: bool, precision: str, batch: int, steps: int, warmup: int) -> list[float]:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(spec).to(memory_format=fmt).train()
    segmenter = spec["kind"] == "segmenter"
    loss_fn = SegmentationLoss(torch.ones(4)) if segmenter else ClassificationLoss(torch.ones(4))
    opt = torch.optim.AdamW(param_groups(model, None, TrainConfig()), lr=1e-3)
    x = torch.rand(batch, 3, *CROP).contiguous(memory_format=fmt)
    y = (torch.rand(batch, 4, *CROP) > 0.9).float() if segmenter else (torch.rand(batch, 4) > 0.5).float()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast:
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = cpu_supports_bf16()
    rows = []
    for name, spec in MODELS.items():
        for mode, (cl, precision) in MODES.items():
            if precision == "bf16" and not bf16:
                continue
            t = step_times(spec, cl, precision, args.batch, args.steps, args.warmup)
            med = statistics.median(t)
            rows.append({"model": name, "mode": mode, "median_step_s": med, "images_per_s": args.batch / med,
                         "steps": len(t)})
            print(f"{name:24s} {mode:22s} {args.batch / med:7.2f} img/s  ({med * 1000:.0f} ms/step)", flush=True)
    for name in MODELS:
        base = next((r for r in rows if r["model"] == name and r["mode"] == "fp32"), None)
        for r in rows:
            if r["model"] == name and base:
                r["speedup_vs_fp32"] = base["median_step_s"] / r["median_step_s"]
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "cpu_bf16": bf16, "python": platform.python_version()}
    out = REPO / "benchmarks" / "results"
    write_json(out / "train_speed.json", {"crop": list(CROP), "batch": args.batch, "machine": machine,
                                          "results": rows})
    lines = [f"# Training-step throughput ({CROP[0]}x{CROP[1]} crops, batch {args.batch})", "",
             f"`.venv/bin/python benchmarks/train_speed.py --batch {args.batch} --steps {args.steps}` — "
             f"torch {machine['torch']}, {machine['threads']} CPU threads, CPU bf16: {bf16}. "
             f"One step = forward + loss + backward + AdamW; median of {args.steps} steps after "
             f"{args.warmup} warm-up steps.", "",
             "| model | mode | images/s | ms/step | speed-up |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['mode']} | {r['images_per_s']:.2f} | {r['median_step_s'] * 1000:.0f} | "
              f"{r.get('speedup_vs_fp32', 1.0):.2f}x |" for r in rows]
    write_text(out / "train_speed.md", "\n".join(lines) + "\n")
    print(f"wrote {out / 'train_speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
