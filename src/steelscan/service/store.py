"""Past inspections in SQLite (WAL): one row per accepted /v1/inspect request.

Rows survive restarts; the full response JSON is kept so GET /v1/inspections/{id}
returns exactly what the POST returned."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS inspections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT    NOT NULL,
    filename    TEXT    NOT NULL,
    verdict     TEXT,
    n_defects   INTEGER NOT NULL,
    classes     TEXT    NOT NULL,   -- JSON list of class names with a defect
    latency_ms  REAL    NOT NULL,
    response    TEXT    NOT NULL    -- the full JSON response
);
"""


class InspectionStore:
    """Thread-safe store: one connection, serialised by a lock (writes are tiny)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def add(self, filename: str, result: dict, latency_ms: float) -> dict:
        """Store one inspection (result = InspectionResult.to_json() + "rles"); returns the
        stored record {"id", "created_at", "filename", "latency_ms", "result"}."""
        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        classes = sorted({d["class_name"] for d in result.get("defects", [])})
        with self._lock:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "INSERT INTO inspections (created_at, filename, verdict, n_defects, classes, latency_ms, response)"
                " VALUES (?, ?, ?, ?, ?, ?, '{}')",
                (created, filename, result.get("verdict"), len(result.get("defects", [])),
                 json.dumps(classes), float(latency_ms)))
            record = {"id": int(cur.lastrowid), "created_at": created, "filename": filename,
                      "latency_ms": round(float(latency_ms), 2), "result": result}
            self._db.execute("UPDATE inspections SET response = ? WHERE id = ?",
                             (json.dumps(record), record["id"]))
            self._db.execute("COMMIT")
        return record

    def get(self, inspection_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM inspections WHERE id = ?", (inspection_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def list(self, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
        """Newest first: (summaries, total count)."""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM inspections").fetchone()[0]
            rows = self._db.execute(
                "SELECT id, created_at, filename, verdict, n_defects, classes, latency_ms FROM inspections"
                " ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        items = [{"id": r[0], "created_at": r[1], "filename": r[2], "verdict": r[3], "n_defects": r[4],
                  "classes": json.loads(r[5]), "latency_ms": r[6]} for r in rows]
        return items, int(total)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM inspections").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
