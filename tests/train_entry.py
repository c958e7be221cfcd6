"""`steelscan train ...` with fault-injection callbacks, for the subprocess and torchrun tests.

    python tests/train_entry.py [--hang-at-step N] [--rank-digest-dir DIR] segmenter --data D --out R ...
    python -m torch.distributed.run --nproc_per_node=2 tests/train_entry.py --rank-digest-dir DIR segmenter ...

The options before the model kind are this script's; the rest are `steelscan train`'s. The
hooks are ordinary `steelscan.training.Callback`s: the library itself has no test switches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from steelscan.cli import build_parser
from steelscan.cli import train as train_command
from steelscan.errors import SteelscanError
from steelscan.models.checkpoint import state_for_saving
from steelscan.training import Callback, RunState
from steelscan.training.trainer import weights_digest


class HangAtStep(Callback):
    """Stand still after optimiser step `step` (a test then kills the process mid-epoch)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, run: RunState) -> None:
        if run.progress.step == self.step:
            print(f"hanging at step {self.step}", file=sys.stderr, flush=True)
            time.sleep(3600)


class WriteRankDigest(Callback):
    """At the end, each rank writes the sha256 of its weights to FOLDER/rank<R>.txt."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_fit_end(self, run: RunState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{run.ranks.rank}.txt").write_text(weights_digest(state_for_saving(run.model)))


def main(argv: list[str]) -> int:
    own = argparse.ArgumentParser(description=__doc__)
    own.add_argument("--hang-at-step", type=int)
    own.add_argument("--rank-digest-dir", type=Path)
    own.add_argument("train_args", nargs=argparse.REMAINDER, help="`steelscan train` arguments")
    opts = own.parse_args(argv)
    callbacks: list[Callback] = []
    if opts.hang_at_step:
        callbacks.append(HangAtStep(opts.hang_at_step))
    if opts.rank_digest_dir:
        callbacks.append(WriteRankDigest(opts.rank_digest_dir))
    args = build_parser().parse_args(["train", *opts.train_args])
    try:
        return train_command.run(args, callbacks)
    except SteelscanError as e:
        print(f"train_entry: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
