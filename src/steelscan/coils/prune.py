"""Keep defect crops within a time and size budget: the oldest go first, the defect records stay.

A crop whose defect is `pinned` (a review or a customer claim still needs it, see
`queries.set_pinned`) is never removed; it still counts toward the size budget, and the report
says when pinned crops alone are over it. Pruning reports what it removed (count, bytes, the
defects and coils, the oldest and newest removed), never silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from ..db import Database
from ..db.models import Defect, DefectCrop

DELETE_CHUNK = 500


@dataclass
class PruneReport:
    removed: int = 0
    removed_bytes: int = 0
    kept: int = 0
    kept_bytes: int = 0
    pinned_kept: int = 0
    defect_ids: list[int] = field(default_factory=list)
    coils: list[str] = field(default_factory=list)
    oldest: datetime | None = None
    newest: datetime | None = None
    over_budget: bool = False   # pinned crops alone exceed the size budget

    def line(self) -> str:
        if not self.removed:
            text = f"crops: nothing to prune ({self.kept} kept, {self.kept_bytes / 1e6:.1f} MB)"
        else:
            text = (f"crops: removed {self.removed} ({self.removed_bytes / 1e6:.1f} MB) of {len(self.coils)} coil(s), "
                    f"created {self.oldest:%Y-%m-%d %H:%M} .. {self.newest:%Y-%m-%d %H:%M}; defect records kept; "
                    f"{self.kept} crops kept ({self.kept_bytes / 1e6:.1f} MB, {self.pinned_kept} pinned)")
        if self.over_budget:
            text += "; pinned crops alone exceed the size budget"
        return text


def prune_crops(db: Database, *, max_age_days: float | None = None, max_bytes: int | None = None,
                now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Remove the crops of unpinned defects older than `max_age_days` (by the defect's
    `created_at`), then, oldest first, until all crops take at most `max_bytes`."""
    now = now or datetime.now(timezone.utc)
    size = func.length(DefectCrop.png)
    with db.session() as s:
        rows = s.execute(select(DefectCrop.defect_id, size, Defect.pinned, Defect.created_at, Defect.coil_id)
                         .join(Defect, Defect.id == DefectCrop.defect_id)
                         .order_by(Defect.created_at, Defect.id)).all()
    total = sum(r[1] for r in rows)
    cutoff = now - timedelta(days=max_age_days) if max_age_days is not None else None
    report = PruneReport()
    remove = []
    for defect_id, nbytes, pinned, created, coil_id in rows:
        if pinned:
            continue
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        old = cutoff is not None and created is not None and created < cutoff
        big = max_bytes is not None and total > max_bytes
        if not (old or big):
            continue
        remove.append(defect_id)
        total -= nbytes
        report.removed += 1
        report.removed_bytes += nbytes
        report.oldest = report.oldest or created
        report.newest = created
        if coil_id not in report.coils:
            report.coils.append(coil_id)
    report.defect_ids = remove
    report.kept = len(rows) - report.removed
    report.kept_bytes = sum(r[1] for r in rows) - report.removed_bytes
    report.pinned_kept = sum(1 for r in rows if r[2])
    report.over_budget = max_bytes is not None and report.kept_bytes > max_bytes
    if remove and not dry_run:
        with db.session(write=True) as s:
            for i in range(0, len(remove), DELETE_CHUNK):
                s.execute(delete(DefectCrop).where(DefectCrop.defect_id.in_(remove[i:i + DELETE_CHUNK])))
    return report
