"""`CoilStore`: the defect database as the line runner's DefectSink, and the coil views' queries.

Writes go through a queue to one background writer thread that drains whatever has piled up
into one transaction (executemany inserts), so the frame loop never waits on the database per
defect. `flush()` blocks until everything handed over is stored; a writer error is raised by the
next call (or flush/close), never swallowed. A transient error (database restarting, lock
timeout) is retried a few times before it counts; defects with a `uid` are stored once even if a
retried batch had in fact been committed.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Sequence

from sqlalchemy.exc import OperationalError

from ..db import Database, masked_url, open_database
from ..db.database import describe
from ..errors import DatabaseError
from . import alarms, queries, writes
from .records import (AlarmCloseRecord, AlarmLinkRecord, AlarmRecord, CoilInfo, DefectRecord, LineStatusRecord,
                      SurfaceSummary, UninspectedRecord)

RETRY_DELAYS_S = (0.2, 1.0, 3.0)


class CoilStore:
    """DefectSink + queries over one database (`url`: a SQLAlchemy URL or a bare SQLite path).

    `batch_items`: most queued calls merged into one transaction; `queue_items`: calls that may
    wait before a put blocks (back-pressure instead of unbounded memory if the database stalls).
    Counters for benchmarks: `transactions`, `rows`, `busy_s` (writer time inside the database).
    """

    def __init__(self, url: str | Path | Database, *, batch_items: int = 500, queue_items: int = 10_000) -> None:
        self.db = url if isinstance(url, Database) else open_database(url)
        self.batch_items = batch_items
        self.transactions = self.rows = 0
        self.busy_s = 0.0
        self._known: set[str] = set()   # coil ids this store has made sure exist
        self._queue: queue.Queue = queue.Queue(maxsize=queue_items)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="coil-store-writer", daemon=True)
        self._thread.start()

    # --- DefectSink -------------------------------------------------------------------------
    def upsert_coil(self, coil: CoilInfo) -> None:
        self._put(("coil", coil))

    def add_defects(self, defects: Sequence[DefectRecord]) -> None:
        if defects:
            self._put(("defects", list(defects)))

    def add_uninspected(self, spans: Sequence[UninspectedRecord]) -> None:
        if spans:
            self._put(("uninspected", list(spans)))

    def close_surface(self, summary: SurfaceSummary) -> None:
        self._put(("surface", summary))

    def publish_status(self, status: LineStatusRecord) -> None:
        """The runner's status of one camera for the live page (queued like the rest; only the
        latest of a batch is written)."""
        self._put(("status", status))

    def raise_alarm(self, alarm: AlarmRecord) -> None:
        self._put(("alarm", alarm))

    def link_alarm(self, link: AlarmLinkRecord) -> None:
        self._put(("alarm_link", link))

    def close_alarm(self, close: AlarmCloseRecord) -> None:
        self._put(("alarm_close", close))

    def alarm_states(self, line_id: str, uids=()) -> dict[str, dict]:
        """The line's open alarms and the alarms `uids`, as stored now (a read, not queued)."""
        return alarms.alarm_states(self.db, line_id, uids)

    def flush(self) -> None:
        """Block until everything handed over so far is stored (or raise the writer's error)."""
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put(("flush", done))
            done.wait()
        self._raise_error()

    def close(self) -> None:
        """Flush, stop the writer, release the database. Raises the writer's error if any."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(("stop", None))
            self._thread.join()
        self.db.dispose()
        self._raise_error()

    def __enter__(self) -> "CoilStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- queries (read the committed state; call flush() first to see your own writes) -----
    def list_coils(self, **filters) -> tuple[list[dict], int]:
        return queries.list_coils(self.db, **filters)

    def coil(self, coil_id: str) -> dict | None:
        return queries.coil_detail(self.db, coil_id)

    def defects(self, coil_id: str | None, **filters) -> list[dict]:
        return queries.defects(self.db, coil_id, **filters)

    def uninspected(self, coil_id: str, surface: str | None = None) -> list[dict]:
        return queries.uninspected(self.db, coil_id, surface)

    def crops(self, defect_ids: Sequence[int]) -> dict[int, bytes]:
        return queries.crops(self.db, defect_ids)

    def set_pinned(self, defect_ids: Sequence[int], pinned: bool = True) -> int:
        return queries.set_pinned(self.db, defect_ids, pinned)

    # --- the writer --------------------------------------------------------------------------
    def _put(self, item: tuple) -> None:
        if self._closed:
            raise DatabaseError("the coil store is closed", field="db")
        self._raise_error()
        self._queue.put(item)

    def _raise_error(self) -> None:
        if self._error is not None:
            e = self._error
            if isinstance(e, DatabaseError):
                raise e
            raise DatabaseError(f"writing to {masked_url(self.db.url)} failed: {describe(self.db.url, e)}",
                                field="db") from e

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.batch_items:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [b for b in batch if b[0] not in ("flush", "stop")]
            if work and self._error is None:
                try:
                    self._write_with_retry(work)
                except BaseException as e:  # kept for the caller: raised by the next call
                    self._error = e
            for kind, done in batch:
                if kind == "flush":
                    done.set()
            if any(kind == "stop" for kind, _ in batch):
                return

    def _write_with_retry(self, work: list[tuple]) -> None:
        """A batch is one transaction: after a transient error it is rolled back whole and
        written again; other errors (constraints, bad values) are not retried."""
        for delay in (*RETRY_DELAYS_S, None):
            try:
                return self._write(work)
            except OperationalError:
                if delay is None:
                    raise
                time.sleep(delay)

    def _write(self, work: list[tuple]) -> None:
        coils = writes.merge_coils([x for kind, x in work if kind == "coil"])
        defects = [d for kind, x in work if kind == "defects" for d in x]
        spans = [s for kind, x in work if kind == "uninspected" for s in x]
        surfaces = [x for kind, x in work if kind == "surface"]
        statuses = [x for kind, x in work if kind == "status"]
        raised = [x for kind, x in work if kind == "alarm"]
        links = [x for kind, x in work if kind == "alarm_link"]
        closes = [x for kind, x in work if kind == "alarm_close"]
        needed = {r.coil_id for r in (*defects, *spans, *surfaces, *raised, *links)} - self._known - set(coils)
        t0 = time.perf_counter()
        with self.db.session(write=True) as s:   # one transaction; Core statements on its connection
            conn = s.connection()
            writes.upsert_coils(conn, coils, needed)
            writes.insert_defects(conn, defects)
            writes.insert_uninspected(conn, spans)
            writes.upsert_surfaces(conn, surfaces)
            writes.upsert_status(conn, statuses)
            writes.insert_alarms(conn, raised)
            writes.link_alarms(conn, links)
            writes.close_alarms(conn, closes)
        self.busy_s += time.perf_counter() - t0
        self.transactions += 1
        self.rows += len(coils) + len(defects) + len(spans) + len(surfaces) + len(statuses) + len(raised) \
            + len(links) + len(closes)
        self._known |= needed | set(coils)
