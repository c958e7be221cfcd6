"""Shared pytest fixtures. Several helpers add fixtures here: keep additions additive."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder (../shared/data from the repo root), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shared data not present at {SHARED_DATA}")
    return SHARED_DATA
