"""Throughput mode (decode, models, post-processing overlapping) gives exactly what latency mode
gives, in the same order, unreadable frames included; the stream stops cleanly when closed early."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.errors import ConfigError, ImageError
from steelscan.inference.stream import inspect_stream
from test_predict_cli import make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"seg": make_run(root / "seg", "segmenter"), "cls": make_run(root / "cls", "classifier")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Seven frames of mixed sizes (one a tiled strip) with an unreadable file in the middle."""
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 96, 3), dtype=np.uint8)).save(folder / f"f{i}.png")
    Image.fromarray(rng.integers(0, 255, (32, 300), dtype=np.uint8)).save(folder / "f3b_strip.png")
    (folder / "f2b_broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def without_timings(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "timings_ms"}


def run_predict(runs, folder, out, mode, batch):
    assert main(["predict", "--classifier", str(runs["cls"]), "--segmenter", str(runs["seg"]), "--images",
                 str(folder), "--out", str(out), "--mode", mode, "--batch-size", str(batch), "--tile-width", "128",
                 "--quiet"]) == 0
    results = [without_timings(json.loads(x)) for x in (out / "results.jsonl").read_text().splitlines()]
    with open(out / "submission.csv", newline="") as f:
        rows = list(csv.reader(f))
    overlays = {p.name: np.asarray(Image.open(p)) for p in sorted((out / "overlays").iterdir())}
    return results, rows, overlays, json.loads((out / "summary.json").read_text())


def test_throughput_mode_matches_latency_mode_exactly_and_in_order(runs, folder, tmp_path):
    lat = run_predict(runs, folder, tmp_path / "latency", "latency", 1)
    thr = run_predict(runs, folder, tmp_path / "throughput", "throughput", 3)
    names = sorted(p.name for p in folder.iterdir())
    assert [r["image_id"] for r in thr[0]] == names == [r["image_id"] for r in lat[0]]
    assert thr[0] == lat[0]  # verdicts, scores, defects with their RLEs: identical
    assert thr[1] == lat[1]  # submission.csv, row for row
    assert thr[2].keys() == lat[2].keys() and len(thr[2]) == 7
    assert all(np.array_equal(thr[2][k], lat[2][k]) for k in thr[2])
    broken = next(r for r in thr[0] if r["image_id"] == "f2b_broken.jpg")
    assert broken["verdict"] is None and broken["error"]
    assert thr[3]["errors"] == lat[3]["errors"] == 1 and thr[3]["images"] == 8
    assert thr[3]["settings"]["mode"] == "throughput" and lat[3]["settings"]["mode"] == "latency"
    assert thr[3]["segmenter_ran"] == lat[3]["segmenter_ran"]


def test_inspect_stream_masks_match_inspect_and_an_early_close_stops(runs, folder):
    from steelscan.images import load_image
    from steelscan.runtime import build_inspector

    inspector = build_inspector(classifier=runs["cls"], segmenter=runs["seg"], batch_size=2, tile=(None, 128))
    paths = sorted(folder.iterdir())
    streamed = list(inspect_stream(inspector, paths, load_image, lambda p: p.name, decode_workers=2, post_workers=2))
    good = [p for p in paths if p.suffix == ".png"]
    direct = {r.image_id: r for r in inspector.inspect([load_image(p) for p in good], [p.name for p in good])}
    assert [s.item for s in streamed] == paths
    for s in streamed:
        if s.item.suffix == ".png":
            assert np.array_equal(s.result.masks, direct[s.item.name].masks)
            assert s.image.shape[:2] == s.result.masks.shape[1:]
        else:
            assert s.image is None and s.result.error
    calls = []

    def load(p):
        calls.append(p)
        return load_image(p)
    stream = inspect_stream(inspector, good * 20, load, lambda p: p.name, ahead=1)
    next(stream)
    stream.close()  # decode stops: at most a few batches were read ahead, not all 120 frames
    assert len(calls) < 40
    with pytest.raises(ConfigError, match="unknown mode"):
        next(inspect_stream(inspector, good, load_image, lambda p: p.name, mode="fast"))


def test_a_load_error_of_another_kind_is_reported_per_frame(runs):
    from steelscan.runtime import build_inspector

    inspector = build_inspector(segmenter=runs["seg"], batch_size=2)
    frames = {"a": np.zeros((32, 64, 3), np.uint8), "b": None, "c": np.full((32, 64, 3), 200, np.uint8)}

    def load(key):
        if frames[key] is None:
            raise ImageError("camera dropped the frame", path=key)
        return frames[key]
    for mode in ("throughput", "latency"):
        out = list(inspect_stream(inspector, list(frames), load, str, mode=mode))
        assert [s.item for s in out] == ["a", "b", "c"]
        assert "camera dropped the frame" in out[1].result.error and out[0].result.verdict in ("OK", "NG")
