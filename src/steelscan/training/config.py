"""Every training default lives here, in `TrainConfig` (a pydantic model).

Order of precedence (later wins): the field defaults -> the per-kind defaults in
`KIND_DEFAULTS` -> a YAML file (`--config`) -> command-line flags. Pydantic checks each
value's type, range and choices; a bad one raises ConfigError naming the field and where
the value came from (the YAML file or the command line). A run's config.json keeps
`to_dict()` under "train"; `from_dict` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import ConfigError, config_error

Kind = Literal["classifier", "segmenter"]
KINDS: tuple[str, ...] = get_args(Kind)
CLASSIFIER_BACKBONES = ("resnet18", "resnet34", "resnet50", "efficientnet_lite0")
SEGMENTER_ARCHS = ("resunet", "smp_unet")
SMP_ENCODERS = ("efficientnet_lite0", "resnet34", "resnet18", "resnet50")

Positive = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]


class TrainConfig(BaseModel):
    """All settings of one training run. Sizes are pixels in (height, width) order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind = "segmenter"
    # model
    arch: Literal["resunet", "smp_unet"] = Field("resunet", description="segmenter architecture")
    backbone: Name = Field("resnet18", description="classifier: resnet18 | resnet34 | resnet50 | "
                           "efficientnet_lite0; smp_unet: its encoder")
    base_width: Positive = Field(16, description="ResUNet channels of the first block")
    decoder_channels: tuple[Positive, Positive, Positive, Positive, Positive] = Field(
        (256, 128, 64, 32, 16), description="smp_unet: channels of the 5 decoder stages, e.g. 128,64,32,16,8 "
        "(a narrow decoder halves a CPU training step)")
    input_scale: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="classifier: resize images by this factor inside the model (0.5 = quarter cost)")
    weights: Name = Field("none", description="pretrained weights: imagenet | none | PATH (.safetensors/.pth)")
    strategy: Literal["freeze", "finetune"] = Field("finetune", description="classifier: train the head only, "
                                                    "or everything")
    warmup_frozen_epochs: Count = Field(0, description="finetune: train the head alone for the first N epochs")
    backbone_lr_scale: NonNegative = Field(1.0, description="classifier: lr multiplier of the non-head parameters")
    # schedule
    epochs: Positive = Field(30, description="epochs to train")
    batch_size: Positive = Field(8, description="images per step and process")
    lr: Annotated[float, Field(gt=0)] = Field(1e-3, description="peak learning rate (AdamW)")
    weight_decay: NonNegative = Field(1e-4, description="AdamW weight decay (not on biases and norms)")
    warmup_epochs: NonNegative = Field(1.0, description="linear warm-up length in epochs, then cosine decay "
                                       "(per step)")
    min_lr_ratio: NonNegative = Field(0.01, description="cosine floor as a fraction of lr")
    clip_grad_norm: NonNegative = Field(0.0, description="clip the gradient norm to this (0 = no clipping)")
    max_steps_per_epoch: Count = Field(0, description="cap steps per epoch, for quick runs (0 = whole epoch)")
    patience: Count = Field(10, description="early stop after N epochs without a better score (0 = never)")
    # data
    crop: tuple[Positive, Positive] | None = Field((256, 400), description="training crop HxW, e.g. 256x400, "
                                                   "or full")
    defect_crop_prob: Probability = Field(0.6, description="share of crops centred on a defect pixel")
    hflip: Probability = Field(0.5, description="probability of a horizontal flip")
    vflip: Probability = Field(0.5, description="probability of a vertical flip")
    brightness: NonNegative = Field(0.1, description="+- additive brightness, on the 0..1 scale")
    contrast: NonNegative = Field(0.1, description="+- relative contrast")
    shift: Count = Field(8, description="+- pixels of translation (edge-replicated)")
    balance: bool = Field(True, description="class-balanced sampling (weights from class presence)")
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(0.15, description="share of the images held out "
                                                              "for validation")
    # loss
    dice_weight: NonNegative = Field(1.0, description="segmenter: loss = BCE + dice_weight * soft Dice")
    max_pos_weight: NonNegative = Field(10.0, description="clip of the per-class BCE positive weights")
    threshold: Probability = Field(0.5, description="probability threshold of the validation metrics")
    val_every: Positive = Field(1, description="validate every N epochs and after the last; best.safetensors "
                                "is chosen among the validated epochs (saves time on short schedules)")
    monitor: Literal["auto", "loss", "macro_f1", "any_f1", "kaggle_dice", "dice_pos"] = Field(
        "auto", description="validation score that picks best.safetensors and early-stops: auto = macro_f1 "
        "(classifier) / kaggle_dice (segmenter); loss = lowest validation loss (threshold-free, steadier on "
        "short schedules)")
    # machine
    device: Name = Field("auto", description="auto | cpu | cuda | cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="autocast dtype "
                                                               "(fp16: CUDA only)")
    channels_last: bool = Field(True, description="channels-last memory layout")
    workers: Count = Field(2, description="DataLoader worker processes (persistent)")
    threads: Count = Field(0, description="torch CPU threads per process (0 = cores / processes)")
    seed: Count = Field(0, description="seed of the split, the initial weights and the augmentation")

    @field_validator("*", mode="before")
    @classmethod
    def _true_false_is_not_a_number(cls, value: Any, info) -> Any:
        # pydantic would read `epochs: true` as 1; a yes/no answer to a number is a mistake
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation is not bool:
            raise PydanticCustomError("bool_not_number", "expected a number or a name, not true/false")
        return value

    @field_validator("decoder_channels", mode="before")
    @classmethod
    def _parse_channels(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",")] if isinstance(value, str) else value

    @field_validator("crop", mode="before")
    @classmethod
    def _parse_crop(cls, value: Any) -> tuple[int, int] | None:
        return parse_crop(value)

    @model_validator(mode="after")
    def _settings_fit_together(self) -> "TrainConfig":
        """Cross-field checks that one value alone cannot tell."""
        def bad(field: str, message: str) -> PydanticCustomError:
            return PydanticCustomError("combination", message, {"field": field})

        if self.kind == "classifier" and self.backbone not in CLASSIFIER_BACKBONES:
            raise bad("backbone", f"classifier backbone {self.backbone!r} is not one of "
                                  f"{', '.join(CLASSIFIER_BACKBONES)}")
        if self.kind == "segmenter" and self.arch == "smp_unet" and self.backbone not in SMP_ENCODERS:
            raise bad("backbone", f"smp_unet encoder {self.backbone!r} is not one of {', '.join(SMP_ENCODERS)}")
        if self.monitor in (("kaggle_dice", "dice_pos") if self.kind == "classifier" else ("macro_f1", "any_f1")):
            raise bad("monitor", f"{self.monitor} is not a {self.kind} score")
        if self.strategy == "freeze" and self.weights == "none":
            raise bad("strategy", "strategy 'freeze' trains only the head, which needs pretrained weights "
                                  "(--weights imagenet or PATH)")
        return self

    @classmethod
    def defaults(cls, kind: str) -> "TrainConfig":
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
        return cls(**{**KIND_DEFAULTS[kind], "kind": kind})

    def updated(self, changes: dict[str, Any], *, where: Path | str | None = None) -> "TrainConfig":
        """A checked copy with `changes` applied (ConfigError naming `where` and the field)."""
        return validate({**self.model_dump(), **changes}, lambda field: where if field in changes else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings, in field order (crop as [H, W] or None)."""
        return self.model_dump(mode="json")

    def model_spec(self, num_classes: int) -> dict[str, Any]:
        """The `build_model` spec of this run (see steelscan.models)."""
        if self.kind == "classifier":
            return {"kind": "classifier", "arch": self.backbone, "num_classes": num_classes,
                    "in_channels": 3, "weights": self.weights, "input_scale": self.input_scale}
        if self.arch == "resunet":
            return {"kind": "segmenter", "arch": "resunet", "num_classes": num_classes,
                    "in_channels": 3, "base_width": self.base_width}
        return {"kind": "segmenter", "arch": "smp_unet", "encoder": self.backbone,
                "num_classes": num_classes, "in_channels": 3, "weights": self.weights,
                "decoder_channels": list(self.decoder_channels)}

    @property
    def monitor_key(self) -> str:
        """The validation score early stopping and `best.safetensors` follow (`loss`: lower is
        better, every other: higher is better)."""
        if self.monitor == "auto":
            return "macro_f1" if self.kind == "classifier" else "kaggle_dice"
        return self.monitor


# Where the two kinds differ. Anything not named here comes from the field defaults.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 20, "batch_size": 16, "lr": 3e-4, "crop": None, "shift": 16},
    "segmenter": {"backbone": "efficientnet_lite0"},
}


def parse_crop(value: Any) -> tuple[int, int] | None:
    """'256x400' | [256, 400] | 'full' | None -> (256, 400) or None (full image); ValueError otherwise."""
    if value is None or (isinstance(value, str) and value.lower() in ("full", "none", "")):
        return None
    parts: list[Any] = []
    if isinstance(value, str):
        parts = value.lower().replace("*", "x").split("x")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    if len(parts) == 2 and all(isinstance(p, str) and p.strip().isdigit() or type(p) is int for p in parts):
        h, w = (int(p) for p in parts)
        if h > 0 and w > 0:
            return h, w
    raise ValueError(f"{value!r} is not HxW (e.g. 256x400) or 'full'")


def setting_text(value: Any) -> str:
    """A setting as one types it on the command line: 256x400, full, true, 0.001, resnet18."""
    if value is None:
        return "full"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def validate(values: dict[str, Any], where: Callable[[str], Path | str | None]) -> TrainConfig:
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as e:
        raise config_error(e, where, known=TrainConfig.model_fields) from None


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
    return {str(k): v for k, v in data.items()}


def load_config(kind: str, yaml_path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults for `kind`, then the YAML file, then `overrides` (None values are ignored)."""
    base = TrainConfig.defaults(kind).model_dump()
    from_file = read_yaml(yaml_path) if yaml_path is not None else {}
    if from_file.get("kind", kind) != kind:
        raise ConfigError(f"file is for a {from_file['kind']}, not a {kind}", path=yaml_path, field="kind")
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}

    def where(field: str) -> Path | str | None:
        return "command line" if field in flags else yaml_path if field in from_file else None

    return validate({**base, **from_file, **flags}, where)


def from_dict(d: dict[str, Any], *, where: Path | str | None = None) -> TrainConfig:
    """Rebuild a TrainConfig from its `to_dict()` (a run's config.json "train" section);
    settings added since the run was written take the kind's defaults."""
    if not isinstance(d, dict):
        raise ConfigError("expected a mapping of setting: value", path=where, field="train")
    kind = d.get("kind", "segmenter")
    kind_defaults = KIND_DEFAULTS[kind] if kind in KINDS else {}  # a bad kind: pydantic names it
    return validate({**kind_defaults, **d}, lambda field: where)


__all__ = ["TrainConfig", "KIND_DEFAULTS", "load_config", "from_dict", "parse_crop", "setting_text",
           "config_error"]
