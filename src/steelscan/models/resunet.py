"""ResUNet: a U-Net whose blocks are residual, for per-pixel defect logits.

Layout for base width w (w=16 by default), input (N, C_in, H, W):

    stem        3x3 conv + ReLU + BN                    w    @ H
    enc1..enc3  residual block, then 2x2 max pool       2w, 4w, 8w  (skips @ H, H/2, H/4)
    bottleneck  residual block @ H/8 (16w), 2x2 transposed conv -> 8w @ H/4
    dec1        concat enc3 (8w+8w), residual -> 8w, 2x2 transposed conv -> 4w @ H/2
    dec2        concat enc2 (4w+4w), residual -> 4w, 2x2 transposed conv -> 2w @ H
    dec3        concat enc1 (2w+2w), residual -> 2w  (already at H: no up-sampling)
    head        residual block -> w, 1x1 conv -> num_classes logits @ H

Three poolings make the network's stride 8: the input is padded to multiples of 8
inside forward() and the logits are cropped back, so any H, W works."""

from __future__ import annotations

import torch
from torch import nn

from steelscan.models.image_input import ImageNetNormalize, crop_to, pad_to_stride


class ResidualBlock(nn.Module):
    """Two 3x3 conv+BN (ReLU between and after the sum) with an identity shortcut,
    or a 1x1 conv+BN projection when the channel count changes. Keeps H, W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


def up_sampling(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """2x2 transposed convolution with stride 2: (N, in, H, W) -> (N, out, 2H, 2W)."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)


class DecoderBlock(nn.Module):
    """Concatenate the up-sampled features with the matching encoder features
    (channels add up), run a residual block, then optionally up-sample x2."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 up_channels: int | None) -> None:
        super().__init__()
        self.residual = ResidualBlock(in_channels + skip_channels, out_channels)
        self.up = up_sampling(out_channels, up_channels) if up_channels else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.up(self.residual(torch.cat([x, skip], dim=1)))


class ResUNet(nn.Module):
    """Residual U-Net. forward: (N, in_channels, H, W) floats in 0..1 ->
    (N, num_classes, H, W) logits, for any H, W >= 1."""

    stride = 8

    def __init__(self, in_channels: int = 3, num_classes: int = 4, base_width: int = 16) -> None:
        super().__init__()
        w = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.normalize = ImageNetNormalize(in_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(w))
        self.encoders = nn.ModuleList(
            [ResidualBlock(w, 2 * w), ResidualBlock(2 * w, 4 * w), ResidualBlock(4 * w, 8 * w)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = nn.Sequential(ResidualBlock(8 * w, 16 * w), up_sampling(16 * w, 8 * w))
        self.decoders = nn.ModuleList([
            DecoderBlock(8 * w, 8 * w, 8 * w, up_channels=4 * w),
            DecoderBlock(4 * w, 4 * w, 4 * w, up_channels=2 * w),
            DecoderBlock(2 * w, 2 * w, 2 * w, up_channels=None),
        ])
        self.head = nn.Sequential(ResidualBlock(2 * w, w), nn.Conv2d(w, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = pad_to_stride(self.normalize(x), self.stride)
        y = self.stem(y)
        skips = []
        for encoder in self.encoders:
            y = encoder(y)
            skips.append(y)
            y = self.pool(y)
        y = self.bottleneck(y)
        for decoder, skip in zip(self.decoders, reversed(skips)):
            y = decoder(y, skip)
        return crop_to(self.head(y), x)
