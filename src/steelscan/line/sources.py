"""Where the line runner's frames come from: a small interface and the recorded replay.

A source yields `SourceFrame`s (a frames.csv row, when the frame passed the camera, and its image
or a way to load it) or `None` when nothing new has come for now (the runner then inspects what
it holds). The runner asks it `next_coil` at a weld. Sources:

- `ReplaySource` (`--frames DIR`): a recorded coil; frames decoded ahead by a reader thread;
  never live: the runner waits for every frame, nothing is skipped;
- `WatchSource` (`--watch DIR`, line/watch.py): frames a camera writes into a folder;
- `SimulatedLine` (`--simulate`, line/simulate.py): the synth-coil generator as a running line;
- `CameraSource` (line/camera.py): GenICam cameras through harvesters (optional extra).

`live` sources run at the line's pace: when inspection falls behind them by more than the
runner's `max_lag_s`, frames are skipped on purpose (UninspectedRecord reason `behind`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from ..coils.records import CoilInfo
from ..errors import SteelscanError
from .decode import prefetch
from .frames import FrameRow, FrameTable, image_root


@dataclass
class SourceFrame:
    """One frame from a source. `arrived`: time.monotonic() when it passed the camera (or
    appeared); `image` RGB uint8 (H, W, 3) when decoded already, else `load()` decodes it (a
    skipped frame is never decoded); `error`: why it has no image. `resumed`: it may have been
    inspected before a restart (the runner passes it quietly when its rows are behind the cursor)."""

    row: FrameRow
    arrived: float
    image: np.ndarray | None = None
    error: str | None = None
    load: Callable[[], np.ndarray] | None = None
    resumed: bool = False

    def decode(self) -> tuple[np.ndarray | None, str | None]:
        if self.image is not None or self.error is not None or self.load is None:
            return self.image, self.error
        try:
            return self.load(), None
        except SteelscanError as e:
            return None, e.message
        except OSError as e:
            return None, f"{e.__class__.__name__}: {e}"


class FrameSource(Protocol):
    live: bool                      # skip frames when inspection falls behind
    coils: dict[str, CoilInfo]      # level-2 data known so far (may grow while running)
    total: int | None               # frames it will yield, when known (the progress bar)

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame | None]: ...

    def next_coil(self, surface: str, coil_id: str) -> str | None: ...


class ReplaySource:
    """A recorded frames table (`FrameTable`) in stream order, surface after surface."""

    live = False

    def __init__(self, table: FrameTable, frames_dir: str | Path, coils: dict[str, CoilInfo] | None = None,
                 *, prefetch_depth: int = 16, resumed: bool = False) -> None:
        self.root = image_root(frames_dir, table)
        self.streams = table.streams()
        self.coils = coils or {}
        self.total = sum(len(s) for s in self.streams.values())
        self.depth = prefetch_depth
        self.resumed = resumed
        self._next: dict[str, dict[str, str | None]] = {}
        for surface, rows in self.streams.items():
            order = list(dict.fromkeys(r.coil_id for r in rows))
            self._next[surface] = {c: (order[i + 1] if i + 1 < len(order) else None) for i, c in enumerate(order)}

    def next_coil(self, surface: str, coil_id: str) -> str | None:
        return self._next.get(surface, {}).get(coil_id)

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame | None]:
        for rows in self.streams.values():
            gen = prefetch(rows, self.root, self.depth)
            try:
                for f in gen:
                    if stop.is_set():
                        return
                    yield SourceFrame(f.row, time.monotonic(), f.image, f.error, resumed=self.resumed)
            finally:
                gen.close()
            yield None   # a surface done: the runner inspects what it holds
