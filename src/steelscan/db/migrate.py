"""Alembic, run from code: `upgrade(db)` brings a database to head (on every open).

Two processes opening an empty PostgreSQL database at once must not both create the tables:
the upgrade runs inside one transaction holding an advisory lock (PostgreSQL DDL is
transactional, and so is SQLite's with our explicit BEGIN)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK = 0x57EE15CA  # any constant shared by all steelscan processes


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(db) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db, revision: str = "head") -> None:
    """Migrate `db` (a steelscan.db.Database) to `revision`; a no-op when already there."""
    if revision == "head" and current(db) == head():
        return
    cfg = alembic_config()
    with db.engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if db.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
