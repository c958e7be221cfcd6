"""The line runner: recorded frames of one or more coils in, defects and coverage in coil
coordinates out, to a DefectSink (the coil database, or anything with its five methods).

Per surface, frames go in stream order (`FrameTable.streams`): decoded ahead by a reader thread,
inspected `batch_size` at a time, then one by one: strip edges, the rows that are new, pieces in
coil coordinates, merged across frame boundaries, crops. Records go to the sink once per batch.

Coverage is honest; every metre of a coil is either inspected or an UninspectedRecord:
- `missing`: no frame covers it (a jump of more than `position_tolerance_px` rows between frames,
  the head before the first frame, the tail after the last one up to the coil's `length_m`);
- `unreadable`: the image is missing or corrupt; `wrong_size`: it is not the expected size
  (`frame_size`, else the most common size in the first batch); `inspection_error`: the inspector failed on it.
  The frame's length counts as uninspected and the run goes on.
- Overlapping frames: rows already inspected are skipped (never counted twice). A frame entirely
  inside inspected length, like a duplicate in frames.csv, is a problem line, not a record: its
  metres were inspected.

Coil changes and welds. A new coil_id in the stream closes the previous coil at the end of its
last frame (or at its `length_m` from coils.csv, the rest being `missing`): its open defects are
finished and a SurfaceSummary is sent. A frame that straddles the weld is split by rows between
the two coils; frames.csv says so in either of two ways:
(a) the frame is listed under the *old* coil and runs past that coil's `length_m` (coils.csv):
    rows before `length_m` go to it, the rest to the next coil in the stream, starting at its
    head (0 m);
(b) the frame is listed under the *new* coil with a negative `position_m`: the rows before 0 m
    go to the previous coil of the stream, continuing from the end of its last frame.
A defect crossing the weld becomes two defects, one per coil.
"""

from __future__ import annotations

import statistics
from collections import Counter
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from ..coils.records import CoilInfo, DefectRecord, DefectSink, SurfaceSummary, UninspectedRecord
from ..geometry import strip_columns, strip_width_mm
from .config import LineConfig
from .crops import render_crop
from .decode import DecodedFrame, prefetch
from .frames import FrameRow, FrameTable, image_root
from .merge import CoilDefect, DefectMerger, Segment, frame_pieces
from .strip import find_strip


class FrameInspector(Protocol):
    """What the runner needs of an inspector (the model's `Inspector`, or the truth `OracleInspector`):
    one result per image with `.masks` (C, H, W) 0/1, `.defects`, `.class_scores`, `.error`."""

    def inspect(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list: ...


@dataclass
class LineSummary:
    """What one run did (the CLI's last line)."""

    frames: int = 0                 # frames in the table
    inspected: int = 0              # frames whose rows were inspected (in part or whole)
    coils: list[str] = field(default_factory=list)
    defects: int = 0
    uninspected_m: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames ({self.inspected} inspected), {len(self.coils)} coil(s), "
                f"{self.defects} defects, {self.uninspected_m:.2f} m uninspected, "
                f"{self.frames_per_s:.1f} frames/s, {len(self.problems)} problem(s)")


@dataclass
class _Coil:
    """The coil one surface stream is on, and what it has seen of it."""

    info: CoilInfo
    camera_id: str
    cursor_m: float = 0.0           # coverage so far: everything before this is accounted for
    frames: int = 0
    inspected_m: float = 0.0
    strip_mm: list[float] = field(default_factory=list)


def model_info(inspector) -> dict:
    """{name, version, sha256} of the model (`inspector.model_info`, else what its settings say)."""
    info = getattr(inspector, "model_info", None)
    if isinstance(info, dict):
        return info
    settings = getattr(inspector, "settings", None) or {}
    return {"name": settings.get("bundle") or settings.get("model") or settings.get("segmenter"),
            "version": None, "sha256": None}


class LineRunner:
    """Run an inspector over recorded frames and write defects and coverage to a sink."""

    def __init__(self, inspector: FrameInspector, sink: DefectSink, config: LineConfig | None = None,
                 coils: dict[str, CoilInfo] | None = None, *, progress: bool = False,
                 on_problem: Callable[[str], None] | None = None) -> None:
        self.inspector = inspector
        self.sink = sink
        self.config = config or LineConfig()
        self.coils = coils or {}
        self.progress = progress
        self.on_problem = on_problem
        self.model = model_info(inspector)
        self.summary = LineSummary()
        self._upserted: set[str] = set()

    def problem(self, text: str) -> None:
        self.summary.problems.append(text)
        if self.on_problem:
            self.on_problem(text)

    def run(self, table: FrameTable, frames_dir: str | Path) -> LineSummary:
        """Inspect every stream of `table` (images relative to `frames_dir` or its frames/
        subfolder, see `image_root`); flush the sink."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        frames_dir = image_root(frames_dir, table)
        streams = table.streams()
        self.summary.frames += sum(len(s) for s in streams.values())
        with tqdm(total=self.summary.frames, unit="frame", disable=not self.progress, desc="line") as bar:
            for surface, rows in streams.items():
                _SurfaceStream(self, surface, rows).run(frames_dir, bar)
        self.sink.flush()
        self.summary.seconds += time.perf_counter() - t0
        return self.summary

    def upsert(self, coil_id: str) -> CoilInfo:
        info = self.coils.get(coil_id) or CoilInfo(coil_id)
        if coil_id not in self._upserted:
            self.sink.upsert_coil(info)
            self._upserted.add(coil_id)
            self.summary.coils.append(coil_id)
        return info


class _SurfaceStream:
    """One surface's frames, in order: coverage, coils, merging."""

    def __init__(self, runner: LineRunner, surface: str, rows: list[FrameRow]) -> None:
        self.r = runner
        self.cfg = runner.config
        self.surface = surface
        side = self.cfg.surfaces[surface]
        self.drive_side, self.default_camera = side.drive_side, side.camera_id
        self.rows = rows
        self.next_coil = self._next_coils(rows)
        self.pixel = self.cfg.pixel
        self.row_m = self.pixel.along_mm / 1000.0
        self.tol_m = self.cfg.position_tolerance_px * self.row_m
        self.size = tuple(self.cfg.frame_size) if self.cfg.frame_size else None
        self.merger = DefectMerger(self.cfg.crop_max_rows)
        self.coil: _Coil | None = None
        self.defects: list[DefectRecord] = []
        self.spans: list[UninspectedRecord] = []
        self._counted: str | None = None

    @staticmethod
    def _next_coils(rows: list[FrameRow]) -> dict[str, str | None]:
        """coil_id -> the coil after it in this stream (None for the last)."""
        order = list(dict.fromkeys(r.coil_id for r in rows))
        return {c: (order[i + 1] if i + 1 < len(order) else None) for i, c in enumerate(order)}

    # --- the loop ------------------------------------------------------------------------------
    def run(self, frames_dir: str | Path, bar) -> None:
        batch: list[DecodedFrame] = []
        for frame in prefetch(self.rows, frames_dir, self.cfg.prefetch):
            batch.append(frame)
            if len(batch) >= self.cfg.batch_size:
                self._batch(batch, bar)
                batch = []
        if batch:
            self._batch(batch, bar)
        if self.coil is not None:
            self._close_coil()
        self._flush()

    def _batch(self, batch: list[DecodedFrame], bar) -> None:
        bad: dict[int, tuple[str, str]] = {}
        good: list[int] = []
        if self.size is None:  # the most common size of the first batch with readable frames
            sizes = Counter(f.image.shape[:2] for f in batch if f.image is not None)
            self.size = sizes.most_common(1)[0][0] if sizes else None
        for i, f in enumerate(batch):
            if f.image is None:
                bad[i] = ("unreadable", f.error or "unreadable")
                continue
            if f.image.shape[:2] != tuple(self.size):
                h, w = f.image.shape[:2]
                bad[i] = ("wrong_size", f"{h}x{w} px, expected {self.size[0]}x{self.size[1]}")
            else:
                good.append(i)
        results = {}
        if good:
            out = self.r.inspector.inspect([batch[i].image for i in good], [batch[i].row.file for i in good])
            results = dict(zip(good, out))
        for i, f in enumerate(batch):
            res = results.get(i)
            if res is not None and (getattr(res, "error", None) or res.masks is None):
                bad[i] = ("inspection_error", str(getattr(res, "error", None) or "no masks"))
            reason = bad.get(i)
            if reason:
                self.r.problem(f"{f.row.file}: {reason[0]}: {reason[1]}")
            self._frame(f, res if reason is None else None, reason)
            bar.update(1)
        self._flush()

    # --- one frame -----------------------------------------------------------------------------
    def _frame(self, f: DecodedFrame, res, bad: tuple[str, str] | None) -> None:
        """Place one frame on its coil: coverage, weld splits, then inspection (or its reason not)."""
        height = f.image.shape[0] if f.image is not None and bad is None else (self.size or (0,))[0]
        if self.coil is None or f.row.coil_id != self.coil.info.coil_id:
            self._change_coil(f, res, bad, height)
        first = self._first_new_row(f.row, height)
        if first is None:
            return
        weld = self._weld_row(f.row, first, height)
        if bad is not None:
            self._finish(self.merger.close())
            top_m, end_m = f.row.position_m + first * self.row_m, f.row.position_m + weld * self.row_m
            self._uninspected(top_m, end_m, *bad, f.row.file)
            self.coil.cursor_m = max(self.coil.cursor_m, end_m)
            return
        self._inspect(f, res, f.row.position_m, (first, weld))
        if weld < height:   # (a): the frame runs past the coil's length into the next coil
            nxt = self.next_coil.get(self.coil.info.coil_id)
            self._close_coil()
            if nxt is not None:   # the last coil's rows past its length belong to no known coil
                self._open_coil(nxt, f.row.camera_id)
                self._inspect(f, res, -weld * self.row_m, (weld, height))

    def _change_coil(self, f: DecodedFrame, res, bad: tuple[str, str] | None, height: int) -> None:
        """Close the coil on the stream (after giving it the rows of a frame listed under the new
        coil at a negative position, case (b)) and open the frame's coil."""
        if self.coil is not None:
            weld = min(max(round(-f.row.position_m / self.row_m), 0), height)
            if weld > 0 and bad is None:
                self._inspect(f, res, self.coil.cursor_m, (0, weld))
            elif weld > 0:
                self._uninspected(self.coil.cursor_m, self.coil.cursor_m + weld * self.row_m, *bad, f.row.file)
            self._close_coil()
        self._open_coil(f.row.coil_id, f.row.camera_id)

    def _first_new_row(self, row: FrameRow, height: int) -> int | None:
        """The frame's first row not yet accounted for on its coil (rows before the head and rows
        already inspected are skipped; a gap before it becomes `missing`). None: nothing new."""
        first = min(round(-row.position_m / self.row_m), height) if row.position_m < -self.tol_m else 0
        top_m = row.position_m + first * self.row_m
        gap = top_m - self.coil.cursor_m
        if gap > self.tol_m:
            self._finish(self.merger.close())
            self._uninspected(self.coil.cursor_m, top_m, "missing", None)
        elif gap < -self.tol_m:
            first += round(-gap / self.row_m)
        if not height:
            self.r.problem(f"{row.file}: frame length unknown (no readable frame yet); not counted as coverage")
            return None
        if first >= height:
            self.r.problem(f"{row.file}: lies within {self.coil.info.coil_id} {self.surface} length already "
                           f"inspected (position {row.position_m} m); skipped")
            return None
        return first

    def _weld_row(self, row: FrameRow, first: int, height: int) -> int:
        """The first row past the coil's `length_m` (coils.csv), or `height` when the frame ends
        before it (or starts past it: then length_m is taken to be wrong, not the frame)."""
        length = self.coil.info.length_m
        if length is None or row.position_m + first * self.row_m >= length - self.tol_m:
            return height
        return min(max(round((length - row.position_m) / self.row_m), first), height)

    def _inspect(self, f: DecodedFrame, res, frame_m: float, rows: tuple[int, int]) -> None:
        """Rows [r0, r1) of a good frame belong to the current coil, with row 0 at `frame_m`."""
        coil = self.coil
        strip = find_strip(f.image, self.cfg.strip_min_contrast)
        seg = Segment(f.row.file, frame_m, rows, strip, strip_columns(strip, f.image.shape[1]), self.drive_side)
        top_m = frame_m + rows[0] * self.row_m
        continues = abs(top_m - coil.cursor_m) <= self.tol_m
        pieces = frame_pieces(res.masks, seg, self.pixel, self._class_names(res), defects=res.defects or (),
                              class_scores=res.class_scores, image=f.image,
                              stream_row0=round(frame_m / self.row_m), crop_margin=self.cfg.crop_margin_px)
        self._finish(self.merger.add(pieces, continues))
        coil.cursor_m = frame_m + rows[1] * self.row_m
        coil.frames += 1
        coil.inspected_m += (rows[1] - rows[0]) * self.row_m
        coil.strip_mm.append(strip_width_mm(strip, self.pixel))
        if self._counted != f.row.file:  # a frame split at a weld counts once
            self._counted = f.row.file
            self.r.summary.inspected += 1

    def _class_names(self, res) -> list[str]:
        return list(getattr(res, "class_names", None) or getattr(self.r.inspector, "class_names", None) or [])

    # --- coils ---------------------------------------------------------------------------------
    def _open_coil(self, coil_id: str, camera_id: str | None) -> None:
        self.coil = _Coil(self.r.upsert(coil_id), camera_id or self.default_camera)

    def _close_coil(self) -> None:
        coil = self.coil
        self._finish(self.merger.close())
        length = coil.info.length_m
        if length is not None and coil.cursor_m < length - self.tol_m:
            self._uninspected(coil.cursor_m, length, "missing", "no frames up to the coil's length_m")
            coil.cursor_m = length
        self._flush()
        widths = coil.strip_mm
        self.r.sink.close_surface(SurfaceSummary(
            coil.info.coil_id, self.surface, coil.camera_id, coil.frames, round(coil.inspected_m, 6),
            round(coil.cursor_m, 6),
            round(min(widths), 3) if widths else None,
            round(statistics.median(widths), 3) if widths else None,
            round(max(widths), 3) if widths else None))
        self.coil = None

    # --- records -------------------------------------------------------------------------------
    def _uninspected(self, start_m: float, end_m: float, reason: str, detail: str | None,
                     file: str | None = None) -> None:
        if end_m <= start_m:
            return
        if file:
            detail = f"{file}: {detail}" if detail else file
        self.spans.append(UninspectedRecord(self.coil.info.coil_id, self.surface, self.coil.camera_id,
                                            round(start_m, 6), round(end_m, 6), reason, detail))
        self.r.summary.uninspected_m += end_m - start_m

    def _finish(self, defects: list[CoilDefect]) -> None:
        area_px_mm2 = self.pixel.along_mm * self.pixel.across_mm
        for d in defects:
            self.defects.append(DefectRecord(
                coil_id=self.coil.info.coil_id, surface=self.surface, camera_id=self.coil.camera_id,
                class_id=d.class_id, class_name=d.class_name, score=round(d.score, 4),
                start_m=round(d.start_m, 6), end_m=round(d.end_m, 6),
                across_start_mm=round(d.across_start_mm, 3), across_end_mm=round(d.across_end_mm, 3),
                length_mm=round((d.end_m - d.start_m) * 1000.0, 3),
                width_mm=round(d.across_end_mm - d.across_start_mm, 3),
                area_mm2=round(d.area_px * area_px_mm2, 3), frames=list(d.frames),
                crop_png=render_crop(d.crop_parts, self.cfg.crop_max_px),
                model_name=self.r.model.get("name"), model_version=self.r.model.get("version"),
                model_sha256=self.r.model.get("sha256")))
        self.r.summary.defects += len(defects)

    def _flush(self) -> None:
        """Hand the batch's records to the sink: one call each, never one per defect."""
        if self.defects:
            self.r.sink.add_defects(self.defects)
            self.defects = []
        if self.spans:
            self.r.sink.add_uninspected(self.spans)
            self.spans = []
