"""Batched writes of runner records into the defect database: one transaction per batch.

Coil and surface upserts are INSERT ... ON CONFLICT on both dialects, so two processes (top and
bottom camera) writing the same coil at once merge into one row; coils are touched in sorted
order so concurrent batches cannot deadlock."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..db.models import (Coil, CoilSurface, Defect, DefectCrop, LineStatus, PeriodicAlarm, PeriodicAlarmCoil,
                         UninspectedSpan, utcnow)
from .records import (AlarmCloseRecord, AlarmLinkRecord, AlarmRecord, CoilInfo, DefectRecord, LineStatusRecord,
                      SurfaceSummary, UninspectedRecord)

# Shallow field copies: dataclasses.asdict deep-copies and was most of the writer's time.
DEFECT_COLUMNS = tuple(f.name for f in fields(DefectRecord) if f.name not in ("crop_png", "frames"))
SPAN_COLUMNS = tuple(f.name for f in fields(UninspectedRecord))
SURFACE_COLUMNS = tuple(f.name for f in fields(SurfaceSummary))
STATUS_COLUMNS = tuple(f.name for f in fields(LineStatusRecord))
COIL_FIELDS = ("line_id", "grade", "width_mm", "thickness_mm", "length_m", "order_no", "customer",
               "exposed_surface")


def _upsert(conn: Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def coil_row(c: CoilInfo) -> dict:
    row = {f.name: getattr(c, f.name) for f in fields(CoilInfo)}
    row["order_no"] = row.pop("order")
    return row


def merge_coils(coils: Sequence[CoilInfo]) -> dict[str, dict]:
    """Several upserts of one coil in a batch -> one row; a later non-None value wins."""
    merged: dict[str, dict] = {}
    for c in coils:
        row = coil_row(c)
        old = merged.setdefault(row["coil_id"], row)
        if old is not row:
            old.update({k: v for k, v in row.items() if v is not None})
    return merged


def upsert_coils(conn: Connection, coils: dict[str, dict], ensure: set[str]) -> None:
    """Insert or update the level-2 data of `coils` (a None never overwrites a value), and make
    sure every coil id in `ensure` exists (inserted with no data if new)."""
    ins = _upsert(conn)
    now = utcnow()
    for coil_id in sorted(set(coils) | ensure):
        if coil_id in coils:
            row = {**{f: None for f in COIL_FIELDS}, **coils[coil_id], "created_at": now, "updated_at": now}
            stmt = ins(Coil).values(row)
            cols = stmt.excluded
            # COALESCE(new, old): a process without level-2 data must not erase another's
            sets = {f: func.coalesce(cols[f], getattr(Coil, f)) for f in COIL_FIELDS} | {"updated_at": now}
            conn.execute(stmt.on_conflict_do_update(index_elements=[Coil.coil_id], set_=sets))
        else:
            conn.execute(ins(Coil).values(coil_id=coil_id, created_at=now, updated_at=now)
                         .on_conflict_do_nothing(index_elements=[Coil.coil_id]))


def new_by_uid(conn: Connection, records: Sequence, column=Defect.uid) -> list:
    """`records` (defects, or uninspected spans with `column=UninspectedSpan.uid`) without those
    whose uid is already stored in `column` or repeated in the batch."""
    uids = [r.uid for r in records if r.uid is not None]
    if not uids:
        return list(records)
    seen = set()
    for i in range(0, len(uids), 900):   # stay under SQLite's bound-parameter limit
        seen |= set(conn.execute(select(column).where(column.in_(uids[i:i + 900]))).scalars())
    out = []
    for r in records:
        if r.uid is None or r.uid not in seen:
            out.append(r)
            if r.uid is not None:
                seen.add(r.uid)
    return out


def insert_defects(conn: Connection, defects: Sequence[DefectRecord]) -> None:
    """Bulk insert (executemany); crops go to their own table with the new defect ids. A defect
    whose uid is already stored is skipped (idempotent retries and reruns)."""
    defects = new_by_uid(conn, defects)
    if not defects:
        return
    now = utcnow()
    rows = [{k: getattr(d, k) for k in DEFECT_COLUMNS} | {"frames": list(d.frames), "pinned": False,
                                                          "created_at": now} for d in defects]
    crops = [d.crop_png for d in defects]
    if not any(c is not None for c in crops):
        conn.execute(insert(Defect), rows)
        return
    if conn.dialect.name == "postgresql":
        # ids from the sequence first, then a plain executemany (psycopg pipelines it): a
        # multi-row INSERT ... RETURNING costs psycopg seconds per 10k rows to parse
        seq = func.pg_get_serial_sequence(Defect.__tablename__, "id")
        ids = conn.execute(select(func.nextval(seq)).select_from(func.generate_series(1, len(rows)))).scalars().all()
        for row, i in zip(rows, ids):
            row["id"] = i
        conn.execute(insert(Defect), rows)
    else:
        ids = conn.execute(insert(Defect).returning(Defect.id, sort_by_parameter_order=True), rows).scalars().all()
    conn.execute(insert(DefectCrop), [{"defect_id": i, "png": c} for i, c in zip(ids, crops) if c is not None])


def insert_uninspected(conn: Connection, spans: Sequence[UninspectedRecord]) -> None:
    """Bulk insert; a span whose uid is already stored is skipped (the spool's replay, retries, reruns)."""
    spans = new_by_uid(conn, spans, UninspectedSpan.uid)
    if spans:
        now = utcnow()
        conn.execute(insert(UninspectedSpan),
                     [{k: getattr(s, k) for k in SPAN_COLUMNS} | {"created_at": now} for s in spans])


def upsert_surfaces(conn: Connection, summaries: Sequence[SurfaceSummary]) -> None:
    """A surface closed again (a rerun of the same coil) replaces its summary."""
    ins = _upsert(conn)
    now = utcnow()
    for s in sorted(summaries, key=lambda s: (s.coil_id, s.surface, s.camera_id)):
        row = {k: getattr(s, k) for k in SURFACE_COLUMNS} | {"closed_at": now}
        stmt = ins(CoilSurface).values(row)
        keys = ("coil_id", "surface", "camera_id")
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[CoilSurface.coil_id, CoilSurface.surface, CoilSurface.camera_id],
            set_={k: stmt.excluded[k] for k in row if k not in keys}))


def upsert_status(conn: Connection, statuses: Sequence[LineStatusRecord]) -> None:
    """One row per camera: the latest status of each camera in `statuses` replaces its row."""
    ins = _upsert(conn)
    now = utcnow()
    latest = {s.camera_id: s for s in statuses}
    for camera_id in sorted(latest):
        row = {k: getattr(latest[camera_id], k) for k in STATUS_COLUMNS} | {"updated_at": now}
        stmt = ins(LineStatus).values(row)
        conn.execute(stmt.on_conflict_do_update(index_elements=[LineStatus.camera_id],
                                                set_={k: stmt.excluded[k] for k in row if k != "camera_id"}))


ALARM_COLUMNS = tuple(f.name for f in fields(AlarmRecord))


def _utc(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _alarm_ids(conn: Connection, uids: set[str]) -> dict[str, tuple[int, bool]]:
    """uid -> (id, open) of the stored alarms among `uids`."""
    out = {}
    for i in range(0, len(uids), 900):
        chunk = sorted(uids)[i:i + 900]
        for uid, aid, acked, closed in conn.execute(
                select(PeriodicAlarm.uid, PeriodicAlarm.id, PeriodicAlarm.acknowledged_at, PeriodicAlarm.closed_at)
                .where(PeriodicAlarm.uid.in_(chunk))):
            out[uid] = (aid, acked is None and closed is None)
    return out


def _link(conn: Connection, rows: list[dict]) -> None:
    ins = _upsert(conn)
    for row in rows:
        conn.execute(ins(PeriodicAlarmCoil).values(row).on_conflict_do_nothing(
            index_elements=[PeriodicAlarmCoil.alarm_id, PeriodicAlarmCoil.coil_id]))


def insert_alarms(conn: Connection, alarms: Sequence[AlarmRecord]) -> None:
    """New alarms and their link to the coil they were raised on; an alarm whose uid is stored
    already (a retried journal entry) is not stored again."""
    if not alarms:
        return
    ins = _upsert(conn)
    for a in alarms:
        row = {k: getattr(a, k) for k in ALARM_COLUMNS} | {"raised_at": _utc(a.raised_at),
                                                            "class_ids": list(a.class_ids)}
        conn.execute(ins(PeriodicAlarm).values(row).on_conflict_do_nothing(index_elements=[PeriodicAlarm.uid]))
    ids = _alarm_ids(conn, {a.uid for a in alarms})
    now = utcnow()
    _link(conn, [{"alarm_id": ids[a.uid][0], "coil_id": a.coil_id, "carried": False, "linked_at": now}
                 for a in alarms if a.uid in ids])


def link_alarms(conn: Connection, links: Sequence[AlarmLinkRecord]) -> None:
    """Record carried alarms on their new coils; an alarm acknowledged or closed meanwhile (in the
    service) is not carried."""
    if not links:
        return
    ids = _alarm_ids(conn, {x.uid for x in links})
    now = utcnow()
    _link(conn, [{"alarm_id": ids[x.uid][0], "coil_id": x.coil_id, "carried": True, "linked_at": now}
                 for x in links if x.uid in ids and ids[x.uid][1]])


def close_alarms(conn: Connection, closes: Sequence[AlarmCloseRecord]) -> None:
    """Close alarms (once: an alarm already closed keeps its first reason)."""
    for c in closes:
        conn.execute(update(PeriodicAlarm).where(PeriodicAlarm.uid == c.uid, PeriodicAlarm.closed_at.is_(None))
                     .values(closed_at=_utc(c.closed_at), close_reason=c.reason))
