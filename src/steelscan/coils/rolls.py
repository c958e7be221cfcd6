"""The roll table: which rolls can mark the strip, and at what period.

`rolls.csv` columns: `name,diameter_mm[,elongation,stand,surface,installed_at]`.
A roll of diameter D (mm) in a stand followed by reductions that stretch the strip by
`elongation` (>= 1; 1.0 for the last stand) marks the inspected strip every
`pi * D * elongation / 1000` metres. Diameters wear, so a period matches a roll within a
relative tolerance (default 1 %); rolls whose periods lie closer together than that are
*ambiguous*: a finding near them names all of them and guesses none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..data.csv_rows import read_csv_rows
from ..errors import ConfigError
from .records import SURFACES

DEFAULT_TOLERANCE = 0.01   # relative period tolerance (wear, elongation drift)
REQUIRED_COLUMNS = ("name", "diameter_mm")
OPTIONAL_COLUMNS = ("elongation", "stand", "surface", "installed_at")


class Roll(BaseModel):
    """One roll. `surface` None: the roll can mark either surface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    diameter_mm: float = Field(gt=20, lt=5000)
    elongation: float = Field(default=1.0, ge=1.0, le=50.0)
    stand: str | None = None
    surface: str | None = None
    installed_at: datetime | None = None

    @field_validator("surface")
    @classmethod
    def _surface(cls, v: str | None) -> str | None:
        if v is not None and v not in SURFACES:
            raise ValueError(f"must be one of {', '.join(SURFACES)} or empty")
        return v

    @property
    def period_m(self) -> float:
        """Expected mark period on the inspected strip, metres."""
        return math.pi * self.diameter_mm * self.elongation / 1000.0


@dataclass(frozen=True)
class RollMatch:
    """How a measured period relates to the roll table."""

    roll: str | None                 # the one roll within tolerance, else None
    ambiguous_rolls: tuple[str, ...]  # all rolls within tolerance when more than one
    implied_diameter_mm: float        # the diameter that period means (named roll's elongation, else 1.0)
    deviation: float | None           # (period / roll period - 1) for the named roll


@dataclass(frozen=True)
class RollTable:
    rolls: tuple[Roll, ...]
    tolerance: float = DEFAULT_TOLERANCE

    def periods_m(self, surface: str | None = None) -> list[float]:
        return [r.period_m for r in self.rolls if surface is None or r.surface in (None, surface)]

    def ambiguous_groups(self) -> list[tuple[str, ...]]:
        """Groups of rolls (same surface or unspecified) whose periods lie within the tolerance."""
        groups = []
        for i, a in enumerate(self.rolls):
            close = [b.name for b in self.rolls[i + 1:]
                     if _same_surface(a, b) and abs(b.period_m / a.period_m - 1) <= self.tolerance]
            if close:
                groups.append((a.name, *close))
        return groups

    def match(self, period_m: float, surface: str | None = None) -> RollMatch:
        """The roll(s) whose expected period lies within the tolerance of `period_m`."""
        near = sorted(((abs(period_m / r.period_m - 1), r) for r in self.rolls
                       if surface is None or r.surface in (None, surface)
                       if abs(period_m / r.period_m - 1) <= self.tolerance), key=lambda t: t[0])
        if len(near) == 1:
            dev, roll = near[0]
            return RollMatch(roll.name, (), period_m * 1000.0 / (math.pi * roll.elongation),
                             period_m / roll.period_m - 1)
        return RollMatch(None, tuple(r.name for _, r in near), period_m * 1000.0 / math.pi, None)


def _same_surface(a: Roll, b: Roll) -> bool:
    return a.surface is None or b.surface is None or a.surface == b.surface


def read_rolls(path: str | Path, tolerance: float = DEFAULT_TOLERANCE) -> RollTable:
    """Read and check a whole roll table; the first bad row raises ConfigError naming file,
    line and field (nothing is half-used)."""
    path = Path(path)
    if not 0 < tolerance < 0.5:
        raise ConfigError(f"roll tolerance must be within 0..0.5 (relative), got {tolerance}",
                          field="tolerance")
    header, records = read_csv_rows(path, REQUIRED_COLUMNS, error=ConfigError)
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r}", path=path, line=1, field=unknown[0])
    rolls: list[Roll] = []
    seen: dict[str, int] = {}
    for line, row in records:
        if len(row) > len(header):
            raise ConfigError("more values than columns", path=path, line=line)
        values = {k: v.strip() for k, v in zip(header, row)}
        values = {k: v for k, v in values.items() if v != ""}
        try:
            roll = Roll(**values)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or None
            got = values.get(field or "", "")
            raise ConfigError(f"{err['msg']} (got {got!r})", path=path, line=line, field=field) from None
        if roll.name in seen:
            raise ConfigError(f"roll {roll.name!r} already on line {seen[roll.name]}", path=path, line=line,
                              field="name")
        seen[roll.name] = line
        rolls.append(roll)
    if not rolls:
        raise ConfigError("no rolls in the table", path=path)
    return RollTable(tuple(rolls), tolerance)
