"""`--watch DIR`: frames a camera writes into a folder, inspected as they arrive.

The camera (or its driver) writes each frame complete under a temporary name and renames it
(write-then-rename), so a file with an image name is whole. Names starting with `.` or ending in
`.tmp`, `.part`, `~` are not looked at. A frame's metadata (the fields of a frames.csv row:
`coil_id, surface, position_m[, camera_id, timestamp]`) comes from a sidecar JSON with the
image's stem (`f001.jpg` + `f001.json`), else from a growing `DIR/frames.csv` (complete lines
only). An image whose metadata has not come yet waits for it (named once after `META_WAIT_S`).
`DIR/coils.csv` (level-2 data) is read again whenever it changes.

Order: per surface, frames are held in a reorder window (`reorder_frames` frames or
`reorder_s` seconds, whichever comes first) and released sorted by (coil in order of first
arrival, position), so a camera that writes a little out of order is not a problem. A frame that
comes after the runner has passed its place is late: named and recorded (the runner does that).

Restarts: files already in the folder when the watcher starts are `resumed` frames; the runner
passes those behind its saved place quietly, so none is inspected twice and none skipped.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from ..coils.coil_table import read_coils
from ..coils.records import CoilInfo
from ..data.csv_rows import row_error, validation_message
from ..images import load_image
from .frames import FrameRow
from .sources import SourceFrame

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TEMP_SUFFIXES = (".tmp", ".part", ".partial", "~", ".swp")
META_WAIT_S = 10.0


def is_frame_name(name: str) -> bool:
    low = name.lower()
    return not name.startswith(".") and not low.endswith(TEMP_SUFFIXES) and low.endswith(IMAGE_SUFFIXES)


class WatchSource:
    live = True
    total = None

    def __init__(self, folder: str | Path, *, poll_s: float = 0.2, reorder_frames: int = 8, reorder_s: float = 1.0,
                 surface: str | None = None, on_problem=None) -> None:
        self.dir = Path(folder)
        self.poll_s, self.reorder_frames, self.reorder_s = poll_s, reorder_frames, reorder_s
        self.surface = surface
        self.on_problem = on_problem or (lambda text: None)
        self.coils: dict[str, CoilInfo] = {}
        self._seen: set[str] = set()                   # names released or named as bad
        self._waiting: dict[str, float] = {}           # name -> first seen without metadata
        self._named: set[str] = set()
        self._csv_rows: dict[str, FrameRow] = {}
        self._csv_offset = 0
        self._csv_line = 1
        self._coils_mtime: float | None = None
        self._order: dict[str, list[str]] = {}        # surface -> coils in order of first arrival
        self._held: dict[str, list] = {}               # surface -> heap of (coil rank, position, name, frame)
        self._tick = 0

    def next_coil(self, surface: str, coil_id: str) -> str | None:
        order = self._order.get(surface, [])
        return order[order.index(coil_id) + 1] if coil_id in order and order.index(coil_id) + 1 < len(order) \
            else None

    # --- the loop ---------------------------------------------------------------------------
    def frames(self, stop: threading.Event) -> Iterator[SourceFrame | None]:
        if not self.dir.is_dir():
            from ..errors import ConfigError
            raise ConfigError("watched folder not found", path=self.dir)
        first = True
        while not stop.is_set():
            new = self._scan(resumed=first)
            first = False
            for f in new:
                self._hold(f)
            released = self._release(force=False)
            yield from released
            if not new:
                yield None
                stop.wait(self.poll_s)
        yield from self._release(force=True)   # what is held is inspected before stopping

    def _hold(self, f: SourceFrame) -> None:
        s, c = f.row.surface, f.row.coil_id
        order = self._order.setdefault(s, [])
        if c not in order:
            order.append(c)
        heapq.heappush(self._held.setdefault(s, []), (order.index(c), f.row.position_m, f.row.file, f))

    def _release(self, force: bool) -> list[SourceFrame]:
        out = []
        now = time.monotonic()
        for heap in self._held.values():
            while heap and (force or len(heap) > self.reorder_frames or now - heap[0][3].arrived >= self.reorder_s
                            or heap[0][3].resumed):
                out.append(heapq.heappop(heap)[3])
        return out

    # --- the folder -------------------------------------------------------------------------
    def _scan(self, resumed: bool) -> list[SourceFrame]:
        self._read_csv()
        self._read_coils()
        try:
            names = {e.name: e for e in os.scandir(self.dir) if is_frame_name(e.name)}
            entries = [(n, e.stat().st_mtime) for n, e in names.items() if n not in self._seen and e.is_file()]
        except OSError as e:
            self.on_problem(f"{self.dir}: cannot list ({e.__class__.__name__})")
            return []
        self._seen &= names.keys()   # files the camera side cleaned away are forgotten (bounded memory)
        now = time.monotonic()
        out = []
        for name, mtime in sorted(entries, key=lambda e: (e[1], e[0])):
            row = self._meta(name)
            if row is None:
                first = self._waiting.setdefault(name, now)
                if now - first >= META_WAIT_S and name not in self._named:
                    self._named.add(name)
                    self.on_problem(f"{name}: no metadata after {META_WAIT_S:g} s (no {Path(name).stem}.json, "
                                    "not in frames.csv); waiting for it")
                continue
            self._seen.add(name)
            self._waiting.pop(name, None)
            if row is False or (self.surface and row.surface != self.surface):
                continue
            # a frame already there at start may have waited: it arrived when it was written
            arrived = now - max(0.0, time.time() - mtime) if resumed else now
            path = self.dir / name
            out.append(SourceFrame(row, arrived, load=lambda p=path: load_image(p), resumed=resumed))
        return out

    def _meta(self, name: str) -> FrameRow | None | bool:
        """The frame's row; None: not yet; False: bad metadata (named)."""
        side = self.dir / (Path(name).stem + ".json")
        if side.exists():
            try:
                data = json.loads(side.read_text())
            except (OSError, ValueError) as e:   # not yet complete (a writer without rename)?
                first = self._waiting.setdefault("json:" + name, time.monotonic())
                if time.monotonic() - first < META_WAIT_S:
                    return None
                self.on_problem(f"{side}: not JSON ({e.__class__.__name__}); frame {name} not inspected")
                return False
            try:
                return FrameRow.model_validate({**data, "file": name, "line": 0})
            except ValueError as e:   # ValidationError is a ValueError
                msg = validation_message(e) if isinstance(e, ValidationError) else str(e)
                self.on_problem(f"{side}: {msg}; frame {name} not inspected")
                return False
        return self._csv_rows.pop(name, None)

    def _read_csv(self) -> None:
        """New complete lines of DIR/frames.csv (a camera appends to it)."""
        path = self.dir / "frames.csv"
        try:
            with open(path, "rb") as f:
                f.seek(self._csv_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        if not end:
            return
        text = chunk[:end].decode("utf-8-sig", errors="replace")
        if self._csv_offset == 0:
            self._header = next(csv.reader(io.StringIO(text.splitlines()[0])))
            text = "\n".join(text.splitlines()[1:])
        self._csv_offset += end
        for rec in csv.reader(io.StringIO(text)):
            self._csv_line += 1
            if not rec:
                continue
            try:
                row = FrameRow.model_validate({**dict(zip(self._header, rec)), "line": self._csv_line})
            except ValidationError as e:
                self.on_problem(str(row_error(e, path, self._csv_line)))
                continue
            self._csv_rows[row.file] = row

    def _read_coils(self) -> None:
        path = self.dir / "coils.csv"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._coils_mtime:
            return
        self._coils_mtime = mtime
        table = read_coils(path)
        for p in table.problems:
            self.on_problem(str(p))
        self.coils.update(table.coils)
