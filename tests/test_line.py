"""The line runner (steelscan.line): inputs, strip edges, merging, coverage, coils and welds, the CLI.

Coils are built here: frames 64 rows along x 400 columns across, 2 mm x 0.5 mm pixels (a frame
is 0.128 m of strip), a bright strip on a black background with sub-pixel edges, defects as
dark rectangles whose truth goes to train.csv for the oracle inspector."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.coils.coil_table import read_coils
from steelscan.errors import ConfigError, DatasetError
from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.line import LineConfig, LineRunner, load_line_config, read_frames
from steelscan.line.merge import DefectMerger
from steelscan.line.oracle import OracleInspector
from steelscan.line.strip import find_strip
from steelscan.rle import encode_rle

H, W = 64, 400
ALONG, ACROSS = 2.0, 0.5
FRAME_M = H * ALONG / 1000          # 0.128 m
LEFT, RIGHT = 50.3, 350.7           # strip edges, px
CONFIG = LineConfig(pixel_mm=(ALONG, ACROSS), batch_size=4)


def strip_image(left=LEFT, right=RIGHT, *, seed=0, level=150.0, rows=H, cols=W) -> np.ndarray:
    """RGB uint8 frame: steel-grey strip with area-antialiased edges on black, mild texture."""
    x = np.arange(cols)
    cover = np.clip(np.minimum(x + 1, right) - np.maximum(x, left), 0.0, 1.0)
    noise = np.random.default_rng(seed).normal(0, 4, (rows, cols))
    grey = np.clip(cover[None, :] * (level + noise), 0, 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


class Coil:
    """A frames folder under construction: images, frames.csv, train.csv (truth), coils.csv."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.rows: list[str] = []
        self.truth: list[str] = []
        self.n = 0

    def frame(self, coil: str, surface: str, position_m: float, boxes=(), *, image=None, raw: bytes | None = None,
              file: str | None = None, mirror: bool = False) -> str:
        """boxes: (class_id, y0, y1, x0, x1) inclusive; drawn dark and written as truth."""
        file = file or f"f{self.n:04d}.png"
        self.n += 1
        self.rows.append(f"{file},{coil},{surface},{position_m:.6f}")
        if raw is not None:
            (self.root / file).write_bytes(raw)
            return file
        im = strip_image(seed=self.n) if image is None else image
        masks: dict[int, np.ndarray] = {}
        for c, y0, y1, x0, x1 in boxes:
            m = masks.setdefault(c, np.zeros(im.shape[:2], np.uint8))
            m[y0:y1 + 1, x0:x1 + 1] = 1
            im[y0:y1 + 1, x0:x1 + 1] = 20
        if mirror:
            im = im[:, ::-1].copy()
            masks = {c: m[:, ::-1].copy() for c, m in masks.items()}
        Image.fromarray(im).save(self.root / file)
        self.truth += [f"{file},{c},{encode_rle(m)}" for c, m in masks.items()]
        return file

    def write(self, coils: str | None = None) -> Path:
        (self.root / "frames.csv").write_text("file,coil_id,surface,position_m\n" + "\n".join(self.rows) + "\n")
        (self.root / "train.csv").write_text("ImageId,ClassId,EncodedPixels\n" + "\n".join(self.truth) + "\n")
        if coils is not None:
            (self.root / "coils.csv").write_text("coil_id,line_id,grade,width_mm,thickness_mm,length_m,order,"
                                                 "customer,exposed_surface\n" + coils)
        return self.root


class MemorySink:
    """DefectSink in memory; counts calls to check the runner batches."""

    def __init__(self) -> None:
        self.coils, self.defects, self.spans, self.surfaces = [], [], [], []
        self.calls: Counter = Counter()

    def upsert_coil(self, coil):
        self.calls["upsert_coil"] += 1
        self.coils.append(coil)

    def add_defects(self, defects):
        self.calls["add_defects"] += 1
        self.defects += list(defects)

    def add_uninspected(self, spans):
        self.calls["add_uninspected"] += 1
        self.spans += list(spans)

    def close_surface(self, summary):
        self.calls["close_surface"] += 1
        self.surfaces.append(summary)

    def flush(self):
        self.calls["flush"] += 1

    def close(self):
        pass


def run_line(root: Path, config: LineConfig = CONFIG, inspector=None):
    sink = MemorySink()
    coils = read_coils(root / "coils.csv" if (root / "coils.csv").is_file() else None)
    runner = LineRunner(inspector or OracleInspector(root / "train.csv"), sink, config, coils.coils)
    summary = runner.run(read_frames(root / "frames.csv"), root)
    return sink, summary


# --- strip edges -----------------------------------------------------------------------------------
@pytest.mark.parametrize("left,right", [(50.3, 350.7), (80.7, 299.2), (0.0, 300.4), (120.5, 400.0)])
def test_strip_edges_are_sub_pixel(left, right):
    got = find_strip(strip_image(left, right, seed=3))
    assert got == pytest.approx((left, right), abs=0.05)


def test_strip_edges_survive_dark_defects_and_a_full_frame():
    im = strip_image(seed=4)
    im[:, 100:104] = 10      # a dark scratch over every row
    im[5:60, 50:52] = 0      # a dark defect at the edge, most rows
    left, right = find_strip(im)
    assert right == pytest.approx(RIGHT, abs=0.05) and 50 <= left < 52.5
    assert find_strip(strip_image(-5, W + 5, seed=5)) == (0.0, float(W))   # no background: all strip
    dark = strip_image(seed=6, level=45.0)      # a dark strip with bright defects over many columns
    dark[:, 100:112] = 95
    dark[:, 200:230] = 90
    assert find_strip(dark) == pytest.approx((LEFT, RIGHT), abs=0.1)


# --- input tables ----------------------------------------------------------------------------------
def test_bad_frame_rows_are_named_and_good_rows_kept(tmp_path):
    p = tmp_path / "frames.csv"
    p.write_text("file,coil_id,surface,position_m,camera_id\n"
                 "a.png,C1,top,0.256,\n"
                 "b.png,C1,top,abc,\n"
                 "c.png,C1,side,0.1,\n"
                 "d.png,C1,top,0.0,cam7\n"
                 "e.png,C1,top\n"
                 "a.png,C1,top,0.5,\n"
                 "f.png,C1,top,0.256,\n"
                 "g.png,C1,top,0.128,\n")
    t = read_frames(p)
    lines = [str(e) for e in t.problems]
    assert [f.file for f in t.streams()["top"]] == ["d.png", "g.png", "a.png"]
    assert t.streams()["top"][0].camera_id == "cam7"
    assert any(s.startswith(f"{p}:3 [position_m]") for s in lines), lines
    assert any(s.startswith(f"{p}:4 [surface]") for s in lines), lines
    assert any(s.startswith(f"{p}:6:") and "expected 5 fields" in s for s in lines), lines
    assert any(s.startswith(f"{p}:7 [file]") and "duplicate" in s and "line 2" in s for s in lines), lines
    assert any(s.startswith(f"{p}:8 [position_m]") and "duplicate" in s for s in lines), lines
    assert len(lines) == 5
    p.write_text("file,coil,surface\n")
    with pytest.raises(DatasetError, match="coil_id"):
        read_frames(p)


def test_bad_coil_rows_are_named(tmp_path):
    p = tmp_path / "coils.csv"
    p.write_text("coil_id,width_mm,length_m,exposed_surface\nC1,1500,800,top\nC2,-5,800,\nC3,1200,,sideways\n"
                 "C1,1,1,\n")
    t = read_coils(p)
    assert list(t.coils) == ["C1"] and t.coils["C1"].length_m == 800.0
    lines = [str(e) for e in t.problems]
    assert lines[0].startswith(f"{p}:3 [width_mm]")
    assert lines[1].startswith(f"{p}:4 [exposed_surface]")
    assert lines[2].startswith(f"{p}:5 [coil_id]") and "duplicate" in lines[2]


def test_line_config_defaults_file_and_override(tmp_path):
    cfg = LineConfig()
    assert cfg.surfaces["top"].drive_side == "left" and cfg.surfaces["bottom"].drive_side == "right"
    p = tmp_path / "line.yaml"
    p.write_text("pixel_mm: [0.5, 0.25]\nsurfaces:\n  bottom: {camera_id: cam-b}\n")
    cfg = load_line_config(p)
    assert cfg.pixel.along_mm == 0.5 and cfg.surfaces["bottom"].drive_side == "right"
    assert cfg.surfaces["bottom"].camera_id == "cam-b"
    assert load_line_config(p, pixel_mm=(1.0, 2.0)).pixel.across_mm == 2.0
    p.write_text("source: steelscan synth-coil\nline_id: L1\npixel_mm: {along: 0.8, across: 0.6}\n"
                 "frame: {height: 64, width: 400}\nsurfaces:\n  top: {camera_id: top-1, drive_side: left}\n")
    cfg = load_line_config(p)          # the file synth-coil writes
    assert cfg.pixel_mm == (0.8, 0.6) and cfg.frame_size == (64, 400) and cfg.surfaces["top"].camera_id == "top-1"
    p.write_text("pixel_mn: [1, 1]\n")
    with pytest.raises(ConfigError, match="pixel_mn"):
        load_line_config(p)
    p.write_text("surfaces:\n  top: {drive_side: up}\n")
    with pytest.raises(ConfigError, match="surfaces.top.drive_side"):
        load_line_config(p)
    with pytest.raises(ConfigError):
        load_line_config(tmp_path / "none.yaml", pixel_mm=(0, 1))


# --- merging, coordinates ----------------------------------------------------------------------------
def test_scratch_over_five_frames_is_one_defect_with_exact_ends(tmp_path):
    c = Coil(tmp_path / "c")
    for i in range(5):
        boxes = [(1, 40 if i == 0 else 0, 20 if i == 4 else H - 1, 100 + i, 104 + i)]   # drifts 1 px a frame
        if i == 2:
            boxes += [(2, 10, 15, 200, 210), (1, 10, 20, 5, 30)]   # a spot; a "defect" off the strip
        c.frame("C1", "top", i * FRAME_M, boxes)
    sink, summary = run_line(c.write())
    assert summary.defects == 2 and len(sink.defects) == 2
    scratch = next(d for d in sink.defects if d.class_id == 1)
    assert scratch.start_m == pytest.approx(40 * 0.002) and scratch.end_m == pytest.approx(4 * FRAME_M + 21 * 0.002)
    assert scratch.across_start_mm == pytest.approx((100 - LEFT) * ACROSS, abs=0.05)
    assert scratch.across_end_mm == pytest.approx((109 - LEFT) * ACROSS, abs=0.05)
    assert scratch.length_mm == pytest.approx(scratch.end_m * 1000 - 80)
    rows = (H - 40) + 3 * H + 21
    assert scratch.area_mm2 == pytest.approx(5 * rows * ALONG * ACROSS)
    assert len(scratch.frames) == 5 and scratch.camera_id == "top" and scratch.model_name == "oracle"
    crop = Image.open(io.BytesIO(scratch.crop_png))
    assert max(crop.size) <= CONFIG.crop_max_px
    spot = next(d for d in sink.defects if d.class_id == 2)
    assert (spot.start_m, spot.end_m) == pytest.approx((2 * FRAME_M + 0.020, 2 * FRAME_M + 0.032))
    assert sink.spans == [] and len(sink.surfaces) == 1
    s = sink.surfaces[0]
    assert s.frames == 5 and s.inspected_m == pytest.approx(5 * FRAME_M)
    assert s.strip_width_mm_median == pytest.approx((RIGHT - LEFT) * ACROSS, abs=0.05)


def test_bottom_surface_is_measured_from_the_right_edge(tmp_path):
    """Bottom camera: image mirrored, drive side right: same coil coordinates as the top."""
    c = Coil(tmp_path / "c")
    for surface, mirror in (("top", False), ("bottom", True)):
        c.frame("C1", surface, 0.0, [(3, 10, 30, 120, 160)], mirror=mirror)
    sink, _ = run_line(c.write())
    top, bottom = (next(d for d in sink.defects if d.surface == s) for s in ("top", "bottom"))
    assert top.across_start_mm == pytest.approx((120 - LEFT) * ACROSS, abs=0.05)
    assert bottom.across_start_mm == pytest.approx(top.across_start_mm, abs=0.05)
    assert bottom.across_end_mm == pytest.approx(top.across_end_mm, abs=0.05)
    assert {s.surface: s.camera_id for s in sink.surfaces} == {"top": "top", "bottom": "bottom"}


def test_merger_joins_diagonal_touch_only():
    """8-connectivity across the boundary: one column apart joins, two apart does not."""
    from steelscan.line.merge import CoilDefect

    def piece(top, bottom, start):
        return CoilDefect(1, "c", start, start + 0.1, 0, 1, 10, 10.0, ["f"],
                          top_cols=None if top is None else np.array(top),
                          bottom_cols=None if bottom is None else np.array(bottom))

    m = DefectMerger()
    assert m.add([piece(None, [10], 0.0), piece(None, [50], 0.0)], True) == []
    done = m.add([piece([11], None, 0.1), piece([52], None, 0.1)], True)
    assert sorted(d.area_px for d in done) == [10, 10, 20]


def test_off_strip_background_is_ignored_with_a_real_inspector(tmp_path):
    """The real Inspector with a segmenter that marks every dark pixel: the black background
    would be one huge defect; clipped to the strip only the dark spot is left."""
    from conftest import DarkSpotSegmenter

    c = Coil(tmp_path / "c")
    c.frame("C1", "top", 0.0, [(3, 20, 29, 200, 219)])
    inspector = Inspector(None, DarkSpotSegmenter(), Thresholds.defaults(4), tile=(H, W))
    sink, summary = run_line(c.write(), inspector=inspector)
    assert summary.defects == 1
    d = sink.defects[0]
    assert d.class_id == 3 and d.area_mm2 == pytest.approx(200 * ALONG * ACROSS)
    assert d.across_start_mm == pytest.approx((200 - LEFT) * ACROSS, abs=0.05) and 0 < d.score <= 1


# --- coverage ---------------------------------------------------------------------------------------
def test_gaps_bad_frames_and_duplicates_are_uninspected_with_reasons(tmp_path):
    c = Coil(tmp_path / "c")
    spot = [(1, 30, 33, 150, 160)]
    c.frame("C1", "top", 0 * FRAME_M, image=strip_image(rows=32))   # the first frame is the odd one out
    c.frame("C1", "top", 1 * FRAME_M, spot)
    # frame 2 missing
    c.frame("C1", "top", 3 * FRAME_M, raw=b"\x89PNG\r\n\x1a\n not really")
    c.frame("C1", "top", 4 * FRAME_M, image=strip_image(rows=32))
    c.frame("C1", "top", 5 * FRAME_M, spot, file="good5.png")
    c.frame("C1", "top", 5 * FRAME_M, spot, file="dup5.png")
    c.frame("C1", "top", 6 * FRAME_M + 0.064, spot)    # half a frame of gap; runs past length_m 0.9
    root = c.write(coils="C1,L1,DC04,150,0.8,0.9,o1,cust,top\n")
    table = read_frames(root / "frames.csv")
    assert any("dup5.png skipped" in str(e) for e in table.problems)
    sink, summary = run_line(root, CONFIG.model_copy(update={"batch_size": 8}))   # frame size: the batch's mode
    spans = [(s.reason, round(s.start_m, 3), round(s.end_m, 3)) for s in sink.spans]
    assert spans == [("wrong_size", 0.0, 0.128), ("missing", 0.256, 0.384), ("unreadable", 0.384, 0.512),
                     ("wrong_size", 0.512, 0.64), ("missing", 0.768, 0.832)]
    assert sum(1 for s in summary.problems if "unreadable" in s or "wrong_size" in s) == 3
    assert len(sink.defects) == 3                      # frames 1, 5 and the last one
    assert summary.uninspected_m == pytest.approx(0.128 * 4 + 0.064)
    assert sink.surfaces[0].end_m == pytest.approx(0.9)


def test_overlapping_frame_skips_rows_already_inspected(tmp_path):
    c = Coil(tmp_path / "c")
    c.frame("C1", "top", 0.0, [(1, 50, H - 1, 100, 104)])
    c.frame("C1", "top", FRAME_M / 2, [(1, 0, 40, 100, 104)])   # rows 0..31 were seen in the first frame
    sink, _ = run_line(c.write())
    assert len(sink.defects) == 1 and sink.spans == []
    d = sink.defects[0]
    assert (d.start_m, d.end_m) == pytest.approx((0.100, FRAME_M / 2 + 0.082))
    assert sink.surfaces[0].inspected_m == pytest.approx(1.5 * FRAME_M)


# --- coils and welds --------------------------------------------------------------------------------
def test_coil_change_and_frame_straddling_the_weld_by_length(tmp_path):
    """(a) The third frame of A runs past A's length 0.3 m (row 22): rows 0..21 are A's tail,
    rows 22..63 B's head. A spot over rows 15..30 becomes one defect in each coil."""
    c = Coil(tmp_path / "c")
    c.frame("A", "top", 0.0)
    c.frame("A", "top", FRAME_M)
    c.frame("A", "top", 2 * FRAME_M, [(2, 15, 30, 200, 220)])
    c.frame("B", "top", 0.084, [(4, 0, 5, 300, 305)])
    c.frame("B", "top", 0.084 + FRAME_M)
    sink, summary = run_line(c.write(coils="A,L1,,,,0.3,,,\nB,L1,,,,0.5,,,\n"))
    assert [x.coil_id for x in sink.coils] == ["A", "B"]
    a, b = sink.surfaces
    assert (a.coil_id, a.frames, a.end_m) == ("A", 3, pytest.approx(0.3))
    assert a.inspected_m == pytest.approx(0.3)
    assert (b.coil_id, b.frames) == ("B", 3) and b.inspected_m == pytest.approx(0.084 + 2 * FRAME_M)
    spot_a, spot_b = sorted((d for d in sink.defects if d.class_id == 2), key=lambda d: d.coil_id)
    assert (spot_a.coil_id, spot_a.start_m, spot_a.end_m) == ("A", pytest.approx(0.286), pytest.approx(0.3))
    assert (spot_b.coil_id, spot_b.start_m, spot_b.end_m) == ("B", 0.0, pytest.approx(0.018))
    assert [(s.coil_id, round(s.start_m, 3), round(s.end_m, 3)) for s in sink.spans] == [("B", 0.34, 0.5)]
    assert summary.inspected == 5 and summary.coils == ["A", "B"]


def test_frame_straddling_the_weld_by_negative_position(tmp_path):
    """(b) B's first frame is listed at -0.044 m: its rows 0..21 continue A (no coils.csv)."""
    c = Coil(tmp_path / "c")
    c.frame("A", "top", 0.0, [(1, 60, H - 1, 100, 102)])
    c.frame("B", "top", -0.044, [(1, 0, 30, 101, 103)])
    sink, _ = run_line(c.write())
    a = next(d for d in sink.defects if d.coil_id == "A")
    b = next(d for d in sink.defects if d.coil_id == "B")
    assert (a.start_m, a.end_m) == pytest.approx((0.120, FRAME_M + 0.044))     # continued over the weld row
    assert (b.start_m, b.end_m) == pytest.approx((0.0, 0.062 - 0.044))
    assert [s.end_m for s in sink.surfaces] == pytest.approx([FRAME_M + 0.044, FRAME_M - 0.044])
    assert sink.spans == []


def test_runner_batches_sink_calls(tmp_path):
    c = Coil(tmp_path / "c")
    for i in range(8):
        c.frame("C1", "top", i * FRAME_M, [(1, 5 + 2 * k, 5 + 2 * k, 60 + 25 * k, 70 + 25 * k) for k in range(10)])
    sink, summary = run_line(c.write())
    assert summary.defects == 80 and len(sink.defects) == 80
    assert sink.calls["add_defects"] == 2          # one per batch of 4 frames, not one per defect
    assert sink.calls["close_surface"] == 1 and sink.calls["flush"] == 1


def test_runner_publishes_live_status_to_a_sink_that_shows_it(tmp_path, monkeypatch):
    import steelscan.line.runner as runner_module

    monkeypatch.setattr(runner_module, "STATUS_EVERY_S", 0.0)   # every batch, for the test
    c = Coil(tmp_path / "c")
    for i in range(8):
        c.frame("C1", "top", i * FRAME_M, [(1, 5, 9, 60, 70)])
    sink = MemorySink()
    sink.statuses = []
    sink.publish_status = sink.statuses.append
    runner = LineRunner(OracleInspector(c.write() / "train.csv"), sink, CONFIG)
    runner.run(read_frames(c.root / "frames.csv"), c.root)
    assert [s.frames for s in sink.statuses] == [4, 8]            # one per batch of 4 frames
    last = sink.statuses[-1]
    assert (last.coil_id, last.surface, last.camera_id) == ("C1", "top", "top")
    assert last.position_m == pytest.approx(8 * FRAME_M)          # where the coverage has reached
    assert last.lag_s is None and last.behind_m == 0.0            # a replay lags behind nothing
    assert last.frames_per_s is not None and last.frames_per_s > 0


# --- the command --------------------------------------------------------------------------------------
def test_cli_line_writes_records_and_names_bad_rows(tmp_path, capsys):
    c = Coil(tmp_path / "c")
    c.frame("C1", "top", 0.0, [(1, 10, 20, 100, 110)])
    c.frame("C1", "top", FRAME_M, raw=b"garbage")
    root = c.write(coils="C1,L1,DC04,150,0.8,0.256,o1,cust,top\n")
    with open(root / "frames.csv", "a") as f:
        f.write("x.png,C1,top,minus one\n")
    (root / "line.yaml").write_text(f"pixel_mm: [{ALONG}, {ACROSS}]\n")
    out = tmp_path / "out.jsonl"
    code = main(["line", "--oracle", str(root / "train.csv"), "--db", str(out), "--frames", str(root), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"frames.csv:4 [position_m]" in captured.err and "unreadable" in captured.err
    assert "2 frames (1 inspected), 1 coil(s), 1 defects, 0.13 m uninspected" in captured.out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = Counter(r["kind"] for r in records)
    assert kinds == {"coil": 1, "defect": 1, "uninspected": 1, "surface": 1}
    d = next(r for r in records if r["kind"] == "defect")
    assert d["start_m"] == pytest.approx(0.020) and d["crop_png"]
    assert main(["line", "--db", str(out), "--frames", str(root)]) == 2     # neither --model nor --oracle


class FailsOn:
    """The oracle, except that the inspector reports an error for one frame."""

    def __init__(self, truth: Path, bad: str) -> None:
        self.oracle, self.bad = OracleInspector(truth), bad

    def inspect(self, images, ids):
        out = self.oracle.inspect(images, ids)
        for r in out:
            if r.image_id == self.bad:
                r.error, r.masks = "model exploded", None
        return out


def test_inspection_error_is_uninspected_and_next_coil_may_restart_at_its_head(tmp_path):
    """A frame the inspector fails on is an uninspected length; after a frame split at the weld
    (a), the next coil's first listed frame at 0 m overlaps the split part: those rows are skipped."""
    c = Coil(tmp_path / "c")
    c.frame("A", "top", 0.0, [(1, 5, 9, 100, 110)])
    bad = c.frame("A", "top", FRAME_M)
    c.frame("A", "top", 2 * FRAME_M)                     # runs past A's length 0.3 m at row 22
    c.frame("B", "top", 0.0, [(1, 50, 55, 100, 110)])   # rows 0..41 were B's part of the last frame
    root = c.write(coils="A,,,,,0.3,,,\n")
    sink, summary = run_line(root, inspector=FailsOn(root / "train.csv", bad))
    assert [(s.coil_id, s.reason, s.start_m, s.end_m) for s in sink.spans] == [
        ("A", "inspection_error", pytest.approx(FRAME_M), pytest.approx(2 * FRAME_M))]
    assert any("inspection_error" in p for p in summary.problems)
    b = next(d for d in sink.defects if d.coil_id == "B")
    assert (b.start_m, b.end_m) == pytest.approx((0.100, 0.112))
    assert [s.inspected_m for s in sink.surfaces] == pytest.approx([0.3 - FRAME_M, FRAME_M])
