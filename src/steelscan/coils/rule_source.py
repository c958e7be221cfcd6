"""Where grading rules come from: one rule file, or a folder of them (one YAML per customer or
order, `default.yaml` for every other coil), and the exact text a coil was graded by.

    source = RuleSource("rules/")                 # or RuleSource("rules/automotive.yaml")
    rules = source.for_coil("AUTO-OEM", "O-17")   # LoadedRules: the chosen file's text, sha256, RuleFile

A folder's file is chosen by name, never built from one: the file whose stem is the coil's order,
else its customer, else `default`, compared with the files listed in the folder (so a customer
called "../x" finds nothing). Within the file, the rule set naming the order, else the customer,
else the file's default set grades the coil (grading_rules.RuleFile.for_coil). Files are read
again on each use: an edited rule file takes effect at the next coil, and the text stored with a
grade is the text that graded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from ..errors import ConfigError
from .grading_rules import RuleFile, parse_rules, read_rules_text

SUFFIXES = (".yaml", ".yml")
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class LoadedRules:
    """One rule file as read: its path, text, the text's sha256 (hex) and the checked rules."""

    path: Path
    text: str
    sha256: str
    rules: RuleFile

    @property
    def name(self) -> str:
        return self.path.name


def load_rule_file(path: str | Path) -> LoadedRules:
    """Read and check one rule file (ConfigError naming file, line and field)."""
    text = read_rules_text(path)
    return LoadedRules(Path(path), text, sha256(text.encode("utf-8")).hexdigest(), parse_rules(text, path))


class RuleSource:
    """`--rules FILE_OR_DIR`: a rule file, or a folder of rule files chosen per coil."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError("no rule file or folder here", path=self.path, field="rules")
        self.folder = self.path.is_dir()

    def files(self) -> dict[str, Path]:
        """Stem -> path of the rule files (a folder's *.yaml / *.yml, or the one file)."""
        if not self.folder:
            return {self.path.stem: self.path}
        return {p.stem: p for p in sorted(self.path.iterdir()) if p.suffix in SUFFIXES and p.is_file()}

    def check(self) -> list[str]:
        """Read and check every rule file (the first bad one raises); their names."""
        files = self.files()
        if not files:
            raise ConfigError("no rule files (*.yaml) in this folder", path=self.path, field="rules")
        for p in files.values():
            load_rule_file(p)
        return [p.name for p in files.values()]

    def for_coil(self, customer: str | None, order: str | None) -> LoadedRules:
        """The rule file for a coil of this customer and order (see the module doc)."""
        if not self.folder:
            return load_rule_file(self.path)
        files = self.files()
        for name in (order, customer, DEFAULT_NAME):
            if name and name in files:
                return load_rule_file(files[name])
        raise ConfigError(f"no rule file for order {order!r} or customer {customer!r}, and no "
                          f"{DEFAULT_NAME}.yaml", path=self.path, field="rules")

    def named(self, name: str) -> LoadedRules | None:
        """The rule file called `name` (with or without .yaml) among the files; None when none is."""
        stem = name
        for suffix in SUFFIXES:
            stem = stem.removesuffix(suffix)
        path = self.files().get(stem)
        return None if path is None else load_rule_file(path)
