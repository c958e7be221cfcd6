"""The web service through FastAPI's TestClient: inspect, history, persistence, hostile
input (413/415/422), saturation (503), /metrics format and the OpenAPI schema."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import DarkSpotSegmenter
from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.rle import decode_rle
from steelscan.service.app import create_app


def frame(dark: bool = True, h: int = 64, w: int = 256) -> np.ndarray:
    img = np.full((h, w, 3), 160, np.uint8)
    if dark:
        img[10:20, 30:60] = 10
    return img


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_client(db, **kwargs) -> TestClient:
    inspector = Inspector(None, DarkSpotSegmenter(), Thresholds.defaults(4), batch_size=1)
    return TestClient(create_app(inspector=inspector, db_path=db, model_name="dark-spot", **kwargs))


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
    with make_client(tmp_path / "db.sqlite", max_upload_mb=0.01) as c:  # 10 KiB
        noisy = np.random.default_rng(0).integers(0, 255, (128, 512, 3), dtype=np.uint8)
        r = c.post("/v1/inspect", files={"file": ("big.png", png_bytes(noisy), "image/png")})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        # A lying Content-Length is not trusted: the streamed bytes are counted too.
        body = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + \
            b"\0" * 20000 + b"\r\n--x--\r\n"
        r = c.post("/v1/inspect", content=body,
                   headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413
        assert c.get("/v1/inspections").json()["total"] == 0


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


def test_saturated_service_answers_503_with_retry_after(tmp_path):
    with make_client(tmp_path / "db.sqlite", max_concurrency=1) as c:
        slots = c.app.state.slots
        assert slots.acquire(blocking=False)  # one long inspection holds the only slot
        try:
            r = c.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame()), "image/png")})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert c.get("/healthz").status_code == 200  # the event loop still answers
        finally:
            slots.release()
        assert c.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame()), "image/png")}).status_code == 200
        assert "steelscan_rejected_busy_total 1" in c.get("/metrics").text


def test_metrics_are_prometheus_text(client):
    client.post("/v1/inspect", files={"file": ("a.png", png_bytes(frame()), "image/png")})
    client.post("/v1/inspect", files={"file": ("b.png", b"nope", "image/png")})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')
    for line in text.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert 'steelscan_http_requests_total{path="/v1/inspect",method="POST",status="200"} 1' in text
    assert 'steelscan_http_requests_total{path="/v1/inspect",method="POST",status="415"} 1' in text
    assert "# TYPE steelscan_inspection_latency_seconds histogram" in text
    assert 'steelscan_inspection_latency_seconds_bucket{le="+Inf"} 1' in text
    assert 'steelscan_ng_images_total{class_name="class_3"} 1' in text
    assert "steelscan_stored_inspections 1" in text


def test_openapi_matches_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/inspect", "/v1/inspections", "/v1/inspections/{inspection_id}", "/healthz", "/metrics"} \
        <= set(spec["paths"])
    post = spec["paths"]["/v1/inspect"]["post"]
    assert {"200", "413", "415", "422", "503"} <= set(post["responses"])
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"] and schema["properties"]["file"]["format"] == "binary"
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/InspectionModel")
    assert "rles" in spec["components"]["schemas"]["ResultModel"]["properties"]


def test_index_page_and_health(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "<script" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained: no CDN
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
