"""Hooks into the training loop, and the state they see.

Subclass `Callback`, override the hooks you need and pass instances to `train(...,
callbacks=[...])` or `resume(..., callbacks=[...])`. Hooks run in every process of a
data-parallel run (check `run.ranks.is_main` to act once) and may read anything in
`RunState`; changing the model or optimiser changes the run. Uses: extra logging,
custom stopping rules, and the tests' fault injection (tests/train_entry.py).

    class PrintLoss(Callback):
        def on_epoch_end(self, run, row):
            print(run.progress.epoch, row["train_loss"])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # annotations only: importing the hooks does not import torch
    import torch
    from torch import nn

    from .config import TrainConfig
    from .distributed import Ranks


@dataclass
class Progress:
    """Where a run stands; saved with every epoch's resume state.

    epoch: the epoch under way (after it, the last completed one); step: optimiser steps
    taken; best_score / best_epoch: the best validation score so far (higher is better);
    bad_epochs: epochs since it improved; history: one metrics row per completed epoch."""

    epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self, row: dict[str, Any], score: float, patience: int) -> bool:
        """Add an epoch's row and its score; True when the score is a new best."""
        self.history.append(row)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = score, row["epoch"], 0
        else:
            self.bad_epochs += 1
        self.stopped_early = bool(patience) and self.bad_epochs >= patience
        return improved


@dataclass
class RunState:
    """What a callback sees: the run's settings, folder and process, the model being trained
    (not the DDP wrapper), its optimiser and the progress so far."""

    cfg: TrainConfig
    run_dir: Path
    ranks: Ranks
    model: nn.Module
    optimizer: torch.optim.Optimizer
    progress: Progress


class Callback:
    """Base class of training hooks; each does nothing unless overridden."""

    def on_step_end(self, run: RunState) -> None:
        """After each optimiser step (run.progress.step counts them, from 1)."""

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        """After an epoch is validated and saved (its resume state written); `row` is its
        metrics.csv row."""

    def on_fit_end(self, run: RunState) -> None:
        """After the last epoch (or early stop), before the processes part."""


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_step_end(self, run: RunState) -> None:
        for c in self.callbacks:
            c.on_step_end(run)

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(run, row)

    def on_fit_end(self, run: RunState) -> None:
        for c in self.callbacks:
            c.on_fit_end(run)


__all__ = ["Callback", "CallbackList", "Progress", "RunState"]
