"""One reader for the project's CSV inputs (label CSVs, frames.csv, coils.csv, defect lists, roll
tables, uninspected spans): the file read as UTF-8 (a BOM allowed), the header checked for the
columns a caller needs, and every non-blank row with its line number for error messages.

Tables checked row by row with pydantic (frames.csv, coils.csv) build their row model on `CsvRow`,
read `read_csv_records`, and turn a row's ValidationError into one error with `row_error`."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import DatasetError, SteelscanError


def read_csv_rows(path: str | Path, required: tuple[str, ...], *, error: type[SteelscanError] = DatasetError,
                  what: str = "file") -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, rows) of the CSV at `path`; rows yields (line number where the row starts, values
    as written) for every row that is not blank (quoted values may span lines). The header is
    stripped; it is empty for an empty file. Raises `error` naming the file (and line 1, the missing
    column as field) when the file is missing or unreadable or its header lacks a `required`
    column; `what` names the file in those messages ("label file not found")."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} ({e.__class__.__name__})", path=path) from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise error(f"header lacks column(s) {', '.join(missing)} (has {','.join(header) or 'nothing'})",
                    path=path, line=1, field=missing[0])

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if values and any(v.strip() for v in values):
                yield line, values

    return header, rows()


def read_csv_records(path: str | Path, required: tuple[str, ...]
                     ) -> Iterator[tuple[int, dict[str, str] | None, DatasetError | None]]:
    """(line number, {column: text} or None, shape problem or None) for every non-blank row of the
    CSV at `path`, whose header must name the `required` columns (DatasetError otherwise). A row
    with more or fewer values than the header has no dict but a problem naming file and line."""
    path = Path(path)
    header, rows = read_csv_rows(path, required)
    for line, values in rows:
        if len(values) != len(header):
            yield line, None, DatasetError(f"expected {len(header)} fields, found {len(values)}",
                                           path=path, line=line)
            continue
        yield line, dict(zip(header, values)), None


class CsvRow(BaseModel):
    """Base of a row model: empty CSV cells are None; text is stripped; unknown columns are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, v):
        return None if isinstance(v, str) and not v.strip() else v


def validation_message(e: ValidationError) -> str:
    """Every problem of a row, `field: what is wrong (got value)`, joined by '; '."""
    return "; ".join(f"{err['loc'][0] if err['loc'] else 'row'}: {err['msg']} (got {err.get('input')!r})"
                     for err in e.errors())


def row_error(e: ValidationError, path: Path, line: int) -> DatasetError:
    """A row's ValidationError as one DatasetError naming the file, line and the bad field(s)."""
    fields = ",".join(str(err["loc"][0]) for err in e.errors() if err["loc"])
    return DatasetError(validation_message(e), path=path, line=line, field=fields or None)
