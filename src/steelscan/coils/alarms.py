"""Periodic (roll-mark) alarms in the defect database: the reads and the acknowledgement the service
needs, the states a line runner checks its alarms against, and the roll-change rule.

An alarm is *open* while it is neither acknowledged nor closed. It is recorded on the coil it was
raised on and on every coil it was carried to (`periodic_alarm_coils`). The line runner raises,
carries and closes alarms (steelscan.line.alarms); people acknowledge them (POST /v1/alarms/{id}/ack)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import func, or_, select

from ..db import Database
from ..db.models import PeriodicAlarm, PeriodicAlarmCoil, utcnow
from .queries import iso
from .rolls import RollTable

ALARM_FIELDS = ("uid", "line_id", "surface", "coil_id", "roll", "period_m", "implied_diameter_mm", "occurrences",
                "first_m", "raised_m", "across_mm", "confidence", "acknowledged_by", "close_reason")


def _open():
    return PeriodicAlarm.acknowledged_at.is_(None) & PeriodicAlarm.closed_at.is_(None)


def state(a: PeriodicAlarm) -> str:
    return "closed" if a.closed_at is not None else "acknowledged" if a.acknowledged_at is not None else "open"


def alarm_dict(a: PeriodicAlarm, coils: Sequence[str] = ()) -> dict:
    return {"id": a.id, **{f: getattr(a, f) for f in ALARM_FIELDS}, "class_ids": list(a.class_ids or []),
            "state": state(a), "raised_at": iso(a.raised_at), "acknowledged_at": iso(a.acknowledged_at),
            "closed_at": iso(a.closed_at), "coils": list(coils)}


def _with_coils(s, alarms: list[PeriodicAlarm]) -> list[dict]:
    coils: dict[int, list[str]] = {a.id: [] for a in alarms}
    if coils:
        rows = s.execute(select(PeriodicAlarmCoil.alarm_id, PeriodicAlarmCoil.coil_id)
                         .where(PeriodicAlarmCoil.alarm_id.in_(list(coils)))
                         .order_by(PeriodicAlarmCoil.alarm_id, PeriodicAlarmCoil.linked_at, PeriodicAlarmCoil.coil_id))
        for aid, cid in rows:
            coils[aid].append(cid)
    return [alarm_dict(a, coils[a.id]) for a in alarms]


def list_alarms(db: Database, *, open_only: bool = False, line_id: str | None = None, coil_id: str | None = None,
                limit: int = 100) -> list[dict]:
    """Alarms newest first, each with the coils it is recorded on (raised on first)."""
    q = select(PeriodicAlarm)
    if open_only:
        q = q.where(_open())
    if line_id is not None:
        q = q.where(PeriodicAlarm.line_id == line_id)
    if coil_id is not None:
        q = q.where(PeriodicAlarm.id.in_(select(PeriodicAlarmCoil.alarm_id).where(PeriodicAlarmCoil.coil_id == coil_id)))
    with db.session() as s:
        alarms = s.scalars(q.order_by(PeriodicAlarm.raised_at.desc(), PeriodicAlarm.id.desc()).limit(limit)).all()
        return _with_coils(s, list(alarms))


def get_alarm(db: Database, alarm_id: int) -> dict | None:
    with db.session() as s:
        a = s.get(PeriodicAlarm, alarm_id)
        return None if a is None else _with_coils(s, [a])[0]


def acknowledge(db: Database, alarm_id: int, by: str) -> dict | None:
    """Acknowledge an open alarm (it stops being carried and leaves the banner). An alarm already
    acknowledged keeps its first acknowledgement; a closed one is left as it is. None: no such alarm."""
    with db.session(write=True) as s:
        a = s.get(PeriodicAlarm, alarm_id)
        if a is None:
            return None
        if a.acknowledged_at is None and a.closed_at is None:
            a.acknowledged_at, a.acknowledged_by = utcnow(), by
            s.flush()
        return _with_coils(s, [a])[0]


def alarm_states(db: Database, line_id: str, uids: Sequence[str] = ()) -> dict[str, dict]:
    """uid -> alarm dict of the line's open alarms and of the alarms `uids` (whatever their state):
    what a runner checks its alarms against when a coil opens."""
    cond = (PeriodicAlarm.line_id == line_id) & _open()
    if uids:
        cond = or_(cond, PeriodicAlarm.uid.in_(list(uids)[:900]))
    with db.session() as s:
        return {a.uid: alarm_dict(a) for a in s.scalars(select(PeriodicAlarm).where(cond))}


def open_counts(db: Database) -> dict[tuple[str, str], int]:
    """(line_id, surface) -> open alarms (the service's gauge)."""
    with db.session() as s:
        rows = s.execute(select(PeriodicAlarm.line_id, PeriodicAlarm.surface, func.count())
                         .where(_open()).group_by(PeriodicAlarm.line_id, PeriodicAlarm.surface))
        return {(line, surface): int(n) for line, surface, n in rows}


def utc(t: datetime | str) -> datetime:
    """A datetime (or ISO text) in UTC; a time without a zone is taken to be UTC."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def roll_changed(roll: str | None, raised_at: datetime | str, table: RollTable | None) -> bool:
    """Whether the alarm's roll was changed after it was raised: the roll table's `installed_at` for
    that roll (no zone: UTC) is later than `raised_at`. An alarm with no roll named never is."""
    if roll is None or table is None:
        return False
    installed = next((r.installed_at for r in table.rolls if r.name == roll), None)
    return installed is not None and utc(installed) > utc(raised_at)
