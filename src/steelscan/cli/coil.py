"""`steelscan coil list|show|export|report --db DB`: the coils in the defect database;
`steelscan coil periodic|grade` work on plain files or a stored coil (see OFFLINE_ACTIONS)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

CSV_FIRST = ("coil_id", "surface", "class_id", "start_m", "end_m", "across_start_mm", "across_end_mm")
CSV_REST = ("class_name", "score", "length_mm", "width_mm", "area_mm2", "camera_id", "frames", "model_name",
            "model_version", "model_sha256", "uid", "id", "pinned", "created_at")
CSV_COLUMNS = CSV_FIRST + CSV_REST
# --uninspected-csv: the columns `coil grade --uninspected` reads first (coils.coil_table), then the rest
SPAN_COLUMNS = ("coil_id", "surface", "start_m", "end_m", "reason", "camera_id", "detail", "uid")
# `steelscan coil periodic|grade`: modules under steelscan.cli with register(subparsers)
OFFLINE_ACTIONS = ["coil_periodic", "coil_grade"]


def register(subparsers) -> None:
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", required=True, metavar="DB",
                    help="SQLAlchemy URL (sqlite:///x.db, postgresql://user@host/db) or a SQLite file path")
    p = subparsers.add_parser("coil", help="list, show, export and report the coils in the defect database",
                              description="Coils in the defect database. Positions: metres from the coil "
                                          "head; millimetres across from the drive-side edge.")
    sub = p.add_subparsers(dest="coil_command", metavar="ACTION", required=True)

    q = sub.add_parser("list", parents=[db], help="coils, newest first")
    q.add_argument("--line", dest="line_id", help="only this line")
    q.add_argument("--grade", help="only this steel grade")
    q.add_argument("--since", metavar="DATE", help="created on or after (YYYY-MM-DD, UTC)")
    q.add_argument("--until", metavar="DATE", help="created before (YYYY-MM-DD, UTC)")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = sub.add_parser("show", parents=[db], help="one coil: level-2 data, counts, defects, uninspected")
    s.add_argument("coil_id", metavar="COIL")
    s.add_argument("--json", action="store_true", help="the full record as JSON (with every defect)")

    e = sub.add_parser("export", parents=[db], help="defects as CSV (coil coordinates)")
    e.add_argument("coil_id", metavar="COIL", nargs="?")
    e.add_argument("--all", action="store_true", help="every coil")
    e.add_argument("--csv", required=True, metavar="FILE")
    e.add_argument("--uninspected-csv", metavar="FILE", help="also the uninspected spans (with their uid)")

    r = sub.add_parser("report", parents=[db], help="HTML report + PNG maps of a coil")
    r.add_argument("coil_id", metavar="COIL")
    r.add_argument("--out", required=True, metavar="DIR")
    r.add_argument("--largest", type=int, default=12, metavar="N", help="largest defects shown with crops")
    p.set_defaults(func=run)
    for name in OFFLINE_ACTIONS:   # actions on plain files, no database (each sets its own func)
        importlib.import_module(f".{name}", __package__).register(sub)


def open_existing(spec: str):
    """Open the database for reading views; a SQLite file must already exist (no silent empty db)."""
    from pathlib import Path

    from ..db import open_database
    from ..db.url import database_url
    from ..errors import DatabaseError

    url = database_url(spec)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not Path(url.database).exists():
        raise DatabaseError(f"no database at {url.database}", field="db")
    return open_database(url)


def add_stored_coil_source(p: argparse.ArgumentParser) -> None:
    """--defects FILE or --coil ID --db DB: where an offline tool (periodic, grade) reads a coil."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--defects", metavar="FILE", help="defect CSV (steelscan coil export works)")
    src.add_argument("--coil", metavar="ID", help="a coil in the defect database (with --db)")
    p.add_argument("--db", metavar="DB", help="defect database (SQLAlchemy URL or SQLite path) for --coil")


def open_stored_coil_db(db_spec: str | None):
    """The database of `--coil ID --db DB` (it must exist)."""
    from ..errors import ConfigError

    if not db_spec:
        raise ConfigError("--coil needs --db (the defect database that holds the coil)")
    return open_existing(db_spec)


def read_stored_coil(db_spec: str | None, coil_id: str):
    """The coil `coil_id` of the database `db_spec` (coils.stored.StoredCoil)."""
    from ..coils.stored import stored_coil

    db = open_stored_coil_db(db_spec)
    try:
        return stored_coil(db, coil_id)
    finally:
        db.dispose()


def run(args: argparse.Namespace) -> int:
    db = open_existing(args.db)
    try:
        return {"list": _list, "show": _show, "export": _export, "report": _report}[args.coil_command](db, args)
    finally:
        db.dispose()


def _coil_or_fail(db, coil_id: str) -> dict:
    from ..coils import queries
    from ..db import masked_url
    from ..errors import DatabaseError

    coil = queries.coil_detail(db, coil_id)
    if coil is None:
        raise DatabaseError(f"no coil {coil_id!r} in {masked_url(db.url)}", field="coil")
    return coil


def _date(text: str | None, flag: str):
    from datetime import datetime

    from ..errors import ConfigError

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date (YYYY-MM-DD): {text!r}", field=flag) from None


def _list(db, args) -> int:
    from ..coils import queries

    items, total = queries.list_coils(db, line_id=args.line_id, grade=args.grade, since=_date(args.since, "since"),
                                      until=_date(args.until, "until"), limit=args.limit, offset=args.offset)
    if args.json:
        print(json.dumps({"total": total, "coils": items}, indent=2))
        return 0
    print(f"{'coil':<16} {'line':<8} {'grade':<10} {'width mm':>9} {'length m':>9} {'defects':>8}  {'decision':<20} "
          f"created")
    for c in items:
        decision = (c["decision"] or "-") + (f" -> {c['downgraded_to']}" if c["downgraded_to"] else "")
        print(f"{c['coil_id']:<16} {c['line_id'] or '-':<8} {c['grade'] or '-':<10} {_num(c['width_mm']):>9} "
              f"{_num(c['length_m']):>9} {c['n_defects']:>8}  {decision:<20} {c['created_at']}")
    print(f"{len(items)} of {total} coils")
    return 0


def _num(v) -> str:
    return "-" if v is None else f"{v:g}"


def _show(db, args) -> int:
    from ..coils import queries

    coil = _coil_or_fail(db, args.coil_id)
    defects, spans = queries.defects(db, args.coil_id), queries.uninspected(db, args.coil_id)
    if args.json:
        print(json.dumps(coil | {"defects": defects, "uninspected": spans}, indent=2))
        return 0
    print(f"coil {coil['coil_id']}: {coil['n_defects']} defects "
          f"({', '.join(f'{k} {v}' for k, v in coil['counts_by_surface'].items()) or 'none'})")
    for k in ("line_id", "grade", "width_mm", "thickness_mm", "length_m", "order", "customer", "exposed_surface"):
        if coil[k] is not None:
            print(f"  {k:<16} {coil[k]}")
    if coil["decision"] is not None:
        downgrade = f" -> {coil['downgraded_to']}" if coil["downgraded_to"] else ""
        print(f"  {'decision':<16} {coil['decision']}{downgrade}  (steelscan coil grade --coil ID --db DB --history)")
    for c in coil["counts_by_class"]:
        print(f"  class {c['class_id']} {c['class_name']:<14} {c['count']:>6}")
    for s in spans:
        print(f"  uninspected {s['surface']:<6} {s['start_m']:9.2f}-{s['end_m']:.2f} m  {s['reason']}")
    return 0


def _export(db, args) -> int:
    import csv

    from ..atomic import atomic_path
    from ..coils import queries
    from ..errors import ConfigError

    if bool(args.all) == bool(args.coil_id):
        raise ConfigError("give a COIL or --all (not both)", field="coil")
    if args.coil_id:
        _coil_or_fail(db, args.coil_id)
    rows = queries.defects(db, None if args.all else args.coil_id)
    with atomic_path(args.csv) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            for d in rows:
                w.writerow(d | {"frames": ";".join(d["frames"]), "pinned": int(d["pinned"])})
    print(f"{len(rows)} defects -> {args.csv}", file=sys.stderr)
    if args.uninspected_csv:
        coils = [c["coil_id"] for c in _all_coils(db)] if args.all else [args.coil_id]
        spans = [u | {"coil_id": c} for c in coils for u in queries.uninspected(db, c)]
        with atomic_path(args.uninspected_csv) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=SPAN_COLUMNS, extrasaction="ignore", lineterminator="\n")
                w.writeheader()
                w.writerows(spans)
        print(f"{len(spans)} uninspected spans -> {args.uninspected_csv}", file=sys.stderr)
    return 0


def _all_coils(db) -> list[dict]:
    from ..coils import queries

    out, offset = [], 0
    while True:
        page, total = queries.list_coils(db, limit=500, offset=offset)
        out += page
        offset += len(page)
        if not page or offset >= total:
            return out


def _report(db, args) -> int:
    from ..coils.report import write_report

    path = write_report(db, args.coil_id, args.out, largest=args.largest)
    print(f"report -> {path}", file=sys.stderr)
    return 0
