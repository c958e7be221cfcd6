"""What every steelscan model does to its input before the network proper.

Models take float images in 0..1, shape (N, C, H, W). Normalisation with ImageNet
statistics happens inside the model (as buffers), so callers never need to know the
statistics, and an ONNX export carries them too. Networks that down-sample by a fixed
stride pad the input up to a multiple of it and crop the logits back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetNormalize(nn.Module):
    """(x - mean) / std per channel, x in 0..1, shape (N, C, H, W).

    For 3 channels the ImageNet RGB statistics; for any other channel count every
    channel uses the mean of the RGB statistics (a grey image is the RGB mean)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels == 3:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            mean = (sum(IMAGENET_MEAN) / 3,) * in_channels
            std = (sum(IMAGENET_STD) / 3,) * in_channels
        # Not persistent: derived from the spec, so checkpoints hold only learnt weights.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def pad_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Zero-pad (N, C, H, W) at the bottom/right so H and W are multiples of `stride`.

    Call it after normalisation, so the padding equals the mean grey. The pad sizes
    are computed from the (possibly symbolic) shape, which keeps ONNX export dynamic."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (stride - h % stride) % stride
    pad_w = (stride - w % stride) % stride
    return F.pad(x, (0, pad_w, 0, pad_h))


def crop_to(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop (N, C, H', W') to the height and width of `like` (top-left aligned)."""
    return y[..., : like.shape[-2], : like.shape[-1]]
