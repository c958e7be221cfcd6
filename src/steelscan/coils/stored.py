"""A stored coil as the offline tools take it (periodic marks, grading): its level-2 data, its
defects as a DefectList and its uninspected spans, read from the defect database."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DatasetError
from . import queries
from .defect_list import DefectList
from .records import CoilInfo, UninspectedRecord


@dataclass
class StoredCoil:
    info: CoilInfo
    defects: DefectList
    uninspected: list[UninspectedRecord]


def stored_defects(db, coil_id: str) -> DefectList:
    """The defects of one coil, with the database's defect ids (as text, as `coil export` writes them)."""
    rows = queries.defects(db, coil_id)
    return DefectList.from_arrays(
        coil_id=[r["coil_id"] for r in rows], surface=[r["surface"] for r in rows],
        class_id=[r["class_id"] for r in rows], start_m=[r["start_m"] for r in rows],
        end_m=[r["end_m"] for r in rows], across_start_mm=[r["across_start_mm"] for r in rows],
        across_end_mm=[r["across_end_mm"] for r in rows], length_mm=[r["length_mm"] for r in rows],
        area_mm2=[r["area_mm2"] for r in rows], ids=[str(r["id"]) for r in rows])


def stored_coil(db, coil_id: str) -> StoredCoil:
    """One coil of the database (steelscan.db.Database); DatasetError naming the coil when unknown."""
    detail = queries.coil_detail(db, coil_id)
    if detail is None:
        raise DatasetError(f"no coil {coil_id!r} in the database", field="coil")
    info = CoilInfo(**{f: detail[f] for f in CoilInfo.__dataclass_fields__})
    spans = [UninspectedRecord(coil_id, u["surface"], u["camera_id"], u["start_m"], u["end_m"], u["reason"],
                               u["detail"], u["uid"]) for u in queries.uninspected(db, coil_id)]
    return StoredCoil(info, stored_defects(db, coil_id), spans)
