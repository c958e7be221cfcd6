"""Every training default lives here, in `TrainConfig`.

Order of precedence (later wins): the dataclass defaults -> the per-kind defaults
in `KIND_DEFAULTS` -> a YAML file (`--config`) -> command-line flags. A YAML key
that is not a field, or a value of the wrong type or outside its choices, raises
ConfigError naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

KINDS = ("classifier", "segmenter")
CLASSIFIER_BACKBONES = ("resnet18", "resnet34", "resnet50", "efficientnet_lite0")
SEGMENTER_ARCHS = ("resunet", "smp_unet")
SMP_ENCODERS = ("efficientnet_lite0", "resnet34", "resnet18", "resnet50")


@dataclass
class TrainConfig:
    """All settings of one training run. Sizes are pixels in (height, width) order."""

    kind: str = "segmenter"
    # model
    arch: str = "resunet"            # segmenter: resunet | smp_unet (classifier: unused)
    backbone: str = "resnet18"       # classifier arch, or the smp_unet encoder
    base_width: int = 16             # ResUNet channels of the first block
    input_scale: float = 1.0         # classifier: resize factor applied inside the model (0.5 = quarter cost)
    weights: str = "none"            # imagenet | none | PATH (.safetensors/.pth)
    strategy: str = "finetune"       # classifier: freeze (head only) | finetune (all)
    warmup_frozen_epochs: int = 0    # finetune: train the head alone for the first N epochs
    backbone_lr_scale: float = 1.0   # classifier: lr multiplier of the non-head parameters
    # schedule
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0       # linear warm-up length, then cosine decay (per step)
    min_lr_ratio: float = 0.01       # cosine floor as a fraction of lr
    clip_grad_norm: float = 0.0      # 0 = no clipping
    max_steps_per_epoch: int = 0     # 0 = the whole epoch; >0 caps it (quick runs)
    patience: int = 10               # early stop after N epochs without a better score
    # data
    crop: tuple[int, int] | None = (256, 400)   # training crop (H, W); None = full image
    defect_crop_prob: float = 0.6    # share of crops centred on a defect pixel
    hflip: float = 0.5               # probabilities of a horizontal / vertical flip
    vflip: float = 0.5
    brightness: float = 0.1          # +- additive, on the 0..1 scale
    contrast: float = 0.1            # +- relative
    shift: int = 8                   # +- pixels of translation (edge-replicated)
    balance: bool = True             # class-balanced sampling (weights from class presence)
    val_fraction: float = 0.15
    # loss
    dice_weight: float = 1.0         # segmenter: loss = BCE + dice_weight * soft Dice
    max_pos_weight: float = 10.0     # clip of the per-class BCE positive weights
    threshold: float = 0.5           # probability threshold for validation metrics
    # machine
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    precision: str = "auto"          # auto | fp32 | bf16 | fp16 (fp16: CUDA only)
    channels_last: bool = True
    workers: int = 2                 # DataLoader worker processes (persistent)
    threads: int = 0                 # torch CPU threads per process; 0 = cores / processes
    seed: int = 0

    @classmethod
    def defaults(cls, kind: str) -> "TrainConfig":
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
        return cls(**{**KIND_DEFAULTS[kind], "kind": kind})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop"] = list(self.crop) if self.crop else None
        return d

    def model_spec(self, num_classes: int) -> dict[str, Any]:
        """The `build_model` spec of this run (see steelscan.models)."""
        if self.kind == "classifier":
            return {"kind": "classifier", "arch": self.backbone, "num_classes": num_classes,
                    "in_channels": 3, "weights": self.weights, "input_scale": self.input_scale}
        if self.arch == "resunet":
            return {"kind": "segmenter", "arch": "resunet", "num_classes": num_classes,
                    "in_channels": 3, "base_width": self.base_width}
        return {"kind": "segmenter", "arch": "smp_unet", "encoder": self.backbone,
                "num_classes": num_classes, "in_channels": 3, "weights": self.weights}

    @property
    def monitor(self) -> str:
        """The validation score early stopping and `best.safetensors` follow (higher is better)."""
        return "macro_f1" if self.kind == "classifier" else "kaggle_dice"


# Where the two kinds differ. Anything not named here comes from the dataclass.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 20, "batch_size": 16, "lr": 3e-4, "crop": None, "shift": 16},
    "segmenter": {"backbone": "efficientnet_lite0"},
}

CHOICES: dict[str, tuple[str, ...]] = {
    "kind": KINDS,
    "arch": SEGMENTER_ARCHS,
    "strategy": ("freeze", "finetune"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
}
POSITIVE = {"epochs", "batch_size", "lr", "base_width"}
NON_NEGATIVE = {"weight_decay", "warmup_epochs", "min_lr_ratio", "clip_grad_norm", "max_steps_per_epoch",
                "patience", "warmup_frozen_epochs", "backbone_lr_scale", "brightness", "contrast", "shift",
                "max_pos_weight", "dice_weight", "workers", "threads", "seed"}
PROBABILITIES = {"defect_crop_prob", "hflip", "vflip", "threshold"}
FRACTIONS = {"input_scale"}  # within (0, 1]

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def parse_crop(value: Any, *, where: Path | str | None = None) -> tuple[int, int] | None:
    """'256x400' | [256, 400] | 'full' | None -> (256, 400) or None (full image)."""
    if value is None or (isinstance(value, str) and value.lower() in ("full", "none", "")):
        return None
    parts: list[Any]
    if isinstance(value, str):
        parts = value.lower().replace("*", "x").split("x")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = []
    try:
        h, w = (int(p) for p in parts)
        if h > 0 and w > 0:
            return h, w
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"crop {value!r} is not HxW (e.g. 256x400) or 'full'", path=where, field="crop")


def coerce(key: str, value: Any, *, where: Path | str | None = None) -> Any:
    """Check and convert one setting; ConfigError names `where` and `key` on a bad value."""
    if key not in FIELDS:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(FIELDS))}", path=where, field=key)
    if key == "crop":
        return parse_crop(value, where=where)
    default = getattr(TrainConfig(), key)
    kind = type(default)

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{value!r} {why}", path=where, field=key)

    if kind is bool:
        if isinstance(value, bool):
            out: Any = value
        elif isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            out = value.lower() in ("true", "yes", "1")
        else:
            raise bad("is not true/false")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad("is not an integer")
        try:
            out = int(value)
        except ValueError:
            raise bad("is not an integer") from None
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad("is not a number")
        try:
            out = float(value)
        except ValueError:
            raise bad("is not a number") from None
    else:
        if not isinstance(value, str) or not value:
            raise bad("is not a non-empty string")
        out = value
    if key in CHOICES and out not in CHOICES[key]:
        raise bad(f"is not one of {', '.join(CHOICES[key])}")
    if key in POSITIVE and out <= 0:
        raise bad("must be > 0")
    if key in NON_NEGATIVE and out < 0:
        raise bad("must be >= 0")
    if key in PROBABILITIES and not 0.0 <= out <= 1.0:
        raise bad("must be within 0..1")
    if key in FRACTIONS and not 0.0 < out <= 1.0:
        raise bad("must be within (0, 1]")
    if key == "val_fraction" and not 0.0 < out < 1.0:
        raise bad("must be within (0, 1)")
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"not valid YAML ({getattr(e, 'problem', e)})", path=path,
                          line=mark.line + 1 if mark else None) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of setting: value", path=path)
    return data


def load_config(kind: str, yaml_path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults for `kind`, then the YAML file, then `overrides` (None values are ignored)."""
    cfg = TrainConfig.defaults(kind)
    values: dict[str, Any] = {}
    if yaml_path is not None:
        for key, value in read_yaml(yaml_path).items():
            values[str(key)] = coerce(str(key), value, where=yaml_path)
        if values.get("kind", kind) != kind:
            raise ConfigError(f"file is for a {values['kind']}, not a {kind}", path=yaml_path, field="kind")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = coerce(key, value, where="command line")
    cfg = dataclasses.replace(cfg, **values)
    check(cfg)
    return cfg


def check(cfg: TrainConfig) -> None:
    """Cross-field checks that one value alone cannot tell."""
    if cfg.kind == "classifier" and cfg.backbone not in CLASSIFIER_BACKBONES:
        raise ConfigError(f"classifier backbone {cfg.backbone!r} is not one of "
                          f"{', '.join(CLASSIFIER_BACKBONES)}", field="backbone")
    if cfg.kind == "segmenter" and cfg.arch == "smp_unet" and cfg.backbone not in SMP_ENCODERS:
        raise ConfigError(f"smp_unet encoder {cfg.backbone!r} is not one of {', '.join(SMP_ENCODERS)}",
                          field="backbone")
    if cfg.strategy == "freeze" and cfg.weights == "none":
        raise ConfigError("strategy 'freeze' trains only the head, which needs pretrained weights "
                          "(--weights imagenet or PATH)", field="strategy")


def from_dict(d: dict[str, Any], *, where: Path | str | None = None) -> TrainConfig:
    """Rebuild a TrainConfig from its `to_dict()` (a run's config.json "train" section)."""
    values = {k: coerce(k, v, where=where) for k, v in d.items()}
    return dataclasses.replace(TrainConfig.defaults(values.get("kind", "segmenter")), **values)


__all__ = ["TrainConfig", "KIND_DEFAULTS", "load_config", "from_dict", "parse_crop", "coerce"]
