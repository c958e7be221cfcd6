"""Level-2 coil data and uninspected lengths from CSV files.

`coils.csv`: `coil_id[,line_id,grade,width_mm,thickness_mm,length_m,order,customer,exposed_surface]`
(all but `coil_id` may be empty; other columns ignored). One reader, `read_coils`, for the line
(a bad row is named in `problems` and the good rows are used) and for offline grading
(`read_coil_table`: the first bad row raises). `uninspected.csv`:
`coil_id,surface,start_m,end_m[,reason,camera_id,detail,uid]` (what `steelscan coil export --uninspected-csv` writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..data.csv_rows import CsvRow, read_csv_models, read_csv_rows
from ..errors import DatasetError
from .records import SURFACES, CoilInfo, UninspectedRecord

COIL_COLUMNS = ("coil_id",)


class CoilRow(CsvRow):
    """One coil of coils.csv (level-2 data)."""

    coil_id: str = Field(min_length=1)
    line_id: str | None = None
    grade: str | None = None
    width_mm: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    thickness_mm: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    length_m: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    order: str | None = None
    customer: str | None = None
    exposed_surface: Literal["top", "bottom"] | None = None

    def to_info(self) -> CoilInfo:
        return CoilInfo(**self.model_dump())


@dataclass
class CoilTable:
    """The good coils of a coils.csv by id (file order), and one problem per bad or duplicate row."""

    path: Path | None
    coils: dict[str, CoilInfo]
    problems: list[DatasetError] = field(default_factory=list)


def read_coils(path: str | Path | None) -> CoilTable:
    """Read coils.csv (None: no level-2 data). Bad rows go to `problems`; a duplicate coil id
    keeps the first row. A missing file or a header without `coil_id` raises DatasetError."""
    if path is None:
        return CoilTable(None, {})
    path = Path(path)
    coils: dict[str, CoilInfo] = {}
    lines: dict[str, int] = {}
    problems: list[DatasetError] = []
    for line, row in read_csv_models(path, COIL_COLUMNS, CoilRow):
        if isinstance(row, DatasetError):
            problems.append(row)
            continue
        if row.coil_id in coils:
            problems.append(DatasetError(f"duplicate: coil {row.coil_id} is already listed on line "
                                         f"{lines[row.coil_id]}", path=path, line=line, field="coil_id"))
            continue
        coils[row.coil_id], lines[row.coil_id] = row.to_info(), line
    return CoilTable(path, coils, problems)


def read_coil_table(path: str | Path) -> dict[str, CoilInfo]:
    """coils.csv for offline grading, all or nothing: the first bad row raises DatasetError."""
    table = read_coils(path)
    if table.problems:
        raise table.problems[0]
    return table.coils


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
