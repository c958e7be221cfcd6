"""Training: config (the one home of defaults), datasets and augmentation, losses, the loop.

    from steelscan.training import load_config, train, resume
    cfg = load_config("segmenter", "configs/severstal_segmenter.yaml", {"epochs": 5})
    summary = train(cfg, "data/severstal", "runs/seg1")

Hooks into the loop: subclass `Callback` and pass `callbacks=[...]` to `train` or `resume`.
"""

from .callbacks import Callback, RunState
from .config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config", "train", "resume", "Callback", "RunState"]


def __getattr__(name: str):
    # the loop (and torch) load on first use: `steelscan --help` reads TrainConfig without them
    if name in ("train", "resume"):
        from . import trainer
        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
