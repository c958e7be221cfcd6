"""One reader for the project's small CSV inputs (frames.csv, coils.csv, defect lists, roll
tables, uninspected spans): the file read as UTF-8 (a BOM allowed), the header checked for the
columns a caller needs, and every non-blank row with its line number for error messages."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

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
