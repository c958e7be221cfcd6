"""The training loop: one function, `fit`, that reads top to bottom.

`train(cfg, data_dir, out_dir)` starts a run, `resume(out_dir)` continues one. A run
folder holds config.json, {best,last}.safetensors, metrics.csv, metrics.json, curves.png
and state/ (resume state). AdamW, linear warm-up then cosine decay per step, early stopping
on the validation score (segmenter: Kaggle Dice of 0.5-thresholded full-size masks;
classifier: macro F1). Under `torchrun` it trains data-parallel (DDP); only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

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
from ..metrics import pair_dice
from ..models import build_model, save_run_weights
from ..models.checkpoint import state_for_saving
from ..rle import rle_area
from . import checkpoint, distributed
from .augment import Augment
from .config import TrainConfig, coerce, from_dict
from .dataset import (DefectDataset, EpochSampler, class_balance_weights, scan_images, size_batches,
                      worker_init)
from .history import write_curves, write_metrics_csv, write_metrics_json
from .losses import ClassificationLoss, SegmentationLoss, positive_weights

RUN_FILES = ("config.json", "best.safetensors", "last.safetensors", "metrics.csv", "metrics.json",
             "curves.png")
# Settings a resumed run may change; anything else would make it a different run.
RESUMABLE = ("epochs", "patience", "device", "workers", "threads")
HANG_AT_STEP = "STEELSCAN_TEST_HANG_AT_STEP"        # test hook: stall here so a test can SIGKILL
RANK_DIGEST_DIR = "STEELSCAN_TEST_RANK_DIGEST_DIR"  # test hook: each rank writes its weights' sha256


# ----------------------------------------------------------------------------- entry points

def train(cfg: TrainConfig, data_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Train a new run of `cfg` on the Kaggle-layout folder `data_dir` into `out_dir`.
    Returns the metrics.json summary."""
    run_dir = Path(out_dir)
    if holds_run(run_dir) and not overwrite:
        raise ConfigError("folder already holds a training run; pass --resume to continue it "
                          "or --overwrite to start over", path=run_dir)
    return fit(cfg, Path(data_dir), run_dir, resume=False)


def resume(out_dir: str | Path, overrides: dict[str, Any] | None = None,
           data_dir: str | Path | None = None, kind: str | None = None) -> dict:
    """Continue the run in `out_dir` from its last completed epoch, with the same settings
    (only RESUMABLE ones may be overridden) and the same train/validation split."""
    run_dir = Path(out_dir)
    config = read_run_config(run_dir)
    cfg = from_dict(config["train"], where=run_dir / "config.json")
    if kind is not None and kind != cfg.kind:
        raise ConfigError(f"the run here trains a {cfg.kind}, not a {kind}", path=run_dir)
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in changes.items():
        if key not in RESUMABLE:
            raise ConfigError(f"cannot change {key!r} when resuming (only {', '.join(RESUMABLE)}); "
                              "start a new run instead", field=key)
        cfg = dataclasses.replace(cfg, **{key: coerce(key, value, where="command line")})
    return fit(cfg, Path(data_dir or config["data"]["root"]), run_dir, resume=True)


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "config.json").exists() or (run_dir / checkpoint.STATE_DIR).exists()


def read_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise ModelError("no run to resume here (config.json missing)", path=run_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read run config ({e})", path=path) from None


# ----------------------------------------------------------------------------- the loop

def fit(cfg: TrainConfig, data_dir: Path, run_dir: Path, *, resume: bool) -> dict:
    device_type = "cuda" if resolve_device(cfg.device).type == "cuda" else "cpu"
    ranks = distributed.start(device_type)
    threads = torch.get_num_threads()
    try:
        return _fit(cfg, data_dir, run_dir, resume, ranks)
    finally:
        torch.set_num_threads(threads)  # a library call must not leave the caller's process changed
        distributed.stop(ranks)


def _fit(cfg: TrainConfig, data_dir: Path, run_dir: Path, resume: bool, ranks: distributed.Ranks) -> dict:
    main = ranks.is_main
    device = resolve_device(cfg.device, ranks.local_rank)
    precision = resolve_precision(cfg.precision, device)
    torch.set_num_threads(cfg.threads or default_threads(ranks.local_world))
    segmenter = cfg.kind == "segmenter"
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    # --- data: readable images, the split, loaders
    data, sizes, skipped = scan_images(open_dataset(data_dir))
    if len(data) < 2:
        raise DatasetError(f"need at least 2 readable images to train and validate, found {len(data)}",
                           path=data_dir)
    state = checkpoint.read_state(run_dir) if resume else None
    train_idx, val_idx = (saved_split(run_dir, data) if resume else
                          split_indices(data, cfg.val_fraction, cfg.seed))
    train_data, val_data = data.subset(train_idx), data.subset(val_idx)
    train_sizes, val_sizes = [sizes[i] for i in train_idx], [sizes[i] for i in val_idx]
    crop = training_crop(cfg.crop, train_sizes, data_dir)
    weights = class_balance_weights(train_data.presence()) if cfg.balance else None
    C = data.num_classes

    train_set = DefectDataset(train_data, train_sizes, seed=cfg.seed, crop=crop, defect_crop_prob=cfg.defect_crop_prob,
                              augment=Augment(cfg.hflip, cfg.vflip, cfg.brightness, cfg.contrast, cfg.shift),
                              with_masks=segmenter)
    sampler = EpochSampler(len(train_data), weights, cfg.seed, rank=ranks.rank, world=ranks.world,
                           max_samples=cfg.max_steps_per_epoch * cfg.batch_size)
    loader_args = dict(num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                       worker_init_fn=worker_init, pin_memory=device.type == "cuda")
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                              drop_last=len(sampler) >= cfg.batch_size, **loader_args)
    val_loader = DataLoader(DefectDataset(val_data, val_sizes, with_masks=segmenter),
                            batch_sampler=size_batches(val_sizes, cfg.batch_size, rank=ranks.rank,
                                                       world=ranks.world), **loader_args)

    # --- model, loss, optimizer (seeded: every rank builds the same initial weights)
    seed_everything(cfg.seed)
    spec = cfg.model_spec(C)
    model = build_model({**spec, "weights": "none"} if state else spec).to(device, memory_format=memory_format)
    head = getattr(model, "head", None) if cfg.kind == "classifier" else None
    if segmenter:
        loss_fn: nn.Module = SegmentationLoss(positive_weights(pixel_fraction(train_data, train_sizes, weights),
                                                               cfg.max_pos_weight), cfg.dice_weight)
    else:
        loss_fn = ClassificationLoss(positive_weights(image_fraction(train_data, weights), cfg.max_pos_weight))
    loss_fn = loss_fn.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, head, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
                if precision != "fp32" else nullcontext())

    steps_per_epoch = len(train_loader)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)

    # --- where we start: fresh, or the last completed epoch's state
    start_epoch, step, best_score, best_epoch, bad_epochs, rows = 1, 0, -math.inf, None, 0, []
    if state:
        info, tensors = state
        model.load_state_dict(checkpoint.model_tensors(tensors))
        checkpoint.load_optimizer(optimizer, info["optimizer"], tensors)
        if scaler and info.get("scaler"):
            scaler.load_state_dict(info["scaler"])
        checkpoint.set_rng_state(info["rng"], tensors)
        start_epoch, step, bad_epochs = info["epoch"] + 1, info["step"], info["bad_epochs"]
        best_score = info["best_score"] if info["best_score"] is not None else -math.inf
        best_epoch, rows = info["best_epoch"], info["history"]
        if info.get("stopped_early") or start_epoch > cfg.epochs:
            if main:
                print(f"run already complete at epoch {info['epoch']} (pass a larger --epochs to go on)",
                      file=sys.stderr)
            return json.loads((run_dir / "metrics.json").read_text())

    distributed.barrier(ranks)
    if main:
        if not resume:
            clear_run(run_dir)
        write_json(run_dir / "config.json", run_config(cfg, spec, data, val_data, skipped, data_dir,
                                                        device, precision, ranks))
        if not resume:
            write_json(run_dir / checkpoint.STATE_DIR / "split.json",
                       {"train_ids": [r.image_id for r in train_data], "val_ids": [r.image_id for r in val_data]})
        print(f"training {cfg.kind} {spec['arch']} on {len(train_data)} images ({len(val_data)} validation) "
              f"| {device} {precision}{' channels-last' if cfg.channels_last else ''} | "
              f"{ranks.world} process(es) | {steps_per_epoch} steps/epoch", file=sys.stderr)
    distributed.barrier(ranks)

    hang_at = int(os.environ.get(HANG_AT_STEP, "0"))
    net, frozen = model, None
    for epoch in range(start_epoch, cfg.epochs + 1):
        # classifier transfer learning: freeze the backbone (all along, or for a warm-up)
        want_frozen = head is not None and (cfg.strategy == "freeze" or epoch <= cfg.warmup_frozen_epochs)
        if want_frozen != frozen:
            if hasattr(model, "freeze_backbone"):
                model.freeze_backbone() if want_frozen else model.unfreeze_backbone()
            net, frozen = wrap_ddp(model, ranks, device), want_frozen  # DDP must see the new trainable set

        net.train()
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not main, file=sys.stderr,
                   leave=False, dynamic_ncols=True)
        for batch in bar:
            x = batch["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = (batch["masks"] if segmenter else batch["labels"]).to(device, non_blocking=True)
            factor = lr_factor(step, warmup_steps, total_steps, cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * group["lr_scale"] * factor
            with autocast:
                logits = net(x)
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            if scaler:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if cfg.clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            step += 1
            loss_sum += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{cfg.lr * factor:.2e}")
            if hang_at and step == hang_at:
                time.sleep(3600)
        bar.close()
        distributed.broadcast_buffers(model, ranks)
        totals = distributed.sum_over_ranks(torch.tensor([loss_sum, seen], dtype=torch.float64), ranks)
        train_time = time.perf_counter() - t0

        scores = evaluate(model, val_loader, loss_fn, segmenter, C, cfg.threshold, device, memory_format,
                          autocast, ranks)
        row = {"epoch": epoch, "step": step, "lr": cfg.lr * lr_factor(step - 1, warmup_steps, total_steps,
                                                                       cfg.min_lr_ratio),
               "train_loss": float(totals[0] / max(float(totals[1]), 1.0)),
               **{f"val_{k}": v for k, v in scores.items()},
               "train_images_per_s": float(totals[1]) / max(train_time, 1e-9),
               "time_s": time.perf_counter() - t0}
        rows.append(row)
        score = scores[cfg.monitor]
        improved = score > best_score
        if improved:
            best_score, best_epoch, bad_epochs = score, epoch, 0
        else:
            bad_epochs += 1
        stop = bool(cfg.patience) and bad_epochs >= cfg.patience

        if main:  # the run's story, then the resume state last (its commit point)
            write_metrics_csv(run_dir, rows)
            save_run_weights(run_dir, model, "last")
            if improved:
                save_run_weights(run_dir, model, "best")
            write_metrics_json(run_dir, rows, cfg.monitor, best_epoch,
                               {"stopped_early": stop, "epochs_planned": cfg.epochs, "kind": cfg.kind})
            write_curves(run_dir, rows, cfg.monitor, f"{cfg.kind} {spec['arch']} — {run_dir.name}")
            checkpoint.save_state(run_dir, epoch, state_for_saving(model), optimizer, {
                "step": step, "best_score": best_score if best_epoch else None, "best_epoch": best_epoch,
                "bad_epochs": bad_epochs, "stopped_early": stop, "history": rows,
                "scheduler": {"kind": "warmup_cosine", "step": step, "warmup_steps": warmup_steps,
                              "total_steps": total_steps, "min_lr_ratio": cfg.min_lr_ratio},
                "scaler": scaler.state_dict() if scaler else None})
            tqdm.write(f"epoch {epoch}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
                       f"val_loss {row['val_loss']:.4f}  val_{cfg.monitor} {score:.4f}"
                       f"{'  *best*' if improved else ''}  {row['time_s']:.1f}s", file=sys.stderr)
        distributed.barrier(ranks)
        if stop:
            if main:
                print(f"early stop: no better val_{cfg.monitor} for {cfg.patience} epochs", file=sys.stderr)
            break

    if os.environ.get(RANK_DIGEST_DIR):
        folder = Path(os.environ[RANK_DIGEST_DIR])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{ranks.rank}.txt").write_text(weights_digest(state_for_saving(model)))
    distributed.barrier(ranks)
    return json.loads((run_dir / "metrics.json").read_text())


# ----------------------------------------------------------------------------- validation

@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, segmenter: bool, C: int,
             threshold: float, device: torch.device, memory_format, autocast, ranks) -> dict[str, float]:
    """Validation scores of this rank's full-size images, summed over ranks.

    segmenter: loss, kaggle_dice (mean Dice over all (image, class) pairs of masks
    thresholded at `threshold`), dice_pos (pairs with a true defect), dice_class_k.
    classifier: loss, macro_f1, any_f1 (image has any defect), f1_class_k."""
    model.eval()
    # sums: loss, images, then per kind: dice per class (C), dice of positive pairs, positive pairs
    #                                   or tp/fp/fn per class (3C) and for "any defect" (3)
    sums = torch.zeros(2 + (C + 2 if segmenter else 3 * C + 3), dtype=torch.float64)
    for batch in loader:
        valid = batch["valid"]
        if not valid.any():
            continue
        x = batch["image"][valid].to(device).contiguous(memory_format=memory_format)
        y = (batch["masks"] if segmenter else batch["labels"])[valid].to(device)
        with autocast:
            logits = model(x)
        sums[0] += float(loss_fn(logits.float(), y)) * len(x)
        sums[1] += len(x)
        pred = (torch.sigmoid(logits.float()) > threshold).cpu().numpy()
        truth = y.cpu().numpy() > 0.5
        if segmenter:
            d = pair_dice(pred, truth)                         # (N, C)
            pos = truth.any(axis=(2, 3))
            sums[2:2 + C] += torch.from_numpy(d.sum(0))
            sums[2 + C] += float(d[pos].sum())
            sums[3 + C] += float(pos.sum())
        else:
            counts = [(pred & truth).sum(0), (pred & ~truth).sum(0), (~pred & truth).sum(0)]
            sums[2:2 + 3 * C] += torch.from_numpy(np.concatenate(counts).astype(np.float64))
            p_any, t_any = pred.any(1), truth.any(1)
            sums[2 + 3 * C:] += torch.tensor([(p_any & t_any).sum(), (p_any & ~t_any).sum(),
                                              (~p_any & t_any).sum()], dtype=torch.float64)
    s = distributed.sum_over_ranks(sums, ranks).numpy()
    n = max(s[1], 1.0)
    out = {"loss": float(s[0] / n)}
    if segmenter:
        out["kaggle_dice"] = float(s[2:2 + C].sum() / (n * C))
        out["dice_pos"] = float(s[2 + C] / s[3 + C]) if s[3 + C] else float("nan")
        out.update({f"dice_class_{c + 1}": float(s[2 + c] / n) for c in range(C)})
    else:
        tp, fp, fn = s[2:2 + C], s[2 + C:2 + 2 * C], s[2 + 2 * C:2 + 3 * C]
        f1 = f1_score(tp, fp, fn)
        out["macro_f1"] = float(f1.mean())
        out["any_f1"] = float(f1_score(*s[2 + 3 * C:])[()])
        out.update({f"f1_class_{c + 1}": float(f1[c]) for c in range(C)})
    return out


def f1_score(tp, fp, fn) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn); 1.0 where there is nothing to find and nothing was found."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 1.0)


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


def default_threads(processes: int) -> int:
    """Threads per process when not set: OMP_NUM_THREADS if the environment sets it (e.g. a
    test runner that already runs one process per core), else the cores shared evenly."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // processes)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("CUDA requested but no GPU is available", field="device")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise ConfigError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)", field="device")
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16 / AMX), where autocast pays off."""
    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
            return not flags or any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    except (AttributeError, RuntimeError):
        pass
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    if device.type == "cuda":
        if name == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return name
    if name == "fp16":
        raise ConfigError("fp16 training needs a GPU; use bf16 or fp32 on the CPU", field="precision")
    if name == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def run_config(cfg: TrainConfig, spec: dict, data: KaggleDataset, val_data: KaggleDataset, skipped: list[str],
               data_dir: Path, device: torch.device, precision: str, ranks: distributed.Ranks) -> dict:
    """config.json: what load_run needs (kind, model, classes) plus every training setting."""
    return {"kind": cfg.kind, "model": spec, "num_classes": data.num_classes, "class_names": data.class_names,
            "train": cfg.to_dict(),
            "data": {"root": str(Path(data_dir).resolve()), "val_ids": [r.image_id for r in val_data],
                     "skipped_unreadable": skipped, "num_images": len(data)},
            "run": {"device": str(device), "precision": precision, "world_size": ranks.world,
                    "steelscan": __version__, "torch": torch.__version__,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
