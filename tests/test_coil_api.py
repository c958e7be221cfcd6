"""The coil APIs of the service (steelscan.service.coils) through FastAPI's TestClient, over a
database built with CoilStore from conftest's generated coil records."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import make_coil_records
from steelscan.coils.records import LineStatusRecord, UninspectedRecord
from steelscan.coils.store import CoilStore
from steelscan.service.app import create_app
from steelscan.service.coils import MAX_BINS

TOKEN = "t0ken-for-tests"


@pytest.fixture
def client(coil_db):
    with TestClient(create_app(db_path=coil_db, api_token=TOKEN)) as c:
        yield c


def test_list_is_newest_first_filtered_and_paged(client):
    r = client.get("/v1/coils")
    assert r.status_code == 200
    body = r.json()
    assert [c["coil_id"] for c in body["items"]] == ["C2", "C1"] and body["total"] == 2
    assert {c["coil_id"]: c["n_defects"] for c in body["items"]} == {"C1": 40, "C2": 3}
    page = client.get("/v1/coils", params={"limit": 1, "offset": 1}).json()
    assert [c["coil_id"] for c in page["items"]] == ["C1"] and page["total"] == 2
    assert client.get("/v1/coils", params={"line_id": "L9"}).json()["total"] == 0
    assert client.get("/v1/coils", params={"grade": "DX51D", "since": "2000-01-01"}).json()["total"] == 2
    assert client.get("/v1/coils", params={"until": "2000-01-01"}).json()["total"] == 0
    assert client.get("/v1/coils", params={"limit": 501}).status_code == 422
    assert client.get("/v1/coils", params={"since": "yesterday"}).status_code == 422


def test_coil_detail_has_counts_spans_length_and_progress(client):
    d = client.get("/v1/coils/C1").json()
    _, defects, spans, _ = make_coil_records("C1", 40, seed=42)
    assert d["n_defects"] == 40 and sum(c["count"] for c in d["counts_by_class"]) == 40
    assert d["counts_by_surface"] == {"top": 20, "bottom": 20}
    assert d["customer"] == "ACME <&> Co" and d["extent_m"] == 20.0 and d["extent_width_mm"] == 1200.0
    assert [(u["surface"], u["start_m"], u["end_m"], u["reason"]) for u in d["uninspected"]] == \
        [("top", 5.0, 6.25, "missing"), ("bottom", 0.0, 0.5, "unreadable")]
    assert d["uninspected_by_reason"] == {"top": {"missing": 1.25}, "bottom": {"unreadable": 0.5}}
    assert d["reached_m"] == {"top": 20.0, "bottom": 20.0}    # the closed surfaces' end_m
    assert client.get("/v1/coils/nope").status_code == 404


def test_defects_in_a_range_of_one_surface_and_class(client):
    everything = client.get("/v1/coils/C1/defects").json()
    assert len(everything["items"]) == 40 and not everything["truncated"]
    r = client.get("/v1/coils/C1/defects", params={"surface": "top", "from_m": 4, "to_m": 9}).json()
    want = [d for d in everything["items"] if d["surface"] == "top" and d["end_m"] >= 4 and d["start_m"] <= 9]
    assert 0 < len(want) < 20 and {d["id"] for d in r["items"]} == {d["id"] for d in want}
    assert [d["start_m"] for d in r["items"]] == sorted(d["start_m"] for d in want)
    cls = client.get("/v1/coils/C1/defects", params={"class_id": 3}).json()["items"]
    assert cls and all(d["class_id"] == 3 for d in cls)
    small = client.get("/v1/coils/C1/defects", params={"limit": 5}).json()
    assert len(small["items"]) == 5 and small["truncated"]
    assert client.get("/v1/coils/C1/defects", params={"limit": 5001}).status_code == 422
    assert client.get("/v1/coils/C1/defects", params={"from_m": "nan"}).status_code == 422
    assert client.get("/v1/coils/C1/defects", params={"surface": "side"}).status_code == 422
    assert client.get("/v1/coils/nope/defects").status_code == 404


def test_density_counts_every_defect_once_by_its_start(client):
    everything = client.get("/v1/coils/C1/defects").json()["items"]
    d = client.get("/v1/coils/C1/density", params={"bin_m": 2}).json()
    assert d["n_bins"] == 10 and d["bin_m"] == 2 and d["length_m"] == 20
    assert sum(sum(c["counts"]) for c in d["classes"]) == 40
    first = sum(c["counts"][0] for c in d["classes"])
    assert first == sum(1 for x in everything if x["start_m"] < 2)
    top = client.get("/v1/coils/C1/density", params={"surface": "top"}).json()
    assert sum(sum(c["counts"]) for c in top["classes"]) == 20 and top["n_bins"] == 500
    tiny = client.get("/v1/coils/C1/density", params={"bin_m": 0.01}).json()   # widened: at most MAX_BINS
    assert tiny["n_bins"] == MAX_BINS and tiny["bin_m"] == pytest.approx(20 / MAX_BINS)


def test_crop_png_or_404(client):
    items = client.get("/v1/coils/C1/defects").json()["items"]
    with_crop = next(d for d in items if d["has_crop"])
    without = next(d for d in items if not d["has_crop"])
    r = client.get(f"/v1/defects/{with_crop['id']}/crop.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (48, 24)
    assert client.get(f"/v1/defects/{without['id']}/crop.png").status_code == 404
    assert client.get("/v1/defects/999999/crop.png").status_code == 404


def test_put_level2_needs_the_token_and_keeps_unsent_fields(client):
    body = {"grade": "S355", "width_mm": 1500, "exposed_surface": "bottom"}
    r = client.put("/v1/coils/C1", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.put("/v1/coils/C1", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.put("/v1/coils/C1", json=body, headers=auth)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["grade"], d["width_mm"], d["exposed_surface"], d["customer"]) == ("S355", 1500, "bottom", "ACME <&> Co")
    assert d["n_defects"] == 40
    new = client.put("/v1/coils/NEW-7", json={"line_id": "L2", "order": "O-9"}, headers=auth).json()
    assert new["coil_id"] == "NEW-7" and new["order"] == "O-9" and new["n_defects"] == 0
    assert client.get("/v1/coils", params={"limit": 1}).json()["items"][0]["coil_id"] == "NEW-7"
    assert client.put("/v1/coils/C1", json={"colour": "red"}, headers=auth).status_code == 422
    assert client.put("/v1/coils/C1", json={"width_mm": -1}, headers=auth).status_code == 422


def test_put_without_a_configured_token_is_403_with_the_reason(coil_db):
    with TestClient(create_app(db_path=coil_db)) as c:
        r = c.put("/v1/coils/C1", json={"grade": "X"}, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "--api-token-file" in r.json()["detail"]
        assert c.get("/v1/coils/C1").json()["grade"] == "DX51D"


def test_behind_spans_show_as_skipped_and_reached(coil_db):
    with CoilStore(coil_db) as store:
        store.add_uninspected([UninspectedRecord("C2", "top", "cam-top", 30.0, 32.5, "behind")])
    with TestClient(create_app(db_path=coil_db)) as c:
        d = c.get("/v1/coils/C2").json()
    assert d["uninspected_by_reason"]["top"]["behind"] == 2.5 and d["reached_m"]["top"] == 32.5
    assert d["extent_m"] == 20.0   # the level-2 length still rules the drawing


def test_pages_render(client):
    for path, needle in (("/coils", "/v1/coils?"), ("/coils/C1", '"C1"'), ("/live", "/v1/line/current")):
        r = client.get(path)
        assert r.status_code == 200 and needle in r.text, path
    hostile = client.get("/coils/<img src=x onerror=alert(1)>").text   # a coil id is text, never markup
    assert "<img src=x" not in hostile and "&lt;img src=x" in hostile and "\\u003cimg src=x" in hostile
    js = client.get("/static/coilmap.js")
    assert js.status_code == 200 and "class CoilMap" in js.text


def test_a_truncated_page_by_area_keeps_the_largest(client):
    everything = client.get("/v1/coils/C1/defects").json()["items"]
    page = client.get("/v1/coils/C1/defects", params={"order": "area", "limit": 5}).json()
    assert page["truncated"]
    assert [d["id"] for d in page["items"]] == \
        [d["id"] for d in sorted(everything, key=lambda d: (-d["area_mm2"], d["id"]))[:5]]


def test_published_line_status_shows_in_the_coil_and_moves_its_position(coil_db):
    with CoilStore(coil_db) as store:
        store.publish_status(LineStatusRecord("cam-top", "C2", "top", 25.0, 100, 30.0, 0.2, 0.0))
        store.publish_status(LineStatusRecord("cam-top", "C2", "top", 27.5, 110, 31.5, 0.4, 1.25))  # replaces
    with TestClient(create_app(db_path=coil_db)) as c:
        d = c.get("/v1/coils/C2").json()
        assert [(s["camera_id"], s["position_m"], s["frames"], s["frames_per_s"], s["lag_s"], s["behind_m"])
                for s in d["line_status"]] == [("cam-top", 27.5, 110, 31.5, 0.4, 1.25)]
        assert d["reached_m"]["top"] == 27.5 and d["reached_m"]["bottom"] == 20.0
        assert c.get("/v1/coils/C1").json()["line_status"] == []


def test_serve_reads_the_token_from_a_file_or_the_environment(tmp_path, monkeypatch):
    import argparse

    from steelscan.cli.serve import api_token
    from steelscan.errors import ConfigError

    monkeypatch.setenv("STEELSCAN_API_TOKEN", "from-env")
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert api_token(argparse.Namespace(api_token_file=str(path))) == "from-file"
    assert api_token(argparse.Namespace(api_token_file=None)) == "from-env"
    monkeypatch.delenv("STEELSCAN_API_TOKEN")
    assert api_token(argparse.Namespace(api_token_file=None)) is None
    path.write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        api_token(argparse.Namespace(api_token_file=str(path)))
    with pytest.raises(ConfigError, match="cannot read"):
        api_token(argparse.Namespace(api_token_file=str(tmp_path / "missing")))


def test_density_bins_in_the_database_match_numpy_on_both_dialects(db_url):
    import numpy as np

    from steelscan.coils import queries

    coil, defects, _, _ = make_coil_records("D1", 60, seed=5)
    defects[0].start_m, defects[1].start_m = 4.0, 20.0   # on a bin edge; at the very end (clips)
    with CoilStore(db_url) as store:
        store.upsert_coil(coil)
        store.add_defects(defects)
        store.flush()
        got = queries.density(store.db, "D1", 20.0, 2.0)
        top = queries.density(store.db, "D1", 20.0, 2.0, surface="top")
    for series, surfaces in ((got, ("top", "bottom")), (top, ("top",))):
        for c in series:
            starts = np.array([d.start_m for d in defects if d.class_id == c["class_id"] and d.surface in surfaces])
            assert c["counts"] == np.bincount(np.minimum(starts // 2.0, 9).astype(int), minlength=10).tolist()
    assert sum(sum(c["counts"]) for c in got) == 60 and sum(sum(c["counts"]) for c in top) == 30


def test_the_coil_on_the_line_is_the_latest_written_not_the_latest_announced(coil_db, tmp_path):
    with TestClient(create_app(db_path=tmp_path / "empty.db")) as c:
        assert c.get("/v1/line/current").json() == {"coil_id": None, "since": None}
    with TestClient(create_app(db_path=coil_db, api_token=TOKEN)) as c:
        assert c.get("/v1/line/current").json()["coil_id"] == "C2"   # written last
        r = c.put("/v1/coils/NEXT", json={"grade": "S355"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert c.get("/v1/line/current").json()["coil_id"] == "C2"   # announced, not on the line yet
        with CoilStore(coil_db) as store:
            store.publish_status(LineStatusRecord("cam-top", "NEXT", "top", 3.0, 12, 20.0, 0.1))
        assert c.get("/v1/line/current").json()["coil_id"] == "NEXT"
