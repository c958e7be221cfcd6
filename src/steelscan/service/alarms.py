"""Periodic (roll-mark) alarms in the service: the JSON API, and what every page's banner shows.

    GET  /v1/alarms                 alarms newest first (open=true: only open ones; line_id, coil_id)
    GET  /v1/alarms/{id}            one alarm, with the coils it is recorded on
    POST /v1/alarms/{id}/ack        acknowledge it (bearer token, as PUT /v1/coils/{id}); body {"by": NAME}

Alarms are raised, carried and closed by the line runner (steelscan.line.alarms); an acknowledged
alarm leaves the banner and the open-alarm gauge at once, and the runner stops carrying it at the
next coil."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from ..coils import alarms
from .coils import MAX_ROW, ErrorModel, _db, _run, require_token


class AlarmOut(BaseModel):
    id: int
    uid: str = Field(description="the runner's id (the webhook's events carry it)")
    line_id: str
    surface: str
    coil_id: str = Field(description="the coil it was raised on")
    roll: str | None = Field(description="the roll whose circumference matches; null when none does")
    period_m: float
    implied_diameter_mm: float
    class_ids: list[int]
    occurrences: int = Field(description="detected occurrences when it was raised")
    first_m: float = Field(description="first occurrence on the coil it was raised on")
    raised_m: float = Field(description="how far that surface was inspected when it was raised")
    across_mm: float
    confidence: float
    state: str = Field(description='"open", "acknowledged" or "closed"')
    raised_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    closed_at: str | None
    close_reason: str | None = Field(description='"roll_changed": the roll was installed after the alarm')
    coils: list[str] = Field(description="coils it is recorded on: raised on, then carried to")


class AlarmList(BaseModel):
    items: list[AlarmOut]


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=100, description="who acknowledges (a name or shift)")


NOT_FOUND = {404: {"model": ErrorModel, "description": "No alarm with this id"}}
AUTH = {401: {"model": ErrorModel, "description": "No or wrong bearer token",
              "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
        403: {"model": ErrorModel, "description": "This server has no API token: writes are disabled"}}


def open_alarms(db) -> list[dict]:
    """The open alarms a page's banner shows (newest first)."""
    return alarms.list_alarms(db, open_only=True, limit=20)


def build_alarm_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/alarms", response_model=AlarmList, tags=["alarms"], summary="Periodic alarms, newest first")
    async def list_alarms(request: Request,
                          open_only: bool = Query(False, alias="open",
                                                  description="only open ones (not acknowledged, not closed)"),
                          line_id: str | None = Query(None, max_length=100),
                          coil_id: str | None = Query(None, max_length=100, description="recorded on this coil"),
                          limit: int = Query(100, ge=1, le=500)) -> Any:
        items = await _run(alarms.list_alarms, _db(request), open_only=open_only, line_id=line_id, coil_id=coil_id,
                           limit=limit)
        return {"items": items}

    @router.get("/v1/alarms/{alarm_id}", response_model=AlarmOut, responses=NOT_FOUND, tags=["alarms"],
                summary="One periodic alarm")
    async def get_alarm(request: Request, alarm_id: int = PathParam(ge=1, le=MAX_ROW)) -> Any:
        found = await _run(alarms.get_alarm, _db(request), alarm_id)
        if found is None:
            raise HTTPException(404, f"no alarm {alarm_id}")
        return found

    @router.post("/v1/alarms/{alarm_id}/ack", response_model=AlarmOut, tags=["alarms"],
                 summary="Acknowledge an alarm (it stops being carried to the next coils)",
                 responses={**NOT_FOUND, **AUTH, 400: {"model": ErrorModel, "description": "The body is not JSON"}})
    async def ack(request: Request, alarm_id: int = PathParam(ge=1, le=MAX_ROW), body: Ack = Body(...),
                  _: None = Depends(require_token)) -> Any:
        found = await _run(alarms.acknowledge, _db(request), alarm_id, body.by)
        if found is None:
            raise HTTPException(404, f"no alarm {alarm_id}")
        return found

    return router
