"""`steelscan coil grade --rules FILE (--defects FILE [--coils coils.csv] | --coil ID --db DB) [--json]`:
what-if grading of coils from plain files or of a stored coil (nothing is stored)."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    from .coil import add_stored_coil_source

    p = sub.add_parser("grade", help="grade coils against a rule set (what-if: nothing is stored), with a cut list",
                       description="Grade each coil of a defect CSV against the rule set for its order/customer "
                                   "(ACCEPT, DOWNGRADE, HOLD, REJECT; strictest wins), give the reasons and a cut "
                                   "list that maximises prime metres.")
    p.add_argument("--rules", required=True, metavar="FILE",
                   help="rule YAML ('default' = the shipped steelscan/coils/rules/default.yaml)")
    add_stored_coil_source(p)
    p.add_argument("--coils", metavar="FILE", help="coils.csv: coil_id[,length_m,width_mm,exposed_surface,customer,"
                                                   "order]; coils listed here without defects are graded too")
    p.add_argument("--uninspected", metavar="FILE", help="uninspected.csv: coil_id,surface,start_m,end_m[,reason]")
    p.add_argument("--rolls", metavar="FILE", help="roll table, to name rolls in periodic reasons")
    p.add_argument("--no-cuts", action="store_true", help="skip the cut list")
    p.add_argument("--json", action="store_true", help='print {"coils": [...]} instead of a table')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..coils.coil_table import read_coil_table, read_uninspected
    from ..coils.defect_list import read_defect_list
    from ..coils.grading import grade_coils
    from ..coils.grading_rules import DEFAULT_RULES, load_rules
    from ..coils.rolls import read_rolls
    from .coil import read_stored_coil

    rules = load_rules(DEFAULT_RULES if args.rules == "default" else args.rules)
    rolls = read_rolls(args.rolls) if args.rolls else None
    if args.coil is not None:   # a stored coil brings its level-2 data and uninspected spans
        stored = read_stored_coil(args.db, args.coil)
        coils, spans, defects = {args.coil: stored.info}, stored.uninspected, stored.defects
    else:
        coils = read_coil_table(args.coils) if args.coils else {}
        spans = read_uninspected(args.uninspected) if args.uninspected else []
        defects = read_defect_list(args.defects)
    grades = grade_coils(rules, defects, coils, spans, rolls, with_cuts=not args.no_cuts, progress=True)
    if args.json:
        print(json.dumps({"coils": [g.to_json() for g in grades]}, indent=2))
        return 0
    for g in grades:
        verdict = g.decision + (f" -> {g.grade}" if g.grade else "")
        print(f"{g.coil_id}: {verdict}  (rule set {g.rule_set}; {g.length_m:g} m from {g.length_source}; "
              f"prime {g.prime_m:g} m)")
        for r in g.reasons:
            print(f"  {r.decision:<9} {r.rule}: {r.message} [{len(r.defect_ids)} defect(s)]")
        if len(g.pieces) > 1:
            print(f"  cut at {', '.join(f'{c:g}' for c in g.cuts_m)} m:")
            for p in g.pieces:
                print(f"    {p.start_m:>9.2f}-{p.end_m:<9.2f} {p.length_m:>8.2f} m  {p.decision}"
                      f"{' -> ' + p.grade if p.grade else ''}  {'; '.join(r.rule for r in p.reasons)}")
    counts = {d: sum(g.decision == d for g in grades) for d in ("ACCEPT", "DOWNGRADE", "HOLD", "REJECT")}
    print(f"{len(grades)} coil(s): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0
