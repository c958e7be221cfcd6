"""One reader for the project's CSV inputs (label CSVs, frames.csv, coils.csv, defect lists, roll
tables, uninspected spans): the file read as UTF-8 (a BOM allowed), the header checked for the
columns a caller needs, and every non-blank row with its line number for error messages.

Tables checked row by row with pydantic (frames.csv, coils.csv) build their row model on `CsvRow` and
read it with `read_csv_models` (a row's ValidationError becomes one error: `row_error`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import DatasetError, SteelscanError

Row = TypeVar("Row", bound=BaseModel)


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


def read_csv_models(path: str | Path, required: tuple[str, ...], model: type[Row]
                    ) -> Iterator[tuple[int, Row | DatasetError]]:
    """(line number, the row as `model` or the DatasetError naming file, line and field(s) that says
    why it is not one) for every non-blank row of the CSV at `path`, whose header must name the
    `required` columns (that, or a missing file, raises DatasetError). A row with more or fewer values
    than the header is a problem; a model with a `line` field is given the row's line number."""
    path = Path(path)
    header, rows = read_csv_rows(path, required)
    with_line = "line" in model.model_fields
    for line, values in rows:
        if len(values) != len(header):
            yield line, DatasetError(f"expected {len(header)} fields, found {len(values)}", path=path, line=line)
            continue
        record = dict(zip(header, values)) | ({"line": line} if with_line else {})
        try:
            row: Row | DatasetError = model.model_validate(record)
        except ValidationError as e:
            row = row_error(e, path, line)
        yield line, row


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
