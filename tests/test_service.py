"""The web service through FastAPI's TestClient: inspect, history, persistence, hostile
input (413/415/422), saturation and no model (503), /metrics, and a schemathesis run over
every endpoint from the app's own OpenAPI schema."""

from __future__ import annotations

import io
import shutil
import tempfile
import threading

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from conftest import DarkSpotSegmenter
from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.rle import decode_rle
from steelscan.service.app import IMAGE_TYPES, MAX_ROW, create_app


def frame(dark: bool = True, h: int = 64, w: int = 256) -> np.ndarray:
    img = np.full((h, w, 3), 160, np.uint8)
    if dark:
        img[10:20, 30:60] = 10
    return img


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def dark_spot_inspector(segmenter=None) -> Inspector:
    return Inspector(None, segmenter or DarkSpotSegmenter(), Thresholds.defaults(4), batch_size=1)


def make_client(db, inspector=None, **kwargs) -> TestClient:
    return TestClient(create_app(inspector=inspector or dark_spot_inspector(), db_path=db,
                                 model_name="dark-spot", **kwargs))


def upload(client: TestClient, name: str = "a.png", data: bytes | None = None):
    return client.post("/v1/inspect", files={"file": (name, png_bytes(frame()) if data is None else data,
                                                      "image/png")})


def metric_samples(text: str) -> dict[tuple, float]:
    """Prometheus text -> {(sample name, sorted label items): value}; the parser rejects bad syntax."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path / "db.sqlite") as c:
        yield c


def test_inspect_returns_verdict_defects_and_rles(client):
    r = client.post("/v1/inspect", files={"file": ("spot.png", png_bytes(frame()), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    result = body["result"]
    assert body["id"] == 1 and body["filename"] == "spot.png" and body["latency_ms"] > 0
    assert result["verdict"] == "NG" and (result["height"], result["width"]) == (64, 256)
    assert len(result["defects"]) == 1
    d = result["defects"][0]
    assert d["class_id"] == 3 and d["area"] == 300 and d["bbox"] == [10, 30, 19, 59]
    mask = decode_rle(result["rles"]["3"], 64, 256)
    assert mask.sum() == 300 and mask[10:20, 30:60].all()
    assert result["rles"]["1"] == ""
    clean = client.post("/v1/inspect", files={"file": ("clean.png", png_bytes(frame(False)), "image/png")})
    assert clean.json()["result"]["verdict"] == "OK" and clean.json()["result"]["defects"] == []


def test_history_lists_newest_first_pages_and_gets_by_id(client):
    for i in range(3):
        client.post("/v1/inspect", files={"file": (f"f{i}.png", png_bytes(frame(i != 1)), "image/png")})
    page = client.get("/v1/inspections", params={"limit": 2}).json()
    assert page["total"] == 3 and [it["filename"] for it in page["items"]] == ["f2.png", "f1.png"]
    assert page["items"][1]["verdict"] == "OK" and page["items"][0]["classes"] == ["class_3"]
    rest = client.get("/v1/inspections", params={"limit": 2, "offset": 2}).json()
    assert [it["filename"] for it in rest["items"]] == ["f0.png"]
    one = client.get("/v1/inspections/1").json()
    assert one["filename"] == "f0.png" and one["result"]["defects"][0]["area"] == 300
    assert client.get("/v1/inspections/99").status_code == 404
    assert client.get("/v1/inspections", params={"limit": 0}).status_code == 422


def test_history_survives_restart(tmp_path):
    db = tmp_path / "db.sqlite"
    with make_client(db) as c:
        c.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame()), "image/png")})
    with make_client(db) as c:
        items = c.get("/v1/inspections").json()["items"]
        assert [it["filename"] for it in items] == ["a.png"]
        assert c.post("/v1/inspect", files={"file": ("b.png", png_bytes(frame()), "image/png")}).json()["id"] == 2


def test_oversized_upload_gets_413(tmp_path):
    with make_client(tmp_path / "db.sqlite", max_upload_mb=0.01) as c:  # 10,485 bytes
        assert upload(c).status_code == 200  # a small frame is under the cap
        noisy = np.random.default_rng(0).integers(0, 255, (128, 512, 3), dtype=np.uint8)
        r = upload(c, "big.png", png_bytes(noisy))  # Content-Length says it: refused before reading
        assert r.status_code == 413, r.text
        # No Content-Length at all (chunked): the streamed bytes are counted and the upload cut off.
        head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        chunks = iter([head] + [b"\0" * 4096] * 5 + [b"\r\n--x--\r\n"])
        r = c.post("/v1/inspect", content=chunks, headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "10,485 bytes" in r.json()["detail"], r.text
        assert c.get("/v1/inspections").json()["total"] == 1


@pytest.mark.parametrize("payload, status", [
    (b"this is not an image at all", 415),
    (b"", 422),
    (png_bytes(frame())[:200], 422),  # a truncated PNG: recognised, then corrupt
])
def test_garbage_gets_a_clear_4xx_never_500(client, payload, status):
    r = client.post("/v1/inspect", files={"file": ("x.png", payload, "image/png")})
    assert r.status_code == status, r.text
    assert "x.png" in r.json()["detail"]


def test_wrong_content_type_and_missing_field(client):
    r = client.post("/v1/inspect", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = client.post("/v1/inspect", files={"other": ("a.png", png_bytes(frame()), "image/png")})
    assert r.status_code == 422 and "`file`" in r.json()["detail"]
    r = client.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame()), "image/png")}, data={"note": "x"})
    assert r.status_code == 422 and "'note'" in r.json()["detail"]  # the schema allows `file` only
    assert client.get("/v1/inspections").json()["total"] == 0


class BlockingSegmenter(DarkSpotSegmenter):
    """Holds each inspection until the test releases it: a long inspection, on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.entered.set()
        assert self.release.wait(30), "the test never released the inspection"
        return super().__call__(batch)


def test_saturated_service_answers_503_with_retry_after(tmp_path):
    segmenter = BlockingSegmenter()
    with make_client(tmp_path / "db.sqlite", dark_spot_inspector(segmenter), max_concurrency=1) as c:
        first = {}
        worker = threading.Thread(target=lambda: first.setdefault("r", upload(c, "first.png")))
        worker.start()
        try:
            assert segmenter.entered.wait(30), "the first inspection never reached the segmenter"
            r = upload(c, "second.png")  # the only slot is taken by a real inspection in flight
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            health = c.get("/healthz").json()  # the event loop still answers
            assert (health["in_flight"], health["max_concurrency"]) == (1, 1)
        finally:
            segmenter.release.set()
            worker.join(30)
        assert first["r"].status_code == 200 and first["r"].json()["filename"] == "first.png"
        assert upload(c, "third.png").status_code == 200  # the slot is free again
        samples = metric_samples(c.get("/metrics").text)
        assert samples[("steelscan_rejected_busy_total", ())] == 1
        assert [it["filename"] for it in c.get("/v1/inspections").json()["items"]] == ["third.png", "first.png"]


def test_metrics_are_prometheus_text_with_the_service_names(tmp_path):
    with make_client(tmp_path / "a.sqlite") as c, make_client(tmp_path / "b.sqlite") as other:
        upload(c, "a.png")
        upload(c, "b.png", b"nope")
        upload(other, "c.png")  # a second app in the same process keeps its own counters
        r = c.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = metric_samples(r.text)
        inspect_200 = ("steelscan_http_requests_total", (("method", "POST"), ("path", "/v1/inspect"),
                                                         ("status", "200")))
        assert samples[inspect_200] == 1
        assert samples[("steelscan_http_requests_total", (("method", "POST"), ("path", "/v1/inspect"),
                                                          ("status", "415")))] == 1
        assert samples[("steelscan_inspection_latency_seconds_bucket", (("le", "+Inf"),))] == 1
        assert samples[("steelscan_inspection_latency_seconds_count", ())] == 1
        assert samples[("steelscan_inspections_total", (("verdict", "NG"),))] == 1
        assert samples[("steelscan_ng_images_total", (("class_name", "class_3"),))] == 1
        assert samples[("steelscan_ng_images_total", (("class_name", "class_1"),))] == 0  # present from the start
        assert samples[("steelscan_stored_inspections", ())] == 1
        assert samples[("steelscan_in_flight", ())] == 0
        assert samples[("steelscan_rejected_busy_total", ())] == 0
        families = {f.name: f.type for f in text_string_to_metric_families(r.text)}
        assert families["steelscan_inspection_latency_seconds"] == "histogram"
        assert metric_samples(other.get("/metrics").text)[inspect_200] == 1


def test_openapi_says_what_is_accepted_and_what_can_come_back(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/inspect", "/v1/inspections", "/v1/inspections/{inspection_id}", "/healthz", "/metrics",
            "/v1/coils", "/v1/coils/{coil_id}", "/v1/coils/{coil_id}/defects", "/v1/coils/{coil_id}/density",
            "/v1/defects/{defect_id}/crop.png", "/v1/line/current", "/v1/live/events", "/v1/alarms",
            "/v1/alarms/{alarm_id}", "/v1/alarms/{alarm_id}/ack", "/v1/coils/{coil_id}/grades",
            "/v1/coils/{coil_id}/grade"} == set(spec["paths"])
    put = spec["paths"]["/v1/coils/{coil_id}"]["put"]
    assert {"200", "400", "401", "403", "422"} == set(put["responses"]) and put["security"] == [{"HTTPBearer": []}]
    ack = spec["paths"]["/v1/alarms/{alarm_id}/ack"]["post"]
    assert {"200", "401", "403", "404"} <= set(ack["responses"]) and ack["security"] == [{"HTTPBearer": []}]
    grade = spec["paths"]["/v1/coils/{coil_id}/grade"]["post"]
    assert {"201", "401", "403", "404", "409"} <= set(grade["responses"]) and grade["security"] == [{"HTTPBearer": []}]
    post = spec["paths"]["/v1/inspect"]["post"]
    assert {"200", "413", "415", "422", "503"} == set(post["responses"])
    for status in ("413", "415", "422", "503"):
        assert post["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorModel")
    body = post["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["file"] and body["schema"]["properties"]["file"]["format"] == "binary"
    assert body["encoding"]["file"]["contentType"].split(", ") == list(IMAGE_TYPES)
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/inspections"]["get"]["parameters"]}
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 500)
    assert (params["offset"]["minimum"], params["offset"]["maximum"]) == (0, MAX_ROW)
    (one,) = spec["paths"]["/v1/inspections/{inspection_id}"]["get"]["parameters"]
    assert (one["schema"]["minimum"], one["schema"]["maximum"]) == (1, MAX_ROW)


def test_out_of_range_history_parameters_get_422_not_500(client):
    """schemathesis found a 500 here: an offset past SQLite's 64-bit integers."""
    upload(client)
    for params in ({"offset": 3088885655315394592768, "limit": 464}, {"offset": MAX_ROW + 1},
                   {"limit": 501}, {"offset": -1}):
        r = client.get("/v1/inspections", params=params)
        assert r.status_code == 422, (params, r.text)
    assert client.get("/v1/inspections", params={"offset": MAX_ROW}).json()["items"] == []
    assert client.get(f"/v1/inspections/{2**70}").status_code == 422
    assert client.get(f"/v1/inspections/{MAX_ROW}").status_code == 404
    assert client.get("/v1/inspections/0").status_code == 422


def test_without_a_model_the_history_works_and_inspect_answers_503(tmp_path):
    db = tmp_path / "db.sqlite"
    with make_client(db) as c:
        upload(c, "earlier.png")
    with TestClient(create_app(db_path=db)) as c:
        assert c.get("/healthz").json() == {"status": "ok", "model": None, "engine": None, "in_flight": 0,
                                            "max_concurrency": 2}
        assert c.get("/").status_code == 200
        assert [it["filename"] for it in c.get("/v1/inspections").json()["items"]] == ["earlier.png"]
        assert c.get("/v1/inspections/1").json()["result"]["verdict"] == "NG"
        r = upload(c)
        assert r.status_code == 503 and "no model loaded" in r.json()["detail"] and "retry-after" not in r.headers
        samples = metric_samples(c.get("/metrics").text)
        assert samples[("steelscan_stored_inspections", ())] == 1
        assert not any(name == "steelscan_ng_images_total" for name, _ in samples)  # no classes without a model


def test_index_page_and_health(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "<script" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained: no CDN
    assert "/healthz" in page.text and "/v1/inspect" in page.text
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "model": "dark-spot", "engine": "auto", "in_flight": 0, "max_concurrency": 2}


def test_app_from_a_bundle_folder(tmp_path):
    """create_app(model=...) loads a real bundle (torch engine) and inspects with it."""
    import torch

    from steelscan.atomic import write_json
    from steelscan.export.bundle import write_bundle
    from steelscan.models import build_model, save_run_weights

    spec = {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3, "base_width": 4}
    torch.manual_seed(0)
    save_run_weights(tmp_path / "seg", build_model(spec))
    write_json(tmp_path / "seg" / "config.json", {"kind": "segmenter", "model": spec, "num_classes": 4,
                                                  "class_names": ["a", "b", "c", "d"]})
    write_bundle(tmp_path / "bundle", None, tmp_path / "seg", name="tiny")
    with TestClient(create_app(tmp_path / "bundle", db_path=tmp_path / "db.sqlite")) as c:
        assert c.get("/healthz").json()["engine"] == "torch"
        r = c.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame(h=32, w=64)), "image/png")})
        assert r.status_code == 200 and set(r.json()["result"]["class_scores"]) == {"a", "b", "c", "d"}


# ---------- schemathesis: every endpoint, fuzzed from the app's own OpenAPI schema ----------
# Checks (schemathesis defaults): no 5xx, every status returned is documented, the response
# bodies, content types and headers conform to the schema, schema-valid requests are accepted
# and invalid ones refused. Positive uploads are real images of the declared types (drawn below);
# negative ones are anything else. Examples, coverage (boundary values) and fuzzing phases.
# Random like any fuzzer (a failure prints the @seed that replays it): with a fixed seed it missed
# the 500 on a huge offset that random draws find on every run.

def image_files(fmt: str) -> st.SearchStrategy[bytes]:
    """Small frames encoded as `fmt`, sometimes with a dark defect (so both verdicts come back)."""
    @st.composite
    def draw(draw) -> bytes:
        h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        img = np.full((h, w, 3), draw(st.integers(60, 255)), np.uint8)
        if draw(st.booleans()):
            img[: max(1, h // 2), : max(1, w // 2)] = 5
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt)
        return buf.getvalue()
    return draw()


for _media_type in IMAGE_TYPES:
    schemathesis.openapi.media_type(_media_type, image_files(_media_type.split("/")[1].upper()))

_FUZZ_DIR = tempfile.mkdtemp(prefix="steelscan-fuzz-")
_FUZZ_TOKEN = "fuzz-token"


def _fuzz_app():
    """The app over a database that holds two coils (so the coil endpoints answer 200 as well
    as 404), with a write token (the fuzzer's auth, below)."""
    from conftest import make_coil_records
    from steelscan.coils.records import AlarmRecord
    from steelscan.coils.store import CoilStore

    with CoilStore(f"{_FUZZ_DIR}/db.sqlite") as store:
        for coil_id, n in (("C1", 12), ("C2", 3)):
            coil, defects, spans, summaries = make_coil_records(coil_id, n, seed=n)
            store.upsert_coil(coil)
            store.add_defects(defects)
            store.add_uninspected(spans)
            for summary in summaries:
                store.close_surface(summary)
        store.raise_alarm(AlarmRecord("fuzz-alarm", "L1", "top", "C1", "W1", 2.042, 650.0, [1, 3], 6, 1.5, 12.0,
                                      400.0, 0.9999, "2026-12-02T10:00:00+00:00"))   # /v1/alarms answers 200 too
    from steelscan.coils.grading_rules import DEFAULT_RULES

    return create_app(inspector=dark_spot_inspector(), db_path=f"{_FUZZ_DIR}/db.sqlite", model_name="dark-spot",
                      api_token=_FUZZ_TOKEN, rules_dir=DEFAULT_RULES.parent)


fuzzed_schema = schemathesis.openapi.from_asgi("/openapi.json", _fuzz_app())


@fuzzed_schema.auth()
class _WriteToken:
    """The bearer token for PUT /v1/coils/{id}, POST /v1/alarms/{id}/ack and POST /v1/coils/{id}/grade: the fuzzer writes with it, and checks that calls
    without it or with a wrong one are refused."""

    def get(self, case, ctx):
        return _FUZZ_TOKEN

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module", autouse=True)
def _remove_fuzz_dir():
    yield
    shutil.rmtree(_FUZZ_DIR, ignore_errors=True)


# The live event stream (GET /v1/live/events) never ends unless bounded; schemathesis would read each
# fuzzed call of it until its read timeout. It is validated against the schema, bounded, in test_live.py.
@fuzzed_schema.exclude(path="/v1/live/events").parametrize()
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_endpoint_holds_to_its_openapi_schema(case):
    case.call_and_validate()
