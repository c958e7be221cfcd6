"""Synthetic coils: determinism, the CSVs, truth that matches the painted pixels in coil
coordinates, roll marks at pi x D, the mirrored bottom camera, welds, bad arguments."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from steelscan.cli import main
from steelscan.data.layout import open_dataset
from steelscan.data.synth_coil import (COILS_HEADER, DEFECTS_HEADER, FRAMES_HEADER, MIN_GAP_MM,
                                       ROLLS_HEADER, SynthCoilConfig, synthesize_coils)
from steelscan.errors import ConfigError, DatasetError
from steelscan.geometry import PixelSize, box_to_coil
from steelscan.rle import decode_rle

H, W = 64, 400
LINE = dict(length_m=4.0, width_mm=300.0, seed=7, coils=2, frame_height=H, frame_width=W,
            roll_diameters_mm=(120.0, 150.0), jitter_mm=2.0, wear=0.01, wander_mm=20.0,
            miss_rate=0.2, density=30.0)


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("line")
    synthesize_coils(out, SynthCoilConfig(**LINE), progress=False)
    return out


def test_same_seed_same_bytes_any_workers_and_other_seed_differs(tmp_path):
    small = dict(LINE, length_m=1.5, coils=1, density=20.0)
    a = synthesize_coils(tmp_path / "a", SynthCoilConfig(**small), progress=False).out
    b = synthesize_coils(tmp_path / "b", SynthCoilConfig(**small), workers=2, progress=False).out
    c = synthesize_coils(tmp_path / "c", SynthCoilConfig(**dict(small, seed=8)), progress=False).out
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 40
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "defects.csv").read_bytes() != (c / "defects.csv").read_bytes()
    fa, fc = sorted((a / "frames").iterdir()), sorted((c / "frames").iterdir())
    assert len(fa) == len(fc) and fa[3].read_bytes() != fc[3].read_bytes()


def test_csv_schemas_and_files(line):
    header, frames = read_csv(line / "frames.csv")
    assert header == FRAMES_HEADER
    assert read_csv(line / "coils.csv")[0] == COILS_HEADER
    assert read_csv(line / "defects.csv")[0] == DEFECTS_HEADER
    assert read_csv(line / "rolls.csv")[0] == ROLLS_HEADER
    assert read_csv(line / "train.csv")[0] == ["ImageId", "ClassId", "EncodedPixels"]
    frames_per_surface = math.ceil(2 * 4000 / H)
    assert len(frames) == 2 * frames_per_surface
    assert sorted(p.name for p in (line / "frames").iterdir()) == sorted(r["file"] for r in frames)
    for r in frames[:4]:
        with Image.open(line / "frames" / r["file"]) as im:
            assert im.format == "JPEG" and im.size == (W, H)
    _, coils = read_csv(line / "coils.csv")
    assert [c["coil_id"] for c in coils] == ["C7-001", "C7-002"]
    assert all(float(c["width_mm"]) == 300 and float(c["length_m"]) == 4 for c in coils)
    _, rolls = read_csv(line / "rolls.csv")
    assert [(r["name"], float(r["diameter_mm"]), r["surface"]) for r in rolls] == \
        [("R1", 120.0, "top"), ("R2", 150.0, "bottom")]
    cfg = yaml.safe_load((line / "line.yaml").read_text())
    assert cfg["pixel_mm"] == {"along": 1.0, "across": 1.0} and cfg["frame"] == {"height": H, "width": W}
    assert {s: v["drive_side"] for s, v in cfg["surfaces"].items()} == {"top": "left", "bottom": "right"}
    ds = open_dataset(line, images_dir=line / "frames")
    assert len(ds) == len(frames) and ds.num_classes == 4


def test_truth_lies_on_the_strip_and_its_fields_agree(line):
    _, truth = read_csv(line / "defects.csv")
    assert len(truth) >= 40
    assert {r["source"] for r in truth} == {"random", "roll:R1", "roll:R2"}
    assert {int(r["class_id"]) for r in truth if r["source"] == "random"} == {1, 2, 3, 4}
    for r in truth:
        s, e, a0, a1 = (float(r[k]) for k in ("start_m", "end_m", "across_start_mm", "across_end_mm"))
        assert 0 <= s < e <= 4.0 and 0 <= a0 < a1 <= 300.0, r
        assert float(r["length_mm"]) == pytest.approx((e - s) * 1000, abs=1e-3)
        assert float(r["width_mm"]) == pytest.approx(a1 - a0, abs=2e-3)
        assert 0 < float(r["area_mm2"]) <= float(r["length_mm"]) * float(r["width_mm"]) + 1e-6
    # long scratches run across several frames and are still one row each
    assert max(float(r["length_mm"]) for r in truth) > 3 * H


def _painted_defects(line: Path) -> list[tuple]:
    """Independent of the generator: decode train.csv, stitch each surface's frames into one
    long mask per class, split it into defects (components closer than MIN_GAP_MM joined),
    then map every frame's piece through box_to_coil with that frame's strip edges."""
    _, frames = read_csv(line / "frames.csv")
    _, coils = read_csv(line / "coils.csv")
    order = [c["coil_id"] for c in coils]
    heads = dict(zip(order, np.cumsum([0.0] + [float(c["length_m"]) for c in coils])))  # line metres
    drive = {s: v["drive_side"] for s, v in yaml.safe_load((line / "line.yaml").read_text())["surfaces"].items()}
    rles: dict[str, dict[int, str]] = {}
    for r in read_csv(line / "train.csv")[1]:
        rles.setdefault(r["ImageId"], {})[int(r["ClassId"])] = r["EncodedPixels"]
    pixel = PixelSize(1.0, 1.0)
    found = []
    for surface in ("top", "bottom"):
        rows = [r for r in frames if r["surface"] == surface]
        for c in range(1, 5):
            tall = np.concatenate([decode_rle(rles.get(r["file"], {}).get(c, ""), H, W) for r in rows])
            labels, n = ndimage.label(ndimage.binary_dilation(tall, iterations=int(MIN_GAP_MM / 3)),
                                      structure=np.ones((3, 3)))
            labels = labels * tall
            # one defect is one 8-connected component however the frames cut it
            assert ndimage.label(tall, structure=np.ones((3, 3)))[1] == len(np.unique(labels)) - 1
            for obj in ndimage.find_objects(labels):
                lab = labels[obj].max()
                boxes, area = [], 0
                for f in range(obj[0].start // H, (obj[0].stop - 1) // H + 1):
                    part = labels[f * H:(f + 1) * H] == lab
                    if not part.any():
                        continue
                    ys, xs = np.nonzero(part)
                    r = rows[f]
                    strip = (float(r["strip_left_px"]), float(r["strip_right_px"]))
                    # every painted pixel lies on the strip of its frame
                    assert xs.min() >= strip[0] and xs.max() + 1 <= strip[1]
                    line_m = heads[r["coil_id"]] + float(r["position_m"])  # row 0, in line metres
                    boxes.append(box_to_coil((ys.min(), xs.min(), ys.max(), xs.max()),
                                             line_m, strip, drive[surface], pixel))
                    area += len(ys)
                start = min(b.start_m for b in boxes)
                end = max(b.end_m for b in boxes)
                coil = [c for c in order if heads[c] <= start][-1]  # a frame across a weld is split
                start, end = start - heads[coil], end - heads[coil]
                found.append((coil, surface, c, round(start, 4), round(end, 4),
                              round(min(b.across_start_mm for b in boxes), 2),
                              round(max(b.across_end_mm for b in boxes), 2), float(area)))
    return sorted(found)


def test_truth_rows_match_the_painted_masks(line):
    _, truth = read_csv(line / "defects.csv")
    expected = sorted((r["coil_id"], r["surface"], int(r["class_id"]), round(float(r["start_m"]), 4),
                       round(float(r["end_m"]), 4), round(float(r["across_start_mm"]), 2),
                       round(float(r["across_end_mm"]), 2), float(r["area_mm2"])) for r in truth)
    found = _painted_defects(line)
    assert len(found) == len(expected)
    for f, e in zip(found, expected):
        assert f[:5] == e[:5] and f[7] == e[7], (f, e)
        assert f[5] == pytest.approx(e[5], abs=0.02) and f[6] == pytest.approx(e[6], abs=0.02), (f, e)


def test_roll_marks_repeat_at_pi_d_within_jitter_wear_and_wander(line):
    _, truth = read_csv(line / "defects.csv")
    _, rolls = read_csv(line / "rolls.csv")
    order = {"C7-001": 0, "C7-002": 1}
    for roll in rolls:
        marks = sorted((order[r["coil_id"]] * 4.0 + float(r["start_m"]), float(r["across_start_mm"]),
                        r["surface"], int(r["class_id"]))
                       for r in truth if r["source"] == f"roll:{roll['name']}")
        assert len(marks) >= 8
        assert {m[2] for m in marks} == {roll["surface"]} and len({m[3] for m in marks}) == 1
        period = math.pi * float(roll["diameter_mm"]) * (1 + LINE["wear"]) / 1000
        pos = np.array([m[0] for m in marks])
        turns = np.round((pos - pos[0]) / period)
        assert np.all(np.diff(turns) >= 1)
        # jitter +-2 mm at each end, plus a pixel of rounding each
        assert np.abs(pos - pos[0] - turns * period).max() <= (2 * LINE["jitter_mm"] + 2) / 1000
        assert np.any(np.diff(turns) >= 2)  # some turns missed (miss rate 0.2)
        fitted = np.polyfit(turns, pos, 1)[0]
        assert fitted == pytest.approx(period, rel=2e-3)
        assert fitted != pytest.approx(period / (1 + LINE["wear"]), rel=2e-3)  # the wear shows
        across = np.array([m[1] for m in marks])
        assert across.max() - across.min() <= 2 * LINE["wander_mm"] + 2


def test_no_jitter_no_wander_marks_are_exact(tmp_path):
    cfg = SynthCoilConfig(length_m=6.0, width_mm=300.0, seed=3, frame_height=H, frame_width=W,
                          roll_diameters_mm=(100.0,), surfaces=("top",), density=0.0)
    out = synthesize_coils(tmp_path / "o", cfg, progress=False).out
    _, truth = read_csv(out / "defects.csv")
    pos = np.array(sorted(float(r["start_m"]) for r in truth))
    assert len(truth) == len(pos) >= 15 and all(r["source"] == "roll:R1" for r in truth)
    assert np.abs(np.diff(pos) - math.pi * 0.1).max() <= 0.001  # one pixel of rounding
    across = [float(r["across_start_mm"]) for r in truth]
    assert max(across) - min(across) <= 1.5
    assert len({r["area_mm2"] for r in truth}) == 1  # one roll, one mark shape


def _edges_from_pixels(image: np.ndarray) -> tuple[int, int]:
    """First and last column whose median grey is well above the dark off-strip field."""
    profile = np.median(image, axis=0)
    bright = np.flatnonzero(profile > 25)
    return int(bright[0]), int(bright[-1]) + 1


def test_bottom_camera_sees_the_strip_mirrored(line):
    _, frames = read_csv(line / "frames.csv")
    top = [r for r in frames if r["surface"] == "top"]
    bottom = [r for r in frames if r["surface"] == "bottom"]
    off_centre = []
    for t, b in list(zip(top, bottom))[::10]:
        assert t["position_m"] == b["position_m"]
        tl, tr = float(t["strip_left_px"]), float(t["strip_right_px"])
        bl, br = float(b["strip_left_px"]), float(b["strip_right_px"])
        assert bl == pytest.approx(W - tr, abs=2e-3) and br == pytest.approx(W - tl, abs=2e-3)
        off_centre.append(abs(tl - (W - tr)))
        for r, (lo, hi) in ((t, (tl, tr)), (b, (bl, br))):
            image = np.asarray(Image.open(line / "frames" / r["file"]).convert("L"))
            left, right = _edges_from_pixels(image)
            assert abs(left - lo) <= 2 and abs(right - hi) <= 2
    assert max(off_centre) > 5  # the strip wanders off centre, so mirroring shows


def test_welds_give_consecutive_coils_with_positions_from_zero(line):
    _, frames = read_csv(line / "frames.csv")
    for surface in ("top", "bottom"):
        rows = [r for r in frames if r["surface"] == surface]
        ids = [r["coil_id"] for r in rows]
        first_b = ids.index("C7-002")
        assert set(ids[:first_b]) == {"C7-001"} and set(ids[first_b:]) == {"C7-002"}
        pos = [float(r["position_m"]) for r in rows]
        assert pos[0] == 0.0 and np.allclose(np.diff(pos[:first_b]), H / 1000)
        assert np.allclose(np.diff(pos[first_b:]), H / 1000)
        # the last frame of coil 1 straddles the weld; coil 2 continues the same stream
        assert pos[first_b - 1] < 4.0 < pos[first_b - 1] + H / 1000
        assert pos[first_b] == pytest.approx(pos[first_b - 1] + H / 1000 - 4.0)
        assert rows[first_b]["file"] == "C7-002_%s_000000.jpg" % surface


def test_rerun_replaces_and_refuses_foreign_frames(tmp_path):
    cfg = SynthCoilConfig(length_m=1.0, width_mm=300.0, frame_height=H, frame_width=W, surfaces=("top",))
    out = synthesize_coils(tmp_path / "o", SynthCoilConfig(**dict(cfg.__dict__, length_m=2.0)),
                           progress=False).out
    synthesize_coils(out, cfg, progress=False)
    assert len(list((out / "frames").iterdir())) == len(read_csv(out / "frames.csv")[1])
    (tmp_path / "x" / "frames").mkdir(parents=True)
    (tmp_path / "x" / "frames" / "real.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not made by steelscan synth-coil"):
        synthesize_coils(tmp_path / "x", cfg, progress=False)


@pytest.mark.parametrize("flags,field", [
    (["--width-mm", "1700"], "--width-mm"),
    (["--surfaces", "top,side"], "--surfaces"),
    (["--miss-rate", "1"], "--miss-rate"),
    (["--jitter-mm", "-1"], "--jitter-mm"),
    (["--roll-diameter-mm", "100", "--jitter-mm", "200"], "--jitter-mm"),
    (["--roll-diameter-mm", "600", "30"], "--roll-diameter-mm"),
    (["--frame-size", "64"], "--frame-size"),
    (["--pixel-mm", "0", "1"], "--pixel-mm"),
    (["--coils", "0"], "--coils"),
    (["--length-m", "0.1"], "--length-m"),
    (["--wander-mm", "900"], "--wander-mm"),
])
def test_bad_arguments_give_one_line(tmp_path, capsys, flags, field):
    argv = ["synth-coil", "--out", str(tmp_path / "o"), "--length-m", "2", "--width-mm", "1000"]
    rc = main(argv + flags + ["--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and field in err[0], err
    assert not (tmp_path / "o").exists()


def test_config_errors_are_typed():
    with pytest.raises(ConfigError):
        SynthCoilConfig(length_m=5, width_mm=50).validate()


def test_cli_writes_a_line(tmp_path, capsys):
    rc = main(["synth-coil", "--out", str(tmp_path / "o"), "--length-m", "2", "--width-mm", "300",
               "--frame-size", "64x400", "--surfaces", "top", "--roll-diameter-mm", "100", "--quiet",
               "--preview", str(tmp_path / "map.png")])
    assert rc == 0
    assert "frames of 1 coil(s)" in capsys.readouterr().out
    with Image.open(tmp_path / "map.png") as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert (pixels == (0, 0, 0)).all(axis=1).sum() > 20  # roll marks are outlined in black
    assert len(read_csv(tmp_path / "o" / "frames.csv")[1]) == math.ceil(2000 / 64)


def test_line_runner_with_the_oracle_finds_the_truth(line, tmp_path):
    """End to end: `steelscan line` reads the folder as written (frames.csv, coils.csv, line.yaml)
    and, inspecting with the truth masks, stores exactly the truth: same count per coil, surface
    and class, every edge within 2 px."""
    import json

    db = tmp_path / "found.jsonl"
    assert main(["line", "--frames", str(line), "--oracle", str(line / "train.csv"), "--db", str(db),
                 "--quiet"]) == 0
    found = [r for r in map(json.loads, db.read_text().splitlines()) if r["kind"] == "defect"]
    _, truth = read_csv(line / "defects.csv")
    key = lambda r: (r["coil_id"], r["surface"], int(r["class_id"]))  # noqa: E731
    assert sorted(map(key, found)) == sorted(map(key, truth))
    edges = ("start_m", "end_m", "across_start_mm", "across_end_mm")
    for t in truth:
        box = [float(t[e]) for e in edges]
        best = min((f for f in found if key(f) == key(t)),
                   key=lambda f: sum(abs(f[e] - b) for e, b in zip(edges, box)))
        err = [abs(best[e] - b) * (1000 if e.endswith("_m") else 1) for e, b in zip(edges, box)]
        assert max(err) <= 2.0, (t, best, err)  # 2 px of 1 mm


def test_truth_only_gives_the_same_truth_without_frames(line, tmp_path):
    out = synthesize_coils(tmp_path / "t", SynthCoilConfig(**LINE), progress=False, truth_only=True).out
    for name in ("defects.csv", "coils.csv", "rolls.csv", "line.yaml"):
        assert (out / name).read_bytes() == (line / name).read_bytes(), name
    assert not (out / "frames").exists() and not (out / "frames.csv").exists()

