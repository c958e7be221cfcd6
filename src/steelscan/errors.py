"""Typed errors. Each carries where the problem is (file, line, field) so the CLI
can print one readable line instead of a traceback."""

from __future__ import annotations


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
