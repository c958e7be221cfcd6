"""The training loop: `train` starts a run, `resume` continues one; `_fit` reads top to bottom.

A run folder holds config.json, {best,last}.safetensors, metrics.csv, metrics.json, curves.png
and state/ (resume state). AdamW, linear warm-up then cosine decay per step, early stopping
on the validation score (segmenter: Kaggle Dice of 0.5-thresholded full-size masks;
classifier: macro F1). Under `torchrun` it trains data-parallel (DDP); only rank 0 writes.
Callbacks (callbacks.py) hook into every step, every epoch and the end of the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import __version__
from ..atomic import write_json
from ..data.layout import KaggleDataset, open_dataset
from ..data.splits import split_dataset
from ..errors import ConfigError, DatasetError, ModelError
from ..models import build_model, save_run_weights
from ..models.checkpoint import read_run_config, state_for_saving
from ..rle import rle_area
from . import checkpoint, distributed
from .augment import Augment
from .callbacks import Callback, CallbackList, Progress, RunState
from .config import TrainConfig, from_dict, setting_text
from .dataset import (DefectDataset, EpochSampler, class_balance_weights, scan_images, size_batches,
                      worker_init)
from .history import write_curves, write_metrics_csv, write_metrics_json
from .losses import ClassificationLoss, SegmentationLoss, positive_weights
from .machine import Machine, resolve_device, seed_everything
from .validation import evaluate

RUN_FILES = ("config.json", "best.safetensors", "last.safetensors", "metrics.csv", "metrics.json",
             "curves.png")
# Settings a resumed run may change; anything else would make it a different run.
RESUMABLE = ("epochs", "patience", "device", "workers", "threads")


# ----------------------------------------------------------------------------- entry points

def train(cfg: TrainConfig, data_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False,
          callbacks: Iterable[Callback] = ()) -> dict:
    """Train a new run of `cfg` on the Kaggle-layout folder `data_dir` into `out_dir`.
    Returns the metrics.json summary."""
    run_dir = Path(out_dir)
    if holds_run(run_dir) and not overwrite:
        raise ConfigError("folder already holds a training run; pass --resume to continue it "
                          "or --overwrite to start over", path=run_dir)
    return fit(cfg, Path(data_dir), run_dir, resume=False, callbacks=callbacks)


def resume(out_dir: str | Path, overrides: dict[str, Any] | None = None,
           data_dir: str | Path | None = None, kind: str | None = None,
           callbacks: Iterable[Callback] = ()) -> dict:
    """Continue the run in `out_dir` from its last completed epoch, with the same settings and
    the same train/validation split. `overrides` (None values ignored) may repeat the run's own
    values; only RESUMABLE settings may take new ones."""
    run_dir = Path(out_dir)
    if not (run_dir / "config.json").is_file():
        raise ModelError("no run to resume here (config.json missing)", path=run_dir)
    config = read_run_config(run_dir)
    saved = from_dict(config.get("train"), where=run_dir / "config.json")
    if kind is not None and kind != saved.kind:
        raise ConfigError(f"the run here trains a {saved.kind}, not a {kind}", path=run_dir)
    asked = {k: v for k, v in (overrides or {}).items() if v is not None}
    cfg = saved.updated(asked, where="command line")
    for key in asked:
        old, new = getattr(saved, key), getattr(cfg, key)
        if new != old and key not in RESUMABLE:
            raise ConfigError(f"cannot change {key} from {setting_text(old)} to {setting_text(new)} when "
                              f"resuming (only {', '.join(RESUMABLE)} may change); start a new run instead",
                              field=key)
    data_dir = data_dir or config.get("data", {}).get("root")
    if not data_dir:
        raise ConfigError("the run does not record its data folder; pass --data", path=run_dir, field="data")
    return fit(cfg, Path(data_dir), run_dir, resume=True, callbacks=callbacks)


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "config.json").exists() or (run_dir / checkpoint.STATE_DIR).exists()


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# ----------------------------------------------------------------------------- the loop

def fit(cfg: TrainConfig, data_dir: Path, run_dir: Path, *, resume: bool,
        callbacks: Iterable[Callback] = ()) -> dict:
    """Train (resume: continue) the run in `run_dir`; under torchrun, as one rank of the group."""
    device_type = "cuda" if resolve_device(cfg.device).type == "cuda" else "cpu"
    ranks = distributed.start(device_type)
    threads = torch.get_num_threads()
    try:
        return _fit(cfg, data_dir, run_dir, resume, ranks, CallbackList(callbacks))
    finally:
        torch.set_num_threads(threads)  # a library call must not leave the caller's process changed
        distributed.stop(ranks)


def _fit(cfg: TrainConfig, data_dir: Path, run_dir: Path, resume: bool, ranks: distributed.Ranks,
         callbacks: Callback) -> dict:
    # 1. the machine: device, precision, memory layout, CPU threads
    machine = Machine.set_up(cfg.device, cfg.precision, cfg.channels_last, cfg.threads, ranks)

    # 2. the data: readable images, the split (a resumed run keeps its own), the loaders
    data = load_data(cfg, data_dir, run_dir if resume else None, machine)

    # 3. model, loss, optimiser (seeded: every rank builds the same initial weights)
    state = checkpoint.read_state(run_dir) if resume else None
    seed_everything(cfg.seed)
    spec = cfg.model_spec(data.num_classes)
    model = build_model({**spec, "weights": "none"} if state else spec)
    model = model.to(machine.device, memory_format=machine.memory_format)
    loss_fn = build_loss(cfg, data).to(machine.device)
    optimiser = Optimiser(model, classifier_head(model, cfg), cfg, steps_per_epoch=len(data.train_loader),
                          fp16=machine.precision == "fp16")

    # 4. where we start: from scratch, or after the last completed epoch
    progress = restore(state, model, optimiser) if state else Progress()
    if progress.stopped_early or progress.epoch >= cfg.epochs:
        if ranks.is_main:
            print(f"run already complete at epoch {progress.epoch} (pass a larger --epochs to go on)",
                  file=sys.stderr)
        return read_metrics(run_dir)
    run = RunState(cfg, run_dir, ranks, model, optimiser.adamw, progress)
    open_run_folder(run, spec, data, data_dir, machine, fresh=not resume)

    # 5. the epochs: train, validate, keep the score, save; until the last epoch or an early stop
    net, frozen = model, None
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        progress.epoch = epoch
        if (want_frozen := backbone_frozen(cfg, model, epoch)) != frozen:
            net, frozen = freeze_backbone(model, want_frozen, machine), want_frozen
        t0 = time.perf_counter()
        train_loss, images = train_one_epoch(run, net, data, loss_fn, optimiser, machine, callbacks)
        train_time = time.perf_counter() - t0
        validate = epoch % cfg.val_every == 0 or epoch == cfg.epochs
        scores = (evaluate(model, data.val_loader, loss_fn, cfg.kind, data.num_classes, cfg.threshold, machine)
                  if validate else {})
        row = {"epoch": epoch, "step": progress.step, "lr": optimiser.lr_at(progress.step - 1),
               "train_loss": train_loss, **{f"val_{k}": v for k, v in scores.items()},
               "train_images_per_s": images / max(train_time, 1e-9), "time_s": time.perf_counter() - t0}
        improved = validate and progress.record(row, monitor_score(cfg, scores), cfg.patience)
        if not validate:
            progress.history.append(row)
        if ranks.is_main:
            save_epoch(run, spec, optimiser, improved)
            log_epoch(cfg, row, improved)
        distributed.barrier(ranks)
        callbacks.on_epoch_end(run, row)
        if progress.stopped_early:
            if ranks.is_main:
                print(f"early stop: no better val_{cfg.monitor_key} for {cfg.patience} epochs", file=sys.stderr)
            break

    callbacks.on_fit_end(run)
    distributed.barrier(ranks)
    return read_metrics(run_dir)


# ----------------------------------------------------------------------------- the steps, in order

@dataclass
class TrainingData:
    """A run's images, split into training and validation, and the loaders that feed them."""

    images: KaggleDataset                 # every readable image
    skipped: list[str]                    # ids of the unreadable ones
    train: KaggleDataset
    val: KaggleDataset
    train_sizes: list[tuple[int, int]]    # (H, W) of each training image
    weights: np.ndarray | None            # class-balanced sampling weight of each training image
    sampler: EpochSampler                 # the seeded epoch order, sharded over ranks
    train_loader: DataLoader              # augmented training crops
    val_loader: DataLoader                # full-size validation images, batched by size

    @property
    def num_classes(self) -> int:
        return self.images.num_classes


def load_data(cfg: TrainConfig, data_dir: Path, saved_run: Path | None, machine: Machine) -> TrainingData:
    """Scan `data_dir`, split it (seeded, or as `saved_run` split it) and build the loaders."""
    data, sizes, skipped = scan_images(open_dataset(data_dir))
    if len(data) < 2:
        raise DatasetError(f"need at least 2 readable images to train and validate, found {len(data)}",
                           path=data_dir)
    train_idx, val_idx = (saved_split(saved_run, data) if saved_run else
                          split_indices(data, cfg.val_fraction, cfg.seed))
    train, val = data.subset(train_idx), data.subset(val_idx)
    train_sizes, val_sizes = [sizes[i] for i in train_idx], [sizes[i] for i in val_idx]
    weights = class_balance_weights(train.presence()) if cfg.balance else None
    ranks, segmenter = machine.ranks, cfg.kind == "segmenter"

    crop = training_crop(cfg.crop, train_sizes, data_dir)
    train_set = DefectDataset(train, train_sizes, seed=cfg.seed, crop=crop, defect_crop_prob=cfg.defect_crop_prob,
                              augment=Augment(cfg.hflip, cfg.vflip, cfg.brightness, cfg.contrast, cfg.shift),
                              with_masks=segmenter)
    sampler = EpochSampler(len(train), weights, cfg.seed, rank=ranks.rank, world=ranks.world,
                           max_samples=cfg.max_steps_per_epoch * cfg.batch_size)
    loader_args = dict(num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                       worker_init_fn=worker_init, pin_memory=machine.device.type == "cuda")
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                              drop_last=len(sampler) >= cfg.batch_size, **loader_args)
    val_loader = DataLoader(DefectDataset(val, val_sizes, with_masks=segmenter),
                            batch_sampler=size_batches(val_sizes, cfg.batch_size, rank=ranks.rank,
                                                       world=ranks.world), **loader_args)
    return TrainingData(data, skipped, train, val, train_sizes, weights, sampler, train_loader, val_loader)


def build_loss(cfg: TrainConfig, data: TrainingData) -> nn.Module:
    """BCE (+ soft Dice for the segmenter) with per-class positive weights from the share of
    sampled pixels (segmenter) or images (classifier) holding each class."""
    if cfg.kind == "segmenter":
        share = pixel_fraction(data.train, data.train_sizes, data.weights)
        return SegmentationLoss(positive_weights(share, cfg.max_pos_weight), cfg.dice_weight)
    return ClassificationLoss(positive_weights(image_fraction(data.train, data.weights), cfg.max_pos_weight))


def classifier_head(model: nn.Module, cfg: TrainConfig) -> nn.Module | None:
    """The classifier's head (trained at the full lr, never frozen); None for a segmenter."""
    return getattr(model, "head", None) if cfg.kind == "classifier" else None


class Optimiser:
    """AdamW on the run's parameter groups, stepped along the warm-up + cosine schedule, with
    optional gradient clipping and (fp16 on CUDA) loss scaling."""

    def __init__(self, model: nn.Module, head: nn.Module | None, cfg: TrainConfig, *, steps_per_epoch: int,
                 fp16: bool) -> None:
        self.model, self.base_lr, self.clip_grad_norm = model, cfg.lr, cfg.clip_grad_norm
        self.adamw = torch.optim.AdamW(param_groups(model, head, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.total_steps = cfg.epochs * steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.min_lr_ratio = cfg.min_lr_ratio

    def factor(self, step: int) -> float:
        return lr_factor(step, self.warmup_steps, self.total_steps, self.min_lr_ratio)

    def lr_at(self, step: int) -> float:
        """The base learning rate of step `step` (0-based)."""
        return self.base_lr * self.factor(step)

    def step(self, loss: torch.Tensor, step: int) -> None:
        """Optimiser step number `step` (0-based): gradients of `loss`, then the update."""
        factor = self.factor(step)
        for group in self.adamw.param_groups:
            group["lr"] = self.base_lr * group["lr_scale"] * factor
        self.adamw.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.adamw)
        else:
            loss.backward()
        if self.clip_grad_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.scaler:
            self.scaler.step(self.adamw)
            self.scaler.update()
        else:
            self.adamw.step()

    def schedule_state(self, step: int) -> dict[str, Any]:
        return {"kind": "warmup_cosine", "step": step, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "min_lr_ratio": self.min_lr_ratio}


def restore(state: tuple[dict, dict[str, torch.Tensor]], model: nn.Module, optimiser: Optimiser) -> Progress:
    """Load the last completed epoch's weights, optimiser, loss scale and RNG states; its progress."""
    info, tensors = state
    model.load_state_dict(checkpoint.model_tensors(tensors))
    checkpoint.load_optimizer(optimiser.adamw, info["optimizer"], tensors)
    if optimiser.scaler and info.get("scaler"):
        optimiser.scaler.load_state_dict(info["scaler"])
    checkpoint.set_rng_state(info["rng"], tensors)
    return Progress(epoch=info["epoch"], step=info["step"],
                    best_score=info["best_score"] if info["best_score"] is not None else -math.inf,
                    best_epoch=info["best_epoch"], bad_epochs=info["bad_epochs"],
                    stopped_early=bool(info.get("stopped_early")), history=info["history"])


def open_run_folder(run: RunState, spec: dict, data: TrainingData, data_dir: Path, machine: Machine, *,
                    fresh: bool) -> None:
    """Rank 0 writes config.json (and, for a new run, clears the folder and saves the split)."""
    distributed.barrier(run.ranks)
    if run.ranks.is_main:
        if fresh:
            clear_run(run.run_dir)
        write_json(run.run_dir / "config.json", run_config(run.cfg, spec, data, data_dir, machine))
        if fresh:
            write_json(run.run_dir / checkpoint.STATE_DIR / "split.json",
                       {"train_ids": [r.image_id for r in data.train], "val_ids": [r.image_id for r in data.val]})
        print(f"training {run.cfg.kind} {spec['arch']} on {len(data.train)} images ({len(data.val)} validation) "
              f"| {machine.describe()} | {run.ranks.world} process(es) | {len(data.train_loader)} steps/epoch",
              file=sys.stderr)
    distributed.barrier(run.ranks)


def backbone_frozen(cfg: TrainConfig, model: nn.Module, epoch: int) -> bool:
    """Classifier transfer learning: the backbone is frozen all along ('freeze') or for the first
    warmup_frozen_epochs ('finetune')."""
    return classifier_head(model, cfg) is not None and (cfg.strategy == "freeze"
                                                        or epoch <= cfg.warmup_frozen_epochs)


def freeze_backbone(model: nn.Module, frozen: bool, machine: Machine) -> nn.Module:
    """Freeze or unfreeze the backbone; returns the module to train (a new DDP wrapper, which
    must see the new set of trainable parameters)."""
    if hasattr(model, "freeze_backbone"):
        model.freeze_backbone() if frozen else model.unfreeze_backbone()
    return wrap_ddp(model, machine.ranks, machine.device)


def train_one_epoch(run: RunState, net: nn.Module, data: TrainingData, loss_fn: nn.Module, optimiser: Optimiser,
                    machine: Machine, callbacks: Callback) -> tuple[float, float]:
    """One pass over this rank's share of epoch `run.progress.epoch`.
    Returns (mean training loss, images seen), both over all ranks."""
    cfg, progress = run.cfg, run.progress
    target = "masks" if cfg.kind == "segmenter" else "labels"
    net.train()
    data.sampler.set_epoch(progress.epoch)
    loss_sum, seen = 0.0, 0
    bar = tqdm(data.train_loader, desc=f"epoch {progress.epoch}/{cfg.epochs}", disable=not run.ranks.is_main,
               file=sys.stderr, leave=False, dynamic_ncols=True)
    for batch in bar:
        x = machine.inputs(batch["image"], non_blocking=True)
        y = batch[target].to(machine.device, non_blocking=True)
        with machine.autocast():
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        optimiser.step(loss, progress.step)
        progress.step += 1
        loss_sum += loss.item() * len(x)
        seen += len(x)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{optimiser.lr_at(progress.step - 1):.2e}")
        callbacks.on_step_end(run)
    bar.close()
    distributed.broadcast_buffers(run.model, run.ranks)  # every rank keeps rank 0's batch-norm statistics
    totals = distributed.sum_over_ranks(torch.tensor([loss_sum, seen], dtype=torch.float64), run.ranks)
    return float(totals[0] / max(float(totals[1]), 1.0)), float(totals[1])


def save_epoch(run: RunState, spec: dict, optimiser: Optimiser, improved: bool) -> None:
    """The run's story (metrics, weights, curves), then the resume state last: its commit point."""
    cfg, run_dir, p = run.cfg, run.run_dir, run.progress
    write_metrics_csv(run_dir, p.history)
    save_run_weights(run_dir, run.model, "last")
    if improved:
        save_run_weights(run_dir, run.model, "best")
    write_metrics_json(run_dir, p.history, cfg.monitor_key, p.best_epoch,
                       {"stopped_early": p.stopped_early, "epochs_planned": cfg.epochs, "kind": cfg.kind})
    write_curves(run_dir, p.history, cfg.monitor_key, f"{cfg.kind} {spec['arch']} — {run_dir.name}")
    checkpoint.save_state(run_dir, p.epoch, state_for_saving(run.model), optimiser.adamw, {
        "step": p.step, "best_score": p.best_score if p.best_epoch else None, "best_epoch": p.best_epoch,
        "bad_epochs": p.bad_epochs, "stopped_early": p.stopped_early, "history": p.history,
        "scheduler": optimiser.schedule_state(p.step),
        "scaler": optimiser.scaler.state_dict() if optimiser.scaler else None})


def monitor_score(cfg: TrainConfig, scores: dict[str, float]) -> float:
    """The validation score to maximise: the monitored score, or minus the loss."""
    key = cfg.monitor_key
    return -scores[key] if key == "loss" else scores[key]


def log_epoch(cfg: TrainConfig, row: dict[str, Any], improved: bool) -> None:
    key = cfg.monitor_key
    val = (f"val_loss {row['val_loss']:.4f}" + (f"  val_{key} {row[f'val_{key}']:.4f}" if key != "loss" else "")
           if "val_loss" in row else f"(validated every {cfg.val_every} epochs)")
    tqdm.write(f"epoch {row['epoch']}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  {val}"
               f"{'  *best*' if improved else ''}  {row['time_s']:.1f}s", file=sys.stderr)


# ----------------------------------------------------------------------------- pieces

def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the base lr for optimizer step `step` (0-based): linear warm-up, then cosine."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, head: nn.Module | None, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: matrices/kernels decay, biases and norms do not; a classifier's backbone
    runs at lr * backbone_lr_scale. Frozen parameters stay listed (they get no gradient, so
    AdamW skips them), which keeps the optimizer's layout fixed across freeze/unfreeze."""
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    parts = {"head": [p for p in model.parameters() if id(p) in head_ids],
             "body": [p for p in model.parameters() if id(p) not in head_ids]}
    scale = {"head": 1.0, "body": cfg.backbone_lr_scale if head is not None else 1.0}
    groups = []
    for name, params in parts.items():
        for decay in (True, False):
            chosen = [p for p in params if (p.ndim > 1) == decay]
            if chosen:
                groups.append({"params": chosen, "name": f"{name}{'' if decay else '_no_decay'}",
                               "lr_scale": scale[name], "weight_decay": cfg.weight_decay if decay else 0.0})
    return groups


def wrap_ddp(model: nn.Module, ranks: distributed.Ranks, device: torch.device) -> nn.Module:
    if not ranks.active:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def split_indices(data: KaggleDataset, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: the data layer's seeded split, stratified by class combination."""
    train, val = split_dataset(data, val_fraction=val_fraction, seed=seed)
    if len(val) == 0 or len(train) == 0:
        raise DatasetError(f"{len(data)} images cannot be split into training and validation at "
                           f"val_fraction {val_fraction}", path=data.root)
    return [int(i) for i in train], [int(i) for i in val]


def saved_split(run_dir: Path, data: KaggleDataset) -> tuple[list[int], list[int]]:
    path = run_dir / checkpoint.STATE_DIR / "split.json"
    if not path.is_file():
        raise ModelError("run has no saved split (state/split.json); cannot resume", path=run_dir)
    split = json.loads(path.read_text())
    where = {r.image_id: i for i, r in enumerate(data.records)}
    missing = [i for i in split["train_ids"] + split["val_ids"] if i not in where]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) of the run's split are missing or unreadable, "
                           f"e.g. {missing[0]}", path=data.images_dir)
    return [where[i] for i in split["train_ids"]], [where[i] for i in split["val_ids"]]


def training_crop(crop: tuple[int, int] | None, sizes: list[tuple[int, int]],
                  data_dir: Path) -> tuple[int, int] | None:
    """The crop actually used: clamped to the smallest image; full images must share one size."""
    heights, widths = zip(*sizes)
    if crop is None:
        if len(set(sizes)) > 1:
            raise ConfigError(f"training images differ in size ({len(set(sizes))} sizes); "
                              "set a crop, e.g. --crop 256x400", path=data_dir, field="crop")
        return None
    return min(crop[0], min(heights)), min(crop[1], min(widths))


def image_fraction(data: KaggleDataset, weights: np.ndarray | None) -> np.ndarray:
    """(C,) share of sampled images holding each class."""
    w = np.full(len(data), 1.0 / len(data)) if weights is None else weights
    return (w[:, None] * data.presence()).sum(0)


def pixel_fraction(data: KaggleDataset, sizes: list[tuple[int, int]], weights: np.ndarray | None) -> np.ndarray:
    """(C,) share of sampled pixels inside each class's masks (areas read from the RLEs)."""
    w = np.full(len(data), 1.0 / len(data)) if weights is None else weights
    frac = np.zeros((len(data), data.num_classes))
    for i, (rec, (h, wd)) in enumerate(zip(data.records, sizes)):
        for c, rle in rec.rles.items():
            if 1 <= c <= data.num_classes and rle:
                frac[i, c - 1] = rle_area(rle, h, wd) / (h * wd)
    return (w[:, None] * frac).sum(0)




def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of a state dict (equal digests = identical weights)."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        t = state[key].detach().cpu().contiguous()
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def clear_run(run_dir: Path) -> None:
    """Remove a previous run's files (only those a run writes) before a new run."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / checkpoint.STATE_DIR, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def run_config(cfg: TrainConfig, spec: dict, data: TrainingData, data_dir: Path, machine: Machine) -> dict:
    """config.json: what load_run needs (kind, model, classes) plus every training setting."""
    return {"kind": cfg.kind, "model": spec, "num_classes": data.num_classes,
            "class_names": data.images.class_names, "train": cfg.to_dict(),
            "data": {"root": str(Path(data_dir).resolve()), "val_ids": [r.image_id for r in data.val],
                     "skipped_unreadable": data.skipped, "num_images": len(data.images)},
            "run": {"device": str(machine.device), "precision": machine.precision,
                    "world_size": machine.ranks.world, "steelscan": __version__, "torch": torch.__version__,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
