"""Runners: the one interface inference needs from a model.

A Runner is any callable `runner(batch) -> probabilities` where `batch` is a float32
numpy array (N, 3, H, W) of RGB values in 0..1 and the result is float32 numpy,
sigmoid already applied: a classifier gives (N, C), a segmenter (N, C, H, W).
Runners also expose `num_classes`, `in_channels` and `kind` so the cascade can check
that a classifier, a segmenter and a thresholds file belong together before any work.
`TorchRunner` wraps a torch module; `steelscan.runtime.onnx_runner.OnnxRunner` wraps an
ONNX session with the same protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ModelError


class Runner(Protocol):
    kind: str  # "classifier" | "segmenter"
    num_classes: int
    in_channels: int

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def to_model_channels(batch: np.ndarray, in_channels: int) -> np.ndarray:
    """(N, 3, H, W) RGB -> (N, in_channels, H, W): grey (the RGB mean) for 1 channel."""
    if in_channels == batch.shape[1]:
        return batch
    if in_channels == 1:
        return batch.mean(axis=1, keepdims=True, dtype=np.float32)
    raise ModelError(f"cannot feed 3-channel images to a model with {in_channels} input channels")


class TorchRunner:
    """Run a steelscan torch model (logits out) and return sigmoid probabilities as numpy.

    precision "bf16" autocasts on the device (CPU or CUDA); channels_last may help
    convolutions on recent CPUs and GPUs."""

    def __init__(self, model, device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 *, kind: str | None = None, num_classes: int | None = None,
                 in_channels: int | None = None) -> None:
        import torch

        if precision not in ("fp32", "bf16"):
            raise ModelError(f"precision must be fp32 or bf16, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("--device cuda asked for, but no CUDA device is available")
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = channels_last
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.kind = kind or getattr(model, "kind", "segmenter")
        self.num_classes = int(num_classes if num_classes is not None else getattr(model, "num_classes", 0))
        self.in_channels = int(in_channels if in_channels is not None else getattr(model, "in_channels", 3))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(to_model_channels(batch, self.in_channels), dtype=np.float32))
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    logits = self.model(x)
            else:
                logits = self.model(x)
            return torch.sigmoid(logits.float()).cpu().numpy()


def run_config(run_dir: str | Path) -> dict:
    """The run's config.json, read without loading weights (for checks and val ids)."""
    from ..models.checkpoint import read_run_config

    return read_run_config(run_dir)


def runner_from_run(run_dir: str | Path, expected_kind: str, device: str = "cpu", precision: str = "fp32",
                    which: str = "best") -> tuple[TorchRunner, dict]:
    """Load RUN_DIR's weights (steelscan.models.load_run) into a TorchRunner; check its kind."""
    from ..models import load_run

    config = run_config(run_dir)
    kind = config.get("kind") or config.get("model", {}).get("kind")
    if kind != expected_kind:
        raise ModelError(f"expected a {expected_kind} run, this one is a {kind!r}", path=run_dir)
    weights = Path(run_dir) / f"{which}.safetensors"
    if not weights.is_file() and which == "best" and (Path(run_dir) / "last.safetensors").is_file():
        which = "last"  # an interrupted run may hold only its last weights
    model, config = load_run(run_dir, which=which, device=device)
    spec = config.get("model", {})
    runner = TorchRunner(model, device=device, precision=precision, kind=expected_kind,
                         num_classes=int(config.get("num_classes", spec.get("num_classes", 0))),
                         in_channels=int(spec.get("in_channels", 3)))
    return runner, config


FLIPS = ("hflip", "vflip")


class FlipTTA:
    """Test-time augmentation around any Runner: the mean of its probabilities on the batch
    and on its horizontal / vertical mirror images (segmenter maps are mirrored back first).
    Costs one extra model call per flip; defects have no preferred direction on strip, so
    the average is a better estimate than any single view."""

    def __init__(self, runner: Runner, flips: tuple[str, ...] = FLIPS) -> None:
        unknown = [f for f in flips if f not in FLIPS]
        if unknown:
            raise ModelError(f"unknown test-time flip {unknown[0]!r} (choose from {', '.join(FLIPS)})",
                             field="tta")
        self.runner = runner
        self.flips = tuple(flips)

    def __getattr__(self, name: str):
        # kind / num_classes / in_channels and the like are the wrapped runner's
        if name == "runner":
            raise AttributeError(name)
        return getattr(self.runner, name)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        total = self.runner(batch).astype(np.float32, copy=True)
        for flip in self.flips:
            axis = -1 if flip == "hflip" else -2
            out = self.runner(np.ascontiguousarray(np.flip(batch, axis=axis)))
            total += np.flip(out, axis=axis) if out.ndim == 4 else out
        return total / (1 + len(self.flips))


def with_tta(runner: Runner | None, tta: bool) -> Runner | None:
    """`runner` wrapped in FlipTTA when `tta`, as it is otherwise (None stays None)."""
    return FlipTTA(runner) if (tta and runner is not None) else runner
