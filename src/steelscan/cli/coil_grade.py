"""`steelscan coil grade --rules FILE_OR_DIR (--defects FILE [--coils coils.csv] | --coil ID --db DB) [--json]`:
grade coils from plain files or a stored coil. What-if by default (nothing stored); with `--coil ID
--db DB --store [--by NAME]` the grade joins the coil's history; `--coil ID --db DB --history` lists it."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    from .coil import add_stored_coil_source

    p = sub.add_parser("grade", help="grade coils against a rule set (what-if, or --store for a stored coil), "
                                     "with a cut list; --history lists a stored coil's grades",
                       description="Grade each coil of a defect CSV, or a coil of the database, against the rule "
                                   "set for its order/customer (ACCEPT, DOWNGRADE, HOLD, REJECT; strictest wins), "
                                   "give the reasons and a cut list that maximises prime metres. Nothing is "
                                   "stored unless --store is given (a stored coil only): the grade then joins "
                                   "the coil's history with who graded it and the rule file's text.")
    p.add_argument("--rules", metavar="FILE_OR_DIR",
                   help="rule YAML ('default' = the shipped steelscan/coils/rules/default.yaml); with --coil also "
                        "a folder of rule files, one per order or customer (default.yaml for the rest)")
    add_stored_coil_source(p)
    p.add_argument("--coils", metavar="FILE", help="coils.csv: coil_id[,length_m,width_mm,exposed_surface,customer,"
                                                   "order]; coils listed here without defects are graded too")
    p.add_argument("--uninspected", metavar="FILE", help="uninspected.csv: coil_id,surface,start_m,end_m[,reason]")
    p.add_argument("--rolls", metavar="FILE", help="roll table, to name rolls in periodic reasons")
    p.add_argument("--no-cuts", action="store_true", help="skip the cut list")
    p.add_argument("--store", action="store_true", help="--coil: store the grade in the database (history kept; "
                                                        "without it nothing is stored)")
    p.add_argument("--by", metavar="NAME", help="--store: who grades (default: the OS user)")
    p.add_argument("--history", action="store_true", help="--coil: list the coil's stored grades, newest first")
    p.add_argument("--json", action="store_true", help='print {"coils": [...]} instead of a table')
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from ..errors import ConfigError

    if (args.store or args.history) and args.coil is None:
        raise ConfigError("--store and --history are for a stored coil: give --coil ID --db DB", field="coil")
    if args.store and args.history:
        raise ConfigError("give --store or --history, not both", field="history")
    if args.by is not None and not args.store:
        raise ConfigError("--by names who stores a grade: use it with --store", field="by")
    if args.by is not None and not args.by.strip():
        raise ConfigError("must not be empty", field="by")
    if not args.history and not args.rules:
        raise ConfigError("give --rules FILE (or 'default')", field="rules")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.history:
        return _history(args)
    if args.coil is not None:
        return _stored(args)
    return _files(args)


def _files(args: argparse.Namespace) -> int:
    from ..coils.coil_table import read_coil_table, read_uninspected
    from ..coils.defect_list import read_defect_list
    from ..coils.grading import grade_coils
    from ..coils.rolls import read_rolls
    from ..errors import ConfigError

    source = _source(args.rules)
    if source.folder:
        raise ConfigError("a folder of rule files grades stored coils (--coil ID --db DB); for a defect file "
                          "give one rule file", field="rules")
    rules = source.for_coil(None, None).rules
    rolls = read_rolls(args.rolls) if args.rolls else None
    coils = read_coil_table(args.coils) if args.coils else {}
    spans = read_uninspected(args.uninspected) if args.uninspected else []
    grades = grade_coils(rules, read_defect_list(args.defects), coils, spans, rolls, with_cuts=not args.no_cuts,
                         progress=True)
    if args.json:
        print(json.dumps({"stored": False, "coils": [g.to_json() for g in grades]}, indent=2))
        return 0
    for g in grades:
        _print_grade(g)
    counts = {d: sum(g.decision == d for g in grades) for d in ("ACCEPT", "DOWNGRADE", "HOLD", "REJECT")}
    print(f"{len(grades)} coil(s): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print("what-if: nothing stored")
    return 0


def _source(rules: str):
    from ..coils.grading_rules import DEFAULT_RULES
    from ..coils.rule_source import RuleSource

    return RuleSource(DEFAULT_RULES if rules == "default" else rules)


def _stored(args: argparse.Namespace) -> int:
    import getpass

    from ..coils.grades import grade_stored, store_grade
    from ..coils.rolls import read_rolls
    from .coil import open_stored_coil_db

    source = _source(args.rules)
    rolls = read_rolls(args.rolls) if args.rolls else None
    db = open_stored_coil_db(args.db)
    try:
        grading = grade_stored(db, args.coil, source, rolls=rolls)
        stored = None
        if args.store:
            try:
                by = args.by.strip() if args.by else getpass.getuser()
            except (KeyError, OSError):   # no name for this uid (a container)
                by = "unknown"
            stored = store_grade(db, grading, by)
    finally:
        db.dispose()
    g = grading.grade
    if args.json:
        out = {"stored": stored is not None, "rules_file": str(grading.rules.path),
               "rules_sha256": grading.rules.sha256, "coils": [g.to_json()]}
        if stored is not None:
            out |= {"grade_id": stored["id"], "graded_by": stored["graded_by"], "graded_at": stored["graded_at"]}
        print(json.dumps(out, indent=2))
        return 0
    _print_grade(g)
    print(f"rules: {grading.rules.path} (sha256 {grading.rules.sha256[:12]})")
    if stored is None:
        print("what-if: nothing stored (add --store to record this grade in the coil's history)")
    else:
        print(f"stored: grade #{stored['id']} of coil {g.coil_id}, by {stored['graded_by']} at {stored['graded_at']} "
              f"(now the coil's current grade; earlier grades kept)")
    return 0


def _history(args: argparse.Namespace) -> int:
    from ..coils.grades import history
    from ..coils.queries import coil_exists
    from ..errors import DatabaseError
    from .coil import open_stored_coil_db

    db = open_stored_coil_db(args.db)
    try:
        if not coil_exists(db, args.coil):
            raise DatabaseError(f"no coil {args.coil!r} in the database", field="coil")
        grades = history(db, args.coil)
    finally:
        db.dispose()
    if args.json:
        print(json.dumps({"coil_id": args.coil, "grades": grades}, indent=2))
        return 0
    print(f"{'#':>5}  {'graded at (UTC)':<25} {'by':<12} {'decision':<20} {'rule set':<18} rules file (sha256)")
    for i, r in enumerate(grades):
        verdict = r["decision"] + (f" -> {r['grade']}" if r["grade"] else "")
        print(f"{r['id']:>5}  {r['graded_at']:<25} {r['graded_by']:<12} {verdict:<20} {r['rule_set']:<18} "
              f"{r['rules_file'] or '-'} ({r['rules_sha256'][:12] or '-'}){'  <- current' if i == 0 else ''}")
    print(f"{len(grades)} grade(s) of coil {args.coil}" + ("" if grades else " (never graded)"))
    return 0


def _print_grade(g) -> None:
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
