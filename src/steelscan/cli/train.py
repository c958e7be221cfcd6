"""`steelscan train classifier|segmenter --data DIR --out RUN_DIR [--config FILE.yaml] [flags]`.

Defaults live in steelscan.training.config.TrainConfig; a YAML file overrides them and the
flags here override the YAML. A flag left out keeps the value from below it. There is one
flag per TrainConfig field (`--batch-size` for batch_size), generated from the model, so a
new setting is a flag without touching this file; the values are checked by TrainConfig."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal, get_args, get_origin

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
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out where it stopped; flags may repeat its settings, and "
                        "change only epochs, patience, device, workers and threads")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    g = p.add_argument_group("settings (override --config)")
    for name, flag, metavar, help_text in setting_flags():
        g.add_argument(flag, dest=name, metavar=metavar, help=help_text)
    p.set_defaults(func=run)


def setting_flags() -> list[tuple[str, str, str, str]]:
    """(field, --flag, METAVAR, help) of every TrainConfig field but `kind`. Values stay text
    here: TrainConfig parses them, so a bad one is a one-line error naming the field."""
    from ..training.config import KIND_DEFAULTS, TrainConfig, setting_text

    flags = []
    for name, field in TrainConfig.model_fields.items():
        if name == "kind":
            continue
        annotation = field.annotation
        if get_origin(annotation) is Literal:
            metavar = "|".join(get_args(annotation))
        else:
            metavar = {bool: "true|false", int: "N", float: "X"}.get(annotation, "TEXT")
        metavar = "HxW" if name == "crop" else metavar
        per_kind = [f"{kind} {setting_text(v[name])}" for kind, v in KIND_DEFAULTS.items() if name in v]
        flags.append((name, "--" + name.replace("_", "-"), metavar, f"{field.description} (default "
                      f"{setting_text(field.default)}{'; ' + ', '.join(per_kind) if per_kind else ''})"))
    return flags


def run(args: argparse.Namespace, callbacks: Iterable[Callback] = ()) -> int:
    """Train or resume as `args` say; `callbacks` hook into the loop (see training/callbacks.py)."""
    from ..errors import ConfigError
    from ..training import load_config, resume, train

    overrides = {name: getattr(args, name) for name, *_ in setting_flags()}
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
