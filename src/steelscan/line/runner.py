"""The line runner: frames of one or more coils in, from a FrameSource (a recorded replay, a
watched folder, a simulated line, a camera: see `sources`), defects and coverage in coil
coordinates out, to a DefectSink (the coil database, or anything with its five methods).

Frames go through the inference stream that `predict` uses (`inference.stream.inspect_stream`):
in throughput mode (the default) decoding (a simulated line renders its frames there), the
models and post-processing overlap on their own threads, `batch_size` frames per model call
(when a live source goes idle, what came is inspected at once); results come back in the
source's order. Per surface, in stream order (a replay's `FrameTable.streams`; a live source's
arrival order, sorted in its reorder window), each frame is then placed: strip edges, the rows
that are new, pieces in coil coordinates, merged across frame boundaries, crops. Records go to
the sink once per `batch_size` frames of a surface. When a frame is taken from the source, a
live source that runs more than `max_lag_s` ahead gets it skipped (reason `behind`, never
decoded); a frame whose place the stream has passed is `late` (or, after a restart, passed
quietly). With a `LineState` the streams' places are saved after each batch, and a stopped run
leaves its coils open for the next one (what was taken from the source is placed first).

Coverage is honest; every metre of a coil is either inspected or an UninspectedRecord:
- `missing`: no frame covers it (a jump of more than `position_tolerance_px` rows between frames,
  the head before the first frame, the tail after the last one up to the coil's `length_m`);
- `unreadable`: the image is missing or corrupt; `wrong_size`: it is not the expected size
  (`frame_size`, else the most common size in the first batch); `inspection_error`: the inspector failed on it;
  `behind`: skipped on purpose, inspection was behind a live source; `late`: came after its place was passed.
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

import logging
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from ..coils.records import (CoilInfo, DefectRecord, DefectSink, LineStatusRecord, SurfaceSummary,
                             UninspectedRecord)
from ..errors import ImageError
from ..geometry import strip_columns, strip_width_mm
from ..inference.stream import IDLE, StreamItem, as_stream_inspector, inspect_stream
from .config import LineConfig
from .crops import render_crop
from .decode import DecodedFrame
from .alarms import LiveAlarms
from .frames import FrameRow, FrameTable
from .lag import LagReport
from .merge import CoilDefect, DefectMerger, Segment, frame_pieces
from .sources import FrameSource, ReplaySource, SourceFrame
from .state import LineState
from .strip import find_strip

STATUS_EVERY_S = 1.0   # a camera's live status (publish_status) at most this often

log = logging.getLogger("steelscan.line")


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
    behind: int = 0                 # frames skipped on purpose: inspection fell behind a live source
    behind_m: float = 0.0
    late: int = 0                   # frames that came after the runner had passed their place
    resumed: int = 0                # frames inspected before a restart, passed quietly
    stopped: bool = False           # stopped by a signal (open coils stay open)
    alarms: int = 0                 # periodic (roll-mark) alarms raised (line.alarms)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames ({self.inspected} inspected), {len(self.coils)} coil(s), "
                f"{self.defects} defects, {self.uninspected_m:.2f} m uninspected, "
                f"{self.frames_per_s:.1f} frames/s, {len(self.problems)} problem(s)"
                + (f", {self.behind} frames ({self.behind_m:.2f} m) skipped behind" if self.behind else "")
                + (f", {self.late} late" if self.late else "")
                + (f", {self.resumed} already inspected before a restart" if self.resumed else "")
                + (f", {self.alarms} periodic alarm(s) raised" if self.alarms else "")
                + (" (stopped; open coils continue on restart)" if self.stopped else ""))


@dataclass
class _Coil:
    """The coil one surface stream is on, and what it has seen of it."""

    info: CoilInfo
    camera_id: str
    cursor_m: float = 0.0           # coverage so far: everything before this is accounted for
    frames: int = 0
    inspected_m: float = 0.0
    strip_mm: list[float] = field(default_factory=list)
    behind_m: float = 0.0           # metres of this coil skipped on purpose (reason `behind`)


@dataclass
class _Taken:
    """A frame taken from the source on its way through the inference stream. `reason`: why it
    is not inspected (behind, set when taken; unreadable when decoded; wrong_size when screened);
    `passed`: its place was passed already (named or passed quietly when taken; nothing to do)."""

    frame: SourceFrame
    stream: "_SurfaceStream"
    reason: tuple[str, str] | None = None
    passed: bool = False


def model_info(inspector) -> dict:
    """{name, version, sha256} of the model (`inspector.model_info`, else what its settings say)."""
    info = getattr(inspector, "model_info", None)
    if isinstance(info, dict):
        return info
    settings = getattr(inspector, "settings", None) or {}
    return {"name": settings.get("bundle") or settings.get("model") or settings.get("segmenter"),
            "version": None, "sha256": None}


class LineRunner:
    """Run an inspector over frames from a source and write defects and coverage to a sink.

    `stop`: set it (a signal handler does) to end the run cleanly: what was inspected is handed to
    the sink and flushed, open coils stay open (their state in `state`, if given, so a restarted
    runner continues them). `max_lag_s`: how far a live source may run ahead of inspection before
    frames are skipped (reason `behind`). `alarms`: a `line.alarms.LiveAlarms` that watches each
    surface's open coil for roll marks (it writes its alarms to the same sink). `mode`,
    `decode_workers`: the inference stream's (`inspect_stream`: "throughput" overlaps decoding,
    models and post-processing; "latency" does one frame at a time); frames decoded ahead: the
    config's `prefetch`."""

    def __init__(self, inspector: FrameInspector, sink: DefectSink, config: LineConfig | None = None,
                 coils: dict[str, CoilInfo] | None = None, *, progress: bool = False,
                 on_problem: Callable[[str], None] | None = None, stop: threading.Event | None = None,
                 state: LineState | None = None, max_lag_s: float = 10.0, clock=time.monotonic,
                 alarms: LiveAlarms | None = None,
                 on_coil_closed: Callable[[str, str, datetime], None] | None = None,
                 mode: str = "throughput", decode_workers: int = 1) -> None:
        self.inspector = inspector
        self.mode, self.decode_workers = mode, decode_workers
        self.sink = sink
        self.config = config or LineConfig()
        self.coils = coils or {}
        self.progress = progress
        self.on_problem = on_problem
        self.stop = stop or threading.Event()
        self.state = state
        self.max_lag_s = max_lag_s
        self.model = model_info(inspector)
        self.summary = LineSummary()
        self.clock = clock              # the sources' clock (a test's fake one)
        self.lag = LagReport(clock)
        self.source: FrameSource | None = None
        self._upserted: dict[str, CoilInfo] = {}
        self._streams: dict[str, _SurfaceStream] = {}
        self.alarms = alarms
        if alarms is not None:
            alarms.attach(sink, self.problem)
        self.on_coil_closed = on_coil_closed   # (coil_id, surface, when its summary was handed over)
        self._ended = False

    def problem(self, text: str) -> None:
        self.summary.problems.append(text)
        if self.on_problem:
            self.on_problem(text)

    def run(self, table: FrameTable, frames_dir: str | Path) -> LineSummary:
        """Inspect every stream of a recorded `table` (images relative to `frames_dir` or its
        frames/ subfolder, see `image_root`); flush the sink."""
        return self.run_source(ReplaySource(table, frames_dir, self.coils, prefetch_depth=self.config.prefetch,
                                            resumed=self.state is not None))

    def run_source(self, source: FrameSource) -> LineSummary:
        """Inspect frames from `source` until it ends (coils closed) or `stop` is set (coils left
        open); flush the sink."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        self.source = source
        self.coils = {**self.coils, **source.coils}
        if self.state is not None:
            for surface in self.state.surfaces():
                self._stream(surface)
        self._ended = False
        batch = self.config.batch_size
        with tqdm(total=source.total, unit="frame", disable=not self.progress, desc="line") as bar:
            taken = self._take(source)
            results = inspect_stream(as_stream_inspector(self.inspector, batch), taken, _load,
                                     lambda t: t.frame.row.file, mode=self.mode, screen=_screen,
                                     decode_workers=self.decode_workers,
                                     ahead=0 if source.live else max(1, self.config.prefetch // batch))
            try:
                for done in results:
                    if done is IDLE:
                        self._batches_done()
                    else:
                        self._place(done, bar)
            finally:
                results.close()
                taken.close()
            self._batches_done()
        ended = self._ended and not self.stop.is_set()
        for stream in self._streams.values():
            stream.end(close=ended)
        self.summary.stopped = not ended
        self._save_state(force=True)
        self.sink.flush()
        self.summary.seconds += time.perf_counter() - t0
        return self.summary

    def _stream(self, surface: str) -> "_SurfaceStream":
        if surface not in self._streams:
            self._streams[surface] = _SurfaceStream(self, surface)
        return self._streams[surface]

    def _take(self, source: FrameSource):
        """The source's frames as the stream's items (IDLE when it has nothing new for now), each
        decided on when taken: passed (its place is behind), skipped (behind a live source), or
        to be decoded. Ends at the source's end (`_ended`) or when `stop` is set."""
        frames = source.frames(self.stop)
        try:
            for sf in frames:
                if sf is None:
                    yield IDLE
                    continue
                self.summary.frames += 1
                self.lag.seen(sf.arrived)
                yield self._stream(sf.row.surface).take(sf)
                if self.stop.is_set():
                    return
            self._ended = True
        finally:
            frames.close()

    def _place(self, done: StreamItem, bar) -> None:
        """A frame back from the stream, in the source's order: placed on its surface's coil;
        every `batch_size` frames of a surface, its records go to the sink."""
        stream = done.item.stream
        if stream.pending == 0:
            self.coils.update(self.source.coils)
            stream.refresh()
        stream.place(done)
        bar.update(1)
        stream.pending += 1
        if stream.pending >= self.config.batch_size:
            self._batch_done(stream)

    def _batches_done(self) -> None:
        for stream in list(self._streams.values()):
            if stream.pending:
                self._batch_done(stream)

    def _batch_done(self, stream: "_SurfaceStream") -> None:
        frames, stream.pending = stream.pending, 0
        stream._flush()
        if self.source.live:   # a replay or an as-fast-as-possible line has nothing to lag behind
            self.lag.report(self.summary)
        self._publish_status(stream, frames)
        self._save_state()

    def _publish_status(self, stream: "_SurfaceStream", frames: int) -> None:
        """Tell a sink that shows the line live (`publish_status`) where this camera is, at most
        every STATUS_EVERY_S per surface: coil, position, frames/s, lag and metres skipped."""
        publish = getattr(self.sink, "publish_status", None)
        coil = stream.coil
        if publish is None or coil is None:
            return
        now = time.monotonic()
        stream.status_frames += frames
        since = now - stream.status_at if stream.status_at is not None else None
        if since is not None and since < STATUS_EVERY_S:
            return
        rate = stream.status_frames / since if since else None
        stream.status_at, stream.status_frames = now, 0
        publish(LineStatusRecord(coil.camera_id, coil.info.coil_id, stream.surface, round(coil.cursor_m, 3),
                                 coil.frames, None if rate is None else round(rate, 2),
                                 round(self.lag.lag_s, 2) if self.source.live else None,
                                 round(coil.behind_m, 3)))

    def _save_state(self, force: bool = False) -> None:
        """The streams' places, written after what they describe is in the sink (flushed, unless
        the sink is durable as it is handed over, like the spool)."""
        if self.state is None:
            return
        if not getattr(self.sink, "durable", False):
            self.sink.flush()
        self.state.save({s: st.export() for s, st in self._streams.items()})

    def coil_closed(self, coil_id: str, surface: str, at: datetime) -> None:
        """A surface stream closed `coil_id` (its summary handed to the sink at `at`): tell
        `on_coil_closed` (the line's grading). What goes wrong there is a problem line, never the line's end."""
        if self.on_coil_closed is not None:
            try:
                self.on_coil_closed(coil_id, surface, at)
            except Exception as e:
                self.problem(f"{coil_id}: after the coil closed: {e}")

    def next_coil(self, surface: str, coil_id: str) -> str | None:
        return self.source.next_coil(surface, coil_id) if self.source is not None else None

    def upsert(self, coil_id: str) -> CoilInfo:
        """The coil's level-2 data, sent to the sink when first seen and again when it changed
        (a live source learns it while the coil runs)."""
        info = self.coils.get(coil_id) or CoilInfo(coil_id)
        if self._upserted.get(coil_id) != info:
            if coil_id not in self._upserted:
                self.summary.coils.append(coil_id)
            self.sink.upsert_coil(info)
            self._upserted[coil_id] = info
        return info


class _SurfaceStream:
    """One surface's frames, in order: coverage, coils, merging."""

    def __init__(self, runner: LineRunner, surface: str) -> None:
        self.r = runner
        self.cfg = runner.config
        self.surface = surface
        side = self.cfg.surfaces[surface]
        self.drive_side, self.default_camera = side.drive_side, side.camera_id
        self.pixel = self.cfg.pixel
        self.row_m = self.pixel.along_mm / 1000.0
        self.tol_m = self.cfg.position_tolerance_px * self.row_m
        self.size = tuple(self.cfg.frame_size) if self.cfg.frame_size else None
        self.merger = DefectMerger(self.cfg.crop_max_rows)
        self.coil: _Coil | None = None
        self.defects: list[DefectRecord] = []
        self.spans: list[UninspectedRecord] = []
        self._counted: str | None = None
        self.closed: list[str] = []      # coils this stream closed (recent ones), for late frames
        self.resume_m: float | None = None   # the cursor restored after a restart
        self.status_at: float | None = None  # when this camera's status was last published
        self.status_frames = 0               # frames since then
        self.pending = 0                     # frames placed since the last batch went to the sink
        if runner.state is not None:
            self._restore(runner.state.surface(surface))

    # --- the loop ------------------------------------------------------------------------------
    def take(self, sf: SourceFrame) -> _Taken:
        """A frame as it is taken from the source: passed when its place is behind this stream
        (named as late, or quietly after a restart), skipped when inspection is more than
        `max_lag_s` behind a live source, else on its way to be decoded and inspected."""
        item = _Taken(sf, self)
        if self._passed(sf):
            item.passed = True
            return item
        lag = self.r.clock() - sf.arrived
        if self.r.source.live and lag > self.r.max_lag_s:
            item.reason = ("behind", f"{lag:.1f} s behind the line")
        return item

    def refresh(self) -> None:
        """At a batch's start: the open coil's level-2 data, which a live source may have changed."""
        if self.coil is not None:
            self.coil.info = self.r.upsert(self.coil.info.coil_id)

    def place(self, done: StreamItem) -> None:
        """A frame back from the inference stream: its reason not to be inspected (as taken,
        decoded or screened, else the inspector's error) named, then placed on its coil."""
        item, res = done.item, done.result
        if item.passed:
            return
        f = DecodedFrame(item.frame.row, done.image, None)
        reason = item.reason
        if reason is None and (getattr(res, "error", None) or res.masks is None):
            reason = ("inspection_error", str(getattr(res, "error", None) or "no masks"))
        if reason and reason[0] == "behind":
            self.r.lag.skipped(f.row.file)
        elif reason:
            self.r.problem(f"{f.row.file}: {reason[0]}: {reason[1]}")
        self._frame(f, res if reason is None else None, reason)

    def screen(self, frames: list[tuple[_Taken, np.ndarray]]) -> None:
        """Decoded frames of this surface before the models: the frame size (`frame_size`, else
        the most common size among the first of them) and the ones of another size refused."""
        if self.size is None:
            self.size = Counter(im.shape[:2] for _, im in frames).most_common(1)[0][0]
        for item, im in frames:
            if im.shape[:2] != tuple(self.size):
                h, w = im.shape[:2]
                item.reason = ("wrong_size", f"{h}x{w} px, expected {self.size[0]}x{self.size[1]}")

    def end(self, close: bool) -> None:
        """The source ended (close the coil) or the run was stopped (finish the open defects,
        keep the coil open for a restart)."""
        if self.coil is not None and close:
            self._close_coil()
        else:
            self._finish(self.merger.close())
        self._flush()

    def _passed(self, sf: SourceFrame) -> bool:
        """Whether the frame's place is behind this stream already: quietly after a restart
        (`resumed`), else it came late (named, and its length recorded as `late`)."""
        row = sf.row
        height = self.size[0] if self.size else None
        if row.coil_id in self.closed:
            behind = True
        elif self.coil is not None and row.coil_id == self.coil.info.coil_id and height is not None:
            behind = row.position_m + height * self.row_m <= self.coil.cursor_m + self.tol_m
        else:
            return False
        if not behind:
            return False
        if sf.resumed:
            self.r.summary.resumed += 1
            return True
        self.r.summary.late += 1
        end_m = row.position_m + (height or 0) * self.row_m
        self.r.problem(f"{row.file}: late: came after the line had passed {row.coil_id} {self.surface} "
                       f"{row.position_m:.3f} m; recorded as `late`")
        if height:
            camera = row.camera_id or self.default_camera
            self.spans.append(UninspectedRecord(row.coil_id, self.surface, camera, round(row.position_m, 6),
                                                round(end_m, 6), "late", f"{row.file}: came after its place "
                                                "was passed (its length is also recorded as missing)"))
        return True

    # --- state across restarts ---------------------------------------------------------------
    def export(self) -> dict:
        c = self.coil
        return {"size": list(self.size) if self.size else None, "closed": self.closed[-100:],
                "coil": None if c is None else {
                    "coil_id": c.info.coil_id, "camera_id": c.camera_id, "cursor_m": c.cursor_m,
                    "frames": c.frames, "inspected_m": c.inspected_m, "strip_mm": c.strip_mm[-512:]}}

    def _restore(self, saved: dict | None) -> None:
        if not saved:
            return
        self.size = tuple(saved["size"]) if saved.get("size") else self.size
        self.closed = list(saved.get("closed") or [])
        c = saved.get("coil")
        if c:
            self.coil = _Coil(self.r.upsert(c["coil_id"]), c["camera_id"], c["cursor_m"], c["frames"],
                              c["inspected_m"], list(c["strip_mm"]))
            self.resume_m = c["cursor_m"]
            if self.r.alarms is not None:
                self.r.alarms.coil_opened(self.surface, self.coil.info)

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
            nxt = self.r.next_coil(self.surface, self.coil.info.coil_id) if weld < height else None
            if nxt is not None:   # (a) for a frame not inspected: its rows past the weld, too
                self._close_coil()
                self._open_coil(nxt, f.row.camera_id)
                self._uninspected(0.0, (height - weld) * self.row_m, *bad, f.row.file)
                self.coil.cursor_m = (height - weld) * self.row_m
            return
        self._inspect(f, res, f.row.position_m, (first, weld))
        if weld < height:   # (a): the frame runs past the coil's length into the next coil
            nxt = self.r.next_coil(self.surface, self.coil.info.coil_id)
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
        if self.r.alarms is not None:
            self.r.alarms.coil_opened(self.surface, self.coil.info)

    def _close_coil(self) -> None:
        coil = self.coil
        self._finish(self.merger.close())
        length = coil.info.length_m
        if length is not None and coil.cursor_m < length - self.tol_m:
            self._uninspected(coil.cursor_m, length, "missing", "no frames up to the coil's length_m")
            coil.cursor_m = length
        self._flush()
        self.closed = [*self.closed[-99:], coil.info.coil_id]
        widths = coil.strip_mm
        closed_at = datetime.now(timezone.utc)   # before the hand-over: grading waits for it to be stored
        self.r.sink.close_surface(SurfaceSummary(
            coil.info.coil_id, self.surface, coil.camera_id, coil.frames, round(coil.inspected_m, 6),
            round(coil.cursor_m, 6),
            round(min(widths), 3) if widths else None,
            round(statistics.median(widths), 3) if widths else None,
            round(max(widths), 3) if widths else None))
        if self.r.alarms is not None:
            raised = self.r.alarms.coil_closed(self.surface, coil.info.coil_id, coil.cursor_m)
            self.r.summary.alarms += len(raised)
        self.coil = None
        self.r.coil_closed(coil.info.coil_id, self.surface, closed_at)

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
        if reason == "behind":
            self.r.summary.behind_m += end_m - start_m
            self.coil.behind_m += end_m - start_m

    def _finish(self, defects: list[CoilDefect]) -> None:
        area_px_mm2 = self.pixel.along_mm * self.pixel.across_mm
        first = len(self.defects)
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
        if self.r.alarms is not None and defects:
            self.r.alarms.add(self.surface, self.defects[first:])

    def _flush(self) -> None:
        """Hand the batch's records to the sink: one call each, never one per defect."""
        if self.defects:
            self.r.sink.add_defects(self.defects)
            self.defects = []
        if self.r.alarms is not None and self.coil is not None:   # after the defects behind an alarm
            self.r.summary.alarms += len(self.r.alarms.check(self.surface, self.coil.cursor_m))
        if self.spans:
            self.r.sink.add_uninspected(self.spans)
            self.spans = []


# --- the inference stream's hooks (run on its decode thread and the calling thread) -------------
def _load(item: _Taken) -> np.ndarray:
    """Decode a taken frame (on a decode thread); ImageError, with the reason kept on the item,
    for a frame not to be inspected (passed, behind, unreadable: a skipped frame is never decoded)."""
    if item.passed:
        raise ImageError("passed")
    if item.reason is None:
        image, error = item.frame.decode()
        if image is not None:
            return image
        item.reason = ("unreadable", error or "unreadable")
    raise ImageError(item.reason[1])


def _screen(frames: list[tuple[_Taken, np.ndarray]]) -> list[str | None]:
    """A batch's decoded frames before the models: each surface checks the frame size."""
    by_stream: dict[int, list] = {}
    for item, im in frames:
        by_stream.setdefault(id(item.stream), []).append((item, im))
    for group in by_stream.values():
        group[0][0].stream.screen(group)
    return [item.reason[1] if item.reason else None for item, _ in frames]
