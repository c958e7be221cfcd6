"""Grading: rule files, decisions with reasons, cut lists (the case table of benchmarks/grading.py)."""

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from steelscan.cli import main
from steelscan.coils.defect_list import DefectList
from steelscan.coils.grading import CoilEvidence, evaluate, grade_coil
from steelscan.coils.grading_rules import load_rules
from steelscan.coils.records import CoilInfo
from steelscan.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("grading_cases", REPO / "benchmarks" / "grading.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASE_ROWS = cases.run_all()


@pytest.mark.parametrize("row", CASE_ROWS, ids=[r["name"] for r in CASE_ROWS])
def test_case_table(row):
    assert row["ok"], row["problems"]


def test_every_reason_has_rule_measure_limit_and_defects():
    rs = load_rules().for_coil(None, None)
    d = DefectList.from_arrays(surface=["top", "top"], class_id=[2, 3], start_m=[100.0, 300.0], end_m=[100.1, 300.5],
                               across_start_mm=[500, 500], across_end_mm=[520, 510], ids=["d1", "d2"])
    g = grade_coil(rs, CoilEvidence(CoilInfo("C", length_m=1000, width_mm=1500), d))
    by_rule = {r.rule: r for r in g.reasons}
    assert g.decision == "REJECT" and set(by_rule) == {"holes-exposed", "large-scratch"}
    r = by_rule["large-scratch"]
    assert (r.measured, r.limit, r.unit, r.defect_ids, r.decision, r.grade) == (500.0, 300, "mm", ["d2"], "DOWNGRADE",
                                                                               "secondary")
    assert by_rule["holes-exposed"].defect_ids == ["d1"]
    json.dumps(g.to_json())   # the whole grade is plain JSON


def test_density_is_a_sliding_window_per_surface():
    rs = load_rules().for_coil(None, None)   # dense-pitting: max 20 class-1 per 100 m
    rng = np.random.default_rng(0)
    # 21 pits within 90 m straddling the 100 m mark: a fixed 0-100/100-200 grid would see 10 + 11
    top = np.sort(rng.uniform(55, 145, 21))
    bottom = np.sort(rng.uniform(300, 310, 15))                # 15 on the other surface: separate
    s = np.concatenate([top, bottom])
    d = DefectList.from_arrays(surface=["top"] * 21 + ["bottom"] * 15, class_id=[1] * 36, start_m=s, end_m=s + 0.01,
                               across_start_mm=[700] * 36, across_end_mm=[705] * 36)
    reasons = evaluate(rs, CoilEvidence(CoilInfo("C", width_mm=1500), d), 0.0, 1000.0)
    (r,) = [r for r in reasons if r.rule == "dense-pitting"]
    assert (r.surface, r.measured, r.limit, len(r.defect_ids)) == ("top", 21, 20, 21)


def brute_force_prime(rs, ev, length, step):
    """Best ACCEPT metres over every way of cutting on a grid: every piece between two grid points
    graded with `evaluate` (exhaustive over pieces, no candidate positions, no reach index)."""
    grid = np.round(np.arange(0.0, length + 1e-9, step), 6)
    best = {}   # grid end -> best prime metres of a cutting that ends a piece there
    for e in grid[1:]:
        options = []
        for s0, score in [(0.0, 0.0)] + [(p + rs.cut_loss_m, v) for p, v in best.items()]:
            if e - s0 >= rs.min_piece_m - 1e-9:
                ok = not evaluate(rs, ev, s0, e + (1e-9 if e >= length else 0))
                options.append(score + (e - s0 if ok else 0.0))
        if options:
            best[e] = max(options)
    return best[grid[-1]]


def test_cut_list_is_as_good_as_brute_force_on_a_grid():
    rs = load_rules().for_coil(None, None).model_copy(update={"min_piece_m": 8.0, "cut_loss_m": 0.5})
    rng = np.random.default_rng(4)
    for trial in range(3):
        s = np.sort(rng.uniform(0, 40, 4)).round(1)
        d = DefectList.from_arrays(surface=["top"] * 4, class_id=rng.choice([2, 3], 4).tolist(), start_m=s,
                                   end_m=s + 0.6, across_start_mm=[500] * 4, across_end_mm=[510] * 4)
        ev = CoilEvidence(CoilInfo("C", length_m=40.0, width_mm=1500), d)
        g = grade_coil(rs, ev)
        assert all(p.length_m >= 8.0 - 1e-9 for p in g.pieces)
        assert g.prime_m >= brute_force_prime(rs, ev, 40.0, 0.5) - 1e-6
        for p in g.pieces:   # each piece re-graded on its own
            tail = 1e-9 if p.end_m >= 40 else 0.0
            assert (p.decision == "ACCEPT") == (not evaluate(rs, ev, p.start_m, p.end_m + tail))


def write(tmp_path, text):
    p = tmp_path / "rules.yaml"
    p.write_text(text)
    return p


GOOD = """\
rule_sets:
  - name: s1
    grades: [secondary]
    rules:
      - name: r1
        kind: density
        classes: [1]
        max_per_100m: 5
        decision: DOWNGRADE
        grade: secondary
"""


@pytest.mark.parametrize("old, new, field, words", [
    ("        max_per_100m: 5\n", "        max_per_100m: 5\n        colour: red\n", "colour", "unknown field"),
    ("max_per_100m: 5", "max_per_100m: -1", "max_per_100m", "greater than or equal to 0"),
    ("        grade: secondary\n", "", None, "needs `grade`"),
    ("grade: secondary\n", "grade: tertiary\n", None, "not in this set's grades"),
    ("classes: [1]", "classes: [0]", None, "greater than or equal to 1"),
    ("decision: DOWNGRADE", "decision: ACCEPT", "decision", "Input should be"),
    ("kind: density", "kind: sparkle", "kind", "does not match any of the expected tags"),
])
def test_bad_rule_files_name_rule_and_field(tmp_path, old, new, field, words):
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(ConfigError) as e:
        load_rules(write(tmp_path, text))
    msg = str(e.value)
    assert "rule set 's1'" in msg and "rule 'r1'" in msg and words in msg, msg
    if field:
        assert e.value.field == field
    assert e.value.line is not None and e.value.line >= 5


def test_impossible_piece_limits_and_duplicate_names(tmp_path):
    with pytest.raises(ConfigError, match="cut_loss_m 60.0 must be below min_piece_m 50.0"):
        load_rules(write(tmp_path, GOOD.replace("    grades:", "    min_piece_m: 50\n    cut_loss_m: 60\n    grades:")))
    dup = GOOD + GOOD.split("    rules:\n")[1]
    with pytest.raises(ConfigError, match="rule name 'r1' used twice"):
        load_rules(write(tmp_path, dup))


def test_cli_grade_what_if_json_and_table(tmp_path, capsys):
    (tmp_path / "defects.csv").write_text(
        "coil_id,surface,class_id,start_m,end_m,across_start_mm,across_end_mm\n"
        "A,top,2,950.0,950.1,700,720\nB,top,1,10.0,10.01,700,705\n")
    (tmp_path / "coils.csv").write_text("coil_id,length_m,width_mm,customer\nA,1000,1500,\nB,500,1500,\nC,300,1500,\n")
    args = ["coil", "grade", "--rules", "default", "--defects", str(tmp_path / "defects.csv"),
            "--coils", str(tmp_path / "coils.csv")]
    assert main(args + ["--json"]) == 0
    out = {c["coil_id"]: c for c in json.loads(capsys.readouterr().out)["coils"]}
    assert {k: v["decision"] for k, v in out.items()} == {"A": "REJECT", "B": "ACCEPT", "C": "ACCEPT"}
    assert out["A"]["reasons"][0]["rule"] == "holes-exposed" and len(out["A"]["pieces"]) == 2
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "A: REJECT" in text and "cut at" in text and "3 coil(s): 2 ACCEPT, 0 DOWNGRADE, 0 HOLD, 1 REJECT" in text
    assert main(["coil", "grade", "--rules", str(write(tmp_path, GOOD.replace("kind: density", "kind: x"))),
                 "--defects", str(tmp_path / "defects.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rules.yaml:6 [kind]: rule set 's1', rule 'r1': " in err[0], err


def test_rule_set_by_order_then_customer_then_default(tmp_path):
    text = GOOD + GOOD.split("rule_sets:\n")[1].replace("name: s1", "name: s2\n    customers: [ACME]") \
        + GOOD.split("rule_sets:\n")[1].replace("name: s1", "name: s3\n    customers: [ACME]\n    orders: [O-7]")
    rules = load_rules(write(tmp_path, text))
    assert rules.for_coil("ACME", "O-7").name == "s3"
    assert rules.for_coil("ACME", "O-1").name == "s2"
    assert rules.for_coil("OTHER", None).name == "s1"


def test_bad_coil_and_uninspected_tables(tmp_path, capsys):
    from steelscan.coils.coil_table import read_coil_table, read_uninspected
    from steelscan.errors import DatasetError

    (tmp_path / "coils.csv").write_text("coil_id,length_m,exposed_surface\nA,1000,top\nB,long,top\n")
    with pytest.raises(DatasetError) as e:
        read_coil_table(tmp_path / "coils.csv")
    assert (e.value.line, e.value.field) == (3, "length_m")
    (tmp_path / "u.csv").write_text("coil_id,surface,start_m,end_m\nA,top,10,5\n")
    with pytest.raises(DatasetError) as e:
        read_uninspected(tmp_path / "u.csv")
    assert (e.value.line, e.value.field) == (2, "end_m")
    (tmp_path / "u.csv").write_text("coil_id,surface,start_m,end_m,reason\nA,bottom,10,25,unreadable\n")
    (span,) = read_uninspected(tmp_path / "u.csv")
    assert (span.surface, span.start_m, span.end_m, span.reason) == ("bottom", 10.0, 25.0, "unreadable")
