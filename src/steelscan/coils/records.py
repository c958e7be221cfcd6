"""What the line runner hands the defect database: plain records in coil coordinates.

Coordinates (see steelscan.geometry): metres along the strip from the coil head (`*_m`),
millimetres across from the drive-side strip edge (`across_*_mm`). Surfaces are "top" and
"bottom"; `camera_id` names the camera (one per surface for now, several across later).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Protocol, Sequence

SURFACES = ("top", "bottom")


@dataclass
class CoilInfo:
    """Level-2 data of one coil (all optional but the id)."""

    coil_id: str
    line_id: str | None = None
    grade: str | None = None
    width_mm: float | None = None
    thickness_mm: float | None = None
    length_m: float | None = None
    order: str | None = None
    customer: str | None = None
    exposed_surface: str | None = None  # "top" | "bottom"


@dataclass
class DefectRecord:
    """One physical defect (merged across frames)."""

    coil_id: str
    surface: str
    camera_id: str
    class_id: int            # 1-based
    class_name: str
    score: float             # 0..1
    start_m: float
    end_m: float
    across_start_mm: float
    across_end_mm: float
    length_mm: float
    width_mm: float
    area_mm2: float
    frames: list[str] = field(default_factory=list)   # frame files the defect was seen in
    crop_png: bytes | None = None                     # image crop around the defect
    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    # Optional idempotency key (unique in the database): a defect handed over again with the same
    # uid (a retried batch, a rerun of the same frames) is stored once. None: no check.
    uid: str | None = None


def span_uid(coil_id: str, surface: str, camera_id: str, start_m: float, reason: str) -> str:
    """The stable id of an uninspected span: the same coil, surface, camera, start (to the micrometre)
    and reason give the same uid in every run, so a retried or replayed span is stored once.
    "span-" and 24 hex digits (96 bits of SHA-256)."""
    key = json.dumps([coil_id, surface, camera_id, round(float(start_m), 6), reason], separators=(",", ":"))
    return "span-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


@dataclass
class UninspectedRecord:
    """A length of one surface that was not inspected, and why ("missing", "unreadable",
    "wrong_size", "duplicate", "behind", ...). `uid` (unique in the database) is `span_uid` of
    the span unless given: a span handed over again (a retried batch, the spool replaying after an
    outage, a rerun of the same frames) is stored once."""

    coil_id: str
    surface: str
    camera_id: str
    start_m: float
    end_m: float
    reason: str
    detail: str | None = None
    uid: str | None = None

    def __post_init__(self) -> None:
        if self.uid is None:
            self.uid = span_uid(self.coil_id, self.surface, self.camera_id, self.start_m, self.reason)


@dataclass
class SurfaceSummary:
    """One surface of one coil when the runner closes it."""

    coil_id: str
    surface: str
    camera_id: str
    frames: int
    inspected_m: float
    end_m: float
    strip_width_mm_min: float | None = None
    strip_width_mm_median: float | None = None
    strip_width_mm_max: float | None = None


@dataclass
class LineStatusRecord:
    """What a runner publishes about one camera every few seconds while it runs (the live page
    shows it): the coil and position (metres from the head of the last inspected frame), frames
    inspected of this coil, frames/s, lag behind the line in seconds (None for a replay) and the
    metres of this coil skipped as `behind`. A sink that stores it has `publish_status`."""

    camera_id: str
    coil_id: str
    surface: str
    position_m: float
    frames: int
    frames_per_s: float | None = None
    lag_s: float | None = None
    behind_m: float = 0.0


@dataclass
class AlarmRecord:
    """A periodic (roll-mark) alarm as a line runner raises it (steelscan.line.alarms). `uid` is the
    runner's id for it (stable across journal retries); times are ISO 8601 UTC text, so the record
    journals as it is. Positions on the coil it was raised on: `first_m` the first occurrence,
    `raised_m` how far that surface had been inspected when it was raised."""

    uid: str
    line_id: str
    surface: str
    coil_id: str
    roll: str | None
    period_m: float
    implied_diameter_mm: float
    class_ids: list[int]
    occurrences: int
    first_m: float
    raised_m: float
    across_mm: float
    confidence: float
    raised_at: str


@dataclass
class AlarmLinkRecord:
    """An open alarm carried to the next coil on its line (stored only while the alarm is still open:
    not acknowledged, not closed)."""

    uid: str
    coil_id: str


@dataclass
class AlarmCloseRecord:
    """An alarm closed by the runner (`reason` "roll_changed": the roll table's installed_at is later
    than the alarm)."""

    uid: str
    reason: str
    closed_at: str


class DefectSink(Protocol):
    """Where the runner writes. The database store implements it with a background writer
    that batches inserts: none of these calls waits on the database."""

    def upsert_coil(self, coil: CoilInfo) -> None: ...

    def add_defects(self, defects: Sequence[DefectRecord]) -> None: ...

    def add_uninspected(self, spans: Sequence[UninspectedRecord]) -> None: ...

    def close_surface(self, summary: SurfaceSummary) -> None: ...

    def flush(self) -> None: ...   # block until everything handed over is stored

    def close(self) -> None: ...

    # Optional (the runner checks with getattr): periodic alarms, `raise_alarm(AlarmRecord)`,
    # `link_alarm(AlarmLinkRecord)`, `close_alarm(AlarmCloseRecord)`, and `alarm_states(line_id, uids)`
    # -> {uid: state dict} of the line's open alarms and of `uids` (None when the database is unknown
    # or down): see steelscan.line.alarms.
