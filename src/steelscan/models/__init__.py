"""steelscan models: the defect classifier, the ResUNet segmenter, smp's Unet.

Every model takes float32 (N, in_channels, H, W) in 0..1 and returns logits:
classifier (N, C), segmenter (N, C, H, W) at the input's size. Models are built from a
plain spec dict (stored in each run's config.json):

    {"kind": "classifier", "arch": "resnet18", "num_classes": 4, "in_channels": 3, "weights": "imagenet"}
    {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3, "base_width": 16}
    {"kind": "segmenter", "arch": "smp_unet", "encoder": "resnet34", "num_classes": 4,
     "in_channels": 3, "weights": "none", "decoder_channels": [256, 128, 64, 32, 16]}
"""

from __future__ import annotations

from copy import deepcopy

from torch import nn

from steelscan.errors import ModelError
from steelscan.models.checkpoint import load_run, load_state, save_run_weights, save_weights
from steelscan.models.classifier import CLASSIFIER_ARCHS, DefectClassifier
from steelscan.models.resunet import ResUNet
from steelscan.models.smp_unet import DECODER_CHANNELS, SMP_ENCODERS, SmpUnet

__all__ = ["build_model", "model_spec_defaults", "save_run_weights", "save_weights", "load_run",
           "load_state", "count_parameters", "DefectClassifier", "ResUNet", "SmpUnet",
           "CLASSIFIER_ARCHS", "SEGMENTER_ARCHS", "SMP_ENCODERS"]

SEGMENTER_ARCHS = ("resunet", "smp_unet")

# The one source of truth for model defaults: per kind, then per arch on top.
_KIND_DEFAULTS = {
    "classifier": {"kind": "classifier", "arch": "resnet18", "num_classes": 4, "in_channels": 3,
                   "weights": "imagenet", "input_scale": 1.0},
    "segmenter": {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3,
                  "base_width": 16},
}
_ARCH_DEFAULTS = {
    "smp_unet": {"encoder": "resnet34", "weights": "none", "decoder_channels": list(DECODER_CHANNELS)},
}


def model_spec_defaults(kind: str, arch: str | None = None) -> dict:
    """A complete default spec for `kind` ("classifier" | "segmenter"), optionally for a
    given arch (e.g. "smp_unet" adds encoder/weights and drops base_width)."""
    if kind not in _KIND_DEFAULTS:
        raise ModelError(f"unknown model kind {kind!r} (choose classifier or segmenter)", field="kind")
    spec = deepcopy(_KIND_DEFAULTS[kind])
    if arch is not None:
        spec["arch"] = arch
        if arch == "smp_unet":
            spec.pop("base_width", None)
        spec.update(_ARCH_DEFAULTS.get(arch, {}))
    return spec


def _positive_int(spec: dict, key: str) -> int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"must be a positive integer, got {value!r}", field=key)
    return value


def build_model(spec: dict) -> nn.Module:
    """Build the model a spec names (missing keys take model_spec_defaults). Raises
    ModelError (with the offending field) for an unknown kind/arch or bad values."""
    if not isinstance(spec, dict):
        raise ModelError("model spec must be a mapping")
    full = {**model_spec_defaults(spec.get("kind"), spec.get("arch")), **spec}
    arch = full["arch"]
    num_classes = _positive_int(full, "num_classes")
    in_channels = _positive_int(full, "in_channels")
    if full["kind"] == "classifier":
        if arch not in CLASSIFIER_ARCHS:
            raise ModelError(f"unknown classifier arch {arch!r} "
                             f"(choose from {', '.join(CLASSIFIER_ARCHS)})", field="arch")
        return DefectClassifier(arch, num_classes, in_channels, full["weights"], float(full["input_scale"]))
    if arch == "resunet":
        return ResUNet(in_channels, num_classes, _positive_int(full, "base_width"))
    if arch == "smp_unet":
        channels = full["decoder_channels"]
        if not isinstance(channels, (list, tuple)) or not all(isinstance(c, int) and not isinstance(c, bool)
                                                               for c in channels):
            raise ModelError(f"must be a list of integers, got {channels!r}", field="decoder_channels")
        return SmpUnet(full["encoder"], num_classes, in_channels, full["weights"], tuple(channels))
    raise ModelError(f"unknown segmenter arch {arch!r} (choose from {', '.join(SEGMENTER_ARCHS)})",
                     field="arch")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (scalars) in `model`, optionally only those that require grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
