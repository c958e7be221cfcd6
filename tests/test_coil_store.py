"""CoilStore: every field round-trips on SQLite and PostgreSQL, inserts are batched while the
caller never waits, writer errors surface, and two processes writing the two surfaces of one
coil into one database (PostgreSQL, and SQLite too) at once merge into one coil with nothing lost
or doubled."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_coil_records
from sqlalchemy import func, select

from steelscan.coils.records import CoilInfo, DefectRecord, SurfaceSummary
from steelscan.coils.store import CoilStore
from steelscan.db.models import Coil, Defect
from steelscan.errors import DatabaseError

ROOT = Path(__file__).resolve().parents[1]


def _stored(store: CoilStore, coil_id: str) -> list[DefectRecord]:
    """The stored defects of a coil back as DefectRecords (crops included)."""
    rows = store.defects(coil_id)
    crops = store.crops([d["id"] for d in rows])
    names = [f.name for f in dataclasses.fields(DefectRecord) if f.name != "crop_png"]
    return [DefectRecord(**{k: d[k] for k in names}, crop_png=crops.get(d["id"])) for d in rows]


def _key(d: DefectRecord):
    return d.surface, d.start_m, d.across_start_mm


def test_round_trip_every_field(db_url):
    coil, defects, spans, summaries = make_coil_records("C-7", 30, seed=3)
    defects[5].model_name = "oracle:" + "/very/long/path" * 30   # no length limit on any dialect
    with CoilStore(db_url) as store:
        store.upsert_coil(coil)
        store.add_defects(defects[:12])
        store.add_defects(defects[12:])
        store.add_uninspected(spans)
        for s in summaries:
            store.close_surface(s)
        store.flush()
        assert sorted(_stored(store, "C-7"), key=_key) == sorted(defects, key=_key)
        detail = store.coil("C-7")
        assert {k: detail[k] for k in dataclasses.asdict(coil)} == dataclasses.asdict(coil)
        assert detail["n_defects"] == 30
        assert detail["counts_by_surface"] == {"top": 15, "bottom": 15}
        by_class = {c["class_id"]: c["count"] for c in detail["counts_by_class"]}
        assert by_class == {c: sum(d.class_id == c for d in defects) for c in by_class} and sum(by_class.values()) == 30
        got_spans = [(s["surface"], s["start_m"], s["end_m"], s["reason"], s["detail"])
                     for s in store.uninspected("C-7")]
        assert sorted(got_spans) == sorted((s.surface, s.start_m, s.end_m, s.reason, s.detail) for s in spans)
        assert detail["uninspected_m"] == {"top": 1.25, "bottom": 0.5}
        got = {s["surface"]: s for s in detail["surfaces"]}
        for s in summaries:
            assert {k: got[s.surface][k] for k in dataclasses.asdict(s) if k != "coil_id"} == \
                {k: v for k, v in dataclasses.asdict(s).items() if k != "coil_id"}
        assert store.coil("nope") is None


def test_coil_upserts_merge_and_surfaces_replace(db_url):
    with CoilStore(db_url) as store:
        store.add_defects(make_coil_records("K", 2)[1])   # defects before any level-2 data
        store.upsert_coil(CoilInfo("K", grade="S235", width_mm=1000.0))
        store.flush()
        store.upsert_coil(CoilInfo("K", customer="ACME", width_mm=1010.0))  # None never erases
        store.close_surface(SurfaceSummary("K", "top", "cam-top", 5, 4.0, 5.0))
        store.close_surface(SurfaceSummary("K", "top", "cam-top", 9, 8.5, 9.0, 1000.0, 1001.0, 1002.0))
        store.flush()
        c = store.coil("K")
        assert (c["grade"], c["customer"], c["width_mm"]) == ("S235", "ACME", 1010.0)
        assert [(s["frames"], s["end_m"], s["strip_width_mm_max"]) for s in c["surfaces"]] == [(9, 9.0, 1002.0)]


def test_uid_makes_writes_idempotent(db_url):
    _, defects, _, _ = make_coil_records("U", 12, seed=4)
    with CoilStore(db_url) as store:
        store.add_defects(defects)
        store.flush()
        store.add_defects(defects[:8] + defects[:8])   # a retried batch, and a repeat inside it
        store.flush()
        stored = store.defects("U")
    with_uid = [d for d in defects if d.uid]
    assert len(with_uid) == 6 and sum(d["uid"] is not None for d in stored) == 6
    assert len(stored) == 12 + 2 * 4   # only the 4 uid-less defects of the repeats are stored again


def test_spans_are_stored_once_by_their_uid(db_url):
    """Uninspected spans carry a uid made of coil, surface, camera, start and reason: the same span
    handed over again (a retry, the spool's replay, a rerun of the same frames) is stored once."""
    from steelscan.coils.records import UninspectedRecord, span_uid

    spans = make_coil_records("S", 4)[2]
    again = [UninspectedRecord(s.coil_id, s.surface, s.camera_id, s.start_m, s.end_m, s.reason, s.detail)
             for s in spans]                                                   # a rerun makes them anew
    other = UninspectedRecord("S", "top", "cam-top", 5.0, 6.25, "behind")     # same place, other reason
    assert [s.uid for s in again] == [s.uid for s in spans] and other.uid not in {s.uid for s in spans}
    assert spans[0].uid == span_uid("S", "top", "cam-top", 5.0, "missing") and spans[0].uid.startswith("span-")
    with CoilStore(db_url) as store:
        store.add_uninspected(spans)
        store.flush()
        store.add_uninspected(again + again + [other])   # a retried batch, a repeat inside it, one new
        store.flush()
        stored = store.uninspected("S")
    assert sorted(u["uid"] for u in stored) == sorted([s.uid for s in spans] + [other.uid])


def test_migration_0005_gives_stored_spans_their_uid(db_url):
    """A database at revision 0002 holding spans, one of them twice (the duplicate the uid ends):
    the upgrade gives each span the uid the code computes; the repeat keeps none."""
    from sqlalchemy import text

    from steelscan.coils.records import UninspectedRecord, span_uid
    from steelscan.db import open_database
    from steelscan.db.migrate import current, head, upgrade

    db = open_database(db_url, migrate=False)
    upgrade(db, "0002")
    rows = [("top", "cam-top", 1.0, 2.0, "missing"), ("bottom", "cam-bottom", 0.0, 0.5, "behind"),
            ("top", "cam-top", 1.0, 2.0, "missing")]
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO coils (coil_id, created_at, updated_at) VALUES ('C', :t, :t)"),
                     {"t": "2026-12-01 00:00:00"})
        conn.execute(text("INSERT INTO uninspected_spans (coil_id, surface, camera_id, start_m, end_m, reason, "
                          "created_at) VALUES ('C', :s, :c, :a, :b, :r, :t)"),
                     [{"s": s, "c": c, "a": a, "b": b, "r": r, "t": "2026-12-01 00:00:00"} for s, c, a, b, r in rows])
    upgrade(db)
    assert current(db) == head()
    with db.engine.connect() as conn:
        got = conn.execute(text("SELECT surface, camera_id, start_m, reason, uid FROM uninspected_spans "
                                "ORDER BY id")).all()
    db.dispose()
    assert [g[-1] for g in got] == [span_uid("C", *g[:4]) for g in got[:2]] + [None]
    with CoilStore(db_url) as store:   # the repeat of a stored span is refused from now on
        store.add_uninspected([UninspectedRecord("C", "top", "cam-top", 1.0, 2.0, "missing")])
        store.flush()
        assert len(store.uninspected("C")) == 3


def _hold_write_lock(db_url: str, path: Path | None):
    """Open a connection that blocks every insert into defects until released."""
    if path is not None:
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        return lambda: (con.execute("ROLLBACK"), con.close())
    import psycopg
    con = psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql"))
    con.execute("LOCK TABLE defects IN EXCLUSIVE MODE")
    return lambda: (con.rollback(), con.close())


def test_inserts_are_batched_and_never_wait(db_url, tmp_path):
    coil, defects, _, _ = make_coil_records("B", 400, seed=5)
    with CoilStore(db_url) as store:
        store.upsert_coil(coil)
        store.flush()
        before = store.transactions
        release = _hold_write_lock(db_url, tmp_path / "coils.db" if db_url.startswith("sqlite") else None)
        for d in defects:   # 400 calls return while the database is locked: nobody waits
            store.add_defects([d])
        release()
        store.flush()
        assert store.transactions - before <= 2   # the first call alone, then all the rest at once
        assert store.coil("B")["n_defects"] == 400 == store.rows - 1
        assert store.busy_s > 0


def test_writer_error_surfaces_on_next_call(tmp_path):
    store = CoilStore(tmp_path / "e.db")
    bad = dataclasses.replace(make_coil_records("E", 1)[1][0], class_name=None)   # NOT NULL
    store.add_defects([bad])
    with pytest.raises(DatabaseError) as e:
        store.flush()
    assert "\n" not in str(e.value) and "class_name" in str(e.value)
    with pytest.raises(DatabaseError):
        store.add_defects(make_coil_records("E", 1)[1])
    with pytest.raises(DatabaseError):
        store.close()


def test_queries_filter_and_page(coil_db):
    store = CoilStore(coil_db)
    everything = store.defects("C1")
    assert len(everything) == 40 and len(store.defects(None)) == 43
    top = store.defects("C1", surface="top")
    assert len(top) == 20 and {d["surface"] for d in top} == {"top"}
    window = store.defects("C1", from_m=5.0, to_m=10.0)
    assert window and all(d["end_m"] >= 5.0 and d["start_m"] <= 10.0 for d in window)
    assert len(window) == sum(d["end_m"] >= 5.0 and d["start_m"] <= 10.0 for d in everything)
    assert {d["class_id"] for d in store.defects("C1", class_id=3)} == {3}
    assert store.set_pinned([everything[0]["id"], everything[2]["id"]]) == 2
    assert [d["pinned"] for d in store.defects("C1")[:3]] == [True, False, True]
    coils, total = store.list_coils()
    assert total == 2 and [c["coil_id"] for c in coils] == ["C2", "C1"]   # newest first
    assert [c["n_defects"] for c in coils] == [3, 40]
    assert store.list_coils(limit=1, offset=1)[0][0]["coil_id"] == "C1"
    assert store.list_coils(line_id="L2")[1] == 2 and store.list_coils(line_id="nope")[1] == 0
    assert store.list_coils(grade="DX51D")[1] == 2
    assert store.list_coils(since="2000-01-01")[1] == 2 and store.list_coils(until="2000-01-01")[1] == 0
    store.close()


WRITER = """
import sys
import time
from pathlib import Path
from conftest import make_coil_records
from steelscan.coils.records import CoilInfo
from steelscan.coils.store import CoilStore
url, surface, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
coil, defects, spans, summaries = make_coil_records("W1", n, seed=11 if surface == "top" else 12, surfaces=(surface,))
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
store = CoilStore(url, batch_items=4)   # both migrate the empty database at once
top_l2, bottom_l2 = CoilInfo("W1", grade="DX51D"), CoilInfo("W1", customer="ACME", width_mm=1200.0)
store.upsert_coil(top_l2 if surface == "top" else bottom_l2)   # each process knows part of level 2
for i in range(0, n, 7):
    store.add_defects(defects[i:i + 7])
    if i % 70 == 0:
        store.flush()
store.add_uninspected(spans)
store.close_surface(summaries[0])
store.close()
print("transactions", store.transactions, flush=True)
"""


def test_two_processes_write_one_coil(db_url, tmp_path):
    """Top and bottom camera processes, one (empty) database, at once: SQLite queues the writers on
    its lock, PostgreSQL runs them side by side."""
    script, go, n = tmp_path / "writer.py", tmp_path / "go", 300
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), db_url, s, str(n), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in ("top", "bottom")]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert int(out.split()[-1]) > 1   # many transactions each: the writes interleaved
    with CoilStore(db_url) as store:
        with store.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Coil)) == 1
            pairs = s.execute(select(Defect.surface, func.count()).group_by(Defect.surface)).all()
        assert dict(pairs) == {"top": n, "bottom": n}
        coil = store.coil("W1")
        assert (coil["grade"], coil["customer"], coil["width_mm"]) == ("DX51D", "ACME", 1200.0)
        assert sorted(s["surface"] for s in coil["surfaces"]) == ["bottom", "top"]
        assert len(store.uninspected("W1")) == 4
        expected = [d for s, seed in (("top", 11), ("bottom", 12))
                    for d in make_coil_records("W1", n, seed=seed, surfaces=(s,))[1]]
        assert sorted(_stored(store, "W1"), key=_key) == sorted(expected, key=_key)   # none lost, none doubled
