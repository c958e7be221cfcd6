"""`steelscan coil periodic (--defects FILE | --coil ID --db DB) [--rolls rolls.csv] [--json]`: roll marks in a
defect list or in a stored coil."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    from .coil import add_stored_coil_source

    p = sub.add_parser("periodic", help="periodic (roll-mark) defects in a defect list, named by the roll table",
                       description="Find defects that repeat at a roll's circumference along each coil and "
                                   "surface of a defect CSV (columns coil_id,surface,class_id,start_m,"
                                   "across_start_mm,across_end_mm; no coil_id = one coil). A finding needs "
                                   "5 detected occurrences that random defects explain with probability < 0.1 %.")
    add_stored_coil_source(p)
    p.add_argument("--rolls", metavar="FILE", help="roll table: name,diameter_mm[,elongation,stand,surface,"
                                                   "installed_at]")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="relative period tolerance for naming a roll (default 0.01 = 1 %%)")
    p.add_argument("--json", action="store_true", help='print {"findings": [...]} instead of a table')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..coils.defect_list import read_defect_list
    from ..coils.periodic import find_periodic
    from ..coils.rolls import read_rolls
    from .coil import read_stored_coil

    rolls = read_rolls(args.rolls, args.tolerance) if args.rolls else None
    defects = read_defect_list(args.defects) if args.defects else read_stored_coil(args.db, args.coil).defects
    findings = find_periodic(defects, rolls)
    if args.json:
        print(json.dumps({"findings": [f.to_json() for f in findings]}, indent=2))
        return 0
    print(f"{'coil':<14} {'surface':<7} {'period m':>9} {'roll':<12} {'diam mm':>8} {'occ':>5} {'turns':>5} "
          f"{'first m':>9} {'last m':>9} {'across mm':>9} {'classes':<9} conf")
    for f in findings:
        roll = f.roll or ("?" + "|".join(f.ambiguous_rolls) if f.ambiguous_rolls else "-")
        print(f"{f.coil_id:<14} {f.surface:<7} {f.period_m:>9.4f} {roll:<12} {f.implied_diameter_mm:>8.1f} "
              f"{f.occurrences:>5} {f.turns:>5} {f.first_m:>9.2f} {f.last_m:>9.2f} {f.across_mm:>9.1f} "
              f"{','.join(map(str, f.class_ids)):<9} {f.confidence:.4f}")
    print(f"{len(findings)} periodic finding(s) in {len(defects.coils())} coil(s), {len(defects)} defects")
    return 0
