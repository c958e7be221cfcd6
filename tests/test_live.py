"""The live page's event stream (steelscan.service.live, GET /v1/live/events) over real HTTP
(uvicorn): the coil on the line, its status and its new defects as they are written; a resumed
stream (Last-Event-ID) sends only what came after; the endpoint holds to its OpenAPI schema."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from conftest import make_coil_records
from steelscan.coils.records import DefectRecord, LineStatusRecord
from steelscan.coils.store import CoilStore
from steelscan.service.app import create_app
from steelscan.service.coils import CoilDetail, DefectOut, OnTheLine
from test_service_browser import serving


def events(response, stop_after: int):
    """(event, data, id) of a text/event-stream response, as they arrive; comments skipped."""
    got, fields = [], {}
    for line in response.iter_lines():
        if not line:
            if "event" in fields:
                got.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
                yield got[-1]
                if len(got) >= stop_after:
                    return
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value


def defect(coil: str, start: float) -> DefectRecord:
    return DefectRecord(coil, "top", "cam-top", 2, "inclusion", 0.8, start, start + 0.1, 10.0, 20.0, 100.0,
                        10.0, 700.0)


def test_stream_sends_the_coil_its_status_and_each_new_defect_once(coil_db):
    """C2 is the coil written last: the stream names it, sends its record and its 3 defects (the
    backlog); defects written while it runs arrive in `defects` events, and the status follows."""
    with serving(create_app(db_path=coil_db)) as url:
        with httpx.stream("GET", f"{url}/v1/live/events?period_s=0.1", timeout=30) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            it = events(r, 100)
            kinds = [next(it) for _ in range(3)]
            assert [k for k, _, _ in kinds] == ["coil", "status", "defects"]
            assert OnTheLine(**kinds[0][1]).coil_id == "C2"
            status = CoilDetail(**kinds[1][1])
            assert status.coil_id == "C2" and status.n_defects == 3
            backlog = [DefectOut(**d) for d in kinds[2][1]["items"]]
            assert len(backlog) == 3 and int(kinds[2][2]) == max(d.id for d in backlog)
            with CoilStore(coil_db) as store:   # the line goes on: two more defects, then a status
                store.add_defects([defect("C2", 30.0), defect("C2", 31.0)])
                store.flush()
                store.publish_status(LineStatusRecord("cam-top", "C2", "top", 31.5, 120, 24.0, 0.4, 1.5))
            new, statuses = [], []
            for kind, data, _ in it:
                if kind == "defects":
                    new += data["items"]
                elif kind == "status":
                    statuses.append(CoilDetail(**data))
                if len(new) == 2 and statuses and statuses[-1].line_status:
                    break
            assert sorted(d["start_m"] for d in new) == [30.0, 31.0]
            assert not {d["id"] for d in new} & {d.id for d in backlog}
            cam = statuses[-1].line_status[0]
            assert (statuses[-1].n_defects, cam.frames, cam.frames_per_s, cam.lag_s, cam.behind_m) == \
                (5, 120, 24.0, 0.4, 1.5)


def test_resumed_stream_sends_only_what_came_after_and_a_new_coil_whole(tmp_path):
    db = tmp_path / "coils.db"
    coil, defects, _, _ = make_coil_records("A", 80, seed=1)
    with CoilStore(db) as store:
        store.upsert_coil(coil)
        store.add_defects(defects)
    with serving(create_app(db_path=db)) as url:
        with httpx.stream("GET", f"{url}/v1/live/events?period_s=0.1&max_events=3", timeout=30) as r:
            first = list(events(r, 3))
        assert [k for k, _, _ in first] == ["coil", "status", "defects"]
        assert len(first[2][1]["items"]) == 50   # a new stream: the coil's newest 50 only
        ids = [d["id"] for d in first[2][1]["items"]]
        assert ids == sorted(ids) and ids[-1] == 80
        with httpx.stream("GET", f"{url}/v1/live/events?period_s=0.1", headers={"Last-Event-ID": "75"},
                          timeout=30) as r:
            it = events(r, 100)
            got = [next(it) for _ in range(3)]
            assert [d["id"] for d in got[2][1]["items"]] == [76, 77, 78, 79, 80]
            with CoilStore(db) as store:   # the weld: the next coil, 60 defects at once
                store.add_defects([defect("B", 0.5 + i) for i in range(60)])
            rest = []
            for kind, data, _ in it:
                if kind == "coil":
                    assert data["coil_id"] == "B"
                if kind == "defects":
                    rest += data["items"]
                    if len(rest) == 60:
                        break
            assert {d["coil_id"] for d in rest} == {"B"}   # a new coil mid-stream comes whole


def test_the_stream_ends_when_bounded_and_holds_to_the_schema(coil_db):
    """schemathesis fuzzes every other endpoint (tests/test_service.py); the stream is excluded
    there: schemathesis cuts a stream at 20 events or its read timeout, so each fuzzed call of an
    idle stream would cost the whole timeout. Here bounded calls are validated against the schema
    (status, content type, each event and the JSON of its data), and the bounds end them."""
    import schemathesis

    app = create_app(db_path=coil_db)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, timeout=120)
    op = schema["/v1/live/events"]["GET"]
    response = op.Case(query={"period_s": 0.1, "max_events": 3}).call_and_validate(timeout=120)
    assert response.status_code == 200 and response.text.count("event: ") == 3
    assert "event: defects" in response.text
    assert op.Case(query={"period_s": 0}).call(timeout=120).status_code == 422
    with serving(app) as url:   # max_s ends an idle stream, after the retry hint
        with httpx.stream("GET", f"{url}/v1/live/events?period_s=0.5&max_s=1", timeout=30) as r:
            text = "".join(r.iter_text())
        assert text.startswith("retry: ") and text.count("event: coil") == 1


@pytest.fixture(autouse=True)
def _no_threads_left():
    before = threading.active_count()
    yield
    assert threading.active_count() <= before + 8   # a stream left open would pin uvicorn's threads
