"""The schema as SQLAlchemy 2 models. Alembic migrations (db/migrations/versions) build it;
a test checks that the migrations and these models agree.

Coil coordinates (steelscan.geometry): `*_m` metres along the strip from the coil head,
`across_*_mm` millimetres from the drive-side strip edge."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so later migrations can alter them on both dialects.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}

# Text columns carry no length: PostgreSQL would reject a longer model name or path mid-run (and
# SQLite never checks). 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit (and the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Coil(Base):
    """One coil and its level-2 data (all optional but the id)."""

    __tablename__ = "coils"
    coil_id: Mapped[str] = mapped_column(String, primary_key=True)
    line_id: Mapped[str | None] = mapped_column(String, index=True)
    grade: Mapped[str | None] = mapped_column(String, index=True)
    width_mm: Mapped[float | None] = mapped_column(Float)
    thickness_mm: Mapped[float | None] = mapped_column(Float)
    length_m: Mapped[float | None] = mapped_column(Float)
    order_no: Mapped[str | None] = mapped_column(String)   # CoilInfo.order
    customer: Mapped[str | None] = mapped_column(String)
    exposed_surface: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CoilSurface(Base):
    """What one camera saw of one surface of a coil (the runner's SurfaceSummary)."""

    __tablename__ = "coil_surfaces"
    __table_args__ = (UniqueConstraint("coil_id", "surface", "camera_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coil_id: Mapped[str] = mapped_column(ForeignKey("coils.coil_id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String)
    camera_id: Mapped[str] = mapped_column(String)
    frames: Mapped[int] = mapped_column(Integer)
    inspected_m: Mapped[float] = mapped_column(Float)
    end_m: Mapped[float] = mapped_column(Float)
    strip_width_mm_min: Mapped[float | None] = mapped_column(Float)
    strip_width_mm_median: Mapped[float | None] = mapped_column(Float)
    strip_width_mm_max: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Defect(Base):
    """One physical defect in coil coordinates. `pinned` keeps its crop when pruning (a review
    or a customer claim still needs it)."""

    __tablename__ = "defects"
    __table_args__ = (Index("ix_defects_coil_surface_start", "coil_id", "surface", "start_m"),
                      Index("ix_defects_coil_class", "coil_id", "class_id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coil_id: Mapped[str] = mapped_column(ForeignKey("coils.coil_id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String)
    camera_id: Mapped[str] = mapped_column(String)
    class_id: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)
    start_m: Mapped[float] = mapped_column(Float)
    end_m: Mapped[float] = mapped_column(Float)
    across_start_mm: Mapped[float] = mapped_column(Float)
    across_end_mm: Mapped[float] = mapped_column(Float)
    length_mm: Mapped[float] = mapped_column(Float)
    width_mm: Mapped[float] = mapped_column(Float)
    area_mm2: Mapped[float] = mapped_column(Float)
    frames: Mapped[list[Any]] = mapped_column(default=list)
    model_name: Mapped[str | None] = mapped_column(String)
    model_version: Mapped[str | None] = mapped_column(String)
    model_sha256: Mapped[str | None] = mapped_column(String)
    uid: Mapped[str | None] = mapped_column(String, unique=True)   # DefectRecord.uid
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DefectCrop(Base):
    """The image crop of a defect (PNG bytes), apart so pruning can drop crops and keep records."""

    __tablename__ = "defect_crops"
    defect_id: Mapped[int] = mapped_column(BigId, ForeignKey("defects.id", ondelete="CASCADE"), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)


class UninspectedSpan(Base):
    """A length of a surface that was not inspected, and why. `uid` keeps a span handed over again
    (spool replay, retried batch, rerun) from being stored twice; null only on rows stored before
    migration 0005 that repeated an earlier row."""

    __tablename__ = "uninspected_spans"
    __table_args__ = (Index("ix_uninspected_spans_coil_surface", "coil_id", "surface", "start_m"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coil_id: Mapped[str] = mapped_column(ForeignKey("coils.coil_id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String)
    camera_id: Mapped[str] = mapped_column(String)
    start_m: Mapped[float] = mapped_column(Float)
    end_m: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String)
    detail: Mapped[str | None] = mapped_column(Text)
    uid: Mapped[str | None] = mapped_column(String, unique=True)   # UninspectedRecord.uid (span_uid)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Inspection(Base):
    """One accepted POST /v1/inspect of the web service; `response` is what the POST returned."""

    __tablename__ = "inspections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    filename: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(String)
    n_defects: Mapped[int] = mapped_column(Integer)
    classes: Mapped[list[Any]] = mapped_column(default=list)
    latency_ms: Mapped[float] = mapped_column(Float)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LineStatus(Base):
    """What a line runner last published about one camera (steelscan.coils.records.LineStatusRecord):
    the coil and position it is at, frames/s, lag and metres skipped as `behind`. One row per
    camera, overwritten every few seconds; the live page reads it."""

    __tablename__ = "line_status"
    camera_id: Mapped[str] = mapped_column(String, primary_key=True)
    coil_id: Mapped[str] = mapped_column(String, index=True)
    surface: Mapped[str] = mapped_column(String)
    position_m: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    frames_per_s: Mapped[float | None] = mapped_column(Float)
    lag_s: Mapped[float | None] = mapped_column(Float)
    behind_m: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PeriodicAlarm(Base):
    """A periodic (roll-mark) alarm a line runner raised (steelscan.line.alarms): one per mark, however
    many coils it runs through. Open while `acknowledged_at` and `closed_at` are null; `close_reason`
    "roll_changed" when the roll table's `installed_at` for its roll is later than `raised_at`.
    `uid` is the runner's id of the alarm (journalled writes are stored once)."""

    __tablename__ = "periodic_alarms"
    __table_args__ = (Index("ix_periodic_alarms_line_surface", "line_id", "surface"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String, unique=True)
    line_id: Mapped[str] = mapped_column(String)
    surface: Mapped[str] = mapped_column(String)
    coil_id: Mapped[str] = mapped_column(String, index=True)   # the coil it was raised on
    roll: Mapped[str | None] = mapped_column(String)
    period_m: Mapped[float] = mapped_column(Float)
    implied_diameter_mm: Mapped[float] = mapped_column(Float)
    class_ids: Mapped[list[Any]] = mapped_column(default=list)
    occurrences: Mapped[int] = mapped_column(Integer)          # detected occurrences when raised
    first_m: Mapped[float] = mapped_column(Float)              # first occurrence on the coil raised on
    raised_m: Mapped[float] = mapped_column(Float)             # where that surface's inspection was then
    across_mm: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String)
    closed_at: Mapped[datetime | None] = mapped_column()
    close_reason: Mapped[str | None] = mapped_column(String)


class PeriodicAlarmCoil(Base):
    """The coils an alarm is recorded on: the one it was raised on and those it was carried to."""

    __tablename__ = "periodic_alarm_coils"
    alarm_id: Mapped[int] = mapped_column(BigId, ForeignKey("periodic_alarms.id", ondelete="CASCADE"),
                                          primary_key=True)
    coil_id: Mapped[str] = mapped_column(ForeignKey("coils.coil_id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
    carried: Mapped[bool] = mapped_column(Boolean, default=False)   # False: raised on this coil
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
class CoilGrade(Base):
    """One grading of a coil (steelscan.coils.grades): decision, reasons, cut list, and the rule
    file it was graded by (name, sha256 and the text itself, so a past decision can be explained
    after the file changed). Grades are never overwritten: the latest `graded_at` is the current one."""

    __tablename__ = "coil_grades"
    __table_args__ = (Index("ix_coil_grades_coil_graded_at", "coil_id", "graded_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coil_id: Mapped[str] = mapped_column(ForeignKey("coils.coil_id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String)         # ACCEPT | DOWNGRADE | HOLD | REJECT
    grade: Mapped[str | None] = mapped_column(String)     # the DOWNGRADE target
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    pieces: Mapped[list[Any]] = mapped_column(default=list)   # the cut list, each piece re-graded
    length_m: Mapped[float] = mapped_column(Float)
    length_source: Mapped[str] = mapped_column(String)
    prime_m: Mapped[float] = mapped_column(Float)
    n_defects: Mapped[int] = mapped_column(Integer)
    rule_set: Mapped[str] = mapped_column(String)
    rules_file: Mapped[str | None] = mapped_column(Text)
    rules_sha256: Mapped[str] = mapped_column(String)
    rules_text: Mapped[str] = mapped_column(Text)
    graded_by: Mapped[str] = mapped_column(String)        # a user, or "line"
    graded_at: Mapped[datetime] = mapped_column(default=utcnow)
