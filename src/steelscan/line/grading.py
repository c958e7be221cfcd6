"""Grading at coil close (`steelscan line --rules FILE_OR_DIR`): once the runner has closed a coil on
every surface this line process inspects (`--surface`, else the line config's), the coil is graded
from the database (its stored defects and uninspected spans, as soon as the records of its close
have reached it) with the rule file chosen for its customer and order (steelscan.coils.rule_source),
and the grade is stored with graded_by "line" (steelscan.coils.grades).

A background thread does the work: the frame loop never waits on grading. Grading never stops the
line. A coil whose grading fails is stored as HOLD with the reason "grading failed: ..." (a person
looks at it) and the problem is reported; a coil whose records have not reached the database within
`wait_s` (the database is down: they wait in the spool) is reported as not graded (grade it later
with `steelscan coil grade --coil ID --db DB --rules ... --store`). With one line process per
camera, each process grades the coil when its own surface closes: the later grade, made with both
surfaces stored, is the current one. A coil that closed on only some surfaces (the others never
came) is graded when the run ends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Sequence

from sqlalchemy import select

from ..coils.grades import GRADED_BY_LINE, failed_grading, grade_stored, store_grade
from ..coils.rule_source import RuleSource
from ..db.models import CoilSurface

log = logging.getLogger("steelscan.line")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or e.__class__.__name__
    return text[:300]


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)   # SQLite keeps no zone; we store UTC


class CloseGrader:
    """Grades the coils the runner closes (its `on_coil_closed`), in a thread of its own.

    `db`: the database URL or path the line writes to; `on_problem(text)`: where problems go (the
    runner's problem list); `graded`: the stored grades of this run, in order."""

    def __init__(self, db: str, source: RuleSource, surfaces: Sequence[str] = ("top", "bottom"), *,
                 on_problem: Callable[[str], None] | None = None, wait_s: float = 300.0, poll_s: float = 0.2) -> None:
        self.db_spec, self.source, self.surfaces = db, source, set(surfaces)
        self.on_problem = on_problem
        self.wait_s, self.poll_s = wait_s, poll_s
        self.graded: list[dict] = []
        self.problems: list[str] = []
        self._db = None
        self._closing: dict[str, dict[str, datetime]] = {}   # coil -> surfaces closed so far (and when)
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coil-grader", daemon=True)
        self._thread.start()

    def coil_closed(self, coil_id: str, surface: str, at: datetime) -> None:
        """The runner closed `coil_id` on `surface` (its summary went to the sink at `at`); once
        every surface of `surfaces` has, the coil is graded."""
        with self._lock:
            closed = self._closing.setdefault(coil_id, {})
            closed[surface] = at
            if not self.surfaces <= set(closed):
                return
            del self._closing[coil_id]
        self._queue.put((coil_id, closed))

    def close(self) -> None:
        """Grade what waits, and the coils closed on only some surfaces (a surface that never came),
        then stop; a coil whose records are not in the database by now is reported, not waited for.
        Call it after the sink is closed (its records flushed)."""
        with self._lock:
            rest, self._closing = self._closing, {}
        for coil_id, closed in rest.items():
            self._queue.put((coil_id, closed))
        self._stopping.set()
        self._queue.put(None)
        self._thread.join()
        if self._db is not None:
            self._db.dispose()
            self._db = None

    # --- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._grade(*job)
            except Exception as e:   # never let the thread die: the next coil is graded all the same
                self._problem(f"{job[0]}: not graded: {_one_line(e)}")

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        if self.on_problem is not None:
            self.on_problem(text)
        else:
            log.warning(text)

    def _database(self):
        if self._db is None:
            from ..db import open_database

            self._db = open_database(self.db_spec)
        return self._db

    def _stored(self, coil_id: str, closed: dict[str, datetime]) -> bool:
        """Whether the database holds each closed surface's summary from this close (and so every
        record handed over before it: the sinks store in order)."""
        with self._database().session() as s:
            rows = s.execute(select(CoilSurface.surface, CoilSurface.closed_at)
                             .where(CoilSurface.coil_id == coil_id)).all()
        at = {}
        for surface, t in rows:
            at[surface] = max(at.get(surface, _utc(t)), _utc(t))
        return all(surface in at and at[surface] >= t for surface, t in closed.items())

    def _wait_stored(self, coil_id: str, closed: dict[str, datetime]) -> str | None:
        """None once the coil's records are in the database; else why not (given up after wait_s,
        or at once when closing)."""
        deadline = time.monotonic() + self.wait_s
        why = f"its records had not reached the database after {self.wait_s:g} s"
        while True:
            try:
                if self._stored(coil_id, closed):
                    return None
            except Exception as e:   # the database is down: the records wait in the spool
                why = f"the database did not answer ({_one_line(e)})"
                if self._db is not None:
                    self._db.dispose()
                    self._db = None
            if self._stopping.is_set() or time.monotonic() > deadline:
                return why
            time.sleep(self.poll_s)

    def _grade(self, coil_id: str, closed: dict[str, datetime]) -> None:
        why = self._wait_stored(coil_id, closed)
        if why is not None:
            self._problem(f"{coil_id}: not graded: {why}; grade it with `steelscan coil grade --coil {coil_id} "
                          f"--db DB --rules {self.source.path} --store`")
            return
        db = self._database()
        try:
            grading = grade_stored(db, coil_id, self.source)
        except Exception as e:
            grading = failed_grading(coil_id, _one_line(e))
            self._problem(f"{coil_id}: grading failed, stored as HOLD: {_one_line(e)}")
        self.graded.append(store_grade(db, grading, GRADED_BY_LINE))
