"""Live periodic (roll-mark) alarms: the runner's keeper (steelscan.line.alarms) on real detector
input, stored in a real database (SQLite and PostgreSQL), reaching people through the service
(TestClient), a webhook (a real local HTTP server) and the command line."""

import json
import logging
import math
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect as sql_inspect

from steelscan.cli import main
from steelscan.coils import alarms as stored_alarms
from steelscan.coils.records import CoilInfo, DefectRecord
from steelscan.coils.rolls import Roll, RollTable
from steelscan.coils.store import CoilStore
from steelscan.coils.synthetic_defects import MarkSpec, make_coil
from steelscan.db import open_database
from steelscan.db.migrate import current, head, upgrade
from steelscan.line.alarm_webhook import AlarmWebhook
from steelscan.line.alarms import LiveAlarms
from steelscan.service.app import create_app

TOKEN = "alarm-token"
W1 = math.pi * 0.650
TABLE = RollTable((Roll(name="W1", diameter_mm=650), Roll(name="W2", diameter_mm=520)))


class Hook:
    """A real HTTP server on localhost that keeps the JSON bodies POSTed to it."""

    def __init__(self):
        events = self.events = []
        got = self.got = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with got:
                    events.append(json.loads(body))
                    got.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/s3cret-path?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=10.0):
        with self.got:
            self.got.wait_for(lambda: len(self.events) >= n, timeout)
        return [e["event"] for e in self.events]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def records(coil, coil_id):
    """A synthetic defect list as runner records, in order along the strip."""
    d = coil.defects
    order = np.argsort(d.start_m, kind="stable")
    return [DefectRecord(coil_id, str(d.surface[k]), "cam", int(d.class_id[k]), "c", 0.9, float(d.start_m[k]),
                         float(d.start_m[k]) + 0.04, float(d.across_start_mm[k]), float(d.across_end_mm[k]),
                         40.0, 40.0, 1600.0) for k in order]


def run_coil(alarms, sink, coil_id, defects, line="L1", step_m=2.5):
    """What the runner does for one coil: open it, hand over defects batch by batch (a batch covers
    `step_m`), check after each batch, close it. Returns [(position_m, alarm)]."""
    sink.upsert_coil(CoilInfo(coil_id, line_id=line))
    for s in ("top", "bottom"):
        alarms.coil_opened(s, CoilInfo(coil_id, line_id=line))
    raised, i = [], 0
    end = max((d.start_m for d in defects), default=0.0) + step_m
    pos = step_m
    while pos <= end:
        batch = []
        while i < len(defects) and defects[i].start_m < pos:
            batch.append(defects[i])
            i += 1
        if batch:
            sink.add_defects(batch)
        for s in ("top", "bottom"):
            alarms.add(s, [d for d in batch if d.surface == s])
            raised += [(pos, a) for a in alarms.check(s, pos)]
        pos += step_m
    for s in ("top", "bottom"):
        raised += [(end, a) for a in alarms.coil_closed(s, coil_id, end)]
    sink.flush()
    return raised


def mark_coil(seed, coil_id, length_m=30.0, phase=0.4, across=500.0, start_m=0.0):
    rng = np.random.default_rng(seed)
    coil = make_coil(rng, length_m=length_m, marks=[MarkSpec(period_m=W1, phase_m=phase, across_mm=across,
                                                             start_m=start_m)], random_per_m=1.5,
                     coil_id=coil_id)
    return coil, records(coil, coil_id)


# --- the keeper, stored in a real database ------------------------------------------------------
def test_alarm_raised_once_carried_acknowledged_and_closed_on_roll_change(db_url, tmp_path, caplog):
    rolls = tmp_path / "rolls.csv"
    rolls.write_text("name,diameter_mm,installed_at\nW1,650,2026-01-01T00:00:00\nW2,520,\n")
    hook = Hook()
    webhook = AlarmWebhook(hook.url, delays=(0.05,))
    store = CoilStore(db_url)
    try:
        keeper = LiveAlarms(rolls_path=rolls, webhook=webhook)
        keeper.attach(store)
        # coil 1: the mark starts at 12 m; one alarm, within a period of its 5th detected occurrence
        coil, recs = mark_coil(1, "A1", start_m=12.0)
        raised = run_coil(keeper, store, "A1", recs)
        assert len(raised) == 1
        at, a = raised[0]
        fifth = np.sort(coil.defects.start_m[coil.truth == 0])[4]
        assert a.roll == "W1" and a.surface == "top" and a.occurrences >= 5 and a.coil_id == "A1"
        assert fifth <= a.raised_m == at <= fifth + W1 + 2.5      # + the batch the 5th came in
        (row,) = stored_alarms.list_alarms(store.db)
        assert (row["state"], row["coils"], row["roll"], row["line_id"]) == ("open", ["A1"], "W1", "L1")

        # coil 2: still open -> carried; the same mark there is the same alarm (one per roll)
        _, recs = mark_coil(2, "A2", phase=1.1, across=900.0)
        assert run_coil(keeper, store, "A2", recs) == []
        (row,) = stored_alarms.list_alarms(store.db)
        assert row["coils"] == ["A1", "A2"] and stored_alarms.open_counts(store.db) == {("L1", "top"): 1}

        # a restarted runner adopts the open alarm: no second alarm, carried on
        again = LiveAlarms(rolls_path=rolls)
        again.attach(store)
        _, recs = mark_coil(3, "A3", phase=0.2)
        assert run_coil(again, store, "A3", recs) == []
        assert [r["coils"] for r in stored_alarms.list_alarms(store.db)] == [["A1", "A2", "A3"]]

        # acknowledged: not carried to the next coil; the webhook hears of it
        stored_alarms.acknowledge(store.db, row["id"], "shift B")
        assert run_coil(keeper, store, "A4", []) == []
        (row,) = stored_alarms.list_alarms(store.db)
        assert (row["state"], row["acknowledged_by"], row["coils"]) == ("acknowledged", "shift B", ["A1", "A2", "A3"])
        assert stored_alarms.open_counts(store.db) == {}

        # the mark is still there on coil 5: a new alarm; then W1 is changed -> closed at the next coil
        _, recs = mark_coil(5, "A5")
        assert len(run_coil(keeper, store, "A5", recs)) == 1
        later = datetime.now(timezone.utc) + timedelta(seconds=1)
        rolls.write_text(f"name,diameter_mm,installed_at\nW1,650,{later.isoformat()}\nW2,520,\n")
        keeper.clock = lambda: later + timedelta(seconds=1)
        assert run_coil(keeper, store, "A6", []) == []
        new = stored_alarms.list_alarms(store.db)[0]
        assert (new["state"], new["close_reason"], new["coils"]) == ("closed", "roll_changed", ["A5"])
        assert len(stored_alarms.list_alarms(store.db)) == 2
        assert hook.wait(4) == ["raised", "acknowledged", "raised", "closed"]
        assert hook.events[0]["alarm"]["uid"] == raised[0][1].uid and hook.events[1]["by"] == "shift B"
        assert hook.events[3]["reason"] == "roll_changed"
    finally:
        webhook.close()
        store.close()
        hook.close()
    assert "s3cret" not in caplog.text


def test_random_defects_alone_raise_no_alarm():
    keeper = LiveAlarms(TABLE)
    sink = CoilStore("sqlite://")
    try:
        keeper.attach(sink)
        rng = np.random.default_rng(4)
        for k in range(2):
            coil = make_coil(rng, length_m=80, random_per_m=2.0, coil_id=f"R{k}")
            assert run_coil(keeper, sink, f"R{k}", records(coil, f"R{k}")) == []
        assert stored_alarms.list_alarms(sink.db) == []
    finally:
        sink.close()


def test_webhook_that_does_not_answer_is_logged_once_without_its_secret(caplog):
    from pg_server import free_port

    caplog.set_level(logging.WARNING, "steelscan.line.alarms")
    hook = AlarmWebhook(f"http://user:pw@127.0.0.1:{free_port()}/x/SECRET?k=SECRET", delays=(0.01, 0.01))
    hook.send({"event": "raised", "alarm": {"uid": "u1"}})
    hook.close()
    assert (hook.sent, hook.failed) == (0, 1)
    lines = [r.getMessage() for r in caplog.records if "webhook" in r.getMessage()]
    assert len(lines) == 1 and "u1" in lines[0] and "127.0.0.1" in lines[0]
    assert "SECRET" not in caplog.text and "pw" not in caplog.text


# --- the line, its spool and the service --------------------------------------------------------
def test_simulated_line_alarm_reaches_the_database_the_pages_the_gauge_and_the_webhook(tmp_path, capsys):
    """`steelscan line --simulate --roll-diameter-mm` (through the spool) -> one alarm on coil 1,
    carried to coil 2 -> the service shows it on every page and in /metrics until acknowledged."""
    hook = Hook()
    (tmp_path / "line.yaml").write_text("frame_size: [64, 384]\n")
    db = tmp_path / "coils.db"
    try:
        rc = main(["line", "--simulate", "--oracle", "truth", "--coils", "2", "--coil-length-m", "12",
                   "--roll-diameter-mm", "500", "--surface", "top", "--db", str(db), "--quiet",
                   "--config", str(tmp_path / "line.yaml"), "--alarm-webhook", hook.url])
        out = capsys.readouterr()
        assert rc == 0 and "1 periodic alarm(s) raised" in out.out
        assert "s3cret" not in out.err + out.out
        assert hook.wait(1) == ["raised"] and hook.events[0]["alarm"]["roll"] == "R1"
    finally:
        hook.close()
    with TestClient(create_app(db_path=db, api_token=TOKEN)) as c:
        (a,) = c.get("/v1/alarms", params={"open": "true"}).json()["items"]
        assert (a["roll"], a["surface"], a["line_id"], a["coils"]) == ("R1", "top", "L1", ["C0-001", "C0-002"])
        assert a["period_m"] == pytest.approx(math.pi * 0.5, rel=2e-3)
        # the 5th mark on coil 1 (the truth of the simulated line), and where the alarm was raised
        marks = sorted(d["start_m"] for d in c.get("/v1/coils/C0-001/defects").json()["items"]
                       if abs(d["start_m"] - a["first_m"] - a["period_m"] * round((d["start_m"] - a["first_m"])
                                                                                  / a["period_m"])) < 0.01)
        assert marks[4] <= a["raised_m"] <= marks[4] + a["period_m"]
        for page in ("/coils", "/coils/C0-002", "/live"):
            html = c.get(page).text
            assert 'id="alarm-banner"' in html and f'data-alarm-id="{a["id"]}"' in html and "roll R1" in html
        assert f'steelscan_periodic_alarms_open{{line="L1",surface="top"}} 1.0' in c.get("/metrics").text

        assert c.post(f"/v1/alarms/{a['id']}/ack", json={"by": "op"}).status_code == 401
        assert c.post(f"/v1/alarms/{a['id']}/ack", json={"by": "op"},
                      headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/v1/alarms/999/ack", json={"by": "op"},
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        r = c.post(f"/v1/alarms/{a['id']}/ack", json={"by": "op"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and (r.json()["state"], r.json()["acknowledged_by"]) == ("acknowledged", "op")
        assert c.get("/v1/alarms", params={"open": "true"}).json()["items"] == []
        assert c.get(f"/v1/alarms/{a['id']}").json()["state"] == "acknowledged"
        html = c.get("/live").text
        assert 'data-open="0" hidden' in html and "data-alarm-id" not in html
        assert f'steelscan_periodic_alarms_open{{line="L1",surface="top"}} 0.0' in c.get("/metrics").text
    with TestClient(create_app(db_path=db)) as c:   # no token: writes disabled
        assert c.post(f"/v1/alarms/{a['id']}/ack", json={"by": "op"}).status_code == 403


def test_alarm_records_wait_in_the_spool_while_the_database_is_down(tmp_path):
    from steelscan.coils.records import AlarmLinkRecord, AlarmRecord
    from steelscan.line.spool import SpoolingSink

    db = f"sqlite:///{tmp_path}/coils.db"
    up = threading.Event()

    def open_sink():
        if not up.is_set():
            raise OSError("database down")
        return CoilStore(db)

    sink = SpoolingSink(open_sink, tmp_path / "spool", retry_s=0.05)
    rec = AlarmRecord("u1", "L1", "top", "C1", "W1", W1, 650.0, [1], 5, 1.0, 9.0, 500.0, 0.9999,
                      datetime.now(timezone.utc).isoformat())
    sink.upsert_coil(CoilInfo("C1", line_id="L1"))
    sink.raise_alarm(rec)
    sink.upsert_coil(CoilInfo("C2", line_id="L1"))
    sink.link_alarm(AlarmLinkRecord("u1", "C2"))
    sink.raise_alarm(rec)       # a retried entry: stored once
    assert sink.alarm_states("L1") is None     # down: the keeper goes on with what it knows
    up.set()
    sink.flush()
    import time
    for _ in range(200):
        if sink.pending == 0:
            break
        time.sleep(0.05)
    assert sink.pending == 0
    assert list(sink.alarm_states("L1")) == ["u1"]
    sink.close()
    database = open_database(db)
    (a,) = stored_alarms.list_alarms(database)
    assert (a["uid"], a["coils"], a["state"]) == ("u1", ["C1", "C2"], "open")
    database.dispose()


def test_migration_0003_upgrades_a_0002_database(db_url):
    db = open_database(db_url, migrate=False)
    try:
        upgrade(db, "0002")
        assert "periodic_alarms" not in sql_inspect(db.engine).get_table_names()
        upgrade(db)
        assert current(db) == head()
        assert {"periodic_alarms", "periodic_alarm_coils"} <= set(sql_inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_cli_alarm_flags_are_one_line(tmp_path, capsys):
    (tmp_path / "rolls.csv").write_text("name,diameter_mm\nW1,-3\n")
    assert main(["line", "--simulate", "--db", str(tmp_path / "x.db"), "--rolls", str(tmp_path / "rolls.csv"),
                 "--oracle", "truth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rolls.csv" in err and "diameter_mm" in err
    assert main(["line", "--simulate", "--db", str(tmp_path / "x.db"), "--oracle", "truth",
                 "--alarm-webhook", "http://127.0.0.1:9/x"]) == 2
    assert "--rolls" in capsys.readouterr().err
