"""Reads for the coil views: JSON-ready dicts in coil coordinates (metres along from the head,
millimetres across from the drive-side edge)."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Sequence

from sqlalchemy import func, select, update

from ..db import Database
from ..db.models import Coil, CoilSurface, Defect, DefectCrop, UninspectedSpan

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


def list_coils(db: Database, *, line_id: str | None = None, grade: str | None = None,
               since: date | datetime | str | None = None, until: date | datetime | str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Coils newest first (by creation), with their defect counts: (page, total matching).
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
        rows = s.execute(select(Coil, n_defects).where(*where)
                         .order_by(Coil.created_at.desc(), Coil.coil_id.desc()).limit(limit).offset(offset)).all()
        return [coil_dict(c) | {"n_defects": int(n)} for c, n in rows], int(total)


def coil_detail(db: Database, coil_id: str) -> dict | None:
    """The coil record with per-class and per-surface defect counts, its surfaces' summaries and
    uninspected metres per surface; None when the coil is unknown."""
    with db.session() as s:
        coil = s.get(Coil, coil_id)
        if coil is None:
            return None
        by_class = s.execute(select(Defect.class_id, Defect.class_name, func.count())
                             .where(Defect.coil_id == coil_id)
                             .group_by(Defect.class_id, Defect.class_name).order_by(Defect.class_id)).all()
        by_surface = s.execute(select(Defect.surface, func.count()).where(Defect.coil_id == coil_id)
                               .group_by(Defect.surface).order_by(Defect.surface)).all()
        gaps = s.execute(select(UninspectedSpan.surface, func.sum(UninspectedSpan.end_m - UninspectedSpan.start_m))
                         .where(UninspectedSpan.coil_id == coil_id).group_by(UninspectedSpan.surface)).all()
        surfaces = s.scalars(select(CoilSurface).where(CoilSurface.coil_id == coil_id)
                             .order_by(CoilSurface.surface.desc(), CoilSurface.camera_id)).all()
        return coil_dict(coil) | {
            "n_defects": sum(n for *_, n in by_class),
            "counts_by_class": [{"class_id": c, "class_name": name, "count": n} for c, name, n in by_class],
            "counts_by_surface": {surface: n for surface, n in by_surface},
            "uninspected_m": {surface: round(float(m), 6) for surface, m in gaps},
            "surfaces": [{f: getattr(x, f) for f in SURFACE_FIELDS} | {"closed_at": iso(x.closed_at)}
                         for x in surfaces],
        }


def defects(db: Database, coil_id: str | None, *, surface: str | None = None, from_m: float | None = None,
            to_m: float | None = None, class_id: int | None = None, limit: int | None = None) -> list[dict]:
    """Defects of one coil (or of all coils when `coil_id` is None) ordered by coil, surface and
    position. `from_m`/`to_m` keep defects that overlap [from_m, to_m]."""
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
    q = q.order_by(Defect.coil_id, Defect.surface.desc(), Defect.start_m, Defect.id).limit(limit)
    with db.session() as s:
        return [defect_dict(d, c) for d, c in s.execute(q).all()]


def uninspected(db: Database, coil_id: str, surface: str | None = None) -> list[dict]:
    q = select(UninspectedSpan).where(UninspectedSpan.coil_id == coil_id)
    if surface is not None:
        q = q.where(UninspectedSpan.surface == surface)
    with db.session() as s:
        return [{"surface": u.surface, "camera_id": u.camera_id, "start_m": u.start_m, "end_m": u.end_m,
                 "reason": u.reason, "detail": u.detail}
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
