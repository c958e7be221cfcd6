"""Shared pytest fixtures. Several helpers add fixtures here: keep additions additive."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from steelscan.memory import keep_freed_memory

keep_freed_memory()   # as the CLI does: training and inference in the tests fault far less memory in

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


def require(condition: bool, reason: str) -> None:
    """Skip the calling test loudly (the reason shows in the summary) unless `condition` holds;
    under CI=true a missing requirement (a browser, a PostgreSQL server) fails the test instead,
    so CI cannot go green by skipping."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true, so this is a failure, not a skip: {reason}", pytrace=False)
    pytest.skip(f"{reason} (under CI=true this fails)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder (../shared/data from the repo root), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shared data not present at {SHARED_DATA}")
    return SHARED_DATA


class DarkSpotSegmenter:
    """A deterministic segmenter (Runner protocol) for service tests: class 3 where the frame
    is dark; with `bright_class_1`, also class 1 where it is bright."""

    kind, num_classes, in_channels = "segmenter", 4, 3

    def __init__(self, bright_class_1: bool = False) -> None:
        self.bright_class_1 = bright_class_1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        grey = batch.mean(axis=1)
        out = np.full((batch.shape[0], 4, *grey.shape[1:]), 0.05, np.float32)
        out[:, 2] = np.where(grey < 0.2, 0.95, 0.05)
        if self.bright_class_1:
            out[:, 0] = np.where(grey > 0.9, 0.9, 0.05)
        return out


# --- PostgreSQL: a real server per test session, on a temp dir and a free port -----------------
import subprocess  # noqa: E402
import uuid  # noqa: E402

from pg_server import PG_BIN, PostgresServer, free_port as _free_port, unavailable  # noqa: E402,F401

PG_PASSWORD = "s3cret-pw"  # tests check it never shows in a message


@pytest.fixture(scope="session")
def postgres_server():
    """Start PostgreSQL on a temp dir and a free port (as the unprivileged `postgres` user
    when we are root; tests/pg_server.py); yield its base URL (database `postgres`); stop it and
    remove the dir."""
    why = unavailable()
    require(why is None, why or "")
    try:
        server = PostgresServer(PG_PASSWORD, fast=True)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"could not initialise PostgreSQL: {e.stderr or e.stdout}")
    try:
        server.start()
    except subprocess.CalledProcessError as e:
        log = server.log_tail()
        server.remove()
        pytest.fail(f"could not start PostgreSQL: {e.stderr or e.stdout} {log}")
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database on the session's server: its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each test twice: a new SQLite file (tmp_path/coils.db), a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/coils.db"
    return request.getfixturevalue("postgres_url")


# --- coils in the defect database ------------------------------------------------------------
def _png(rng: np.random.Generator, h: int = 24, w: int = 48) -> bytes:
    import io

    from PIL import Image

    a = rng.normal(128, 20, (h, w)).clip(0, 255).astype(np.uint8)
    a[h // 3: 2 * h // 3, w // 4: 3 * w // 4] //= 3
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def make_coil_records(coil_id: str = "C1", n: int = 40, seed: int = 0, length_m: float = 20.0,
                      width_mm: float = 1200.0, surfaces: tuple[str, ...] = ("top", "bottom")):
    """Deterministic records of one coil for the database tests: (CoilInfo, defects, uninspected,
    surface summaries). Every 4th defect has no crop, every 2nd no uid; classes 1..4; some long
    scratches."""
    from steelscan.coils.records import CoilInfo, DefectRecord, SurfaceSummary, UninspectedRecord

    rng = np.random.default_rng(seed)
    names = {1: "pits", 2: "inclusion", 3: "scratches", 4: "patches"}
    coil = CoilInfo(coil_id, line_id="L2", grade="DX51D", width_mm=width_mm, thickness_mm=0.7, length_m=length_m,
                    order="O-1", customer="ACME <&> Co", exposed_surface="top")
    defects = []
    for i in range(n):
        surface = surfaces[i % len(surfaces)]
        c = int(rng.integers(1, 5))
        start = float(rng.uniform(0, length_m - 1.5))
        length = float(rng.uniform(200, 1400)) if c == 3 else float(rng.uniform(3, 60))
        a0, w = float(rng.uniform(0, width_mm - 80)), float(rng.uniform(2, 70))
        defects.append(DefectRecord(
            coil_id, surface, f"cam-{surface}", c, names[c], round(float(rng.uniform(0.5, 1)), 4), start,
            start + length / 1000, a0, a0 + w, length, w, round(length * w * 0.7, 3), [f"{surface}_{i:04d}.png"],
            None if i % 4 == 0 else _png(rng), "tiny-strip", "0.1.0", f"{i:064x}",
            uid=f"{coil_id}/{surface}/{i}" if i % 2 else None))
    spans = [UninspectedRecord(coil_id, surfaces[0], f"cam-{surfaces[0]}", 5.0, 6.25, "missing"),
             UninspectedRecord(coil_id, surfaces[-1], f"cam-{surfaces[-1]}", 0.0, 0.5, "unreadable", "x.png")]
    summaries = [SurfaceSummary(coil_id, s, f"cam-{s}", 80, length_m - 1.25, length_m, 1190.0, 1200.5, 1211.0)
                 for s in surfaces]
    return coil, defects, spans, summaries


@pytest.fixture
def coil_db(tmp_path):
    """A SQLite file holding coil C1 (40 defects, both surfaces) and C2 (3 defects): its path."""
    from steelscan.coils.store import CoilStore

    path = tmp_path / "coils.db"
    with CoilStore(path) as store:
        for coil_id, n in (("C1", 40), ("C2", 3)):
            coil, defects, spans, summaries = make_coil_records(coil_id, n, seed=len(coil_id) + n)
            store.upsert_coil(coil)
            store.add_defects(defects)
            store.add_uninspected(spans)
            for s in summaries:
                store.close_surface(s)
    return path
