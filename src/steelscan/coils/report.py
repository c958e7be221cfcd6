"""The coil report: one folder with `report.html` (self-contained: every picture embedded) and
the same pictures as PNG files beside it (maps per surface, density along, histogram across,
crops of the largest defects)."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..atomic import write_bytes, write_text
from ..db import Database, masked_url
from ..errors import DatabaseError
from . import maps, queries
from .records import SURFACES

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(db: Database, coil_id: str, out: str | Path, *, largest: int = 12) -> Path:
    """Write the report of `coil_id` into folder `out`; returns the path of report.html.
    Raises DatabaseError when the coil is not in the database."""
    coil = queries.coil_detail(db, coil_id)
    if coil is None:
        raise DatabaseError(f"no coil {coil_id!r} in {masked_url(db.url)}", field="coil")
    out = Path(out)
    defects = queries.defects(db, coil_id)
    spans = queries.uninspected(db, coil_id)
    figures = [maps.surface_map(coil, s, defects, spans, out / f"map_{s}.png") for s in SURFACES]
    figures.append(maps.density_figure(coil, defects, spans, out / "density.png"))
    figures.append(maps.across_figure(coil, defects, out / "across.png"))
    big = sorted(defects, key=lambda d: (-d["area_mm2"], d["id"]))[:largest]
    crops = queries.crops(db, [d["id"] for d in big])
    rows = []
    for d in big:
        crop = None
        if d["id"] in crops:
            path = out / "crops" / f"defect_{d['id']}.png"
            write_bytes(path, crops[d["id"]])
            crop = _data_uri(path)
        rows.append(d | {"crop": crop, "colour": maps.colour(d["class_id"])})
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        coil=coil, level2=[(k, coil[k]) for k in ("line_id", "grade", "width_mm", "thickness_mm", "length_m",
                                                  "order", "customer", "exposed_surface")],
        figures={p.stem: _data_uri(p) for p in figures}, largest=rows, spans=spans,
        classes=[c | {"colour": maps.colour(c["class_id"])} for c in coil["counts_by_class"]],
        surfaces=SURFACES)
    write_text(out / "report.html", html)
    return out / "report.html"
