"""Reads for the coil views: JSON-ready dicts in coil coordinates (metres along from the head,
millimetres across from the drive-side edge)."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Sequence

import numpy as np
from sqlalchemy import Integer, cast, func, select, update

from ..db import Database
from ..db.models import Coil, CoilGrade, CoilSurface, Defect, DefectCrop, LineStatus, UninspectedSpan

DEFECT_FIELDS = ("coil_id", "surface", "camera_id", "class_id", "class_name", "score", "start_m", "end_m",
                 "across_start_mm", "across_end_mm", "length_mm", "width_mm", "area_mm2", "frames",
                 "model_name", "model_version", "model_sha256", "uid")
SURFACE_FIELDS = ("surface", "camera_id", "frames", "inspected_m", "end_m", "strip_width_mm_min",
                  "strip_width_mm_median", "strip_width_mm_max")


def iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:  # SQLite keeps no zone; we store UTC
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


def _day_start(d: date | datetime | str) -> datetime:
    if isinstance(d, str):
        d = datetime.fromisoformat(d)
    if not isinstance(d, datetime):
        d = datetime.combine(d, time.min)
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def coil_dict(c: Coil) -> dict:
    return {"coil_id": c.coil_id, "line_id": c.line_id, "grade": c.grade, "width_mm": c.width_mm,
            "thickness_mm": c.thickness_mm, "length_m": c.length_m, "order": c.order_no,
            "customer": c.customer, "exposed_surface": c.exposed_surface,
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at)}


def defect_dict(d: Defect, has_crop: bool) -> dict:
    out = {"id": d.id, **{f: getattr(d, f) for f in DEFECT_FIELDS}}
    out.update(frames=list(d.frames or []), pinned=bool(d.pinned), has_crop=bool(has_crop),
               created_at=iso(d.created_at))
    return out


def _latest_grade(column):
    """The coil's current grade's `column` (the latest grading), as a correlated subquery."""
    return (select(column).where(CoilGrade.coil_id == Coil.coil_id)
            .order_by(CoilGrade.graded_at.desc(), CoilGrade.id.desc()).limit(1).correlate(Coil).scalar_subquery())


def _decision(decision: str | None, grade: str | None) -> dict:
    return {"decision": decision, "downgraded_to": grade}


def list_coils(db: Database, *, line_id: str | None = None, grade: str | None = None,
               since: date | datetime | str | None = None, until: date | datetime | str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Coils newest first (by creation), with their defect counts and current grading decision
    (`decision`, `downgraded_to`; None when never graded): (page, total matching).
    `since`/`until`: creation time bounds, `until` exclusive (a date means its midnight, UTC)."""
    where = []
    if line_id is not None:
        where.append(Coil.line_id == line_id)
    if grade is not None:
        where.append(Coil.grade == grade)
    if since is not None:
        where.append(Coil.created_at >= _day_start(since))
    if until is not None:
        where.append(Coil.created_at < _day_start(until))
    n_defects = (select(func.count(Defect.id)).where(Defect.coil_id == Coil.coil_id)
                 .correlate(Coil).scalar_subquery())
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Coil).where(*where)) or 0
        rows = s.execute(select(Coil, n_defects, _latest_grade(CoilGrade.decision), _latest_grade(CoilGrade.grade))
                         .where(*where)
                         .order_by(Coil.created_at.desc(), Coil.coil_id.desc()).limit(limit).offset(offset)).all()
        return [coil_dict(c) | {"n_defects": int(n)} | _decision(d, g) for c, n, d, g in rows], int(total)


def coil_detail(db: Database, coil_id: str) -> dict | None:
    """The coil record with per-class and per-surface defect counts, its surfaces' summaries and
    uninspected metres per surface; None when the coil is unknown."""
    with db.session() as s:
        coil = s.get(Coil, coil_id)
        if coil is None:
            return None
        decision = s.execute(select(CoilGrade.decision, CoilGrade.grade).where(CoilGrade.coil_id == coil_id)
                             .order_by(CoilGrade.graded_at.desc(), CoilGrade.id.desc()).limit(1)).first()
        by_class = s.execute(select(Defect.class_id, Defect.class_name, func.count())
                             .where(Defect.coil_id == coil_id)
                             .group_by(Defect.class_id, Defect.class_name).order_by(Defect.class_id)).all()
        by_surface = s.execute(select(Defect.surface, func.count()).where(Defect.coil_id == coil_id)
                               .group_by(Defect.surface).order_by(Defect.surface)).all()
        gaps = s.execute(select(UninspectedSpan.surface, func.sum(UninspectedSpan.end_m - UninspectedSpan.start_m))
                         .where(UninspectedSpan.coil_id == coil_id).group_by(UninspectedSpan.surface)).all()
        surfaces = s.scalars(select(CoilSurface).where(CoilSurface.coil_id == coil_id)
                             .order_by(CoilSurface.surface.desc(), CoilSurface.camera_id)).all()
        return coil_dict(coil) | _decision(*(decision or (None, None))) | {
            "n_defects": sum(n for *_, n in by_class),
            "counts_by_class": [{"class_id": c, "class_name": name, "count": n} for c, name, n in by_class],
            "counts_by_surface": {surface: n for surface, n in by_surface},
            "uninspected_m": {surface: round(float(m), 6) for surface, m in gaps},
            "surfaces": [{f: getattr(x, f) for f in SURFACE_FIELDS} | {"closed_at": iso(x.closed_at)}
                         for x in surfaces],
        }


def defects(db: Database, coil_id: str | None, *, surface: str | None = None, from_m: float | None = None,
            to_m: float | None = None, class_id: int | None = None, limit: int | None = None,
            largest_first: bool = False) -> list[dict]:
    """Defects of one coil (or of all coils when `coil_id` is None) ordered by coil, surface and
    position (`largest_first`: by area, largest first, so a `limit` keeps the largest).
    `from_m`/`to_m` keep defects that overlap [from_m, to_m]."""
    has_crop = select(DefectCrop.defect_id).where(DefectCrop.defect_id == Defect.id).exists()
    q = select(Defect, has_crop)
    if coil_id is not None:
        q = q.where(Defect.coil_id == coil_id)
    if surface is not None:
        q = q.where(Defect.surface == surface)
    if from_m is not None:
        q = q.where(Defect.end_m >= from_m)
    if to_m is not None:
        q = q.where(Defect.start_m <= to_m)
    if class_id is not None:
        q = q.where(Defect.class_id == class_id)
    order = (Defect.area_mm2.desc(), Defect.id) if largest_first else \
        (Defect.coil_id, Defect.surface.desc(), Defect.start_m, Defect.id)
    q = q.order_by(*order).limit(limit)
    with db.session() as s:
        return [defect_dict(d, c) for d, c in s.execute(q).all()]


def defect_ids(db: Database, coil_id: str, after_id: int = 0) -> list[int]:
    """The ids of a coil's defects above `after_id`, ascending (the live stream's bookkeeping)."""
    with db.session() as s:
        return list(s.scalars(select(Defect.id).where(Defect.coil_id == coil_id, Defect.id > after_id)
                              .order_by(Defect.id)))


def defects_by_id(db: Database, ids: Sequence[int]) -> list[dict]:
    """The defects with these ids, by id (unknown ids are left out)."""
    has_crop = select(DefectCrop.defect_id).where(DefectCrop.defect_id == Defect.id).exists()
    out: list[dict] = []
    with db.session() as s:
        for i in range(0, len(ids), 900):   # stay under SQLite's bound-parameter limit
            rows = s.execute(select(Defect, has_crop).where(Defect.id.in_(list(ids[i:i + 900])))).all()
            out += [defect_dict(d, c) for d, c in rows]
    return sorted(out, key=lambda d: d["id"])


def uninspected(db: Database, coil_id: str, surface: str | None = None) -> list[dict]:
    q = select(UninspectedSpan).where(UninspectedSpan.coil_id == coil_id)
    if surface is not None:
        q = q.where(UninspectedSpan.surface == surface)
    with db.session() as s:
        return [{"surface": u.surface, "camera_id": u.camera_id, "start_m": u.start_m, "end_m": u.end_m,
                 "reason": u.reason, "detail": u.detail, "uid": u.uid}
                for u in s.scalars(q.order_by(UninspectedSpan.surface.desc(), UninspectedSpan.start_m))]


def crops(db: Database, defect_ids: Sequence[int]) -> dict[int, bytes]:
    """PNG bytes of the crops of `defect_ids` that have one."""
    if not defect_ids:
        return {}
    with db.session() as s:
        rows = s.execute(select(DefectCrop.defect_id, DefectCrop.png)
                         .where(DefectCrop.defect_id.in_(list(defect_ids)))).all()
    return {int(i): bytes(png) for i, png in rows}


def set_pinned(db: Database, defect_ids: Sequence[int], pinned: bool = True) -> int:
    """Mark defects whose crops a review or a claim still needs (pruning keeps their crops);
    returns how many rows changed."""
    if not defect_ids:
        return 0
    with db.session(write=True) as s:
        return s.execute(update(Defect).where(Defect.id.in_(list(defect_ids))).values(pinned=pinned)).rowcount


# --- the service's coil pages -------------------------------------------------------------------
def coil_exists(db: Database, coil_id: str) -> bool:
    with db.session() as s:
        return s.get(Coil, coil_id) is not None


def progress(db: Database, coil_id: str) -> dict:
    """How far each surface of a coil has got, from what the database holds while the line runs:
    {"reached_m": {surface: furthest end_m of its defects, uninspected spans, closed summary and
    published line status}, "uninspected_by_reason": {surface: {reason: metres}}}. Without a
    published status, a clean stretch shows only once a defect, a gap or the surface's close lands."""
    reached: dict[str, float] = {}
    with db.session() as s:
        for table in (Defect, UninspectedSpan, CoilSurface):
            for surface, end in s.execute(select(table.surface, func.max(table.end_m))
                                          .where(table.coil_id == coil_id).group_by(table.surface)):
                if end is not None:
                    reached[surface] = max(reached.get(surface, 0.0), float(end))
        for surface, pos in s.execute(select(LineStatus.surface, func.max(LineStatus.position_m))
                                      .where(LineStatus.coil_id == coil_id).group_by(LineStatus.surface)):
            reached[surface] = max(reached.get(surface, 0.0), float(pos))
        by_reason: dict[str, dict[str, float]] = {}
        for surface, reason, m in s.execute(
                select(UninspectedSpan.surface, UninspectedSpan.reason,
                       func.sum(UninspectedSpan.end_m - UninspectedSpan.start_m))
                .where(UninspectedSpan.coil_id == coil_id)
                .group_by(UninspectedSpan.surface, UninspectedSpan.reason)):
            by_reason.setdefault(surface, {})[reason] = round(float(m), 6)
    return {"reached_m": reached, "uninspected_by_reason": by_reason}


def density(db: Database, coil_id: str, length_m: float, bin_m: float, surface: str | None = None) -> list[dict]:
    """Defects per bin along the coil, per class: [{"class_id", "class_name", "counts": [int] * n}]
    with n = ceil(length_m / bin_m) bins from the head; a defect counts in the bin of its start
    (one past the end clips into the last bin). Binned and counted in the database."""
    n = max(1, int(np.ceil(length_m / bin_m - 1e-9)))
    scaled = Defect.start_m / bin_m
    # start_m >= 0, so truncation is floor; SQLite has FLOOR only when built with its math functions
    b = (func.floor(scaled) if db.dialect == "postgresql" else cast(scaled, Integer)).label("bin")
    q = select(Defect.class_id, Defect.class_name, b, func.count()).where(Defect.coil_id == coil_id)
    if surface is not None:
        q = q.where(Defect.surface == surface)
    with db.session() as s:
        rows = s.execute(q.group_by(Defect.class_id, Defect.class_name, b)).all()
    out: dict[int, dict] = {}
    for c, name, k, count in rows:
        series = out.setdefault(int(c), {"class_id": int(c), "class_name": name, "counts": np.zeros(n, np.int64)})
        series["counts"][min(max(int(k), 0), n - 1)] += int(count)
    return [out[c] | {"counts": out[c]["counts"].tolist()} for c in sorted(out)]


def update_coil(db: Database, coil) -> dict:
    """Insert or update one coil's level-2 data (a CoilInfo; a None field keeps the stored value),
    at once (not through the runner's queue); returns the coil's detail."""
    from .writes import coil_row, upsert_coils

    with db.session(write=True) as s:
        upsert_coils(s.connection(), {coil.coil_id: coil_row(coil)}, set())
    return coil_detail(db, coil.coil_id)


def line_status(db: Database, coil_id: str) -> list[dict]:
    """The runners' latest status of each camera now on `coil_id` (empty when none published)."""
    with db.session() as s:
        rows = s.scalars(select(LineStatus).where(LineStatus.coil_id == coil_id)
                         .order_by(LineStatus.surface.desc(), LineStatus.camera_id)).all()
        return [{"camera_id": r.camera_id, "surface": r.surface, "position_m": r.position_m, "frames": r.frames,
                 "frames_per_s": r.frames_per_s, "lag_s": r.lag_s, "behind_m": r.behind_m,
                 "updated_at": iso(r.updated_at)} for r in rows]


def current_coil(db: Database) -> dict:
    """The coil now on the line, as far as the database can tell: the coil of the most recent
    write among a runner's published status, a stored defect and an uninspected span; else (nothing
    inspected yet) the newest coil. {"coil_id": str | None, "since": ISO time | None}. A coil whose
    level-2 data arrived ahead of the strip does not count as on the line."""
    with db.session() as s:
        candidates = [
            s.execute(select(LineStatus.coil_id, LineStatus.updated_at).order_by(LineStatus.updated_at.desc())
                      .limit(1)).first(),
            s.execute(select(Defect.coil_id, Defect.created_at).order_by(Defect.id.desc()).limit(1)).first(),
            s.execute(select(UninspectedSpan.coil_id, UninspectedSpan.created_at)
                      .order_by(UninspectedSpan.id.desc()).limit(1)).first(),
        ]
        found = [c for c in candidates if c is not None]
        if not found:
            found = [s.execute(select(Coil.coil_id, Coil.created_at)
                               .order_by(Coil.created_at.desc(), Coil.coil_id.desc()).limit(1)).first()]
        found = [c for c in found if c is not None]
    if not found:
        return {"coil_id": None, "since": None}
    coil_id, t = max(found, key=lambda c: _day_start(c[1]))
    return {"coil_id": coil_id, "since": iso(t)}
