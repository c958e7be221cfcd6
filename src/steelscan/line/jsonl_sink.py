"""A DefectSink that writes JSON lines (`{"kind": "defect"|"uninspected"|"coil"|"surface", ...}`;
periodic alarms as "alarm", "alarm_link", "alarm_close"), for a look at a run without a database.
Crops are base64 PNG. The file appears complete on `close()` (written beside it, then renamed)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ..coils.records import CoilInfo, DefectRecord, SurfaceSummary, UninspectedRecord


class JsonlSink:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._f = open(self._tmp, "w", encoding="utf-8")

    def _write(self, kind: str, record) -> None:
        d = asdict(record)
        if d.get("crop_png") is not None:
            d["crop_png"] = base64.b64encode(d["crop_png"]).decode("ascii")
        self._f.write(json.dumps({"kind": kind, **d}) + "\n")

    def upsert_coil(self, coil: CoilInfo) -> None:
        self._write("coil", coil)

    def add_defects(self, defects: Sequence[DefectRecord]) -> None:
        for d in defects:
            self._write("defect", d)

    def add_uninspected(self, spans: Sequence[UninspectedRecord]) -> None:
        for s in spans:
            self._write("uninspected", s)

    def close_surface(self, summary: SurfaceSummary) -> None:
        self._write("surface", summary)

    def raise_alarm(self, alarm) -> None:
        self._write("alarm", alarm)

    def link_alarm(self, link) -> None:
        self._write("alarm_link", link)

    def close_alarm(self, close) -> None:
        self._write("alarm_close", close)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp, self.path)
