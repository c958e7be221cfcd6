"""One engine and one session factory per database, migrated to head when opened.

SQLite: WAL journal, foreign keys on, a busy timeout, and writes that start with
BEGIN IMMEDIATE (two writers queue on the lock instead of failing on a stale snapshot).
PostgreSQL: psycopg 3, a connect timeout so a dead host fails in seconds."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseError
from .url import database_url, masked_url

CONNECT_TIMEOUT_S = 5
# psycopg warns through logging when it tidies up after a failed pipeline; with no handler set,
# Python would print that to stderr beside our one-line error. Apps that configure logging see it.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
SQLITE_BUSY_TIMEOUT_S = 30


class Database:
    """An open database: `engine`, `url`, `dialect` ("sqlite" | "postgresql") and `session()`."""

    def __init__(self, url: URL, engine: Engine) -> None:
        self.url, self.engine = url, engine
        self.dialect = engine.dialect.name
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        # an in-memory SQLite database is one shared connection: one transaction at a time
        self._serial = threading.RLock() if isinstance(engine.pool, StaticPool) else nullcontext()

    def __repr__(self) -> str:
        return f"Database({masked_url(self.url)})"

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success, rolled back on error.
        `write=True` takes SQLite's write lock up front (BEGIN IMMEDIATE)."""
        with self._serial, self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                with self._sessions(bind=conn) as s:
                    yield s
                    s.flush()

    def dispose(self) -> None:
        self.engine.dispose()


def _set_wal(cur) -> None:
    """Switch to the WAL journal. Two processes opening a new database at once can both ask; SQLite
    answers the loser "database is locked" at once, without its busy handler, so retry until the
    busy timeout has passed."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in (None, "", ":memory:")
    kwargs = {"poolclass": StaticPool} if memory else {}
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
                           **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        if not memory:
            _set_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    # use_insertmanyvalues=False: executemany goes to psycopg's pipelined executemany, several
    # times faster than SQLAlchemy's multi-row VALUES statements that psycopg re-parses in Python
    return create_engine(url, pool_pre_ping=True, use_insertmanyvalues=False,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def describe(url: URL, error: BaseException) -> str:
    """The driver's message of `error` on one line, without the password of `url`."""
    orig = getattr(error, "orig", None) or error
    reason = " ".join(str(orig).split()) or orig.__class__.__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:300]


def unreachable(url: URL, error: BaseException) -> DatabaseError:
    """A one-line DatabaseError for a database that does not answer; no password in it."""
    return DatabaseError(f"cannot use database {masked_url(url)}: {describe(url, error)}", field="db")


def open_database(spec: str | Path | URL, *, migrate: bool = True) -> Database:
    """Open (and by default migrate to head) the database at `spec`: a URL or a bare path.
    Raises DatabaseError with one readable line when it is malformed or does not answer."""
    url = database_url(spec)
    engine = _sqlite_engine(url) if url.get_backend_name() == "sqlite" else _postgres_engine(url)
    db = Database(url, engine)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        if migrate:
            from .migrate import upgrade
            upgrade(db)
    except (DBAPIError, SQLAlchemyError, OSError) as e:
        engine.dispose()
        raise unreachable(url, e) from None
    return db
