"""Evaluation of a prediction folder: Kaggle Dice beside the all-empty score, image-level
metrics, FP/FN lists, metrics.json and a self-contained report.html."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from steelscan.cli import main
from steelscan.data.layout import KaggleLayoutWriter
from steelscan.evaluation.evaluate import binary_metrics, evaluate_predictions, pr_curve, roc_auc
from steelscan.evaluation.report import write_report
from steelscan.metrics import kaggle_dice
from steelscan.rle import encode_rle

H, W, C = 24, 64, 3


def truth_and_pred(n=8, seed=0):
    """Truth masks and a prediction that gets some right, misses one image (FN), and
    marks a clean image (FP)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, C, H, W), np.uint8)
    for i in range(0, n, 2):  # even images carry a defect of class (i/2 % C)+1
        c = (i // 2) % C
        y, x = rng.integers(0, H - 8), rng.integers(0, W - 16)
        truth[i, c, y:y + 8, x:x + 16] = 1
    pred = truth.copy()
    pred[0] = 0                        # FN: image 0 missed
    pred[2] = np.roll(truth[2], 3, 2)  # partly right
    pred[1, 2, :4, :4] = 1             # FP: clean image 1 gets class 3
    return truth, pred


@pytest.fixture
def folders(tmp_path):
    truth, pred = truth_and_pred()
    names = ["pits", "marks", "scratches"]
    writer = KaggleLayoutWriter(tmp_path / "data", C, names)
    rng = np.random.default_rng(1)
    ids = [f"img_{i}.png" for i in range(len(truth))]
    for image_id, t in zip(ids, truth):
        writer.add(image_id, rng.integers(0, 255, (H, W, 3), dtype=np.uint8), t)
    writer.close()
    out = tmp_path / "pred"
    out.mkdir()
    with open(out / "submission.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "EncodedPixels", "ClassId"])
        for image_id, p in zip(ids, pred):
            for c in range(C):
                w.writerow([image_id, encode_rle(p[c]), c + 1])
    with open(out / "results.jsonl", "w") as f:
        for i, (image_id, p) in enumerate(zip(ids, pred)):
            scores = {n: (0.9 if p[c].any() else 0.2 - 0.01 * i) for c, n in enumerate(names)}
            f.write(json.dumps({"image_id": image_id, "verdict": "NG" if p.any() else "OK", "height": H,
                                "width": W, "class_scores": scores, "defects": [], "error": None}) + "\n")
    return tmp_path / "data", out, truth, pred, ids


def test_scores_match_the_metric_and_the_all_empty_baseline(folders):
    data, out, truth, pred, ids = folders
    ev = evaluate_predictions(out, data)
    seg = ev.segmentation()
    assert seg["kaggle_dice"] == pytest.approx(kaggle_dice(pred, truth))
    empty = ev.all_empty()
    assert empty["kaggle_dice"] == pytest.approx(1 - truth.any(axis=(2, 3)).mean())
    assert ev.pair_dice.shape == (8, 3)
    assert ev.worst(3)[0] in (0, 1)  # the missed image and the false alarm score worst


def test_image_level_metrics_and_error_lists(folders):
    data, out, truth, pred, ids = folders
    ev = evaluate_predictions(out, data)
    cls = ev.classification()
    any_d = cls["any_defect"]
    assert any_d["confusion"] == [[3, 1], [1, 3]]  # [[TN, FP], [FN, TP]]
    assert any_d["precision"] == pytest.approx(0.75) and any_d["recall"] == pytest.approx(0.75)
    assert any_d["roc_auc"] is not None
    errors = ev.image_errors()
    assert errors["any_defect"] == {"false_positives": ["img_1.png"], "false_negatives": ["img_0.png"]}
    assert errors["pits"]["false_negatives"] == ["img_0.png"]
    assert errors["scratches"]["false_positives"] == ["img_1.png"]


def test_binary_metric_helpers():
    y = np.array([0, 0, 1, 1, 1], bool)
    assert roc_auc(y, np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == 1.0
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5, 0.5])) == 0.5
    assert roc_auc(np.ones(3, bool), np.ones(3)) is None
    m = binary_metrics(y, np.array([0, 1, 1, 1, 0], bool), None)
    assert m["confusion"] == [[1, 1], [1, 2]] and m["f1"] == pytest.approx(2 / 3)
    p, r = pr_curve(y, np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert r[-1] == 1.0 and p[0] == 1.0 and p[-1] == pytest.approx(0.6)


def test_report_is_self_contained(folders, tmp_path):
    data, out, *_ = folders
    ev = evaluate_predictions(out, data)
    page = write_report(ev, tmp_path / "r.html").read_text()
    assert "<table>" in page and "Worst images" in page and "all-empty" in page
    assert page.count("data:image/png;base64,") >= 3  # dice bars, confusion, PR curves
    assert "data:image/jpeg;base64," in page          # worst images
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page


def test_cli_writes_metrics_and_report_and_agrees_with_score(folders, tmp_path, capsys):
    data, out, truth, pred, ids = folders
    assert main(["evaluate", "--pred", str(out), "--data", str(data), "--out", str(tmp_path / "ev")]) == 0
    err = capsys.readouterr().err
    assert "all-empty" in err and "Kaggle" in err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (tmp_path / "ev" / "report.html").is_file()
    assert metrics["segmentation"]["kaggle_dice"] == pytest.approx(kaggle_dice(pred, truth))
    assert metrics["all_empty"]["kaggle_dice"] < metrics["segmentation"]["kaggle_dice"]
    assert len(metrics["per_image"]) == 8
    assert main(["score", "--truth", str(data / "train.csv"), "--pred", str(out / "submission.csv"),
                 "--images", str(data / "train_images"), "--json", str(tmp_path / "s.json")]) == 0
    scored = json.loads((tmp_path / "s.json").read_text())
    assert scored["kaggle_dice"] == pytest.approx(metrics["segmentation"]["kaggle_dice"], abs=1e-12)


def test_cli_refuses_missing_predictions(tmp_path, folders, capsys):
    data, *_ = folders
    assert main(["evaluate", "--pred", str(tmp_path / "nowhere"), "--data", str(data)]) == 2
    assert "submission.csv" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(data)]) == 2


def test_report_escapes_what_it_shows(folders, tmp_path):
    """The page comes from a Jinja2 template with autoescape on: names, notes and settings are text."""
    data, out, *_ = folders
    ev = evaluate_predictions(out, data)
    ev.class_names[0] = "pits <b>"
    ev.notes.append("<script>alert(1)</script>")
    ev.settings = {"model": "a&b", "thresholds": {"classes": [{"name": "<i>", "label_threshold": 0.5,
                                                              "pixel_threshold": 0.25, "min_component": 7,
                                                              "min_area": 30}]}}
    page = write_report(ev, tmp_path / "r.html", title="<T>", source="x<y").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>&lt;T&gt;</title>" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "pits &lt;b&gt;" in page and "<b>pits" not in page and "a&amp;b" in page and "x&lt;y" in page
    assert "<td>&lt;i&gt;</td><td>0.50</td><td>0.25</td><td>7</td><td>30</td>" in page
