"""SmpUnet: segmentation-models-pytorch's Unet with steelscan's input contract.

Encoders: "resnet34" (smp's ResNet encoder, torchvision key layout) and
"efficientnet_lite0" (smp's timm-universal encoder `tu-efficientnet_lite0`). ImageNet
weights come from the same offline sources as the classifier (pretrained.py), never
from smp's downloader. Input (N, C_in, H, W) in 0..1, any H, W (padded to the encoder's
stride 32, logits cropped back) -> (N, num_classes, H, W) logits."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from steelscan.errors import ModelError
from steelscan.models.image_input import ImageNetNormalize, crop_to, pad_to_stride
from steelscan.models.pretrained import backbone_state_dict, fit_first_conv, load_backbone

# encoder name -> (smp encoder name, first conv key, keys of the ImageNet model smp drops)
SMP_ENCODERS = {
    "resnet34": ("resnet34", "conv1.weight", ("fc.",)),
    "efficientnet_lite0": ("tu-efficientnet_lite0", "conv_stem.weight",
                           ("classifier.", "conv_head.", "bn2.")),
}


# smp's own default: what models/neu-seg and every run before `decoder_channels` existed were built with.
# A narrow decoder, e.g. (128, 64, 32, 16, 8), halves the cost of a training step on a CPU.
DECODER_CHANNELS = (256, 128, 64, 32, 16)


class SmpUnet(nn.Module):
    stride = 32

    def __init__(self, encoder: str = "resnet34", num_classes: int = 4, in_channels: int = 3,
                 weights: str | Path = "none", decoder_channels: tuple[int, ...] = DECODER_CHANNELS) -> None:
        super().__init__()
        if encoder not in SMP_ENCODERS:
            raise ModelError(f"unknown smp_unet encoder {encoder!r} "
                             f"(choose from {', '.join(SMP_ENCODERS)})", field="encoder")
        import segmentation_models_pytorch as smp
        smp_name, first_conv, head_prefixes = SMP_ENCODERS[encoder]
        self.encoder_name = encoder
        self.num_classes = num_classes
        self.normalize = ImageNetNormalize(in_channels)
        if len(decoder_channels) != 5 or any(int(c) < 1 for c in decoder_channels):
            raise ModelError(f"decoder_channels must be 5 positive integers (one per decoder stage, "
                             f"stride 16 -> 1), got {list(decoder_channels)}", field="decoder_channels")
        self.net = smp.Unet(encoder_name=smp_name, encoder_weights=None, in_channels=in_channels,
                            classes=num_classes, decoder_channels=tuple(int(c) for c in decoder_channels))
        if str(weights) != "none":
            state = fit_first_conv(backbone_state_dict(encoder, weights), first_conv, in_channels)
            load_backbone(self.encoder_module, state, drop_prefixes=head_prefixes, source=weights)

    @property
    def encoder_module(self) -> nn.Module:
        """The module holding the encoder's ImageNet-layout weights."""
        encoder = self.net.encoder
        return encoder.model if hasattr(encoder, "model") else encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in 0..1 -> (N, num_classes, H, W) logits."""
        return crop_to(self.net(pad_to_stride(self.normalize(x), self.stride)), x)
