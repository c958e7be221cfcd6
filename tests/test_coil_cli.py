"""`steelscan coil list|show|export|report`: JSON, CSV round trip, the report's HTML and PNGs,
and one clear line for a database that is missing or does not answer."""

from __future__ import annotations

import csv
import json
import socket

import numpy as np
from PIL import Image

from steelscan.cli import main
from steelscan.cli.coil import CSV_COLUMNS
from steelscan.coils.store import CoilStore


def run(capsys, *argv):
    code = main(["coil", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_json(coil_db, capsys):
    code, out, _ = run(capsys, "show", "C1", "--db", coil_db, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["coil_id"] == "C1" and shown["grade"] == "DX51D" and shown["customer"] == "ACME <&> Co"
    assert shown["order"] == "O-1" and shown["length_m"] == 20.0
    assert len(shown["defects"]) == 40 == shown["n_defects"] == sum(c["count"] for c in shown["counts_by_class"])
    assert shown["counts_by_surface"] == {"top": 20, "bottom": 20}
    d = shown["defects"][0]
    for field in ("surface", "camera_id", "class_id", "class_name", "score", "start_m", "end_m", "across_start_mm",
                  "across_end_mm", "length_mm", "width_mm", "area_mm2", "frames", "model_name", "model_version",
                  "model_sha256", "pinned", "has_crop"):
        assert field in d
    assert {(u["surface"], u["reason"]) for u in shown["uninspected"]} == {("top", "missing"), ("bottom", "unreadable")}
    code, out, _ = run(capsys, "show", "C1", "--db", f"sqlite:///{coil_db}")
    assert code == 0 and "40 defects" in out and "DX51D" in out
    code, out, _ = run(capsys, "list", "--db", coil_db, "--json")
    assert [c["coil_id"] for c in json.loads(out)["coils"]] == ["C2", "C1"]


def test_export_csv_round_trip(coil_db, tmp_path, capsys):
    out = tmp_path / "out" / "c1.csv"
    assert run(capsys, "export", "C1", "--csv", out, "--db", coil_db)[0] == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert list(CSV_COLUMNS[:7]) == ["coil_id", "surface", "class_id", "start_m", "end_m", "across_start_mm",
                                     "across_end_mm"]
    stored = CoilStore(coil_db).defects("C1")
    assert len(rows) == len(stored) == 40
    for row, d in zip(rows, stored):
        assert (row["coil_id"], row["surface"], int(row["class_id"]), row["frames"].split(";")) == \
            (d["coil_id"], d["surface"], d["class_id"], d["frames"])
        for k in ("start_m", "end_m", "across_start_mm", "across_end_mm", "score", "area_mm2"):
            assert float(row[k]) == d[k]   # repr of a float reads back exactly
    assert run(capsys, "export", "--all", "--csv", tmp_path / "all.csv", "--db", coil_db)[0] == 0
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 1 + 43
    code, _, err = run(capsys, "export", "--csv", tmp_path / "x.csv", "--db", coil_db)
    assert code == 2 and "--all" in err and not (tmp_path / "x.csv").exists()


def test_export_uninspected_spans_with_their_uid(coil_db, tmp_path, capsys):
    """--uninspected-csv: the spans in the columns `coil grade --uninspected` reads, with their uid."""
    from steelscan.coils.coil_table import read_uninspected

    spans = tmp_path / "spans.csv"
    assert run(capsys, "export", "--all", "--csv", tmp_path / "d.csv", "--uninspected-csv", spans,
               "--db", coil_db)[0] == 0
    with open(spans, newline="") as f:
        rows = list(csv.DictReader(f))
    stored = {c: CoilStore(coil_db).uninspected(c) for c in ("C1", "C2")}
    assert len(rows) == 4 and {r["coil_id"] for r in rows} == {"C1", "C2"}
    for r in rows:
        assert r["uid"].startswith("span-") and r["uid"] in {u["uid"] for u in stored[r["coil_id"]]}
    read = read_uninspected(spans)   # the grading tool's reader takes it, and gets the same uids back
    assert sorted(u.uid for u in read) == sorted(r["uid"] for r in rows)


def _real_image(path):
    a = np.asarray(Image.open(path).convert("RGB"))
    assert a.shape[0] > 100 and a.shape[1] > 300
    packed = (a[..., 0].astype(np.int32) << 16) | (a[..., 1].astype(np.int32) << 8) | a[..., 2]
    assert np.unique(packed).size > 20   # drawn, not blank
    return a


def test_report_writes_html_and_pngs(coil_db, tmp_path, capsys):
    out = tmp_path / "report"
    code, _, err = run(capsys, "report", "C1", "--out", out, "--db", coil_db)
    assert code == 0, err
    for name in ("map_top", "map_bottom", "density", "across"):
        _real_image(out / f"{name}.png")
    top = _real_image(out / "map_top.png")
    assert (np.abs(top.astype(int) - (230, 159, 0)).sum(axis=2) < 60).any()   # a class-1 (orange) marker
    crops = list((out / "crops").glob("defect_*.png"))
    assert crops and all(Image.open(c).size == (48, 24) for c in crops)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 + len(crops)   # self-contained
    assert "ACME &lt;&amp;&gt; Co" in html and "ACME <&> Co" not in html   # autoescaped
    assert "Largest defects" in html and "unreadable" in html


def test_missing_coil_and_database(coil_db, tmp_path, capsys):
    code, _, err = run(capsys, "show", "NOPE", "--db", coil_db)
    assert code == 2 and "NOPE" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "list", "--db", coil_db, "--since", "yesterday")
    assert code == 2 and "since" in err and "yesterday" in err
    code, out, _ = run(capsys, "list", "--db", coil_db, "--since", "2000-01-01", "--grade", "DX51D")
    assert code == 0 and "2 of 2 coils" in out
    code, _, err = run(capsys, "list", "--db", tmp_path / "absent.db")
    assert code == 2 and "no database" in err and not (tmp_path / "absent.db").exists()


def test_database_that_does_not_answer(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(capsys, "list", "--db", f"postgresql://u:hunter2@127.0.0.1:{port}/plant")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "hunter2" not in err and f"u:***@127.0.0.1:{port}/plant" in err


def test_report_of_a_clean_coil(tmp_path, capsys):
    """A coil without defects (and no level-2 width) still gets maps: the strip and its gaps."""
    from steelscan.coils.records import CoilInfo, UninspectedRecord

    db = tmp_path / "clean.db"
    with CoilStore(db) as store:
        store.upsert_coil(CoilInfo("CLEAN", length_m=12.0))
        store.add_uninspected([UninspectedRecord("CLEAN", "top", "cam-top", 2.0, 3.5, "missing")])
    code, _, err = run(capsys, "report", "CLEAN", "--out", tmp_path / "r", "--db", db)
    assert code == 0, err
    top = np.asarray(Image.open(tmp_path / "r" / "map_top.png").convert("L"))
    assert top.std() > 5   # strip, hatched gap, axes
    assert "missing" in (tmp_path / "r" / "report.html").read_text()
