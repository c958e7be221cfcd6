"""Grading rules: YAML per customer/order, checked by pydantic (unknown fields and impossible
limits are refused with the rule set, rule, field and YAML line).

A file holds `rule_sets`; a coil is graded by the set naming its order, else its customer,
else the set that names neither (the default). Rule kinds:

- `density`: at most `max_per_100m` defects of each listed class in any `window_m` (100) metre
  window, per surface (a sliding window);
- `size`: no single defect of the listed classes longer than `max_length_mm` or larger than
  `max_area_mm2`;
- `exposed`: the listed classes never on the exposed surface;
- `periodic`: any periodic (roll-mark) finding;
- `uninspected`: more than `max_m` metres of a surface not inspected.

Each rule says what it does when it fires: `decision` DOWNGRADE (with `grade`, one of the set's
`grades`), HOLD (a person decides) or REJECT. Defects lying wholly within `edge_zone_mm` of
either strip edge are tolerated by density, size and exposed rules.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from .records import SURFACES


class Decision(str, Enum):
    ACCEPT = "ACCEPT"
    DOWNGRADE = "DOWNGRADE"
    HOLD = "HOLD"
    REJECT = "REJECT"

    @property
    def severity(self) -> int:
        return ("ACCEPT", "DOWNGRADE", "HOLD", "REJECT").index(self.value)


Surface = Literal["top", "bottom"]
ClassId = Annotated[int, Field(ge=1, le=255)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    decision: Literal[Decision.DOWNGRADE, Decision.HOLD, Decision.REJECT]
    grade: str | None = None   # DOWNGRADE only: the grade the coil goes to

    @model_validator(mode="after")
    def _grade_with_downgrade(self):
        if self.decision == Decision.DOWNGRADE and not self.grade:
            raise ValueError("a DOWNGRADE rule needs `grade` (the grade the coil goes to)")
        if self.decision != Decision.DOWNGRADE and self.grade:
            raise ValueError(f"`grade` is for DOWNGRADE rules only (this one is {self.decision.value})")
        return self


class DensityRule(_Rule):
    kind: Literal["density"]
    classes: list[ClassId] = Field(min_length=1)
    max_per_100m: float = Field(ge=0)
    window_m: float = Field(default=100.0, gt=0, le=10_000)
    surfaces: list[Surface] = list(SURFACES)


class SizeRule(_Rule):
    kind: Literal["size"]
    classes: list[ClassId] = Field(min_length=1)
    max_length_mm: float | None = Field(default=None, gt=0)
    max_area_mm2: float | None = Field(default=None, gt=0)
    surfaces: list[Surface] = list(SURFACES)

    @model_validator(mode="after")
    def _some_limit(self):
        if self.max_length_mm is None and self.max_area_mm2 is None:
            raise ValueError("give max_length_mm and/or max_area_mm2")
        return self


class ExposedRule(_Rule):
    kind: Literal["exposed"]
    classes: list[ClassId] = Field(min_length=1)


class PeriodicRule(_Rule):
    kind: Literal["periodic"]
    decision: Literal[Decision.DOWNGRADE, Decision.HOLD, Decision.REJECT] = Decision.HOLD
    min_occurrences: int = Field(default=5, ge=3)


class UninspectedRule(_Rule):
    kind: Literal["uninspected"]
    decision: Literal[Decision.DOWNGRADE, Decision.HOLD, Decision.REJECT] = Decision.HOLD
    max_m: float = Field(ge=0)


Rule = Annotated[Union[DensityRule, SizeRule, ExposedRule, PeriodicRule, UninspectedRule],
                 Field(discriminator="kind")]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    customers: list[str] = []
    orders: list[str] = []
    grades: list[str] = Field(default_factory=list)   # DOWNGRADE targets, best first
    exposed_surface: Surface = "top"                  # when the coil does not say
    edge_zone_mm: float = Field(default=0.0, ge=0, le=500)
    min_piece_m: float = Field(default=50.0, gt=0)
    cut_loss_m: float = Field(default=0.5, ge=0)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule name {dup[0]!r} used twice")
        for r in self.rules:
            if r.grade is not None and r.grade not in self.grades:
                raise ValueError(f"rule {r.name!r}: grade {r.grade!r} is not in this set's grades "
                                 f"{self.grades}")
        if self.cut_loss_m >= self.min_piece_m:
            raise ValueError(f"cut_loss_m {self.cut_loss_m} must be below min_piece_m {self.min_piece_m}")
        return self


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_sets: list[RuleSet] = Field(min_length=1)

    @model_validator(mode="after")
    def _selection(self):
        names = [s.name for s in self.rule_sets]
        if len(set(names)) != len(names):
            raise ValueError("rule set names must be unique")
        if sum(1 for s in self.rule_sets if not s.customers and not s.orders) > 1:
            raise ValueError("more than one default rule set (one without customers and orders)")
        return self

    def for_coil(self, customer: str | None, order: str | None) -> RuleSet | None:
        """The set naming the order, else the customer, else the default; None when nothing fits."""
        for s in self.rule_sets:
            if order and order in s.orders:
                return s
        for s in self.rule_sets:
            if customer and customer in s.customers:
                return s
        return next((s for s in self.rule_sets if not s.customers and not s.orders), None)


DEFAULT_RULES = Path(__file__).with_name("rules") / "default.yaml"


def _yaml_line(node, loc: tuple) -> int | None:
    """Line (1-based) of the YAML node at pydantic location `loc`, as deep as it goes."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            continue   # a union tag in the location ("density"): skip it
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _where(data: dict, loc: tuple) -> str:
    """'rule set "x", rule "y"' for an error location."""
    parts = []
    try:
        if len(loc) >= 2 and loc[0] == "rule_sets":
            rs = data["rule_sets"][loc[1]]
            parts.append(f"rule set {rs.get('name', loc[1])!r}")
            if len(loc) >= 4 and loc[2] == "rules":
                parts.append(f"rule {rs['rules'][loc[3]].get('name', loc[3])!r}")
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return ", ".join(parts)


def read_rules_text(path: str | Path) -> str:
    """The text of a rule file; ConfigError naming the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read rule file: {getattr(e, 'strerror', None) or e}", path=path) from None


def load_rules(path: str | Path = DEFAULT_RULES) -> RuleFile:
    """Read and check a rule file; ConfigError(file, line, field) names the rule set and rule."""
    return parse_rules(read_rules_text(path), path)


def parse_rules(text: str, path: str | Path) -> RuleFile:
    """Check the text of a rule file (`path` names it in errors)."""
    path = Path(path)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", path=path,
                          line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ConfigError("a rule file is a mapping with `rule_sets:`", path=path)
    try:
        return RuleFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        field = next((str(k) for k in reversed(loc) if isinstance(k, str) and k not in
                      ("density", "size", "exposed", "periodic", "uninspected")), None)
        if err["type"].startswith("union_tag"):   # a missing or unknown rule `kind`
            loc, field = loc + ("kind",), "kind"
        named = re.match(r"Value error, rule '(.+?)': grade ", err["msg"])
        if named and len(loc) == 2:   # a set-level check about one rule's grade: point at that rule
            names = [r.get("name") for r in data["rule_sets"][loc[1]].get("rules", []) if isinstance(r, dict)]
            loc, field = loc + ("rules", names.index(named.group(1)), "grade"), "grade"
            err["msg"] = err["msg"].replace(f"rule '{named.group(1)}': ", "")
        where = _where(data, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise ConfigError(f"{where + ': ' if where else ''}{msg}", path=path, line=_yaml_line(node, loc),
                          field=field) from None
