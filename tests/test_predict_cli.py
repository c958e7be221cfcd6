"""`steelscan predict` (and tune/evaluate/score around it): outputs, long strips, unreadable
images, bad input stopped with one line before any work; end-to-end on generated data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from steelscan.atomic import write_json
from steelscan.cli import main
from steelscan.rle import decode_rle


def make_run(run_dir, kind, num_classes=3, in_channels=3, val_ids=None):
    """A run folder without the trainer: build_model + random weights + config.json."""
    from steelscan.models import build_model, save_run_weights

    torch.manual_seed(0)
    if kind == "segmenter":
        spec = {"kind": "segmenter", "arch": "resunet", "num_classes": num_classes,
                "in_channels": in_channels, "base_width": 4}
    else:
        spec = {"kind": "classifier", "arch": "resnet18", "num_classes": num_classes,
                "in_channels": in_channels, "weights": "none"}
    model = build_model(spec)
    run_dir.mkdir(parents=True)
    save_run_weights(run_dir, model, "best")
    write_json(run_dir / "config.json", {
        "kind": kind, "model": spec, "num_classes": num_classes,
        "class_names": [f"class_{i}" for i in range(1, num_classes + 1)],
        "train": {}, "data": {"root": "", "val_ids": val_ids or []}})
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"seg": make_run(root / "seg", "segmenter"), "cls": make_run(root / "cls", "classifier"),
            "seg4": make_run(root / "seg4", "segmenter", num_classes=4),
            "cls_grey": make_run(root / "cls_grey", "classifier", in_channels=1)}


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 96, 3), dtype=np.uint8)).save(folder / f"frame_{i}.png")
    Image.fromarray(rng.integers(0, 255, (32, 700), dtype=np.uint8)).save(folder / "strip.png")  # grey, long
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def read_submission(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_predict_writes_every_output_and_carries_on_past_a_broken_image(runs, images, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", "--classifier", str(runs["cls"]), "--segmenter", str(runs["seg"]),
                 "--images", str(images), "--out", str(out), "--tile-width", "256", "--batch-size", "2",
                 "--quiet"])
    assert code == 0
    assert "5 images" in capsys.readouterr().err
    header, rows = read_submission(out / "submission.csv")
    assert header == ["ImageId", "EncodedPixels", "ClassId"]
    assert len(rows) == 5 * 3 and {r[2] for r in rows} == {"1", "2", "3"}
    results = {r["image_id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(results) == {"broken.jpg", "frame_0.png", "frame_1.png", "frame_2.png", "strip.png"}
    assert results["broken.jpg"]["error"] and results["broken.jpg"]["verdict"] is None
    strip = results["strip.png"]
    assert (strip["height"], strip["width"]) == (32, 700) and strip["verdict"] in ("OK", "NG")
    for r in results.values():
        if r["error"]:
            continue
        for d in r["defects"]:
            m = decode_rle(d["rle"], r["height"], r["width"])
            ys, xs = np.nonzero(m)
            assert m.sum() == d["area"] and [ys.min(), xs.min(), ys.max(), xs.max()] == d["bbox"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        "frame_0.png", "frame_1.png", "frame_2.png", "strip.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 5 and summary["errors"] == 1
    assert summary["segmenter_ran"] + summary["segmenter_skipped"] == 4
    assert summary["settings"]["tile"] == [256, 256]


def test_predict_without_classifier_and_single_files(runs, images, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--segmenter", str(runs["seg"]), "--images", str(images / "frame_0.png"),
                 str(images / "frame_1.png"), "--out", str(out), "--no-overlays", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2 and summary["segmenter_ran"] == 2 and summary["segmenter_skipped"] == 0
    assert not (out / "overlays").exists()
    line = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert line["score_source"] == "segmenter"


@pytest.mark.parametrize("case, needle", [
    ("missing", "run folder not found"),
    ("classes", "predicts 3 classes but the segmenter"),
    ("channels", "1-channel"),
    ("thresholds_bad", "classes[0].pixel_threshold"),
    ("thresholds_count", "has 2 classes but the models predict 3"),
    ("no_images", "no such file or folder"),
])
def test_bad_input_stops_with_one_line_before_any_work(runs, images, tmp_path, capsys, case, needle):
    out = tmp_path / "out"
    args = ["predict", "--classifier", str(runs["cls"]), "--segmenter", str(runs["seg"]),
            "--images", str(images), "--out", str(out), "--quiet"]
    thresholds = tmp_path / "t.json"
    if case == "missing":
        args[2] = str(tmp_path / "no_such_run")
    elif case == "classes":
        args[4] = str(runs["seg4"])
    elif case == "channels":
        args[2] = str(runs["cls_grey"])
    elif case == "thresholds_bad":
        thresholds.write_text(json.dumps({"classes": [{"class_id": 1, "pixel_threshold": "high"}]}))
        args += ["--thresholds", str(thresholds)]
    elif case == "thresholds_count":
        thresholds.write_text(json.dumps({"classes": [{"class_id": 1}, {"class_id": 2}]}))
        args += ["--thresholds", str(thresholds)]
    elif case == "no_images":
        args[6] = str(tmp_path / "nothing_here")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (out / "results.jsonl").exists()


def test_predict_from_a_bundle(runs, images, tmp_path):
    from steelscan.export import write_bundle

    model_dir = tmp_path / "bundle"
    write_bundle(model_dir, runs["cls"], runs["seg"], None, "tiny")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model_dir), "--images", str(images / "frame_0.png"),
                 "--out", str(out), "--quiet", "--no-overlays"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 1 and summary["settings"]["bundle"] == "tiny"


@pytest.mark.slow
def test_end_to_end_train_tune_predict_evaluate_score(tmp_path, capsys):
    """Generated data -> tiny models (trainer CLI) -> tune on the val ids -> predict ->
    evaluate; `steelscan score` re-scores the submission to the same Kaggle Dice."""
    data, runs_dir = tmp_path / "data", tmp_path / "runs"
    assert main(["synth", "--out", str(data), "--n", "40", "--height", "64", "--width", "256",
                 "--seed", "3", "--quiet"]) == 0
    common = ["--data", str(data), "--batch-size", "8", "--crop", "full", "--weights", "none",
              "--workers", "0", "--threads", "2", "--val-fraction", "0.5", "--device", "cpu",
              "--precision", "fp32"]
    assert main(["train", "segmenter", "--out", str(runs_dir / "seg"), "--base-width", "4", "--epochs", "2",
                 *common]) == 0
    assert main(["train", "classifier", "--out", str(runs_dir / "cls"), "--epochs", "1", *common]) == 0
    thresholds = tmp_path / "thresholds.json"
    assert main(["tune", "--classifier", str(runs_dir / "cls"), "--segmenter", str(runs_dir / "seg"),
                 "--data", str(data), "--split", "val", "--out", str(thresholds), "--min-positives", "3",
                 "--quiet"]) == 0
    report = json.loads((tmp_path / "thresholds_report.json").read_text())
    assert report["kaggle_dice_tuned"] >= report["kaggle_dice_default"]
    val_ids = json.loads((runs_dir / "seg" / "config.json").read_text())["data"]["val_ids"]
    assert report["n_images"] == len(val_ids) > 0
    out = tmp_path / "eval"
    assert main(["evaluate", "--classifier", str(runs_dir / "cls"), "--segmenter", str(runs_dir / "seg"),
                 "--thresholds", str(thresholds), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 40 and (out / "report.html").is_file()
    assert main(["score", "--truth", str(data / "train.csv"), "--pred", str(out / "predictions" / "submission.csv"),
                 "--images", str(data / "train_images"), "--json", str(tmp_path / "score.json")]) == 0
    scored = json.loads((tmp_path / "score.json").read_text())
    assert scored["kaggle_dice"] == pytest.approx(metrics["segmentation"]["kaggle_dice"], abs=1e-12)
    summary = json.loads((out / "predictions" / "summary.json").read_text())
    assert summary["segmenter_ran"] + summary["segmenter_skipped"] == 40
