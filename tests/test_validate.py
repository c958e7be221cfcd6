"""`validate_dataset` and `steelscan validate`: statistics and every kind of problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.data.layout import KaggleLayoutWriter
from steelscan.data.validate import validate_dataset
from steelscan.rle import encode_rle

H, W = 16, 24


def _clean_dataset(root, n=6, num_classes=4):
    """n images; image k has class (k % num_classes)+1 for k < 4, image 1 also class 4; rest clean."""
    rng = np.random.default_rng(0)
    writer = KaggleLayoutWriter(root, num_classes)
    for k in range(n):
        masks = np.zeros((num_classes, H, W), np.uint8)
        if k < 4:
            masks[k % num_classes, 2:6, 3:3 + 2 * (k + 1)] = 1
        if k == 1:
            masks[3, 10:, 20:] = 1
        writer.add(f"im{k}.png", rng.integers(0, 255, (H, W, 3), np.uint8), masks)
    writer.close()
    return root


def _append(csv_path, *lines):
    with open(csv_path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def _kinds(report):
    return [p.kind for p in report.problems]


def test_clean_dataset_statistics(tmp_path):
    root = _clean_dataset(tmp_path / "ds")
    r = validate_dataset(root)
    assert r.ok and r.problems == []
    assert (r.n_images, r.n_clean, r.n_defective, r.n_label_rows) == (6, 2, 4, 5)
    assert r.images_per_num_classes == {0: 2, 1: 3, 2: 1}
    assert r.image_sizes == {f"{H}x{W}": 6}
    assert [s["images"] for s in r.per_class.values()] == [1, 1, 1, 2]
    area = r.per_class["class_4"]["area"]
    assert (area["min"], area["max"], area["p50"]) == (24, 32, 28.0)
    assert r.per_class["class_1"]["area"]["p50"] == 8.0
    json.dumps(r.to_dict())  # serialisable


def test_every_label_problem_is_found_with_its_line(tmp_path):
    root = _clean_dataset(tmp_path / "ds")
    csv_path = root / "train.csv"
    _append(csv_path,
            "im5.png,1,1 2 3",                       # line 7: bad RLE
            "im5.png,2,380 10",                      # line 8: runs past 16x24=384 pixels
            "ghost.png,1,1 5",                       # line 9: image not on disk
            "im0.png,1,1 1",                         # line 10: duplicate of im0 class 1
            "im5.png,9,1 1",                         # line 11: unknown class
            "im5.png,x,1 1",                         # line 12: unparsable class id
            "im4.png,1,1 20",                        # line 13 + 14: overlap on im4
            "im4.png,2,10 20")
    r = validate_dataset(root)
    by_kind = {p.kind: p for p in r.problems}
    assert set(by_kind) == {"bad_rle", "rle_exceeds_image", "missing_image", "duplicate_row",
                            "unknown_class", "bad_row", "overlap"}
    assert by_kind["bad_rle"].line == 7 and "odd number of tokens" in by_kind["bad_rle"].message
    assert by_kind["rle_exceeds_image"].line == 8 and "16x24" in by_kind["rle_exceeds_image"].message
    assert by_kind["missing_image"].line == 9 and by_kind["missing_image"].image_id == "ghost.png"
    assert by_kind["duplicate_row"].line == 10 and "first at line 2" in by_kind["duplicate_row"].message
    assert by_kind["unknown_class"].line == 11 and "outside 1..4" in by_kind["unknown_class"].message
    assert by_kind["bad_row"].line == 12 and "not an integer" in by_kind["bad_row"].message
    assert "classes 1 and 2 share 11 pixels" in by_kind["overlap"].message
    assert not r.ok


def test_image_problems_unreadable_truncated_empty_and_size(tmp_path):
    root = _clean_dataset(tmp_path / "ds")
    imgs = root / "train_images"
    (imgs / "empty.png").write_bytes(b"")
    (imgs / "junk.jpg").write_bytes(b"this is not an image")
    good = (imgs / "im5.png").read_bytes()
    (imgs / "cut.png").write_bytes(good[: len(good) - 20])  # header intact, IEND cut off
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(imgs / "small.jpg")
    r = validate_dataset(root)
    unreadable = {p.image_id: p.message for p in r.problems if p.kind == "unreadable_image"}
    assert set(unreadable) == {"empty.png", "junk.jpg", "cut.png"}
    assert "truncated" in unreadable["cut.png"]
    assert "size_mismatch" not in _kinds(r) and any("different image sizes" in n for n in r.notes)
    r = validate_dataset(root, height=H, width=W)
    assert [p.image_id for p in r.problems if p.kind == "size_mismatch"] == ["small.jpg"]
    r = validate_dataset(root, deep=True)
    assert {p.image_id for p in r.problems if p.kind == "unreadable_image"} == {"empty.png", "junk.jpg", "cut.png"}


def test_legacy_format_lists_every_image_and_class(tmp_path):
    root = tmp_path / "legacy"
    (root / "train_images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "train_images" / name)
    rows = ["ImageId_ClassId,EncodedPixels"]
    rows += [f"a.jpg_{c}," + ("1 3" if c == 2 else "") for c in range(1, 5)]
    rows += [f"b.jpg_{c}," for c in (1, 2, 3)]  # class 4 missing; c.jpg not listed
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    r = validate_dataset(root)
    assert r.label_format == "legacy"
    assert [(p.kind, p.image_id) for p in r.problems] == [("unlisted_image", "c.jpg"), ("incomplete_rows", "b.jpg")]
    assert "class(es) 4" in r.problems[1].message
    assert r.per_class["class_2"]["images"] == 1 and r.n_defective == 1


def test_no_images_and_no_labels(tmp_path):
    (tmp_path / "empty" / "train_images").mkdir(parents=True)
    r = validate_dataset(tmp_path / "empty")
    assert _kinds(r) == ["no_images"] and any("no train.csv" in n for n in r.notes)


def test_num_classes_from_meta(tmp_path):
    root = tmp_path / "three"
    writer = KaggleLayoutWriter(root, 3, ["a", "b", "c"])
    m = np.zeros((3, H, W), np.uint8)
    m[2, :3, :3] = 1
    writer.add("x.png", np.zeros((H, W), np.uint8), m)
    writer.close()
    _append(root / "train.csv", "x.png,4,1 1")
    r = validate_dataset(root)
    assert list(r.per_class) == ["a", "b", "c"] and _kinds(r) == ["unknown_class"]


def test_real_severstal_sets_are_clean(shared_data):
    r = validate_dataset(shared_data / "severstal", height=256, width=1600)
    assert r.ok, [str(p) for p in r.problems]
    assert r.n_images == 36 and r.n_label_rows == 21
    p = validate_dataset(shared_data / "severstal" / "png_decodes", height=256, width=1600)
    assert p.ok and p.n_images == 19


# --- CLI --------------------------------------------------------------------------------------

def _cli(capsys, *argv):
    rc = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_cli_exit_codes_and_json(tmp_path, capsys):
    root = _clean_dataset(tmp_path / "ds")
    rc, out, _ = _cli(capsys, root, "--json", tmp_path / "r.json")
    assert rc == 0 and "OK: no problems found" in out and "class_4" in out
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    _append(root / "train.csv", "ghost.png,1,1 5")
    rc, out, _ = _cli(capsys, root, "--json", tmp_path / "r.json")
    assert rc == 1 and "PROBLEMS: 1" in out and "[missing_image]" in out and "train.csv:7" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["problem_counts"] == {"missing_image": 1} and saved["problems"][0]["line"] == 7


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/nowhere"], "data folder not found"),
    (["{tmp}/ds", "--height", "5"], "both --height and --width"),
    (["{tmp}/ds", "--classes", "0"], "--classes must be positive"),
    (["{tmp}/ds", "--csv", "{tmp}/bad.csv"], "unknown header"),
])
def test_cli_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    _clean_dataset(tmp_path / "ds")
    (tmp_path / "bad.csv").write_text("foo,bar\n")
    rc, out, err = _cli(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_synthetic_dataset_is_valid(tmp_path):
    from steelscan.data.synth import synthesize_dataset

    root = synthesize_dataset(tmp_path / "syn", 10, seed=0, height=64, width=400, progress=False)
    r = validate_dataset(root, height=64, width=400)
    assert r.ok, [str(p) for p in r.problems]
    assert r.n_images == 10 and r.image_sizes == {"64x400": 10}
    assert r.n_clean + r.n_defective == 10
    assert sum(s["images"] for s in r.per_class.values()) == r.n_label_rows
