"""Stored grades (steelscan.coils.grades): `coil grade --store/--history` (what-if stores nothing),
rule folders chosen per order/customer, grading at coil close in `steelscan line --rules`, the
grade APIs, and the coil_grades migration on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_coil_records
from steelscan.cli import main
from steelscan.coils import grades, queries
from steelscan.coils.grading_rules import DEFAULT_RULES
from steelscan.coils.rule_source import RuleSource
from steelscan.coils.store import CoilStore
from steelscan.db import open_database
from steelscan.errors import ConfigError

LENIENT = """rule_sets:
  - name: {name}
    grades: [b-grade]
    rules:
      - name: holes-exposed-ok
        kind: exposed
        classes: [2]
        decision: DOWNGRADE
        grade: b-grade
"""


def rules_dir(root: Path, *stems: str, default: bool = True) -> Path:
    """A folder of rule files: default.yaml (the shipped one) and STEM.yaml, each a lenient set
    "STEM-lenient" (class 2 on the exposed side only downgrades to b-grade)."""
    root.mkdir(parents=True, exist_ok=True)
    if default:
        shutil.copy(DEFAULT_RULES, root / "default.yaml")
    for stem in stems:
        (root / f"{stem}.yaml").write_text(LENIENT.format(name=f"{stem}-lenient"))
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_coil_db(url: str, coil_id: str = "C1", n: int = 40, seed: int = 42, **kw) -> None:
    with CoilStore(url) as store:
        coil, defects, spans, summaries = make_coil_records(coil_id, n, seed=seed, **kw)
        store.upsert_coil(coil)
        store.add_defects(defects)
        store.add_uninspected(spans)
        for s in summaries:
            store.close_surface(s)


# --- coil grade --store / --history --------------------------------------------------------------
def test_what_if_stores_nothing_store_keeps_history_with_the_rule_text(db_url, tmp_path, capsys):
    from hashlib import sha256

    stored_coil_db(db_url)
    folder = rules_dir(tmp_path / "rules", "O-1")   # the coil's order has its own file
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C1", "--db", db_url, "--rules", str(DEFAULT_RULES))
    assert code == 0 and "what-if: nothing stored" in out and "C1: REJECT" in out
    db = open_database(db_url)
    try:
        assert grades.history(db, "C1") == [] and grades.current(db, "C1") is None
        code, out, _ = run(capsys, "coil", "grade", "--coil", "C1", "--db", db_url, "--rules", str(DEFAULT_RULES),
                           "--store", "--by", "anna")
        assert code == 0 and "stored: grade #" in out and "by anna" in out and "what-if" not in out
        first = grades.current(db, "C1")
        assert (first["decision"], first["graded_by"], first["rule_set"]) == ("REJECT", "anna", "default")
        assert first["rules_text"] == DEFAULT_RULES.read_text()
        assert first["rules_sha256"] == sha256(DEFAULT_RULES.read_bytes()).hexdigest()
        rules = {r["rule"] for r in first["reasons"]}
        assert {"holes-exposed", "large-scratch"} <= rules
        ids = {d["id"] for d in queries.defects(db, "C1")}
        behind = [i for r in first["reasons"] for i in r["defect_ids"]]
        assert behind and set(behind) <= ids   # the reasons point at stored defects
        # re-grade with the folder: the customer's file wins; the earlier grade stays, unchanged
        code, out, _ = run(capsys, "coil", "grade", "--coil", "C1", "--db", db_url, "--rules", str(folder), "--store",
                           "--json")
        body = json.loads(out)
        assert code == 0 and body["stored"] is True and body["coils"][0]["rule_set"] == "O-1-lenient"
        (folder / "O-1.yaml").write_text("# edited after grading\n" + (folder / "O-1.yaml").read_text())
        got = grades.history(db, "C1")
        assert [g["id"] for g in got] == [body["grade_id"], first["id"]]   # newest first
        assert got[1] == first
        assert (got[0]["decision"], got[0]["grade"]) == ("DOWNGRADE", "b-grade")
        assert "edited" not in got[0]["rules_text"] and got[0]["rules_file"].endswith("O-1.yaml")
        assert got[0]["graded_by"]   # the OS user
        assert queries.list_coils(db)[0][0]["decision"] == "DOWNGRADE"
    finally:
        db.dispose()
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C1", "--db", db_url, "--history")
    lines = out.splitlines()
    assert code == 0 and "DOWNGRADE -> b-grade" in lines[1] and "current" in lines[1]
    assert "anna" in lines[2] and "REJECT" in lines[2] and "2 grade(s)" in lines[-1]
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C1", "--db", db_url, "--rules", "default", "--json")
    assert json.loads(out)["stored"] is False
    db = open_database(db_url)
    assert len(grades.history(db, "C1")) == 2   # what-if again: still two
    db.dispose()


@pytest.mark.parametrize("argv, field", [
    (["--defects", "x.csv", "--rules", "default", "--store"], "coil"),
    (["--coil", "C1", "--history", "--store"], "history"),
    (["--coil", "C1", "--rules", "default", "--by", "anna"], "by"),
    (["--coil", "C1"], "rules"),
])
def test_store_and_history_flags_are_checked(coil_db, capsys, argv, field):
    code, _, err = run(capsys, "coil", "grade", "--db", str(coil_db), *argv)
    assert code == 2 and f"[{field}]" in err and "Traceback" not in err


# --- rule folders ---------------------------------------------------------------------------------
def test_rule_folder_chooses_order_then_customer_then_default(tmp_path):
    folder = rules_dir(tmp_path / "rules", "cust", "o1")
    source = RuleSource(folder)
    assert source.check() == ["cust.yaml", "default.yaml", "o1.yaml"]
    assert source.for_coil("cust", "o1").name == "o1.yaml"
    assert source.for_coil("cust", "o9").name == "cust.yaml"
    assert source.for_coil("someone", None).name == "default.yaml"
    assert source.for_coil(None, None).rules.for_coil(None, None).name == "default"
    assert source.named("cust.yaml").name == source.named("cust").name == "cust.yaml"
    assert source.named("../rules/cust") is None and source.named("default.txt") is None
    assert source.for_coil("../rules/cust", None).name == "default.yaml"   # names are matched, never joined
    alone = RuleSource(rules_dir(tmp_path / "alone", "cust", default=False))
    with pytest.raises(ConfigError, match="no default.yaml"):
        alone.for_coil("other", None)
    (folder / "broken.yaml").write_text("rule_sets:\n  - name: x\n    rules: []\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        source.check()
    with pytest.raises(ConfigError, match="no rule file or folder"):
        RuleSource(tmp_path / "missing")


# --- grading at coil close --------------------------------------------------------------------
def two_coils(root: Path) -> Path:
    """C9 (order o1, customer cust): class-2 spots on the exposed top, a top frame missing; then
    C10 (order o2, customer other): one class-2 spot on top. Both surfaces, 2 mm x 0.5 mm pixels."""
    from test_line import ACROSS, ALONG, FRAME_M, Coil

    c = Coil(root)
    for i in range(8):
        if i != 3:
            c.frame("C9", "top", i * FRAME_M, [(2, 10, 20, 100, 110)] if i % 2 == 0 else [])
    for i in range(8):
        c.frame("C9", "bottom", i * FRAME_M, [(3, 5, 9, 200, 230)] if i in (1, 4) else [], mirror=True)
    for i in range(4):
        c.frame("C10", "top", i * FRAME_M, [(2, 30, 40, 200, 210)] if i == 2 else [])
        c.frame("C10", "bottom", i * FRAME_M, [])
    root = c.write(coils=f"C9,L1,DC04,150,0.8,{8 * FRAME_M},o1,cust,top\n"
                         f"C10,L1,DC04,150,0.8,{4 * FRAME_M},o2,other,top\n")
    (root / "line.yaml").write_text(f"pixel_mm: [{ALONG}, {ACROSS}]\n")
    return root


def test_line_grades_each_coil_at_close_and_a_failure_does_not_stop_it(tmp_path, capsys):
    frames = two_coils(tmp_path / "frames")
    folder = rules_dir(tmp_path / "rules", "cust", default=False)   # nothing for C10's customer, no default
    db = str(tmp_path / "coils.db")
    line = ["line", "--oracle", str(frames / "train.csv"), "--frames", str(frames), "--quiet", "--db", db]
    code, out, err = run(capsys, *line, "--rules", str(folder))
    assert code == 1 and "2 coil(s)" in out and "graded 2 coil(s) at close: 0 ACCEPT, 1 DOWNGRADE, 1 HOLD" in out
    assert "C10: grading failed, stored as HOLD" in err and "no default.yaml" in err
    database = open_database(db)
    try:
        c9, c10 = grades.history(database, "C9"), grades.history(database, "C10")
        assert len(c9) == 1 and len(c10) == 1   # once per coil, after both surfaces closed
        g = c9[0]
        assert (g["graded_by"], g["rule_set"], g["decision"], g["grade"]) == ("line", "cust-lenient", "DOWNGRADE",
                                                                           "b-grade")
        assert g["rules_file"].endswith("cust.yaml") and g["rules_text"] == (folder / "cust.yaml").read_text()
        assert g["n_defects"] == queries.coil_detail(database, "C9")["n_defects"] >= 6   # every surface stored
        assert c10[0]["decision"] == "HOLD" and c10[0]["reasons"][0]["rule"] == "grading-error"
        assert queries.coil_detail(database, "C10")["n_defects"] == 1   # the line went on after the failure
    finally:
        database.dispose()
    # the line's grade is the what-if grade of the stored coil with the same rules
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C9", "--db", db, "--rules", str(folder), "--json")
    what_if = json.loads(out)["coils"][0]
    assert [(r["rule"], sorted(map(int, r["defect_ids"]))) for r in what_if["reasons"]] == \
        [(r["rule"], sorted(r["defect_ids"])) for r in g["reasons"]]
    assert (what_if["decision"], what_if["length_m"]) == (g["decision"], g["length_m"])
    # a rule file fixed later: grade the held coil again by hand, the line's HOLD stays in its history
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C10", "--db", db, "--rules", "default", "--store")
    assert code == 0 and "C10: REJECT" in out
    code, out, _ = run(capsys, "coil", "grade", "--coil", "C10", "--db", db, "--history")
    assert "REJECT" in out.splitlines()[1] and "HOLD" in out.splitlines()[2] and " line " in out.splitlines()[2]


def test_line_rules_are_checked_before_the_line_starts(tmp_path, capsys):
    frames = two_coils(tmp_path / "frames")
    line = ["line", "--oracle", str(frames / "train.csv"), "--frames", str(frames), "--quiet"]
    code, _, err = run(capsys, *line, "--db", str(tmp_path / "run.jsonl"), "--rules", str(DEFAULT_RULES))
    assert code == 2 and "--db must be a database" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("rule_sets:\n  - name: x\n    colour: red\n    rules:\n"
                   "      - {name: r, kind: uninspected, max_m: 1}\n")
    code, _, err = run(capsys, *line, "--db", str(tmp_path / "c.db"), "--rules", str(bad))
    assert code == 2 and "bad.yaml:3" in err and "unknown field" in err
    assert not (tmp_path / "c.db").exists()   # nothing ran


# --- the API ----------------------------------------------------------------------------------
TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_grade_api_history_current_and_rules_only_from_the_server_folder(coil_db, tmp_path):
    from fastapi.testclient import TestClient

    from steelscan.service.app import create_app

    folder = rules_dir(tmp_path / "rules", "lenient")
    with TestClient(create_app(db_path=coil_db, api_token=TOKEN)) as c:
        assert c.get("/v1/coils/C1/grades").json() == {"coil_id": "C1", "items": []}
        assert c.get("/v1/coils/C1").json()["current_grade"] is None
        r = c.post("/v1/coils/C1/grade", json={"graded_by": "anna"}, headers=AUTH)
        assert r.status_code == 409 and "--rules-dir" in r.json()["detail"]
    (tmp_path / "secret.yaml").write_text(DEFAULT_RULES.read_text())   # beside the folder, not in it
    with TestClient(create_app(db_path=coil_db, api_token=TOKEN, rules_dir=folder)) as c:
        assert c.post("/v1/coils/C1/grade", json={"graded_by": "anna"}).status_code == 401
        r = c.post("/v1/coils/C1/grade", json={"graded_by": "anna"}, headers=AUTH)
        assert r.status_code == 201, r.text
        first = r.json()
        assert (first["decision"], first["rule_set"], first["graded_by"]) == ("REJECT", "default", "anna")
        assert first["rules_text"] == DEFAULT_RULES.read_text()
        r = c.post("/v1/coils/C1/grade", json={"graded_by": "bob", "rules": "lenient"}, headers=AUTH)
        assert r.status_code == 201 and (r.json()["decision"], r.json()["grade"]) == ("DOWNGRADE", "b-grade")
        for name in ("../secret", "secret", "/etc/passwd", "lenient.txt"):
            r = c.post("/v1/coils/C1/grade", json={"graded_by": "eve", "rules": name}, headers=AUTH)
            assert r.status_code == 404 and "no rule file" in r.json()["detail"], name
        assert c.post("/v1/coils/nope/grade", json={"graded_by": "x"}, headers=AUTH).status_code == 404
        assert c.post("/v1/coils/C1/grade", json={"graded_by": "x", "path": "/"}, headers=AUTH).status_code == 422
        assert c.post("/v1/coils/C1/grade", json={}, headers=AUTH).status_code == 422
        hist = c.get("/v1/coils/C1/grades").json()["items"]
        assert [(g["graded_by"], g["decision"]) for g in hist] == [("bob", "DOWNGRADE"), ("anna", "REJECT")]
        assert hist[1] == first
        detail = c.get("/v1/coils/C1").json()
        assert detail["current_grade"] == hist[0] and detail["decision"] == "DOWNGRADE"
        assert detail["downgraded_to"] == "b-grade"
        listed = {x["coil_id"]: x["decision"] for x in c.get("/v1/coils").json()["items"]}
        assert listed == {"C1": "DOWNGRADE", "C2": None}
        ids = {d["id"] for d in c.get("/v1/coils/C1/defects").json()["items"]}
        assert all(set(r["defect_ids"]) <= ids for r in first["reasons"]) and first["reasons"][0]["defect_ids"]
        assert c.get("/v1/coils/nope/grades").status_code == 404


# --- the migration ------------------------------------------------------------------------------
def test_coil_grades_migration_up_and_down_keeps_the_coils(db_url):
    from alembic import command
    from sqlalchemy import inspect

    from steelscan.db.migrate import alembic_config, current, head, upgrade

    db = open_database(db_url, migrate=False)
    upgrade(db, "0002")
    assert "coil_grades" not in inspect(db.engine).get_table_names()
    db.dispose()
    stored_coil_db(db_url, "OLD", 5)   # opening migrates to head: a coil stored before the table existed...
    db = open_database(db_url)
    assert current(db) == head() and "coil_grades" in inspect(db.engine).get_table_names()
    assert queries.coil_detail(db, "OLD")["n_defects"] == 5 and queries.coil_detail(db, "OLD")["decision"] is None
    grades.store_grade(db, grades.grade_stored(db, "OLD", RuleSource(DEFAULT_RULES)), "anna")
    cfg = alembic_config()
    with db.engine.connect() as conn:   # and back down: the table goes, the coils stay
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
    assert "coil_grades" not in inspect(db.engine).get_table_names()
    db.dispose()
    db = open_database(db_url)   # up again on open
    assert grades.history(db, "OLD") == [] and queries.coil_detail(db, "OLD")["n_defects"] == 5
    db.dispose()
