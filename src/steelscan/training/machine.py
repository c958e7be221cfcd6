"""Where the tensors of a run live: device, precision, memory layout, threads, seeds.

`Machine` bundles the resolved choices of one process so the loop can say
`machine.autocast()` and `machine.inputs(batch)` instead of repeating them."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

import numpy as np
import torch

from ..errors import ConfigError
from . import distributed


@dataclass(frozen=True)
class Machine:
    """device: where tensors live; precision: fp32 | bf16 | fp16 (autocast dtype);
    memory_format: channels_last or contiguous for image batches; ranks: this process."""

    device: torch.device
    precision: str
    memory_format: torch.memory_format
    ranks: distributed.Ranks

    @classmethod
    def set_up(cls, device: str, precision: str, channels_last: bool, threads: int,
               ranks: distributed.Ranks) -> "Machine":
        """Resolve 'auto' choices and set this process's torch CPU threads (0 = share the cores)."""
        torch_device = resolve_device(device, ranks.local_rank)
        torch.set_num_threads(threads or default_threads(ranks.local_world))
        return cls(torch_device, resolve_precision(precision, torch_device),
                   torch.channels_last if channels_last else torch.contiguous_format, ranks)

    def autocast(self) -> ContextManager[Any]:
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def inputs(self, images: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        """(N, C, H, W) images on the device, in the run's memory layout."""
        return images.to(self.device, non_blocking=non_blocking).contiguous(memory_format=self.memory_format)

    def describe(self) -> str:
        layout = " channels-last" if self.memory_format == torch.channels_last else ""
        return f"{self.device} {self.precision}{layout}"


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
