"""Grading cases (rule set x coil) with the decisions, reasons and cut lists expected by reasoning.

Reads benchmarks/grading_cases.yaml, grades each case with steelscan.coils.grading and compares;
prints a table and writes benchmarks/results/grading.{json,md}. tests/test_grading.py runs the same cases.

    .venv/bin/python benchmarks/grading.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from steelscan.atomic import write_json, write_text  # noqa: E402
from steelscan.coils.defect_list import DefectList  # noqa: E402
from steelscan.coils.grading import grade_coils  # noqa: E402
from steelscan.coils.grading_rules import RuleFile, load_rules  # noqa: E402
from steelscan.coils.records import CoilInfo, UninspectedRecord  # noqa: E402

CASES = REPO / "benchmarks" / "grading_cases.yaml"


def case_defects(case: dict) -> DefectList:
    rows = [list(r) for r in case.get("defects", [])]
    m = case.get("marks")
    if m:
        for x in np.arange(m["first_m"], m["last_m"] + 1e-9, m["period_m"]):
            a = m["across_mm"]
            rows.append([m["surface"], m["class_id"], round(float(x), 4), round(float(x) + 0.04, 4), a - 20, a + 20])
    rows.sort(key=lambda r: r[2])
    col = lambda k, default=None: [r[k] if len(r) > k else default for r in rows]  # noqa: E731
    length = [r[6] if len(r) > 6 else (r[3] - r[2]) * 1000 for r in rows]
    area = [r[7] if len(r) > 7 else length[i] * (r[5] - r[4]) for i, r in enumerate(rows)]
    return DefectList.from_arrays(coil_id=["case"] * len(rows), surface=col(0), class_id=col(1), start_m=col(2),
                                  end_m=col(3), across_start_mm=col(4), across_end_mm=col(5), length_mm=length,
                                  area_mm2=area)


def run_case(case: dict, own_rules: RuleFile) -> dict:
    rules = load_rules() if case.get("rules") == "default" else own_rules
    info = CoilInfo("case", **case.get("coil", {}))
    spans = [UninspectedRecord("case", s, "", a, b, "missing") for s, a, b in case.get("uninspected", [])]
    (g,) = grade_coils(rules, case_defects(case), {"case": info}, spans)
    got = {"decision": g.decision, "grade": g.grade, "rule_set": g.rule_set,
           "reasons": sorted({r.rule for r in g.reasons}), "prime_m": g.prime_m,
           "pieces": [[p.start_m, p.end_m, p.decision] for p in g.pieces],
           "decisions": [p.decision for p in g.pieces]}
    exp = case["expect"]
    problems = []
    for key in ("decision", "grade", "rule_set"):
        if key in exp or key == "grade":
            if got[key] != exp.get(key):
                problems.append(f"{key} {got[key]} != {exp.get(key)}")
    if got["reasons"] != sorted(exp["reasons"]):
        problems.append(f"reasons {got['reasons']} != {sorted(exp['reasons'])}")
    if abs(got["prime_m"] - exp["prime_m"]) > 1e-3:
        problems.append(f"prime_m {got['prime_m']} != {exp['prime_m']}")
    if "pieces" in exp and (len(got["pieces"]) != len(exp["pieces"]) or any(
            abs(a[0] - b[0]) > 1e-3 or abs(a[1] - b[1]) > 1e-3 or a[2] != b[2]
            for a, b in zip(got["pieces"], exp["pieces"]))):
        problems.append(f"pieces {got['pieces']} != {exp['pieces']}")
    if "decisions" in exp and got["decisions"] != exp["decisions"]:
        problems.append(f"piece decisions {got['decisions']} != {exp['decisions']}")
    return {"name": case["name"], "rules": case.get("rules", "plain"), "expected": exp, "got": got,
            "ok": not problems, "problems": problems}


def run_all(path: Path = CASES) -> list[dict]:
    data = yaml.safe_load(path.read_text())
    own = RuleFile.model_validate({"rule_sets": data["rule_sets"]})
    return [run_case(c, own) for c in data["cases"]]


def render(rows: list[dict]) -> str:
    lines = ["# Grading cases", "", "`.venv/bin/python benchmarks/grading.py`: rule set x coil from "
             "`benchmarks/grading_cases.yaml`, expected by reasoning (the file says why).", "",
             f"{sum(r['ok'] for r in rows)} of {len(rows)} cases match.", "",
             "| case | rules | decision | reasons | prime m | pieces | match |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r["got"]
        dec = g["decision"] + (f" -> {g['grade']}" if g["grade"] else "")
        pieces = " ".join(f"{a:g}-{b:g} {d}" for a, b, d in g["pieces"])
        lines.append(f"| {r['name']} | {r['rules']} ({g['rule_set']}) | {dec} | {', '.join(g['reasons']) or '-'} | "
                     f"{g['prime_m']:g} | {pieces} | {'yes' if r['ok'] else 'NO: ' + '; '.join(r['problems'])} |")
    lines += ["", "![cut lists](grading_cuts.png)"]
    return "\n".join(lines) + "\n"


COLOURS = {"ACCEPT": "#4caf50", "DOWNGRADE": "#ffb300", "HOLD": "#1e88e5", "REJECT": "#e53935"}


def draw_cut_lists(rows: list[dict], path: Path) -> None:
    """One bar per case: its pieces coloured by decision, cuts as gaps (drawn to scale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.2))
    for y, r in enumerate(reversed(rows)):
        for a, b, d in r["got"]["pieces"]:
            ax.barh(y, b - a, left=a, color=COLOURS[d], edgecolor="black", linewidth=0.4)
    ax.set_yticks(range(len(rows)), [r["name"] for r in reversed(rows)], fontsize=8)
    ax.set_xlabel("metres from the coil head")
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("Cut lists of the grading cases (pieces graded again; gaps are cut losses)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    rows = run_all()
    out = REPO / "benchmarks" / "results" / "grading"
    draw_cut_lists(rows, out.with_name("grading_cuts.png"))
    write_json(str(out) + ".json", {"cases": rows, "matching": sum(r["ok"] for r in rows), "total": len(rows)})
    write_text(str(out) + ".md", render(rows))
    print(render(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
