"""Decode frames ahead of inference: one reader thread fills a bounded queue, so reading and
decompressing the next images overlaps the model's work on the current batch."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..data.layout import load_image
from ..errors import ImageError
from .frames import FrameRow

_DONE = object()


@dataclass
class DecodedFrame:
    """A frame row with its RGB uint8 (H, W, 3) image, or the reason it has none."""

    row: FrameRow
    image: np.ndarray | None
    error: str | None = None


def decode(row: FrameRow, root: Path) -> DecodedFrame:
    try:
        return DecodedFrame(row, load_image(root / row.file))
    except ImageError as e:
        return DecodedFrame(row, None, e.message)


def prefetch(rows: Iterable[FrameRow], root: str | Path, depth: int = 16) -> Iterator[DecodedFrame]:
    """Yield DecodedFrames in order, decoded `depth` frames ahead by a reader thread. Closing the
    generator early stops the thread."""
    root = Path(root)
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for row in rows:
                if not put(decode(row, root)):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(e)
            return
        put(_DONE)

    thread = threading.Thread(target=read, name="frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
