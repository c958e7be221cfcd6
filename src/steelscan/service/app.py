"""The steelscan web service (FastAPI): inspect uploaded frames, keep a history.

    POST /v1/inspect            multipart field `file` (PNG/JPEG/BMP/TIFF) -> verdict, defects, RLEs
    GET  /v1/inspections        past inspections, newest first (limit 1..500, offset 0..2^31-1)
    GET  /v1/inspections/{id}   one past inspection, as the POST returned it
    GET  /healthz               liveness + model/engine (model null: none loaded)
    GET  /metrics               Prometheus text exposition (prometheus_client)
    GET  /                      the single-page web UI (static/index.html)
    /v1/coils..., /v1/defects/{id}/crop.png, /coils, /live   coils: see service/coils.py
    /v1/alarms..., POST /v1/alarms/{id}/ack               periodic alarms: see service/alarms.py

Every status an endpoint can answer is in the OpenAPI schema (tests/test_service.py fuzzes
the app from it). Hostile input never gets a 500: bodies over the limit get 413 (FastAPI's
per-route `max_body_size`: Content-Length checked first, then the streamed bytes counted),
non-images 415, corrupt images 422, and requests beyond `max_concurrency` a 503 with
Retry-After instead of a queue. Without a model the page, history, health and metrics still
work and /v1/inspect answers 503. Inference runs in a thread pool so the event loop keeps
answering."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..rle import encode_rle
from .alarms import build_alarm_router
from .coils import build_router
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServiceMetrics
from .store import InspectionStore

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_MB = 20.0
MAX_IMAGE_PIXELS = 64_000_000  # e.g. a 256 x 250,000 strip; larger is refused (422)
RETRY_AFTER_S = 1
MAX_ROW = 2**31 - 1  # ids and offsets fit a 32-bit signed integer (SQLite and PostgreSQL alike)
MAX_PAGE = 500
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/tiff")


# ---------- response models (the OpenAPI schema is generated from these) ----------

class DefectModel(BaseModel):
    class_id: int = Field(description="1-based class id, as in Kaggle's CSV")
    class_name: str
    score: float = Field(description="mean segmenter probability over the defect's pixels, 0..1")
    area: int = Field(description="pixels")
    bbox: list[int] = Field(description="[ymin, xmin, ymax, xmax], inclusive pixels")
    rle: str = Field(description="Kaggle RLE of this defect alone (1-indexed, column-major)")


class ResultModel(BaseModel):
    image_id: str
    verdict: str | None = Field(description='"OK" or "NG"')
    height: int | None = None
    width: int | None = None
    segmenter_ran: bool | None = None
    class_scores: dict[str, float] = Field(default_factory=dict)
    score_source: str | None = None
    defects: list[DefectModel] = Field(default_factory=list)
    rles: dict[str, str] = Field(default_factory=dict,
                                 description="class id -> Kaggle RLE of the whole class mask ('' = empty)")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: str | None = None


class InspectionModel(BaseModel):
    id: int
    created_at: str = Field(description="UTC, ISO 8601")
    filename: str
    latency_ms: float = Field(description="decode + inference + post-processing, milliseconds")
    result: ResultModel


class InspectionSummary(BaseModel):
    id: int
    created_at: str
    filename: str
    verdict: str | None
    n_defects: int
    classes: list[str]
    latency_ms: float


class InspectionList(BaseModel):
    items: list[InspectionSummary]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    status: str
    model: str | None = Field(description="bundle name; null when the server runs without a model")
    engine: str | None = Field(description="torch, onnx or onnx-int8 (auto for a ready inspector); null without a model")
    in_flight: int
    max_concurrency: int


class ErrorModel(BaseModel):
    detail: str


ERRORS = {
    413: {"model": ErrorModel, "description": "Upload larger than --max-upload-mb (a body whose Content-Length "
                                              "already says so gets the text/plain answer)",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    415: {"model": ErrorModel, "description": "Not multipart/form-data, or the file is not an image"},
    422: {"model": ErrorModel, "description": "No `file` part, parts besides `file`, a malformed multipart "
                                              "body, or an empty, corrupt or oversized image"},
    503: {"model": ErrorModel, "description": "All inference slots busy (retry after Retry-After seconds), "
                                              "or no model loaded (the server was started without --model)",
          "headers": {"Retry-After": {"description": "seconds; sent when the slots are busy",
                                      "schema": {"type": "integer"}}}},
}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"], "additionalProperties": False,
               "properties": {"file": {"type": "string", "format": "binary",
                                       "description": "one steel frame: PNG, JPEG, BMP or TIFF, "
                                                      f"at most {MAX_IMAGE_PIXELS:,} pixels"}}},
    "encoding": {"file": {"contentType": ", ".join(IMAGE_TYPES)}}}}}}


class UploadError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def decode_upload(data: bytes, filename: str) -> np.ndarray:
    """Image bytes -> RGB uint8 (H, W, 3) (steelscan.images, 16-bit included); UploadError
    415 (not an image) or 422 (empty, corrupt or too many pixels)."""
    from ..images import NotAnImageError, decode_image_bytes
    from ..errors import ImageError

    try:
        return decode_image_bytes(data, filename, max_pixels=MAX_IMAGE_PIXELS)
    except NotAnImageError as e:
        raise UploadError(415, str(e)) from None
    except ImageError as e:
        raise UploadError(422, str(e)) from None


async def upload_file(request: Request) -> tuple[bytes, str]:
    """(file bytes, file name) of the multipart part `file`, parsed by Starlette's form parser.
    The size cap is the route's `max_body_size` (FastAPI counts the bytes as they stream in)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise UploadError(415, f"expected multipart/form-data with a `file` part, got {ctype or 'no content type'!r}")
    try:
        form = await request.form(max_files=1, max_fields=8)
    except StarletteHTTPException as e:
        if e.status_code == 413:  # over the body limit: FastAPI answers it
            raise
        raise UploadError(422, f"malformed multipart body ({e.detail})") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise UploadError(422, "multipart body has no `file` part with a file in it")
    extra = sorted({key for key in form.keys() if key != "file"})
    if extra:
        raise UploadError(422, f"unexpected multipart part(s) {', '.join(map(repr, extra))[:200]}: "
                               "send only `file`")
    data = await upload.read()
    return data, (upload.filename or "upload")[:200]


def class_rles(masks: np.ndarray) -> dict[str, str]:
    return {str(c + 1): encode_rle(masks[c]) for c in range(masks.shape[0])}


def create_app(model: str | Path | None = None, *, inspector=None, engine: str = "auto",
               db_path: str | Path = "inspections.sqlite", max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               max_concurrency: int | None = None, threads: int | None = None,
               model_name: str | None = None, api_token: str | None = None,
               rules_dir: str | Path | None = None) -> FastAPI:
    """Build the app. `model` (a bundle name or folder, loaded with `engine`: auto = int8 ONNX
    if the bundle has it, else ONNX, else PyTorch), or a ready `inspector`, or neither: then
    the page, history, health and metrics work and /v1/inspect answers 503.
    `db_path` is the history database, handed to InspectionStore as given. The store and the
    inference pool open when the app starts (lifespan) and close when it stops. `api_token`: the
    bearer token that writes (PUT /v1/coils/{id}, POST /v1/alarms/{id}/ack, POST /v1/coils/{id}/grade)
    need; None disables writes (403). `rules_dir`: the folder of rule files POST /v1/coils/{id}/grade may
    use (None: 409)."""
    max_concurrency = max(1, int(max_concurrency or 2))
    if inspector is None and model is not None:
        from ..runtime import build_inspector

        # tiling on (the default): a long strip is inspected as `steelscan predict` does it
        inspector = build_inspector(model, engine=engine, batch_size=1,
                                    threads=threads or max(1, (os.cpu_count() or 2) // max_concurrency))
        engine, model_name = inspector.settings["engine"], inspector.model_info["name"]
    if inspector is None:
        engine, model_name = None, None
    limit = int(max_upload_mb * 1024 * 1024)
    metrics = ServiceMetrics(inspector.class_names if inspector is not None else [])
    slots = threading.BoundedSemaphore(max_concurrency)
    state = {"in_flight": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.store = InspectionStore(db_path)
        app.state.pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="inspect")
        try:
            yield
        finally:
            app.state.pool.shutdown(wait=True)
            app.state.store.close()

    app = FastAPI(title="steelscan", version=_version(), lifespan=lifespan,
                  description="Steel-surface defect inspection: a classifier gates a segmenter; "
                              "masks come back as Kaggle RLE.")
    app.state.metrics, app.state.inspector = metrics, inspector
    app.state.api_token = api_token or None
    app.state.rules = None
    if rules_dir is not None:
        from ..coils.rule_source import RuleSource
        from ..errors import ConfigError

        app.state.rules = RuleSource(rules_dir)
        if not app.state.rules.folder:
            raise ConfigError("the rules for grading from the API are a folder of rule files", path=rules_dir,
                              field="rules-dir")
    app.include_router(build_router())
    app.include_router(build_alarm_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe_request(getattr(route, "path", "unmatched"), request.method, response.status_code)
        return response

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 and inspector is not None else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:  # raised by the body limit while the upload streams in
            exc = StarletteHTTPException(413, f"upload exceeds the limit of {limit:,} bytes (--max-upload-mb)")
        if exc.status_code == 405:  # Starlette names only the first route's methods; a path may have several
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": allowed_methods(app, request.scope)})
        return await http_exception_handler(request, exc)

    def inspect_and_store(image: np.ndarray, filename: str, t0: float) -> dict:
        result = inspector.inspect_image(image, filename)
        payload = result.to_json()
        payload["rles"] = class_rles(result.masks)
        latency = (time.perf_counter() - t0) * 1000.0
        record = app.state.store.add(filename, payload, latency)
        metrics.observe_inspection(payload, latency / 1000.0)
        return record

    @app.post("/v1/inspect", response_model=InspectionModel, responses=ERRORS, openapi_extra=UPLOAD_BODY,
              max_body_size=limit, summary="Inspect one frame", tags=["inspect"])
    async def inspect(request: Request) -> Any:
        if inspector is None:
            raise UploadError(503, "no model loaded: this server was started without --model, so it shows "
                                   "the history but cannot inspect; restart it with `steelscan serve --model MODEL`")
        if not slots.acquire(blocking=False):
            metrics.rejected.inc()
            raise UploadError(503, f"all {max_concurrency} inspection slots are busy; retry shortly")
        state["in_flight"] += 1
        try:
            t0 = time.perf_counter()
            data, filename = await upload_file(request)
            loop, pool = asyncio.get_running_loop(), app.state.pool
            image = await loop.run_in_executor(pool, decode_upload, data, filename)
            return await loop.run_in_executor(pool, inspect_and_store, image, filename, t0)
        finally:
            state["in_flight"] -= 1
            slots.release()

    @app.get("/v1/inspections", response_model=InspectionList, tags=["history"],
             summary="Past inspections, newest first")
    async def list_inspections(limit: int = Query(20, ge=1, le=MAX_PAGE, description="page size"),
                               offset: int = Query(0, ge=0, le=MAX_ROW, description="rows to skip")) -> Any:
        store = app.state.store
        items, total = await asyncio.get_running_loop().run_in_executor(None, store.list, limit, offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/inspections/{inspection_id}", response_model=InspectionModel, tags=["history"],
             responses={404: {"model": ErrorModel, "description": "No inspection with this id"}},
             summary="One past inspection")
    async def get_inspection(inspection_id: int = PathParam(ge=1, le=MAX_ROW)) -> Any:
        record = app.state.store.get(inspection_id)
        if record is None:
            raise HTTPException(404, f"no inspection with id {inspection_id}")
        return record

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Any:
        return {"status": "ok", "model": model_name or ("custom" if inspector is not None else None),
                "engine": engine, "in_flight": state["in_flight"], "max_concurrency": max_concurrency}

    @app.get("/metrics", tags=["ops"], summary="Prometheus text exposition (version 0.0.4)",
             response_class=Response, responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        from ..coils.alarms import open_counts

        alarms = await asyncio.get_running_loop().run_in_executor(None, open_counts, app.state.store.db)
        return Response(metrics.exposition(state["in_flight"], app.state.store.count(), alarms),
                        media_type=METRICS_CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app


def allowed_methods(app: FastAPI, scope: dict) -> str:
    """The Allow header of a 405: the methods of every route whose path matches."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        if route.matches(scope)[0] == Match.PARTIAL:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _version() -> str:
    from .. import __version__
    return __version__
