"""Level-2 coil data and uninspected lengths from CSV files (for offline grading).

`coils.csv`: `coil_id[,length_m,width_mm,exposed_surface,customer,order,line_id,grade,thickness_mm]`
(other columns ignored). `uninspected.csv`: `coil_id,surface,start_m,end_m[,reason,camera_id,detail,uid]`
(what `steelscan coil export --uninspected-csv` writes).
"""

from __future__ import annotations

from pathlib import Path

from ..data.csv_rows import read_csv_rows
from ..errors import DatasetError
from .records import SURFACES, CoilInfo, UninspectedRecord

_FLOATS = ("length_m", "width_mm", "thickness_mm")
_TEXTS = ("line_id", "grade", "order", "customer", "exposed_surface")


def _rows(path: Path, required: tuple[str, ...]):
    """(line, {column: stripped text}); a short row's missing values are empty, extra values ignored."""
    header, rows = read_csv_rows(path, required)
    for line, values in rows:
        values = values + [""] * (len(header) - len(values))
        yield line, {k: v.strip() for k, v in zip(header, values)}


def _float(value: str, path: Path, line: int, name: str, minimum: float = 0.0) -> float:
    try:
        v = float(value)
    except ValueError:
        raise DatasetError(f"not a number: {value!r}", path=path, line=line, field=name) from None
    if not v >= minimum or v != v or v == float("inf"):
        raise DatasetError(f"must be a finite number >= {minimum:g}, got {value!r}", path=path, line=line,
                           field=name)
    return v


def read_coil_table(path: str | Path) -> dict[str, CoilInfo]:
    path = Path(path)
    out: dict[str, CoilInfo] = {}
    for line, row in _rows(path, ("coil_id",)):
        if not row["coil_id"]:
            raise DatasetError("empty coil_id", path=path, line=line, field="coil_id")
        if row["coil_id"] in out:
            raise DatasetError(f"coil {row['coil_id']!r} appears twice", path=path, line=line, field="coil_id")
        values = {k: _float(row[k], path, line, k) for k in _FLOATS if row.get(k)}
        values |= {k: row[k] for k in _TEXTS if row.get(k)}
        if values.get("exposed_surface", "top") not in SURFACES:
            raise DatasetError(f"exposed_surface must be one of {', '.join(SURFACES)}", path=path, line=line,
                               field="exposed_surface")
        out[row["coil_id"]] = CoilInfo(coil_id=row["coil_id"], **values)
    return out


def read_uninspected(path: str | Path) -> list[UninspectedRecord]:
    path = Path(path)
    out = []
    for line, row in _rows(path, ("coil_id", "surface", "start_m", "end_m")):
        if row["surface"] not in SURFACES:
            raise DatasetError(f"surface must be one of {', '.join(SURFACES)}", path=path, line=line,
                               field="surface")
        start, end = _float(row["start_m"], path, line, "start_m"), _float(row["end_m"], path, line, "end_m")
        if end < start:
            raise DatasetError(f"end_m {end:g} is before start_m {start:g}", path=path, line=line, field="end_m")
        out.append(UninspectedRecord(row["coil_id"], row["surface"], row.get("camera_id") or "", start, end,
                                     row.get("reason") or "missing", row.get("detail") or None, row.get("uid") or None))
    return out
