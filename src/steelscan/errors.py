"""Typed errors. Each carries where the problem is (file, line, field) so the CLI
can print one readable line instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from pydantic import ValidationError


class SteelscanError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
        if self.field is not None:
            where += f" [{self.field}]" if where else f"[{self.field}]"
        return f"{where}: {self.message}" if where else self.message


class RLEError(SteelscanError, ValueError):
    """A run-length string or mask that breaks Kaggle's RLE convention."""


class DatasetError(SteelscanError):
    """A dataset folder or label file that cannot be read as asked."""


class ImageError(SteelscanError):
    """An image file that is missing, unreadable or corrupt."""


class ConfigError(SteelscanError):
    """A configuration file, key or value that is not valid."""


class ModelError(SteelscanError):
    """A model, run folder or weights file that is missing or does not fit."""


class DatabaseError(SteelscanError):
    """A database URL that is malformed, unsupported or does not answer (password masked)."""


def config_error(error: "ValidationError", where: Callable[[str], Path | str | None] = lambda field: None,
                 *, known: Iterable[str] = (), noun: str = "setting") -> ConfigError:
    """One readable ConfigError from pydantic's report: the first problem, its field (dotted,
    list items as [i]) and `where(top-level field)`, the file or "command line" it came from."""
    problems = error.errors()
    first = problems[0]
    loc = list(first["loc"])
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    field = field or (first.get("ctx") or {}).get("field", "")
    if first["type"] == "extra_forbidden":
        message = f"unknown {noun}" + (f"; known: {', '.join(sorted(known))}" if known else "")
    elif first["type"] == "value_error":
        message = str(first["ctx"]["error"])
    elif first["type"] == "combination":
        message = first["msg"]
    elif first["type"] in ("model_type", "dict_type"):
        message = f"expected an object of {noun}: value, got {_short(first['input'])}"
    else:
        msg = first["msg"][:1].lower() + first["msg"][1:]
        message = f"{msg}, got {_short(first['input'])}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return ConfigError(message, path=where(str(loc[0]) if loc else field), field=field or None)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
