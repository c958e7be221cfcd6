"""Training: config (the one home of defaults), datasets and augmentation, losses, the loop.

    from steelscan.training import load_config, train, resume
    cfg = load_config("segmenter", "configs/severstal_segmenter.yaml", {"epochs": 5})
    summary = train(cfg, "data/severstal", "runs/seg1")
"""

from .config import TrainConfig, load_config
from .trainer import resume, train

__all__ = ["TrainConfig", "load_config", "train", "resume"]
