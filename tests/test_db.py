"""The database layer: URLs, migrations on empty SQLite and PostgreSQL, SQLite settings, the
service history on it (and the adoption of a pre-schema history), unreachable databases."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from steelscan.db import database_url, masked_url, open_database
from steelscan.db.migrate import current, head
from steelscan.db.models import Base
from steelscan.errors import DatabaseError
from steelscan.service.store import InspectionStore

TABLES = {"coils", "coil_surfaces", "defects", "defect_crops", "uninspected_spans", "inspections", "coil_grades"}


def test_database_url_forms(tmp_path):
    bare = database_url(tmp_path / "sub" / "x.db")
    assert bare.drivername == "sqlite" and bare.database == str(tmp_path / "sub" / "x.db")
    assert (tmp_path / "sub").is_dir()
    assert database_url(f"sqlite:///{tmp_path}/y.db").database == f"{tmp_path}/y.db"
    assert database_url(":memory:").drivername == "sqlite"
    for spec in ("postgresql://u:pw@h:5433/db", "postgres://u:pw@h:5433/db", "postgresql+psycopg://u:pw@h:5433/db"):
        url = database_url(spec)
        assert (url.drivername, url.host, url.port, url.database, url.password) == \
            ("postgresql+psycopg", "h", 5433, "db", "pw")
    assert masked_url(database_url("postgresql://u:pw@h/db")) == "postgresql+psycopg://u:***@h/db"
    assert "pw" not in masked_url("postgresql://u:pw@h:notaport/db")
    for bad in ("mysql://u:pw@h/db", "://nope", "  "):
        with pytest.raises(DatabaseError) as e:
            database_url(bad)
        assert "pw" not in str(e.value)


def _check_schema(db):
    assert current(db) == head()
    assert TABLES <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:  # the migrations build exactly the models
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_migrations_on_empty_sqlite(tmp_path):
    db = open_database(tmp_path / "new.db")
    _check_schema(db)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()
    again = open_database(f"sqlite:///{tmp_path}/new.db")  # reopening is a no-op upgrade
    _check_schema(again)
    again.dispose()


def test_migrations_on_empty_postgres(postgres_url):
    db = open_database(postgres_url)
    _check_schema(db)
    db.dispose()


def test_inspection_history_round_trip(db_url):
    store = InspectionStore(db_url)
    result = {"verdict": "NG", "defects": [{"class_name": "scratches"}, {"class_name": "pits"}], "rles": {}}
    first = store.add("a.png", result, 12.345)
    second = store.add("b.png", {"verdict": "OK", "defects": []}, 3.0)
    assert store.get(first["id"]) == first and store.get(second["id"]) == second
    assert store.get(10**9) is None
    items, total = store.list(limit=1)
    assert total == 2 == store.count() and [i["id"] for i in items] == [second["id"]]
    assert store.list()[0][1]["classes"] == ["pits", "scratches"]
    assert store.list()[0][1]["created_at"] == first["created_at"]
    store.close()


def test_pre_schema_history_is_adopted(tmp_path):
    """A history written by the old raw-sqlite3 store keeps its rows and ids."""
    path = tmp_path / "old.sqlite"
    record = {"id": 7, "created_at": "2026-01-02T03:04:05.678+00:00", "filename": "x.png", "latency_ms": 5.0,
              "result": {"verdict": "NG", "defects": [{"class_name": "pits"}]}}
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE inspections (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
                      " filename TEXT NOT NULL, verdict TEXT, n_defects INTEGER NOT NULL, classes TEXT NOT NULL,"
                      " latency_ms REAL NOT NULL, response TEXT NOT NULL)")
    con.execute("INSERT INTO inspections VALUES (7, ?, 'x.png', 'NG', 1, '[\"pits\"]', 5.0, ?)",
                (record["created_at"], json.dumps(record)))
    con.commit()
    con.close()
    store = InspectionStore(path)
    assert store.get(7) == record
    items, total = store.list()
    assert total == 1 and items[0]["created_at"] == record["created_at"] and items[0]["classes"] == ["pits"]
    assert store.add("y.png", {"verdict": "OK", "defects": []}, 1.0)["id"] == 8
    store.close()


def test_database_that_does_not_answer(postgres_server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://steelscan:topsecret@127.0.0.1:{port}/nothing"
    with pytest.raises(DatabaseError) as e:
        open_database(url)
    text = str(e.value)
    assert "\n" not in text and "topsecret" not in text and f"127.0.0.1:{port}" in text
    # a server that answers but refuses the password: one line, password masked
    wrong = postgres_server.replace(postgres_server.split(":")[2].split("@")[0], "wrong-pw")
    with pytest.raises(DatabaseError) as e:
        open_database(wrong)
    assert "\n" not in str(e.value) and "wrong-pw" not in str(e.value) and "password" in str(e.value)


def test_in_memory_history_from_many_threads():
    """An in-memory database is one connection: concurrent requests must queue, not collide."""
    from concurrent.futures import ThreadPoolExecutor

    store = InspectionStore(":memory:")
    with ThreadPoolExecutor(6) as pool:
        records = list(pool.map(lambda i: store.add(f"{i}.png", {"verdict": "OK", "defects": []}, 1.0), range(60)))
        totals = set(pool.map(lambda _: store.list(limit=3)[1] >= 0, range(30)))
    assert store.count() == 60 and len({r["id"] for r in records}) == 60 and totals == {True}
    store.close()
