"""`steelscan score`: submission formats, image sets, sizes, errors and real data."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.rle import encode_rle

H, W = 8, 10


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def data(tmp_path):
    """5 images (8x10) with 4 classes: img0 class 1, img1 classes 2+3, others clean."""
    rng = np.random.default_rng(0)
    truth = np.zeros((5, 4, H, W), np.uint8)
    truth[0, 0, 1:4, 2:6] = 1
    truth[1, 1, 5:, :3] = 1
    truth[1, 2, :2, 7:] = 1
    images = tmp_path / "images"
    images.mkdir()
    ids = [f"img{i}.png" for i in range(5)]
    for i in ids:
        Image.fromarray(rng.integers(0, 255, (H, W), np.uint8)).save(images / i)
    rows = [(ids[i], c + 1, encode_rle(truth[i, c])) for i in range(5) for c in range(4) if truth[i, c].any()]
    truth_csv = _write(tmp_path / "train.csv", ["ImageId", "ClassId", "EncodedPixels"], rows)
    return tmp_path, images, ids, truth, truth_csv


def _submission(path, ids, masks):
    rows = [(i, encode_rle(masks[k, c]), c + 1) for k, i in enumerate(ids) for c in range(masks.shape[1])]
    return _write(path, ["ImageId", "EncodedPixels", "ClassId"], rows)


def _score(capsys, *argv):
    rc = main(["score", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def _json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_perfect_submission_scores_one(data, capsys):
    root, images, ids, truth, truth_csv = data
    sub = _submission(root / "sub.csv", ids, truth)
    rc, out, _ = _score(capsys, "--truth", truth_csv, "--pred", sub, "--height", H, "--width", W,
                        "--json", root / "s.json")
    assert rc == 0
    res = _json(out)
    assert res["kaggle_dice"] == 1.0 and res["n_images"] == 5
    assert "kaggle mean Dice" in out
    saved = json.loads((root / "s.json").read_text())
    assert saved["n_pairs"] == 20 and saved["n_pos"] == 3 and saved["dice_neg"] == 1.0


def test_all_empty_submission_scores_fraction_of_empty_pairs(data, capsys):
    root, images, ids, truth, truth_csv = data
    sub = _submission(root / "sub.csv", ids, np.zeros_like(truth))
    rc, out, _ = _score(capsys, "--truth", truth_csv, "--pred", sub, "--images", images)
    assert rc == 0
    res = _json(out)
    assert res["kaggle_dice"] == pytest.approx(17 / 20)
    assert res["dice_pos"] == 0.0 and res["dice_neg"] == 1.0


def test_legacy_submission_format(data, capsys):
    root, images, ids, truth, truth_csv = data
    rows = [(f"{i}_{c + 1}", encode_rle(truth[k, c])) for k, i in enumerate(ids) for c in range(4)]
    sub = _write(root / "legacy.csv", ["ImageId_ClassId", "EncodedPixels"], rows)
    rc, out, _ = _score(capsys, "--truth", truth_csv, "--pred", sub, "--height", H, "--width", W)
    assert rc == 0 and _json(out)["kaggle_dice"] == 1.0 and _json(out)["n_images"] == 5


def test_positives_only_pred_uses_every_image_in_dir(data, capsys):
    root, images, ids, truth, truth_csv = data
    pred = truth.copy()
    pred[3, 0, 0, 0] = 1  # a false alarm on a clean image
    rows = [(ids[k], c + 1, encode_rle(pred[k, c])) for k in range(5) for c in range(4) if pred[k, c].any()]
    p = _write(root / "pred.csv", ["ImageId", "ClassId", "EncodedPixels"], rows)
    rc, out, _ = _score(capsys, "--truth", truth_csv, "--pred", p, "--images", images)
    assert rc == 0 and _json(out)["n_images"] == 5 and _json(out)["kaggle_dice"] == pytest.approx(19 / 20)
    # without --images: the union of named images (img0, img1, img3) and a note on stderr
    rc, out, err = _score(capsys, "--truth", truth_csv, "--pred", p, "--height", H, "--width", W)
    assert rc == 0 and _json(out)["n_images"] == 3 and "note" in err
    assert _json(out)["kaggle_dice"] == pytest.approx(11 / 12)


def test_partial_overlap_value(data, capsys):
    root, images, ids, truth, truth_csv = data
    pred = truth.copy()
    pred[0, 0] = 0
    pred[0, 0, 1:4, 2:4] = 1  # half of the 12-pixel truth: Dice = 2*6/(6+12)
    sub = _submission(root / "sub.csv", ids, pred)
    rc, out, _ = _score(capsys, "--truth", truth_csv, "--pred", sub, "--images", images)
    assert _json(out)["per_class"]["class_1"] == pytest.approx((4 + 2 * 6 / 18) / 5)


@pytest.mark.parametrize("rows, message", [
    ([("img0.png", "1 2 3", 1)], r"sub.csv:2: img0.png class 1: odd number of tokens"),
    ([("img0.png", "", 1), ("img0.png", "", 1)], r"sub.csv:3: duplicate row for img0.png class 1 \(first at line 2\)"),
    ([("img0.png", "", 7)], r"sub.csv:2 \[ClassId\]: ClassId 7 out of range 1..4"),
    ([("img0.png", "75 10", 1)], r"sub.csv:2: img0.png class 1: run 1 \(75 10\) runs past the end"),
    ([("img0.png", "", "x")], r"sub.csv:2 \[ClassId\]: ClassId 'x' is not an integer"),
])
def test_bad_prediction_files_give_one_line_errors(data, capsys, rows, message):
    root, images, ids, truth, truth_csv = data
    sub = _write(root / "sub.csv", ["ImageId", "EncodedPixels", "ClassId"], rows)
    rc, out, err = _score(capsys, "--truth", truth_csv, "--pred", sub, "--height", H, "--width", W, "--classes", 4)
    assert rc == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert re.search(message, errors[0]), err


def test_usage_errors(data, capsys, tmp_path):
    root, images, ids, truth, truth_csv = data
    rc, _, err = _score(capsys, "--truth", truth_csv, "--pred", tmp_path / "nope.csv")
    assert rc == 2 and "label file not found" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    rc, _, err = _score(capsys, "--truth", truth_csv, "--pred", bad)
    assert rc == 2 and "bad.csv:1" in err and "unknown header" in err
    sub = _submission(root / "sub.csv", ids + ["ghost.png"], np.zeros((6, 4, H, W), np.uint8))
    rc, _, err = _score(capsys, "--truth", truth_csv, "--pred", sub, "--images", images)
    assert rc == 2 and "not in the images folder" in err and "ghost.png" in err
    rc, _, err = _score(capsys, "--truth", truth_csv, "--pred", sub, "--images", images, "--height", 3)
    assert rc == 2 and "not both" in err
    with pytest.raises(SystemExit) as e:
        main(["score", "--pred", str(sub)])
    assert e.value.code == 2


def test_real_severstal_truth_vs_itself(shared_data, capsys):
    sev = shared_data / "severstal"
    rc, out, _ = _score(capsys, "--truth", sev / "train.csv", "--pred", sev / "train.csv",
                        "--images", sev / "train_images")
    res = _json(out)
    assert rc == 0 and res["kaggle_dice"] == 1.0 and res["n_images"] == 36


def test_real_all_empty_submission_over_every_train_image(shared_data, tmp_path, capsys):
    """All 12,568 train images predicted clean against the recovered RLE rows: the score is the
    fraction of (image, class) pairs with no recovered mask."""
    labels = shared_data / "severstal" / "labels"
    with open(labels / "image_level_all_train.csv", newline="") as f:
        ids = [r["ImageId"] for r in csv.DictReader(f)]
    sub = _write(tmp_path / "empty.csv", ["ImageId", "EncodedPixels", "ClassId"],
                 [(i, "", c) for i in ids for c in range(1, 5)])
    rc, out, _ = _score(capsys, "--truth", labels / "train_rle_recovered.csv", "--pred", sub)
    res = _json(out)
    assert rc == 0 and res["n_images"] == 12568
    assert res["kaggle_dice"] == pytest.approx(1 - 5336 / (4 * 12568))
