"""DefectClassifier: an ImageNet backbone with a new multi-label head.

Input (N, in_channels, H, W) floats in 0..1, any H, W (global average pooling; a
1600x256 strip is fed at full width, never squashed to a square). Output (N, C)
presence logits, one per defect class; "any defect" = the max over classes.

Transfer-learning strategies the trainer uses:
- freeze:   `freeze_backbone()`; only the head learns, and the backbone's batch-norm
            statistics stay as pretrained (the backbone stays in eval mode).
- finetune: everything learns, usually with a smaller learning rate for the
            backbone: `param_groups(lr_backbone, lr_head)`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from steelscan.errors import ModelError
from steelscan.models.image_input import ImageNetNormalize
from steelscan.models.pretrained import (RESNET_ARCHS, backbone_state_dict, fit_first_conv,
                                         load_backbone)

CLASSIFIER_ARCHS = RESNET_ARCHS + ("efficientnet_lite0",)


def build_backbone(arch: str, in_channels: int) -> tuple[nn.Module, int, str, tuple[str, ...]]:
    """A randomly initialised backbone returning pooled features (N, F).

    Returns (module, F, first conv weight key, ImageNet head key prefixes to drop)."""
    if arch in RESNET_ARCHS:
        import torchvision.models as tvm
        net = getattr(tvm, arch)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        features = net.fc.in_features
        net.fc = nn.Identity()
        return net, features, "conv1.weight", ("fc.",)
    if arch == "efficientnet_lite0":
        import timm
        net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0,
                                in_chans=in_channels)
        return net, net.num_features, "conv_stem.weight", ("classifier.",)
    raise ModelError(f"unknown classifier arch {arch!r} (choose from {', '.join(CLASSIFIER_ARCHS)})",
                     field="arch")


class DefectClassifier(nn.Module):
    """Backbone (ResNet-18/34/50 or EfficientNet-Lite0) + linear head of `num_classes`.

    weights: "none" (random), "imagenet" (torchvision's / the offline Lite0 file) or a
    path to a .safetensors/.pth backbone state dict (its ImageNet head is ignored).
    input_scale: the image is resized by this factor (bilinear) before the
    backbone. Presence of a defect rarely needs full resolution: 0.5 costs a quarter of the
    compute, and being part of the model it holds in training, ONNX and every runtime alike."""

    def __init__(self, arch: str = "resnet18", num_classes: int = 4, in_channels: int = 3,
                 weights: str | Path = "none", input_scale: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < float(input_scale) <= 1.0:
            raise ModelError(f"must be within (0, 1], got {input_scale!r}", field="input_scale")
        self.arch = arch
        self.num_classes = num_classes
        self.input_scale = float(input_scale)
        self.normalize = ImageNetNormalize(in_channels)
        self.backbone, features, first_conv, head_prefixes = build_backbone(arch, in_channels)
        self.head = nn.Linear(features, num_classes)
        self.frozen = False
        if str(weights) != "none":
            state = fit_first_conv(backbone_state_dict(arch, weights), first_conv, in_channels)
            load_backbone(self.backbone, state, drop_prefixes=head_prefixes, source=weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in 0..1 -> (N, num_classes) logits."""
        if self.input_scale != 1.0:
            x = F.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False,
                              recompute_scale_factor=False)
        return self.head(self.backbone(self.normalize(x)))

    def freeze_backbone(self) -> None:
        """Stop gradients into the backbone and keep its batch norm in eval mode."""
        self.frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def unfreeze_backbone(self) -> None:
        self.frozen = False
        self.backbone.requires_grad_(True)
        self.backbone.train(self.training)

    def train(self, mode: bool = True) -> "DefectClassifier":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # frozen batch-norm statistics must not drift
        return self

    def param_groups(self, lr_backbone: float, lr_head: float) -> list[dict]:
        """Optimizer parameter groups: the head at `lr_head`, plus the backbone at
        `lr_backbone` unless frozen. Only parameters that require grad are listed."""
        groups = [{"name": "head", "lr": lr_head,
                   "params": [p for p in self.head.parameters() if p.requires_grad]}]
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        if backbone and not self.frozen:
            groups.insert(0, {"name": "backbone", "lr": lr_backbone, "params": backbone})
        return groups
