"""Stored grades (steelscan.coils.grades): `coil grade --store/--history` (what-if stores nothing),
rule folders chosen per order/customer, grading at coil close in `steelscan line --rules`, the
grade APIs, and the coil_grades migration on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_coil_records
from steelscan.cli import main
from steelscan.coils import grades, queries
from steelscan.coils.grading_rules import DEFAULT_RULES
from steelscan.coils.rule_source import RuleSource
from steelscan.coils.store import CoilStore
from steelscan.db import open_database
from steelscan.errors import ConfigError

LENIENT = """rule_sets:
  - name: {name}
    customers: [{customer}]
    grades: [b-grade]
    rules:
      - name: holes-exposed-ok
        kind: exposed
        classes: [2]
        decision: DOWNGRADE
        grade: b-grade
"""


def rules_dir(root: Path, *, default: bool = True, **files: str) -> Path:
    """A folder of rule files: default.yaml (the shipped one) and `stem=customer` lenient sets."""
    root.mkdir(parents=True, exist_ok=True)
    if default:
        shutil.copy(DEFAULT_RULES, root / "default.yaml")
    for stem, customer in files.items():
        (root / f"{stem}.yaml").write_text(LENIENT.format(name=f"{stem}-lenient", customer=customer))
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
