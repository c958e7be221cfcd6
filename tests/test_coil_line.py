"""`steelscan line` into the defect database, end to end: what the runner hands over is what
`steelscan coil show` gives back, on SQLite in one process and with two line processes (top and
bottom camera of one coil) writing one PostgreSQL database at once."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from test_line import ACROSS, ALONG, FRAME_M, Coil

from steelscan.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECORD_FIELDS = ("coil_id", "surface", "camera_id", "class_id", "class_name", "score", "start_m", "end_m",
                 "across_start_mm", "across_end_mm", "length_mm", "width_mm", "area_mm2", "frames")


def recorded_coil(root: Path) -> Path:
    """Coil C9, 8 frames per surface: top has a spot in every other frame and a scratch across
    frames 5-6; bottom (mirrored) two spots; frame 3 of the top is missing."""
    c = Coil(root)
    for i in range(8):
        if i == 3:
            continue
        boxes = [(2, 10, 20, 100, 110)] if i % 2 == 0 else []
        if i in (5, 6):
            boxes.append((1, 0 if i == 6 else 40, 63 if i == 5 else 30, 150, 156))
        c.frame("C9", "top", i * FRAME_M, boxes)
    for i in range(8):
        c.frame("C9", "bottom", i * FRAME_M, [(3, 5, 9, 200, 230)] if i in (1, 4) else [], mirror=True)
    root = c.write(coils=f"C9,L1,DC04,150,0.8,{8 * FRAME_M},o1,cust,top\n")
    (root / "line.yaml").write_text(f"pixel_mm: [{ALONG}, {ACROSS}]\n")
    return root


def show(db: str, capsys) -> dict:
    assert main(["coil", "show", "C9", "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_line_into_sqlite_round_trip(tmp_path, capsys):
    root = recorded_coil(tmp_path / "frames")
    args = ["line", "--oracle", str(root / "train.csv"), "--frames", str(root), "--quiet"]
    assert main([*args, "--db", str(tmp_path / "run.jsonl")]) == 0
    db = f"sqlite:///{tmp_path}/coils.db"
    assert main([*args, "--db", db]) == 0
    capsys.readouterr()
    handed = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    shown = show(db, capsys)
    sent = [r for r in handed if r["kind"] == "defect"]
    assert len(sent) == shown["n_defects"] == len(shown["defects"]) >= 6
    key = lambda d: (d["surface"], d["start_m"], d["across_start_mm"])   # noqa: E731
    for a, b in zip(sorted(sent, key=key), sorted(shown["defects"], key=key)):
        assert {k: a[k] for k in RECORD_FIELDS} == {k: b[k] for k in RECORD_FIELDS}
    crops = {d["id"] for d in shown["defects"] if d["has_crop"]}
    assert len(crops) == sum(1 for r in sent if r["crop_png"])
    sent_spans = sorted((r["surface"], r["start_m"], r["end_m"], r["reason"])
                        for r in handed if r["kind"] == "uninspected")
    assert sorted((s["surface"], s["start_m"], s["end_m"], s["reason"]) for s in shown["uninspected"]) == sent_spans
    assert any(s[3] == "missing" and s[0] == "top" for s in sent_spans)
    assert (shown["grade"], shown["line_id"]) == ("DC04", "L1") and len(shown["surfaces"]) == 2
    assert base64.b64decode(next(r for r in sent if r["crop_png"])["crop_png"])[:4] == b"\x89PNG"


def test_two_line_processes_one_postgres(postgres_url, tmp_path, capsys):
    root = recorded_coil(tmp_path / "frames")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "steelscan", "line", "--oracle", str(root / "train.csv"),
                               "--frames", str(root), "--db", postgres_url, "--surface", s, "--quiet"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in ("top", "bottom")]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert not err.strip()
    assert main(["line", "--oracle", str(root / "train.csv"), "--frames", str(root), "--quiet",
                 "--db", str(tmp_path / "one.db")]) == 0   # the same coil in one process, for reference
    capsys.readouterr()
    both, one = show(postgres_url, capsys), show(str(tmp_path / "one.db"), capsys)
    assert both["counts_by_surface"] == one["counts_by_surface"] and set(one["counts_by_surface"]) == {"top", "bottom"}
    key = lambda d: tuple(d[k] for k in RECORD_FIELDS if k != "frames")   # noqa: E731
    assert sorted(map(key, both["defects"])) == sorted(map(key, one["defects"]))   # none lost, none doubled
    assert sorted(s["surface"] for s in both["surfaces"]) == ["bottom", "top"]
    assert (both["grade"], both["customer"]) == ("DC04", "cust")
