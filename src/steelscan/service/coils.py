"""Coils in the service: JSON APIs over steelscan.coils.queries, and the pages on top of them.

    GET /v1/coils                       coils newest first (filter line, grade, since/until; paged)
    GET /v1/line/current                the coil now on the line (latest runner status, defect or gap)
    GET /v1/coils/{id}                  the coil record, level-2 data, counts, uninspected spans, length
    PUT /v1/coils/{id}                  level-2 data while the line runs (bearer token)
    GET /v1/coils/{id}/grades           the coil's stored grades, newest first
    POST /v1/coils/{id}/grade           grade again with a rule file of the server's rules folder (bearer token)
    GET /v1/coils/{id}/defects          defects overlapping [from_m, to_m] (bounded by `limit`)
    GET /v1/coils/{id}/density          defects per bin per class along the whole coil
    GET /v1/defects/{id}/crop.png       a defect's image crop
    GET /v1/live/events                 server-sent events of the coil on the line (service/live.py)
    GET /coils, /coils/{id}, /live      pages (Jinja2 templates in templates/, plain JS in static/)

The database is the service's (app.state.store.db): coils, defects and inspections share one schema.
Queries run in the thread pool so the event loop keeps answering. Writes need the token given to
create_app (`serve --api-token-file` or STEELSCAN_API_TOKEN); without one, PUT and POST answer 403.
Grading from the API reads rule files only from the folder given to create_app (`serve --rules-dir`),
by name among the files listed there: a request never names a path."""

from __future__ import annotations

import asyncio
import hmac
import math
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..coils import grades, queries
from ..coils.records import CoilInfo
from .live import build_live_router

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAX_ROW = 2**31 - 1
MAX_PAGE = 500
MAX_DEFECTS = 5000          # most defects one /defects answer carries
DEFAULT_DEFECTS = 2000
MAX_BINS = 2000             # the density strip: bins are widened so a coil never needs more
MIN_BIN_M = 0.001           # 1 mm: a coil of (nearly) no length still gets one bin
MAX_M = 1e6                 # 1000 km: no coil is longer


def _iso_day(value: Any) -> Any:
    """Only YYYY-MM-DD is a day here (pydantic alone would read a bare number as a timestamp)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("not a day (YYYY-MM-DD)")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
Surface = Literal["top", "bottom"]
Decision = Literal["ACCEPT", "DOWNGRADE", "HOLD", "REJECT"]
CoilId = PathParam(min_length=1, max_length=100, description="the coil id as level 2 names it")


# ---------- response models ----------

class ErrorModel(BaseModel):
    detail: str


class CoilSummary(BaseModel):
    coil_id: str
    line_id: str | None
    grade: str | None
    width_mm: float | None
    thickness_mm: float | None
    length_m: float | None = Field(description="level-2 length; null when not sent")
    order: str | None
    customer: str | None
    exposed_surface: str | None
    created_at: str | None = Field(description="UTC, ISO 8601")
    updated_at: str | None
    n_defects: int
    decision: Decision | None = Field(description="the current grade's decision; null when never graded")
    downgraded_to: str | None = Field(description="the current grade's DOWNGRADE target (a grade of the rule set)")


class CoilList(BaseModel):
    items: list[CoilSummary]
    total: int
    limit: int
    offset: int


class ClassCount(BaseModel):
    class_id: int
    class_name: str
    count: int


class SurfaceSeen(BaseModel):
    surface: str
    camera_id: str
    frames: int
    inspected_m: float
    end_m: float
    strip_width_mm_min: float | None
    strip_width_mm_median: float | None
    strip_width_mm_max: float | None
    closed_at: str | None


class Span(BaseModel):
    surface: str
    camera_id: str
    start_m: float
    end_m: float
    reason: str = Field(description='"missing", "unreadable", "wrong_size", "duplicate", "behind" (skipped on '
                                    'purpose: inference fell behind a live source), ...')
    detail: str | None
    uid: str | None = Field(description="stable id of the span (coil, surface, camera, start, reason): the "
                                        "same in every run; null only for a repeat stored before it existed")


class CameraStatus(BaseModel):
    camera_id: str
    surface: str
    position_m: float = Field(description="metres from the head of the last inspected frame")
    frames: int = Field(description="frames of this coil inspected")
    frames_per_s: float | None
    lag_s: float | None = Field(description="seconds behind the line; null for a replay")
    behind_m: float = Field(description="metres of this coil skipped as `behind`")
    updated_at: str | None


class ReasonOut(BaseModel):
    rule: str = Field(description="the rule that fired (\"grading-error\" when grading itself failed)")
    kind: str = Field(description="density, size, exposed, periodic, uninspected (or selection, error)")
    decision: Decision
    grade: str | None = Field(description="DOWNGRADE target of the rule")
    message: str
    measured: float
    limit: float
    unit: str
    surface: str | None
    start_m: float = Field(description="where the rule fired, metres from the head")
    end_m: float
    defect_ids: list[int] = Field(description="the defects behind it (ids of /v1/coils/{id}/defects)")


class PieceOut(BaseModel):
    start_m: float
    end_m: float
    length_m: float
    decision: Decision
    grade: str | None
    reasons: list[ReasonOut]


class GradeOut(BaseModel):
    id: int
    coil_id: str
    decision: Decision
    grade: str | None = Field(description="DOWNGRADE target (the worst of the rules that fired)")
    reasons: list[ReasonOut]
    pieces: list[PieceOut] = Field(description="the cut list, head first, each piece graded on its own (one "
                                               "piece: no cut)")
    cuts_m: list[float] = Field(description="cut positions; each loses the rule set's cut_loss_m after it")
    length_m: float
    length_source: str
    prime_m: float = Field(description="metres of ACCEPT pieces")
    n_defects: int = Field(description="defects of the coil when it was graded")
    rule_set: str
    rules_file: str | None = Field(description="the rule file as the grader named it")
    rules_sha256: str = Field(description="sha256 of the rule file's text")
    rules_text: str = Field(description="the rule file's text as it graded the coil")
    graded_by: str = Field(description='a person, "line" (at coil close) or what the API caller said')
    graded_at: str | None = Field(description="UTC, ISO 8601")


class GradeHistory(BaseModel):
    coil_id: str
    items: list[GradeOut] = Field(description="newest first; the first is the current grade")


class GradeRequest(BaseModel):
    """Grade the coil again and store the grade (earlier grades stay in the history)."""

    model_config = ConfigDict(extra="forbid")
    rules: str | None = Field(None, min_length=1, max_length=200,
                              description="a rule file of the server's rules folder, by name (`automotive` or "
                                          "`automotive.yaml`); default: the file for the coil's order, else "
                                          "customer, else default.yaml")
    graded_by: str = Field(min_length=1, max_length=100, description="who grades")


class CoilDetail(CoilSummary):
    counts_by_class: list[ClassCount]
    counts_by_surface: dict[str, int]
    uninspected_m: dict[str, float] = Field(description="surface -> uninspected metres")
    uninspected_by_reason: dict[str, dict[str, float]] = Field(description="surface -> reason -> metres")
    uninspected: list[Span]
    surfaces: list[SurfaceSeen] = Field(description="what each camera saw, written when the runner closes "
                                                    "the surface (empty while the coil is on the line)")
    reached_m: dict[str, float] = Field(description="surface -> furthest metre the database holds anything "
                                                    "for (defect, gap or closed summary)")
    line_status: list[CameraStatus] = Field(description="what the runners last published about the cameras "
                                                        "on this coil (empty when none did)")
    extent_m: float = Field(description="length to draw: level-2 length, else the furthest metre seen")
    extent_width_mm: float = Field(description="width to draw: level-2 width, else the widest strip seen")
    current_grade: GradeOut | None = Field(description="the latest grade (GET .../grades has them all); null "
                                                       "when never graded")


class DefectOut(BaseModel):
    id: int
    coil_id: str
    surface: str
    camera_id: str
    class_id: int
    class_name: str
    score: float
    start_m: float
    end_m: float
    across_start_mm: float = Field(description="from the drive-side strip edge")
    across_end_mm: float
    length_mm: float
    width_mm: float
    area_mm2: float
    frames: list[str]
    model_name: str | None
    model_version: str | None
    model_sha256: str | None
    uid: str | None
    pinned: bool
    has_crop: bool
    created_at: str | None


class DefectPage(BaseModel):
    items: list[DefectOut] = Field(description="in the requested order")
    limit: int
    truncated: bool = Field(description="more defects match than `limit`: narrow the range")


class ClassSeries(BaseModel):
    class_id: int
    class_name: str
    counts: list[int] = Field(description="defects whose start lies in each bin, head first")


class Density(BaseModel):
    coil_id: str
    surface: str | None
    bin_m: float = Field(description="bin width actually used (widened to keep at most "
                                     f"{MAX_BINS} bins)")
    length_m: float
    n_bins: int
    classes: list[ClassSeries]


class OnTheLine(BaseModel):
    coil_id: str | None = Field(description="the coil of the latest runner status, defect or gap written; "
                                            "else the newest coil; null when there is none")
    since: str | None = Field(description="UTC time of that write")


class CoilUpdate(BaseModel):
    """Level-2 data; a field left out or null keeps the stored value."""

    model_config = ConfigDict(extra="forbid")
    line_id: str | None = Field(None, max_length=100)
    grade: str | None = Field(None, max_length=100)
    width_mm: float | None = Field(None, gt=0, le=10_000)
    thickness_mm: float | None = Field(None, gt=0, le=1_000)
    length_m: float | None = Field(None, gt=0, le=MAX_M)
    order: str | None = Field(None, max_length=200)
    customer: str | None = Field(None, max_length=200)
    exposed_surface: Surface | None = None


NOT_FOUND = {404: {"model": ErrorModel, "description": "No coil with this id"}}
WRITE_ERRORS = {400: {"model": ErrorModel, "description": "The body is not JSON"},
                401: {"model": ErrorModel, "description": "No or wrong bearer token",
                      "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
                403: {"model": ErrorModel, "description": "This server has no API token: writes are disabled"}}
bearer = HTTPBearer(auto_error=False, description="the token of `steelscan serve --api-token-file FILE` "
                                                  "(or STEELSCAN_API_TOKEN)")


# ---------- the router ----------

def _db(request: Request):
    return request.app.state.store.db


async def _run(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


def _detail(db, coil_id: str) -> dict | None:
    from ..coils.maps import coil_extent

    detail = queries.coil_detail(db, coil_id)
    if detail is None:
        return None
    spans = queries.uninspected(db, coil_id)
    prog = queries.progress(db, coil_id)
    seen = [{"end_m": m} for m in prog["reached_m"].values()]
    length, width = coil_extent(detail, [], seen)
    return detail | prog | {"uninspected": spans, "line_status": queries.line_status(db, coil_id),
                            "extent_m": length, "extent_width_mm": width, "current_grade": grades.current(db, coil_id)}


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    token = request.app.state.api_token
    if not token:
        raise HTTPException(403, "writes are disabled: this server has no API token; start it with "
                                 "`steelscan serve --api-token-file FILE` or STEELSCAN_API_TOKEN")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})


def build_router() -> APIRouter:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    templates = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]))
    router = APIRouter()

    @router.get("/v1/coils", response_model=CoilList, tags=["coils"], summary="Coils, newest first")
    async def list_coils(request: Request,
                         line_id: str | None = Query(None, max_length=100, description="only this line"),
                         grade: str | None = Query(None, max_length=100, description="only this steel grade"),
                         since: Day | None = Query(None, description="created on or after this day (UTC)"),
                         until: Day | None = Query(None, description="created before this day (UTC)"),
                         limit: int = Query(20, ge=1, le=MAX_PAGE, description="page size"),
                         offset: int = Query(0, ge=0, le=MAX_ROW, description="rows to skip")) -> Any:
        items, total = await _run(queries.list_coils, _db(request), line_id=line_id, grade=grade,
                                  since=since, until=until, limit=limit, offset=offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @router.get("/v1/line/current", response_model=OnTheLine, tags=["coils"],
                summary="The coil now on the line (what the live page shows)")
    async def current(request: Request) -> Any:
        return await _run(queries.current_coil, _db(request))

    @router.get("/v1/coils/{coil_id}", response_model=CoilDetail, responses=NOT_FOUND, tags=["coils"],
                summary="One coil: level-2 data, counts per class and surface, uninspected spans, length")
    async def get_coil(request: Request, coil_id: str = CoilId) -> Any:
        detail = await _run(_detail, _db(request), coil_id)
        if detail is None:
            raise HTTPException(404, f"no coil {coil_id!r}")
        return detail

    @router.put("/v1/coils/{coil_id}", response_model=CoilDetail, tags=["coils"],
                summary="Set level-2 data (creates the coil if new)",
                responses=WRITE_ERRORS)
    async def put_coil(request: Request, coil_id: str = CoilId, body: CoilUpdate = Body(...),
                       _: None = Depends(require_token)) -> Any:
        info = CoilInfo(coil_id, **body.model_dump())
        await _run(queries.update_coil, _db(request), info)
        return await _run(_detail, _db(request), coil_id)

    @router.get("/v1/coils/{coil_id}/grades", response_model=GradeHistory, responses=NOT_FOUND, tags=["coils"],
                summary="Every stored grade of a coil, newest first (who, when, which rules, decision, reasons)")
    async def coil_grades(request: Request, coil_id: str = CoilId) -> Any:
        db = _db(request)
        if not await _run(queries.coil_exists, db, coil_id):
            raise HTTPException(404, f"no coil {coil_id!r}")
        return {"coil_id": coil_id, "items": await _run(grades.history, db, coil_id)}

    @router.post("/v1/coils/{coil_id}/grade", response_model=GradeOut, status_code=201, tags=["coils"],
                 summary="Grade a coil again with a rule file of the server's rules folder, and store it",
                 responses={**WRITE_ERRORS,
                            404: {"model": ErrorModel, "description": "No coil with this id, or no rule file of "
                                                                      "this name in the server's rules folder"},
                            409: {"model": ErrorModel, "description": "The server has no rules folder "
                                                                      "(serve --rules-dir), no rule file fits the "
                                                                      "coil, or the rule file is not valid"}})
    async def grade_coil(request: Request, coil_id: str = CoilId, body: GradeRequest = Body(...),
                         _: None = Depends(require_token)) -> Any:
        from ..errors import ConfigError

        source, db = request.app.state.rules, _db(request)
        if source is None:
            raise HTTPException(409, "this server has no rules folder: start it with `steelscan serve "
                                     "--rules-dir DIR` to grade from the API")
        if not await _run(queries.coil_exists, db, coil_id):
            raise HTTPException(404, f"no coil {coil_id!r}")
        try:
            rules = source
            if body.rules is not None:
                rules = await _run(source.named, body.rules)
                if rules is None:
                    raise HTTPException(404, f"no rule file {body.rules!r} in the server's rules folder "
                                             f"(there: {', '.join(sorted(source.files())) or 'none'})")
            grading = await _run(grades.grade_stored, db, coil_id, rules)
        except ConfigError as e:
            raise HTTPException(409, f"cannot grade with the server's rules: {e}") from None
        return await _run(grades.store_grade, db, grading, body.graded_by)

    @router.get("/v1/coils/{coil_id}/defects", response_model=DefectPage, responses=NOT_FOUND, tags=["coils"],
                summary="Defects of a coil overlapping [from_m, to_m]")
    async def coil_defects(request: Request, coil_id: str = CoilId,
                           surface: Surface | None = Query(None),
                           from_m: float | None = Query(None, ge=0, le=MAX_M, allow_inf_nan=False,
                                                        description="metres from the head"),
                           to_m: float | None = Query(None, ge=0, le=MAX_M, allow_inf_nan=False),
                           class_id: int | None = Query(None, ge=1, le=255),
                           order: Literal["position", "area"] = Query(
                               "position", description="position: by surface (top first) and start_m; area: "
                                                       "largest first, so a truncated page keeps the largest"),
                           limit: int = Query(DEFAULT_DEFECTS, ge=1, le=MAX_DEFECTS)) -> Any:
        db = _db(request)
        if not await _run(queries.coil_exists, db, coil_id):
            raise HTTPException(404, f"no coil {coil_id!r}")
        rows = await _run(queries.defects, db, coil_id, surface=surface, from_m=from_m, to_m=to_m,
                          class_id=class_id, limit=limit + 1, largest_first=order == "area")
        return {"items": rows[:limit], "limit": limit, "truncated": len(rows) > limit}

    @router.get("/v1/coils/{coil_id}/density", response_model=Density, responses=NOT_FOUND, tags=["coils"],
                summary="Defects per bin per class along the whole coil (the density strip)")
    async def coil_density(request: Request, coil_id: str = CoilId, surface: Surface | None = Query(None),
                           bin_m: float | None = Query(None, ge=0.01, le=MAX_M, allow_inf_nan=False,
                                                       description="bin width; default: the coil in "
                                                                   "about 500 bins")) -> Any:
        db = _db(request)
        detail = await _run(_detail, db, coil_id)
        if detail is None:
            raise HTTPException(404, f"no coil {coil_id!r}")
        length = float(detail["extent_m"])
        step = max(bin_m or length / 500, length / MAX_BINS, MIN_BIN_M)
        classes = await _run(queries.density, db, coil_id, length, step, surface)
        return {"coil_id": coil_id, "surface": surface, "bin_m": step, "length_m": length,
                "n_bins": max(1, math.ceil(length / step - 1e-9)), "classes": classes}

    @router.get("/v1/defects/{defect_id}/crop.png", tags=["coils"], summary="A defect's image crop (PNG)",
                response_class=Response,
                responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                           404: {"model": ErrorModel, "description": "No such defect, or its crop was not "
                                                                     "kept (or pruned)"}})
    async def crop(request: Request, defect_id: int = PathParam(ge=1, le=MAX_ROW)) -> Response:
        found = await _run(queries.crops, _db(request), [defect_id])
        if defect_id not in found:
            raise HTTPException(404, f"no crop for defect {defect_id}")
        return Response(found[defect_id], media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    async def page(request: Request, name: str, **context) -> HTMLResponse:
        from .alarms import open_alarms   # the banner of open periodic alarms (base.html.j2)

        alarms = await _run(open_alarms, _db(request))
        return HTMLResponse(templates.get_template(name).render(open_alarms=alarms, **context))

    @router.get("/coils", include_in_schema=False)
    async def coils_page(request: Request) -> HTMLResponse:
        return await page(request, "coils.html.j2", title="Coils")

    @router.get("/coils/{coil_id}", include_in_schema=False)
    async def coil_page(request: Request, coil_id: str) -> HTMLResponse:
        return await page(request, "coil.html.j2", title=f"Coil {coil_id}", coil_id=coil_id)

    @router.get("/live", include_in_schema=False)
    async def live_page(request: Request) -> HTMLResponse:
        return await page(request, "live.html.j2", title="Live")

    router.include_router(build_live_router())
    return router
