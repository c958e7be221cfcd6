"""`steelscan train classifier|segmenter --data DIR --out RUN_DIR [--config FILE.yaml] [flags]`.

Defaults live in steelscan.training.config.TrainConfig; a YAML file overrides them and the
flags here override the YAML. A flag left out keeps the value from below it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from ..training import Callback


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train the defect classifier or the segmenter into a run folder",
        description="Train a model into RUN_DIR (config.json, best/last.safetensors, metrics.csv, "
                    "metrics.json, curves.png, state/). Under `torchrun --nproc_per_node=N` it trains "
                    "data-parallel. Defaults: steelscan/training/config.py.")
    p.add_argument("kind", choices=["classifier", "segmenter"])
    p.add_argument("--data", type=Path, help="Kaggle-layout folder (train_images/ + train.csv)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--config", type=Path, help="YAML file of settings (keys = TrainConfig fields)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    g = p.add_argument_group("settings (override --config)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--crop", help="training crop HxW, e.g. 256x400, or 'full'")
    g.add_argument("--arch", help="segmenter: resunet | smp_unet")
    g.add_argument("--backbone", help="classifier: resnet18|resnet34|resnet50|efficientnet_lite0; "
                                      "smp_unet: its encoder")
    g.add_argument("--base-width", type=int, help="ResUNet channels of the first block")
    g.add_argument("--input-scale", type=float,
                   help="classifier: resize images by this factor inside the model (e.g. 0.5)")
    g.add_argument("--strategy", help="classifier: freeze (head only) | finetune")
    g.add_argument("--warmup-frozen-epochs", type=int, help="finetune: head-only epochs first")
    g.add_argument("--weights", help="pretrained weights: imagenet | none | PATH")
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--precision", help="auto | fp32 | bf16 | fp16 (GPU)")
    g.add_argument("--seed", type=int)
    g.add_argument("--workers", type=int, help="DataLoader worker processes")
    g.add_argument("--threads", type=int, help="torch CPU threads per process (0 = auto)")
    g.add_argument("--val-fraction", type=float)
    g.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    g.add_argument("--patience", type=int, help="early stop after N epochs without improvement (0 = off)")
    p.set_defaults(func=run)


SETTINGS = ("epochs", "batch_size", "lr", "crop", "arch", "backbone", "base_width", "input_scale",
            "strategy",
            "warmup_frozen_epochs", "weights", "device", "precision", "seed", "workers", "threads",
            "val_fraction", "max_steps_per_epoch", "patience")


def run(args: argparse.Namespace, callbacks: Iterable[Callback] = ()) -> int:
    """Train or resume as `args` say; `callbacks` hook into the loop (see training/callbacks.py)."""
    from ..errors import ConfigError
    from ..training import load_config, resume, train

    overrides = {k: getattr(args, k) for k in SETTINGS}
    if args.resume:
        if args.config:
            raise ConfigError("--config cannot be combined with --resume (the run keeps its settings)")
        summary = resume(args.out, overrides, args.data, args.kind, callbacks=callbacks)
    else:
        if args.data is None:
            raise ConfigError("--data is required (a Kaggle-layout folder)", field="--data")
        cfg = load_config(args.kind, args.config, overrides)
        summary = train(cfg, args.data, args.out, overwrite=args.overwrite, callbacks=callbacks)
    best = summary.get("best_score")
    print(f"{args.out}: best {summary.get('monitor')} {best:.4f} at epoch {summary.get('best_epoch')} "
          f"({summary.get('epochs_run')} epochs)" if best is not None else f"{args.out}: no epochs run")
    return 0
