"""Past inspections in the defect database (steelscan.db): one row per accepted /v1/inspect.

Rows survive restarts; the full response JSON is kept so GET /v1/inspections/{id} returns
exactly what the POST returned. `db` is a SQLAlchemy URL or a bare path meaning SQLite."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from ..db import open_database
from ..db.models import Inspection


def _iso(t: datetime) -> str:
    if t.tzinfo is None:  # SQLite keeps no zone; we store UTC
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class InspectionStore:
    """Thread-safe: every call runs in its own session from the database's one factory."""

    def __init__(self, db: str | Path) -> None:
        self.db = open_database(db)

    def add(self, filename: str, result: dict, latency_ms: float) -> dict:
        """Store one inspection (result = InspectionResult.to_json() + "rles"); returns the
        stored record {"id", "created_at", "filename", "latency_ms", "result"}."""
        now = datetime.now(timezone.utc)
        created = now.replace(microsecond=now.microsecond // 1000 * 1000)  # ms, as the record shows
        defects = result.get("defects", [])
        row = Inspection(created_at=created, filename=filename, verdict=result.get("verdict"),
                         n_defects=len(defects), classes=sorted({d["class_name"] for d in defects}),
                         latency_ms=float(latency_ms), response={})
        with self.db.session(write=True) as s:
            s.add(row)
            s.flush()
            record = {"id": int(row.id), "created_at": _iso(created), "filename": filename,
                      "latency_ms": round(float(latency_ms), 2), "result": result}
            row.response = record
        return record

    def get(self, inspection_id: int) -> dict | None:
        with self.db.session() as s:
            response = s.scalar(select(Inspection.response).where(Inspection.id == inspection_id))
        return response

    def list(self, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
        """Newest first: (summaries, total count)."""
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Inspection))
            rows = s.scalars(select(Inspection).order_by(Inspection.id.desc()).limit(limit).offset(offset)).all()
            items = [{"id": r.id, "created_at": _iso(r.created_at), "filename": r.filename, "verdict": r.verdict,
                      "n_defects": r.n_defects, "classes": list(r.classes), "latency_ms": r.latency_ms}
                     for r in rows]
        return items, int(total or 0)

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(Inspection)) or 0)

    def close(self) -> None:
        self.db.dispose()
