"""Resume state of a run: RUN_DIR/state/{state.json, epoch-NNNN.safetensors}.

The safetensors file holds the tensors (model "model.*", optimizer "optimizer.*", torch RNG
"rng.*"); state.json holds the rest (epoch, step, scheduler, best score, early-stopping
counter, history, python/numpy RNG states, GradScaler) and names the tensor file. The tensor
file is written first under a new name, then state.json atomically: a kill at any moment
leaves a consistent pair. Never pickle."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path, write_json
from ..errors import ModelError

STATE_DIR = "state"
STATE_FILE = "state.json"


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON-able python/numpy RNG states, torch RNG tensors)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {"python": [version, list(mt), gauss],
             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return plain, tensors


def set_rng_state(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, mt, gauss = plain["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Split an optimizer state dict into JSON (param groups, scalars) and tensors."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, slots in sd["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return {"param_groups": sd["param_groups"], "scalars": scalars}, tensors


def load_optimizer(opt: torch.optim.Optimizer, plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, slots in plain["scalars"].items():
        state.setdefault(int(pid), {}).update(slots)
    opt.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_state(run_dir: Path, epoch: int, model_state: dict[str, torch.Tensor],
               opt: torch.optim.Optimizer, info: dict[str, Any]) -> Path:
    """Write the resume state after `epoch` (1-based, completed). `info`: everything JSON."""
    from safetensors.torch import save_file

    folder = Path(run_dir) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    opt_plain, opt_tensors = optimizer_tensors(opt)
    rng_plain, rng_tensors = rng_state()
    tensors = {**{f"model.{k}": v for k, v in model_state.items()}, **opt_tensors, **rng_tensors}
    name = f"epoch-{epoch:04d}.safetensors"
    with atomic_path(folder / name) as tmp:
        save_file(tensors, str(tmp))
    write_json(folder / STATE_FILE, {**info, "epoch": epoch, "tensors": name,
                                     "optimizer": opt_plain, "rng": rng_plain})
    for old in folder.glob("epoch-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return folder / STATE_FILE


def read_state(run_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(state.json dict, tensors) of the last completed epoch, or None if there is none yet."""
    from safetensors.torch import load_file

    path = Path(run_dir) / STATE_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        tensors = load_file(str(path.parent / info["tensors"]))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"resume state is unreadable ({e.__class__.__name__}: {e})", path=path) from None
    return info, tensors


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
