"""GenICam cameras through `harvesters` (`pip install steelscan[camera]`), one per surface.

Not testable here beyond its error: without harvesters, or without a GenTL producer (the camera
vendor's `.cti` file, named by `--cti` or the GENICAM_GENTL64_PATH variable), it stops with one
clear line. Frames carry the encoder position the line gives (`position_m` from a chunk or the
caller's `position` function) and the coil id from level 2 (`coil` function)."""

from __future__ import annotations

import glob
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..coils.records import CoilInfo
from ..errors import ConfigError
from .frames import FrameRow
from .sources import SourceFrame


def find_producers(cti: str | Path | None = None) -> list[str]:
    """GenTL producer files: `cti`, else every *.cti on GENICAM_GENTL64_PATH."""
    if cti:
        return [str(cti)] if Path(cti).is_file() else []
    found: list[str] = []
    for folder in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep):
        if folder:
            found += sorted(glob.glob(os.path.join(folder, "*.cti")))
    return found


class CameraSource:
    """Frames from one GenICam camera for `surface`. `position(now) -> metres from the coil head`
    and `coil() -> coil id` come from the line (encoder and level 2)."""

    live = True
    total = None

    def __init__(self, surface: str, position: Callable[[], float], coil: Callable[[], str], *,
                 cti: str | Path | None = None, serial: str | None = None) -> None:
        try:
            from harvesters.core import Harvester  # the optional extra
        except ImportError:
            raise ConfigError("GenICam cameras need harvesters: pip install 'steelscan[camera]'",
                              field="--camera") from None
        producers = find_producers(cti)
        if not producers:
            raise ConfigError("no GenTL producer (.cti) configured: give --cti FILE or set GENICAM_GENTL64_PATH",
                              field="--camera")
        self.surface, self.position, self.coil = surface, position, coil
        self.coils: dict[str, CoilInfo] = {}
        self._order: list[str] = []
        self.h = Harvester()
        for p in producers:
            self.h.add_file(p)
        self.h.update()
        if not self.h.device_info_list:
            raise ConfigError(f"no camera found through {', '.join(producers)}", field="--camera")
        self.acquirer = self.h.create({"serial_number": serial} if serial else 0)
        self._n = 0

    def next_coil(self, surface: str, coil_id: str) -> str | None:
        return None

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame | None]:
        self.acquirer.start()
        try:
            while not stop.is_set():
                with self.acquirer.fetch(timeout=1.0) as buffer:
                    comp = buffer.payload.components[0]
                    img = np.asarray(comp.data).reshape(comp.height, comp.width, -1)[..., :3].copy()
                if img.shape[2] == 1:
                    img = np.repeat(img, 3, axis=2)
                self._n += 1
                row = FrameRow(file=f"{self.surface}_{self._n:09d}", coil_id=self.coil(), surface=self.surface,
                               position_m=self.position())
                yield SourceFrame(row, time.monotonic(), image=img.astype(np.uint8))
        finally:
            self.acquirer.stop()
            self.acquirer.destroy()
            self.h.reset()
