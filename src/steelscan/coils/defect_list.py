"""A plain defect list in coil coordinates, as numpy columns (CSV in, arrays out).

CSV columns: `coil_id,surface,class_id,start_m,across_start_mm,across_end_mm` (no `coil_id`:
one coil, called "coil"); optional `end_m,length_mm,width_mm,area_mm2,id`; any other column
is ignored (so `steelscan coil export` output reads back as is). Positions follow
steelscan.geometry: metres from the coil head along, millimetres from the drive-side edge across.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.csv_rows import read_csv_rows
from ..errors import DatasetError
from .records import SURFACES

REQUIRED = ("surface", "class_id", "start_m", "across_start_mm", "across_end_mm")
OPTIONAL_FLOATS = ("end_m", "length_mm", "width_mm", "area_mm2")


@dataclass
class DefectList:
    """Defects of one or more coils. All arrays have one entry per defect (row order kept)."""

    coil_id: np.ndarray          # str objects
    surface: np.ndarray          # str objects, "top" | "bottom"
    class_id: np.ndarray         # int, 1-based
    start_m: np.ndarray          # float, metres from the coil head
    end_m: np.ndarray            # float (start_m where the file has no end_m)
    across_start_mm: np.ndarray
    across_end_mm: np.ndarray
    length_mm: np.ndarray        # from the file, else (end_m - start_m) * 1000
    area_mm2: np.ndarray         # from the file, else length x width
    ids: np.ndarray              # the file's `id` column, else the 1-based CSV data row
    source: str = ""
    lines: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # CSV line of each defect

    def __len__(self) -> int:
        return len(self.start_m)

    @property
    def across_mm(self) -> np.ndarray:
        return (self.across_start_mm + self.across_end_mm) / 2.0

    def coils(self) -> list[str]:
        """Coil ids in order of first appearance."""
        return list(dict.fromkeys(self.coil_id.tolist()))

    def select(self, mask: np.ndarray) -> "DefectList":
        return DefectList(**{k: (getattr(self, k)[mask] if isinstance(getattr(self, k), np.ndarray)
                                 else getattr(self, k)) for k in self.__dataclass_fields__})

    @classmethod
    def from_arrays(cls, *, surface, class_id, start_m, across_start_mm, across_end_mm, coil_id=None,
                    end_m=None, length_mm=None, area_mm2=None, ids=None) -> "DefectList":
        """Build from plain sequences (for callers that hold defects in memory, e.g. the line)."""
        start = np.asarray(start_m, float)
        n = len(start)
        end = start.copy() if end_m is None else np.asarray(end_m, float)
        a0, a1 = np.asarray(across_start_mm, float), np.asarray(across_end_mm, float)
        length = (end - start) * 1000.0 if length_mm is None else np.asarray(length_mm, float)
        area = length * (a1 - a0) if area_mm2 is None else np.asarray(area_mm2, float)
        return cls(np.asarray(["coil"] * n if coil_id is None else coil_id, object),
                   np.asarray(surface, object), np.asarray(class_id, int), start, end, a0, a1, length, area,
                   np.asarray(np.arange(1, n + 1) if ids is None else ids, object),
                   lines=np.arange(2, n + 2))


def _floats(values: list[str], name: str, path: Path, lines: list[int]) -> np.ndarray:
    try:
        out = np.array(values, dtype=float)
    except ValueError:
        out = None
    if out is not None and np.isfinite(out).all():
        return out
    for v, line in zip(values, lines):
        try:
            if np.isfinite(float(v)):
                continue
        except ValueError:
            pass
        raise DatasetError(f"not a finite number: {v!r}", path=path, line=line, field=name)
    raise AssertionError("unreachable")


def read_defect_list(path: str | Path) -> DefectList:
    """Read a defect CSV whole; the first bad row raises DatasetError(file, line, field)."""
    path = Path(path)
    header, records = read_csv_rows(path, REQUIRED)
    col = {name: i for i, name in enumerate(header)}
    rows, lines = [], []
    for line, row in records:
        if len(row) < len(header):
            raise DatasetError(f"{len(row)} values for {len(header)} columns", path=path, line=line)
        rows.append(row)
        lines.append(line)
    columns = {name: [r[i].strip() for r in rows] for name, i in col.items()}
    n = len(rows)
    surface = np.array(columns["surface"], dtype=object)
    bad = ~np.isin(surface, SURFACES) if n else np.zeros(0, bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(f"surface must be one of {', '.join(SURFACES)}, got {surface[i]!r}", path=path,
                           line=lines[i], field="surface")
    cls_f = _floats(columns["class_id"], "class_id", path, lines)
    bad = (cls_f != np.round(cls_f)) | (cls_f < 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(f"class_id must be an integer >= 1, got {columns['class_id'][i]!r}", path=path,
                           line=lines[i], field="class_id")
    floats = {name: _floats(columns[name], name, path, lines) for name in
              ("start_m", "across_start_mm", "across_end_mm") + tuple(c for c in OPTIONAL_FLOATS if c in col)}
    for name, lo, hi in (("start_m", "start_m", "end_m"), ("across_start_mm", "across_start_mm", "across_end_mm")):
        if hi in floats:
            bad = floats[hi] < floats[lo]
            if bad.any():
                i = int(np.argmax(bad))
                raise DatasetError(f"{hi} {floats[hi][i]:g} is before {lo} {floats[lo][i]:g}", path=path,
                                   line=lines[i], field=hi)
    coil = np.array(columns["coil_id"], dtype=object) if "coil_id" in col else np.array(["coil"] * n, object)
    if (coil == "").any():
        i = int(np.argmax(coil == ""))
        raise DatasetError("empty coil_id", path=path, line=lines[i], field="coil_id")
    out = DefectList.from_arrays(
        coil_id=coil, surface=surface, class_id=cls_f.astype(int), start_m=floats["start_m"],
        across_start_mm=floats["across_start_mm"], across_end_mm=floats["across_end_mm"],
        end_m=floats.get("end_m"), length_mm=floats.get("length_mm"), area_mm2=floats.get("area_mm2"),
        ids=np.array(columns["id"], object) if "id" in col else None)
    out.source, out.lines = str(path), np.array(lines, int)
    return out
