"""How much work a model's forward pass is: FLOPs counted from the torch graph, and the bytes
its operators read and write (an upper bound on memory traffic: no fusion, no cache reuse).

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (convolutions, matmuls; one
multiply-add = 2 FLOPs); element-wise ops, pooling and activations are not counted, which
for convolutional nets is a few percent. Bytes: the sum over every aten op of its tensor
inputs' and outputs' sizes. FLOPs / bytes is the arithmetic intensity a roofline needs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ForwardCost:
    """One forward pass at one input shape. flops: multiply-adds x 2; bytes: operator traffic."""

    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else 0.0


class _ByteCounter(TorchDispatchMode):
    """Adds up the sizes of every aten op's tensor arguments and results."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor):
                self.bytes += t.numel() * t.element_size()
        return out


def forward_cost(model: torch.nn.Module, shape: tuple[int, ...]) -> ForwardCost:
    """FLOPs and operator bytes of `model` (eval mode, no grad) on zeros of `shape`
    (N, C, H, W), float32 on the CPU. Divide by N for a per-image cost."""
    x = torch.zeros(shape, dtype=torch.float32)
    flop_mode, byte_mode = FlopCounterMode(display=False), _ByteCounter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), flop_mode, byte_mode:
            model(x)
    finally:
        model.train(was_training)
    return ForwardCost(int(flop_mode.get_total_flops()), int(byte_mode.bytes))
