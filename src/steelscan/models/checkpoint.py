"""Model weights on disk: safetensors files (never pickle), written atomically.

A run folder (written by the trainer) holds config.json with the model spec and
{best,last}.safetensors with the weights; load_run() rebuilds the model from both."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from steelscan.atomic import atomic_path
from steelscan.errors import ModelError
from steelscan.models.pretrained import StateDict, check_fits, read_state_dict

WEIGHT_NAMES = ("best", "last")


def state_for_saving(model: nn.Module) -> StateDict:
    """The model's state dict as contiguous CPU tensors, shared storage un-shared
    (safetensors refuses tensors that alias each other)."""
    seen: set[int] = set()
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        state[key] = tensor
    return state


def save_weights(path: str | Path, model: nn.Module) -> Path:
    """Write the model's weights to `path` (.safetensors) atomically."""
    from safetensors.torch import save_file
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state_for_saving(model), str(tmp))
    return path


def save_run_weights(run_dir: str | Path, model: nn.Module, which: str = "best") -> Path:
    """Write RUN_DIR/{which}.safetensors atomically; `which` is "best" or "last"."""
    if which not in WEIGHT_NAMES:
        raise ModelError(f"weights name must be one of {WEIGHT_NAMES}, got {which!r}", field="which")
    return save_weights(Path(run_dir) / f"{which}.safetensors", model)


def load_state(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a steelscan .safetensors file into `model` (exact keys and shapes, else a
    one-line ModelError). Returns the model."""
    state = read_state_dict(path)
    check_fits(model, state, source=path)
    model.load_state_dict(state, strict=True)
    return model


def read_run_config(run_dir: str | Path) -> dict:
    """RUN_DIR/config.json as a dict holding at least a "model" spec. Raises ModelError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelError("run folder not found", path=run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ModelError("run folder has no config.json", path=run_dir)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read config ({' '.join(str(exc).split())})",
                         path=config_path) from exc
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ModelError("config has no model spec", path=config_path, field="model")
    return config


def load_run(run_dir: str | Path, which: str = "best",
             device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a trained model from RUN_DIR/config.json and RUN_DIR/{which}.safetensors.

    Returns (model in eval mode on `device`, config dict). Pretrained weights named in
    the spec are not fetched: the run's own weights replace them."""
    from steelscan.models import build_model
    config = read_run_config(run_dir)
    weights = Path(run_dir) / f"{which}.safetensors"
    if not weights.is_file():
        raise ModelError(f"run folder has no {which}.safetensors", path=run_dir)
    try:
        model = build_model({**config["model"], "weights": "none"})
    except ModelError as exc:
        raise ModelError(exc.message, path=Path(run_dir) / "config.json",
                         field=f"model.{exc.field}" if exc.field else "model") from exc
    load_state(model, weights)
    return model.to(device).eval(), config
