"""The live page's server-sent events: `GET /v1/live/events` (text/event-stream).

Every `period_s` the stream looks at the database the line runners write into and sends what changed:

    event: coil       data: OnTheLine      the coil now on the line (first event; again at each weld)
    event: status     data: CoilDetail     that coil's record when it changed: position reached, counts,
                                           uninspected metres by reason, and the cameras' published
                                           status (frames, frames/s, lag, metres skipped `behind`)
    id: N
    event: defects    data: {coil_id, items}   the coil's defects stored since (items: DefectOut, by id);
                                           `id`: the largest defect id in it

and a comment line (`: idle`) when nothing changed: writing it is how a closed connection is
noticed. A new stream starts with the coil's newest BACKLOG defects; one resumed by EventSource (the `Last-Event-ID`
header) with the defects after that id. The stream ends after `max_s` seconds (EventSource
reconnects by itself after `retry` ms, resuming from its last id) or `max_events` events (a test, a
one-shot client); a server that shuts down so waits at most `max_s` for its streams.

Writers of two cameras commit independently, so a defect with a smaller id can become visible after
a larger one: each tick rescans the last RESCAN_IDS ids of the coil and sends those not sent yet.
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ..coils import queries

BACKLOG = 50          # defects a new stream starts with (the newest of the coil)
RESCAN_IDS = 10_000   # ids behind the newest sent that are looked at again (out-of-order commits)
MAX_BATCH = 500       # most defects in one `defects` event
RETRY_MS = 2000
MAX_ROW = 2**31 - 1


EVENTS_DOC = """Server-sent events of the coil on the line (the live page). Events: `coil` (data:
OnTheLine) when the coil on the line changes, first; `status` (data: CoilDetail) when the coil's record
changed; `defects` (data: {coil_id, items: [DefectOut]}, `id`: the largest defect id in it) with the
defects stored since. A comment line when nothing changed. Ends after `max_s` seconds or
`max_events` events; EventSource reconnects and resumes with `Last-Event-ID`."""


def _event(name: str, data: dict) -> dict:
    """The OpenAPI schema of one event: its name and its data, one line of JSON described by `data`."""
    return {"type": "object", "required": ["event", "data"],
            "properties": {"event": {"const": name}, "id": {"type": "string", "pattern": "^[0-9]+$"},
                           "retry": {"type": "integer"},
                           "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data}}}


# Each event of the stream (OpenAPI 3.1 has no schema for an event stream as such: `schema` describes
# one event, as schemathesis reads it; the data's JSON refers to the coil API's response models)
EVENT_SCHEMA = {"oneOf": [
    _event("coil", {"$ref": "#/components/schemas/OnTheLine"}),
    _event("status", {"$ref": "#/components/schemas/CoilDetail"}),
    _event("defects", {"type": "object", "required": ["coil_id", "items"],
                       "properties": {"coil_id": {"type": "string"},
                                      "items": {"type": "array", "items": {"$ref": "#/components/schemas/DefectOut"}}}}),
]}


class LiveFeed:
    """What one stream has sent: the coil, its last status, the defect ids already sent."""

    def __init__(self, resume_after: int | None) -> None:
        self.coil_id: str | None = None
        self.status: str | None = None
        self.sent: set[int] = set()
        self.top = 0                  # largest defect id sent (or passed over as already known)
        self.resume_after = resume_after
        self.first = True             # nothing sent yet: the first coil starts with its backlog

    def tick(self, db) -> list[tuple[str, str, int | None]]:
        """(event, JSON data, id) of what changed since the last tick (runs in a worker thread)."""
        from .coils import _detail

        out: list[tuple[str, str, int | None]] = []
        on_line = queries.current_coil(db)
        first = self.first
        if first or on_line["coil_id"] != self.coil_id:
            self.first = False
            self.coil_id, self.status = on_line["coil_id"], None
            out.append(("coil", json.dumps(on_line), None))
        if self.coil_id is None:
            return out
        detail = _detail(db, self.coil_id)
        if detail is None:
            return out
        status = json.dumps(detail, sort_keys=True)
        if status != self.status:
            self.status = status
            out.append(("status", status, None))
        new = self._new_defects(db, first)
        for i in range(0, len(new), MAX_BATCH):
            items = new[i:i + MAX_BATCH]
            out.append(("defects", json.dumps({"coil_id": self.coil_id, "items": items}), items[-1]["id"]))
        return out

    def _new_defects(self, db, first: bool) -> list[dict]:
        ids = queries.defect_ids(db, self.coil_id, after_id=max(0, self.top - RESCAN_IDS))
        if first:   # what the client has (a resumed stream) or needs not (beyond the backlog) is passed over
            if self.resume_after is not None:
                known = [i for i in ids if i <= self.resume_after]
            else:
                known = ids[:-BACKLOG] if len(ids) > BACKLOG else []
            self.sent |= set(known)
            self.top = max([self.top, *known])
        want = [i for i in ids if i not in self.sent]
        if not want:
            return []
        self.sent |= set(want)
        self.top = max(self.top, want[-1])
        self.sent = {i for i in self.sent if i > self.top - RESCAN_IDS}
        return queries.defects_by_id(db, want)


def sse(event: str, data: str, event_id: int | None = None) -> str:
    """One event in the text/event-stream format (data is one line of JSON)."""
    return (f"id: {event_id}\n" if event_id is not None else "") + f"event: {event}\ndata: {data}\n\n"


def build_live_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/live/events", tags=["live"], summary="Server-sent events of the coil on the line",
                description=EVENTS_DOC, response_class=StreamingResponse,
                responses={200: {"description": "an event stream (see above)",
                                 "content": {"text/event-stream": {"schema": EVENT_SCHEMA}}}})
    async def live_events(request: Request,
                          period_s: float = Query(1.0, ge=0.1, le=60, allow_inf_nan=False,
                                                  description="seconds between looks at the database"),
                          max_events: int | None = Query(None, ge=1, le=100_000,
                                                         description="end the stream after this many events "
                                                                     "(default: no limit)"),
                          max_s: float = Query(300.0, ge=1, le=3600, allow_inf_nan=False,
                                               description="end the stream after this many seconds (EventSource "
                                                           "reconnects and resumes)"),
                          last_event_id: int | None = Header(None, alias="Last-Event-ID", ge=0, le=MAX_ROW,
                                                             description="resume after this defect id (sent by "
                                                                         "EventSource when it reconnects)")
                          ) -> StreamingResponse:
        db = request.app.state.store.db
        feed = LiveFeed(last_event_id)
        loop = asyncio.get_running_loop()

        async def stream():
            yield f"retry: {RETRY_MS}\n\n"
            sent, end = 0, time.monotonic() + max_s
            while True:
                events = await loop.run_in_executor(None, feed.tick, db)
                for event, data, event_id in events:
                    yield sse(event, data, event_id)
                    sent += 1
                    if max_events is not None and sent >= max_events:
                        return
                if not events:
                    yield ": idle\n\n"
                if time.monotonic() + period_s > end:
                    return
                await asyncio.sleep(period_s)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
