"""The spooling sink (steelscan.line.spool): journal first, database when it answers; in order,
exactly once, across a database outage and a restart of the runner.

Unit tests use a sink that fails while `down` is set; one test stops and restarts a real
PostgreSQL server under a CoilStore mid-coil."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from steelscan.coils.records import CoilInfo, DefectRecord, SurfaceSummary, UninspectedRecord
from steelscan.line.spool import SpoolingSink


def defect(i: int, coil: str = "C1") -> DefectRecord:
    return DefectRecord(coil, "top", "top", 1 + i % 4, "pits", 0.9, i * 0.5, i * 0.5 + 0.01, 10.0, 20.0, 10.0, 10.0,
                        100.0, [f"f{i}.png"], bytes([i % 256]) * 7)


class FlakySink:
    """A DefectSink whose writes land in `store` (shared across instances, like a database);
    while `db["down"]` every call raises OperationalError, as a stopped server would. `refuse`:
    class ids the 'database' rejects with an IntegrityError."""

    def __init__(self, db: dict, refuse=()) -> None:
        self.db, self.refuse = db, set(refuse)
        self.buffer: list = []
        db["opened"] = db.get("opened", 0) + 1
        self._check()

    def _check(self):
        if self.db.get("down"):
            raise OperationalError("connect", {}, ConnectionRefusedError("connection refused"))

    def upsert_coil(self, coil):
        self.buffer.append(("coil", coil))

    def add_defects(self, defects):
        self.buffer += [("defect", d) for d in defects]

    def add_uninspected(self, spans):
        self.buffer += [("span", s) for s in spans]

    def close_surface(self, summary):
        self.buffer.append(("surface", summary))

    def flush(self):
        buf, self.buffer = self.buffer, []
        self._check()
        if any(kind == "defect" and r.class_id in self.refuse for kind, r in buf):
            raise IntegrityError("insert", {}, ValueError("check constraint"))
        self.db.setdefault("rows", []).extend(buf)

    def close(self):
        self.buffer = []


def wait_for(cond, timeout=20.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_outage_then_return_in_order_exactly_once(tmp_path):
    db: dict = {}
    sink = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02)
    sink.upsert_coil(CoilInfo("C1", length_m=100.0))
    sink.add_defects([defect(i) for i in range(0, 5)])
    sink.flush()
    assert len([r for k, r in db["rows"] if k == "defect"]) == 5
    db["down"] = True
    for k in range(5, 50, 5):          # the database is away for nine batches
        sink.add_defects([defect(i) for i in range(k, k + 5)])
        sink.add_uninspected([UninspectedRecord("C1", "top", "top", k, k + 0.5, "missing")])
    sink.flush()                       # returns although the database is down: the spool holds it
    assert sink.down and sink.pending == 18
    assert len([r for k, r in db["rows"] if k == "defect"]) == 5
    db["down"] = False
    sink.close_surface(SurfaceSummary("C1", "top", "top", 100, 50.0, 50.0))
    wait_for(lambda: sink.pending == 0)   # flush() may return while `down` is still set
    sink.flush()
    sink.close()
    defects = [r for k, r in db["rows"] if k == "defect"]
    assert [d.frames[0] for d in defects] == [f"f{i}.png" for i in range(50)]   # in order, once each
    assert len({d.uid for d in defects}) == 50 and all(d.uid for d in defects)
    assert defects[7].crop_png == bytes([7]) * 7
    assert [k for k, _ in db["rows"]][-1] == "surface"
    assert sink.outages == 1 and sink.pending == 0
    assert not list((tmp_path / "spool").glob("journal-*.jsonl"))[1:]   # acknowledged files removed


def test_spool_survives_a_restart_of_the_runner(tmp_path):
    db: dict = {"down": True}
    first = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02, drain_s=0.1)
    first.add_defects([defect(i) for i in range(10)])
    first.add_defects([defect(i) for i in range(10, 12)])
    first.close()                      # the runner stops while the database is down
    assert "rows" not in db
    db["down"] = False
    second = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02)
    second.add_defects([defect(12)])
    second.flush()
    second.close()
    assert [d.frames[0] for k, d in db["rows"]] == [f"f{i}.png" for i in range(13)]
    third = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02)   # nothing left: nothing again
    third.flush()
    third.close()
    assert len(db["rows"]) == 13


def test_torn_last_line_is_skipped(tmp_path):
    db: dict = {"down": True}
    first = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02, drain_s=0)
    first.add_defects([defect(0)])
    first.close()
    journal = next((tmp_path / "spool").glob("journal-*.jsonl"))
    with open(journal, "ab") as f:     # a crash in the middle of an append
        f.write(b'{"seq": 2, "kind": "defects", "rec')
    db["down"] = False
    second = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02)
    second.add_defects([defect(1)])
    second.flush()
    second.close()
    assert [d.frames[0] for k, d in db["rows"]] == ["f0.png", "f1.png"]


def test_refused_entry_is_kept_aside_not_retried_forever(tmp_path):
    db: dict = {}
    sink = SpoolingSink(lambda: FlakySink(db, refuse={3}), tmp_path / "spool", retry_s=0.02)
    sink.add_defects([defect(0)])
    sink.add_defects([defect(2)])      # class 3: refused
    sink.add_defects([defect(4)])
    sink.flush()
    sink.close()
    assert [d.frames[0] for k, d in db["rows"]] == ["f0.png", "f4.png"]
    assert sink.rejected == 1
    assert '"f2.png"' in (tmp_path / "spool" / "rejected.jsonl").read_text()


# --- a real PostgreSQL, stopped and started under the running sink ---------------------------
def _pg(root: Path):
    """A PostgreSQL server of our own in `root` (the session one must not be stopped): its URL,
    start() and stop()."""
    from conftest import PG_BIN, PG_PASSWORD, _free_port, require  # the db tests' server recipe

    import os
    require((PG_BIN / "pg_ctl").exists(), f"PostgreSQL binaries not found in {PG_BIN} (`make postgres`)")
    as_user = []
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text(PG_PASSWORD + "\n")
    os.chmod(root / "pw", 0o644)
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *map(str, cmd)], check=True, capture_output=True)  # noqa: E731
    run(PG_BIN / "initdb", "-D", root / "data", "-U", "steelscan", "--auth=scram-sha-256",
        f"--pwfile={root / 'pw'}", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = lambda: run(PG_BIN / "pg_ctl", "-D", root / "data", "-l", root / "log", "-o", opts, "-w", "start")  # noqa
    stop = lambda: run(PG_BIN / "pg_ctl", "-D", root / "data", "-m", "fast", "-w", "stop")  # noqa: E731
    return f"postgresql://steelscan:{PG_PASSWORD}@127.0.0.1:{port}/postgres", start, stop


def test_postgres_stopped_mid_coil_nothing_lost_or_duplicated(tmp_path):
    from steelscan.coils.store import CoilStore

    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="steelscan-pg-spool-"))   # not under tmp_path: readable by `postgres`
    url, start, stop = _pg(root)
    start()
    try:
        sink = SpoolingSink(lambda: CoilStore(url), tmp_path / "spool", retry_s=0.2)
        sink.upsert_coil(CoilInfo("C1", length_m=100.0))
        sink.add_defects([defect(i) for i in range(20)])
        sink.flush()
        assert not sink.down
        stop()                                     # the database goes away mid-coil
        for k in range(20, 60, 10):
            sink.add_defects([defect(i) for i in range(k, k + 10)])
            sink.add_uninspected([UninspectedRecord("C1", "top", "top", k, k + 1.0, "behind")])
        sink.add_uninspected([UninspectedRecord("C1", "top", "top", 40.0, 41.0, "missing")])
        # a runner restarted mid-outage hands some spans over again (made anew: same uid)
        sink.add_uninspected([UninspectedRecord("C1", "top", "top", k, k + 1.0, "behind") for k in (30, 40)])
        wait_for(lambda: sink.down)
        start()                                    # and returns
        sink.close_surface(SurfaceSummary("C1", "top", "top", 200, 60.0, 60.0))
        wait_for(lambda: sink.pending == 0, timeout=60)
        sink.close()
        with CoilStore(url) as store:
            stored = store.defects("C1")
            spans = store.uninspected("C1")
        assert sorted(d["frames"][0] for d in stored) == sorted(f"f{i}.png" for i in range(60))
        assert sorted((u["start_m"], u["reason"]) for u in spans) == \
            [(20.0, "behind"), (30.0, "behind"), (40.0, "behind"), (40.0, "missing"), (50.0, "behind")]
        assert len({u["uid"] for u in spans}) == 5
        assert sink.outages >= 1
    finally:
        try:
            stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def test_full_disk_for_crops_keeps_the_records_and_warns_once_a_minute(tmp_path, caplog):
    class FullDisk(FlakySink):
        def flush(self):
            if any(kind == "defect" and r.crop_png for kind, r in self.buffer):
                self.buffer = []
                raise OperationalError("insert", {}, Exception("database or disk is full"))
            super().flush()

    db: dict = {}
    sink = SpoolingSink(lambda: FullDisk(db), tmp_path / "spool", retry_s=0.02)
    for k in range(0, 30, 3):          # ten batches, every defect with a crop
        sink.add_defects([defect(i) for i in range(k, k + 3)])
    wait_for(lambda: sink.pending == 0)
    sink.close()
    stored = [r for k, r in db["rows"] if k == "defect"]
    assert [d.frames[0] for d in stored] == [f"f{i}.png" for i in range(30)]
    assert all(d.crop_png is None for d in stored) and sink.crops_dropped == 30
    assert len([r for r in caplog.records if "crops are not stored" in r.message]) == 1
    assert sink.outages == 0


def test_prune_crops_oldest_first_pinned_never(tmp_path):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from steelscan.coils.prune import prune_crops
    from steelscan.coils.store import CoilStore
    from steelscan.db.models import Defect

    with CoilStore(tmp_path / "c.db") as store:
        store.upsert_coil(CoilInfo("C1"))
        store.add_defects([defect(i) for i in range(10)])      # crops of 7 bytes each
        store.flush()
        ids = sorted(d["id"] for d in store.defects("C1"))
        now = datetime.now(timezone.utc)
        with store.db.session(write=True) as s:                  # defect i created i days ago... reversed
            for k, i in enumerate(ids):
                s.execute(update(Defect).where(Defect.id == i).values(created_at=now - timedelta(days=10 - k)))
        store.set_pinned([ids[0], ids[5]])
        by_age = prune_crops(store.db, max_age_days=7.5, now=now)    # ids[0..2] are 10, 9, 8 days old
        assert by_age.defect_ids == [ids[1], ids[2]] and by_age.removed_bytes == 14 and by_age.pinned_kept == 2
        by_size = prune_crops(store.db, max_bytes=7 * 4, now=now)     # 8 crops left, room for 4
        assert by_size.defect_ids == [ids[3], ids[4], ids[6], ids[7]]
        assert "removed 4" in by_size.line() and "2 pinned" in by_size.line()
        over = prune_crops(store.db, max_bytes=7, now=now)
        assert ids[0] not in over.defect_ids and ids[5] not in over.defect_ids and over.over_budget
        left = store.crops(ids)
        assert sorted(left) == [ids[0], ids[5]]
        assert len(store.defects("C1")) == 10                       # the records stay


def test_full_spool_disk_keeps_the_records_without_crops(tmp_path, monkeypatch):
    """ENOSPC while journalling a batch with crops: the line is cut back, the records go in
    without their crops; a batch that cannot be journalled at all raises (never half-written)."""
    import errno

    import steelscan.line.spool as spool_mod

    db: dict = {"down": True}
    sink = SpoolingSink(lambda: FlakySink(db), tmp_path / "spool", retry_s=0.02, drain_s=0)
    real_write = os.write
    full = {"crops": True, "all": False}

    def write(fd, data):
        if full["all"] or (full["crops"] and b'"crop_png":"' in bytes(data)):
            real_write(fd, bytes(data)[:10])            # part of the line made it to disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(spool_mod.os, "write", write)
    sink.add_defects([defect(0), defect(1)])
    full["all"] = True
    with pytest.raises(OSError):
        sink.add_defects([defect(2)])
    full["all"] = full["crops"] = False
    sink.add_defects([defect(3)])
    db["down"] = False
    wait_for(lambda: sink.pending == 0)
    sink.close()
    stored = [r for k, r in db["rows"] if k == "defect"]
    assert [(d.frames[0], d.crop_png is None) for d in stored] == [("f0.png", True), ("f1.png", True),
                                                                   ("f3.png", False)]
    assert sink.crops_dropped == 2


def test_lost_acknowledgement_is_stored_once_thanks_to_the_uid(tmp_path):
    """The ambiguous case: the database committed, the connection died before the answer; the
    spool sends the entry again and the database's unique uid keeps one copy."""
    from steelscan.coils.store import CoilStore

    url = f"sqlite:///{tmp_path}/coils.db"
    lose = {"next": True}

    class LostAck(CoilStore):
        def flush(self):
            super().flush()                      # committed ...
            if lose["next"] and self.rows > 1:     # the defects entry (the coil was row 1)
                lose["next"] = False
                raise OperationalError("commit", {}, ConnectionResetError("server closed the connection"))

    sink = SpoolingSink(lambda: LostAck(url), tmp_path / "spool", retry_s=0.02)
    sink.upsert_coil(CoilInfo("C1"))
    sink.add_defects([defect(i) for i in range(5)])
    wait_for(lambda: sink.pending == 0)
    sink.close()
    assert sink.outages == 1 and not lose["next"]
    with CoilStore(url) as store:
        assert sorted(d["frames"][0] for d in store.defects("C1")) == [f"f{i}.png" for i in range(5)]


def test_lost_acknowledgement_of_spans_is_stored_once_thanks_to_their_uid(tmp_path):
    """As above for uninspected spans, whose uid comes from the span itself: the entry sent again,
    and the same spans journalled again by a second runner on the same line, are stored once."""
    from steelscan.coils.store import CoilStore

    url = f"sqlite:///{tmp_path}/coils.db"
    lose = {"next": True}

    class LostAck(CoilStore):
        def flush(self):
            super().flush()
            if lose["next"] and self.rows > 1:
                lose["next"] = False
                raise OperationalError("commit", {}, ConnectionResetError("server closed the connection"))

    spans = lambda: [UninspectedRecord("C1", s, s, k, k + 0.25, "behind") for s in ("top", "bottom")  # noqa: E731
                     for k in (1.0, 2.0, 3.0)]
    sink = SpoolingSink(lambda: LostAck(url), tmp_path / "spool", retry_s=0.02)
    sink.upsert_coil(CoilInfo("C1"))
    sink.add_uninspected(spans())
    wait_for(lambda: sink.pending == 0)
    sink.close()
    again = SpoolingSink(lambda: CoilStore(url), tmp_path / "spool", retry_s=0.02)
    again.add_uninspected(spans())
    again.flush()
    again.close()
    assert sink.outages == 1 and not lose["next"]
    with CoilStore(url) as store:
        stored = store.uninspected("C1")
    assert sorted((u["surface"], u["start_m"]) for u in stored) == \
        sorted((s, k) for s in ("top", "bottom") for k in (1.0, 2.0, 3.0))


def test_live_status_goes_straight_to_a_database_that_is_up_and_is_never_journalled(tmp_path):
    from steelscan.coils.records import LineStatusRecord

    class ShowsStatus(FlakySink):
        def publish_status(self, status):
            self._check()
            self.db.setdefault("status", []).append(status)

    db: dict = {}
    sink = SpoolingSink(lambda: ShowsStatus(db), tmp_path / "spool", retry_s=0.02)
    status = LineStatusRecord("top", "C1", "top", 12.5, 40, 9.5, 0.2, 0.0)
    sink.publish_status(status)                      # no database opened yet: dropped, not queued
    sink.add_defects([defect(0)])
    wait_for(lambda: sink.pending == 0)
    sink.publish_status(status)
    assert db["status"] == [status]
    db["down"] = True
    sink.add_defects([defect(1)])
    wait_for(lambda: sink.down)
    sink.publish_status(status)                      # the database is down: nothing raised, nothing kept
    assert db["status"] == [status]
    db["down"] = False
    wait_for(lambda: sink.pending == 0)
    sink.close()
    assert [r.start_m for kind, r in db["rows"] if kind == "defect"] == [0.0, 0.5]
