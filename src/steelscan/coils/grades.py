"""Stored grades: each grading of a coil with its decision, reasons, cut list and the rule file
that graded it (name, sha256 and text). Grades are only ever added: the history of a coil is all
of them, newest first, and the latest (by `graded_at`, then id) is the coil's current grade.

    grading = grade_stored(db, "C1", RuleSource("rules/"))   # a Grading; nothing stored yet
    record = store_grade(db, grading, graded_by="anna")       # the stored grade as a dict
    history(db, "C1"); current(db, "C1")

Defect ids in stored reasons are the database's defect ids (integers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..db import Database
from ..db.models import CoilGrade as GradeRow
from ..db.models import utcnow
from .grading import CoilGrade, Reason, grade_coils
from .queries import iso
from .rolls import RollTable
from .rule_source import LoadedRules, RuleSource
from .stored import stored_coil

GRADED_BY_LINE = "line"


@dataclass
class Grading:
    """A grade and what it was made from (not stored yet)."""

    grade: CoilGrade
    rules: LoadedRules | None     # None: grading failed before a rule file was read
    n_defects: int


def grade_stored(db: Database, coil_id: str, rules: RuleSource | LoadedRules, *,
                 rolls: RollTable | None = None) -> Grading:
    """Grade a coil of the database (its level-2 data, defects and uninspected spans) with a rule
    file, or with the file a RuleSource chooses for its customer and order. Stores nothing."""
    stored = stored_coil(db, coil_id)
    if isinstance(rules, RuleSource):
        rules = rules.for_coil(stored.info.customer, stored.info.order)
    grade = grade_coils(rules.rules, stored.defects, {coil_id: stored.info}, stored.uninspected, rolls)[0]
    return Grading(grade, rules, len(stored.defects))


def failed_grading(coil_id: str, problem: str, rules: LoadedRules | None = None) -> Grading:
    """A HOLD that says grading failed and why: a person has to look at the coil."""
    reason = Reason("grading-error", "error", "HOLD", None, f"grading failed: {problem}", 0, 0, "", None, 0.0, 0.0)
    grade = CoilGrade(coil_id, "-", "HOLD", None, [reason], 0.0, "-", [], [], 0.0)
    return Grading(grade, rules, 0)


def _db_ids(reasons: list[dict]) -> list[dict]:
    for r in reasons:
        r["defect_ids"] = [int(i) if str(i).isdigit() else i for i in r["defect_ids"]]
    return reasons


def store_grade(db: Database, grading: Grading, graded_by: str, graded_at: datetime | None = None) -> dict:
    """Add a grade to the coil's history (it becomes the current one); the stored record."""
    g, rules = grading.grade.to_json(), grading.rules
    pieces = [p | {"reasons": _db_ids(p["reasons"])} for p in g["pieces"]]
    row = GradeRow(coil_id=g["coil_id"], decision=g["decision"], grade=g["grade"], reasons=_db_ids(g["reasons"]),
                   pieces=pieces, length_m=g["length_m"], length_source=g["length_source"], prime_m=g["prime_m"],
                   n_defects=grading.n_defects, rule_set=g["rule_set"],
                   rules_file=str(rules.path) if rules else None, rules_sha256=rules.sha256 if rules else "",
                   rules_text=rules.text if rules else "", graded_by=graded_by, graded_at=graded_at or utcnow())
    with db.session(write=True) as s:
        s.add(row)
        s.flush()
        return record(row)


def record(row: GradeRow) -> dict:
    return {"id": row.id, "coil_id": row.coil_id, "decision": row.decision, "grade": row.grade,
            "reasons": row.reasons, "pieces": row.pieces, "cuts_m": [p["end_m"] for p in row.pieces[:-1]],
            "length_m": row.length_m, "length_source": row.length_source, "prime_m": row.prime_m,
            "n_defects": row.n_defects, "rule_set": row.rule_set, "rules_file": row.rules_file,
            "rules_sha256": row.rules_sha256, "rules_text": row.rules_text, "graded_by": row.graded_by,
            "graded_at": iso(row.graded_at)}


def _newest_first(q):
    return q.order_by(GradeRow.graded_at.desc(), GradeRow.id.desc())


def history(db: Database, coil_id: str) -> list[dict]:
    """Every grade of the coil, newest first (empty when never graded)."""
    with db.session() as s:
        return [record(r) for r in s.scalars(_newest_first(select(GradeRow).where(GradeRow.coil_id == coil_id)))]


def current(db: Database, coil_id: str) -> dict | None:
    """The coil's current grade (the latest), or None."""
    with db.session() as s:
        row = s.scalars(_newest_first(select(GradeRow).where(GradeRow.coil_id == coil_id)).limit(1)).first()
        return None if row is None else record(row)
