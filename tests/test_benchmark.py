"""Benchmark: rows, JSON keys, line-speed maths, defect pattern (tiny sizes; no timing asserts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steelscan.atomic import write_json
from steelscan.benchmark import (Row, assemble, choose_cascade, defect_pattern, frames_needed,
                                 line_speed_table, run_benchmark, to_markdown)
from steelscan.cli import main
from steelscan.export.exporter import export_bundle
from steelscan.models import build_model, save_run_weights


def test_frames_needed_is_speed_over_frame_length():
    # 256 px x 1 mm = 0.256 m per frame: 5 m/s needs 19.53 frames/s.
    assert frames_needed(5, 1.0) == pytest.approx(5 / 0.256)
    assert frames_needed(20, 0.25) == pytest.approx(312.5)
    table = line_speed_table(50.0)
    assert len(table) == 9
    by_key = {(t["speed_m_s"], t["pixel_mm"]): t for t in table}
    assert by_key[(5.0, 1.0)]["keeps_up"] and by_key[(5.0, 0.5)]["keeps_up"] and not by_key[(10.0, 0.5)]["keeps_up"]
    assert not by_key[(10.0, 0.25)]["keeps_up"] and by_key[(10.0, 0.25)]["machines_like_this_needed"] == 4


@pytest.mark.parametrize("n, rate", [(100, 0.53), (20, 0.53), (7, 0.0), (9, 1.0), (10, 0.25)])
def test_defect_pattern_hits_the_rate(n, rate):
    p = defect_pattern(n, rate)
    assert p.shape == (n,) and p.sum() == int(np.floor(n * rate))


def test_choose_cascade_respects_the_dice_tolerance():
    rows = [Row("base", "torch-fp32", "baseline", 5, 100, 120, 1.0),
            Row("c32", "torch-fp32", "cascade", 5, 50, 60, 2.0, kaggle_dice=0.90),
            Row("c8", "onnx-int8", "cascade", 5, 10, 12, 9.0, kaggle_dice=0.89),
            Row("cx", "onnx", "cascade", 5, 20, 22, 5.0, kaggle_dice=0.898)]
    assert choose_cascade(rows).name == "cx"  # int8 lost 0.01 Dice: not allowed
    result = assemble(rows, {"cpu": "x", "logical_cores": 2, "threads": 2, "load_average_1m": 0.0,
                             "python": "3", "torch": "t", "onnxruntime": "o"},
                      {"frames": 5, "frame_size_hw": [256, 1600], "batch": 1, "warmup": 1, "defect_rate": 0.53,
                       "model": "m", "data": None})
    assert result["speedup_vs_baseline"] == 5.0 and result["chosen_cascade"] == "cx"
    assert "| cx | onnx |" in to_markdown(result)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    specs = {"classifier": {"kind": "classifier", "arch": "resnet18", "num_classes": 4, "in_channels": 3,
                            "weights": "none"},
             "segmenter": {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3,
                           "base_width": 4}}
    for kind, spec in specs.items():
        torch.manual_seed(0)
        save_run_weights(root / kind, build_model(spec).eval())
        write_json(root / kind / "config.json", {"kind": kind, "model": spec, "num_classes": 4,
                                                 "class_names": ["a", "b", "c", "d"]})
    out = root / "bundle"
    export_bundle(out, root / "classifier", root / "segmenter", int8=True, calib_images=2, parity_images=1,
                  image_size=(32, 128), min_mask_dice={"onnx": 0.0, "onnx-int8": 0.0})
    return out


def test_run_benchmark_has_every_row(tiny_bundle):
    result = run_benchmark(tiny_bundle, frames=2, warmup=0, size=(32, 128), threads=1)
    rows = {(r["scope"], r["engine"]) for r in result["rows"]}
    assert ("baseline", "torch-fp32") in rows
    for engine in ("torch-fp32", "torch-bf16", "onnx", "onnx-int8"):
        assert ("segmenter", engine) in rows and ("cascade", engine) in rows
    for r in result["rows"]:
        assert r["frames"] == 2 and r["median_ms"] > 0 and r["p99_ms"] >= r["median_ms"] and r["frames_per_s"] > 0
        assert r["kaggle_dice"] is None
        if r["scope"] == "cascade":
            assert r["segmented_fraction"] == 0.5
    assert result["speedup_vs_baseline"] > 0 and len(result["line_speed"]) == 9
    assert result["machine"]["threads"] == 1 and result["machine"]["onnxruntime"]


def test_cli_writes_json_and_markdown_with_dice(tiny_bundle, tmp_path, capsys):
    from steelscan.data.layout import KaggleLayoutWriter
    from steelscan.data.synth import generate_image, image_rng

    data = tmp_path / "val"
    writer = KaggleLayoutWriter(data, 4)
    for i in range(2):
        writer.add(f"v{i}.png", *generate_image(image_rng(5, i), 32, 128))
    writer.close()
    code = main(["benchmark", "--model", str(tiny_bundle), "--frames", "2", "--warmup", "0", "--size", "32", "128",
                 "--threads", "1", "--data", str(data), "--json", str(tmp_path / "b.json"),
                 "--markdown", str(tmp_path / "b.md")])
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert {"machine", "settings", "rows", "speedup_vs_baseline", "chosen_cascade", "line_speed"} <= set(result)
    ours = [r for r in result["rows"] if r["scope"] != "baseline"]
    assert all(0.0 <= r["kaggle_dice"] <= 1.0 for r in ours)
    assert "Speed-up of our cascade" in (tmp_path / "b.md").read_text()
    assert "frames/s needed" in capsys.readouterr().out


def test_a_failing_row_stops_the_run_with_its_name(tiny_bundle, tmp_path, capsys):
    """A broken engine is not skipped in silence: the run stops with one line naming the row."""
    import shutil

    from steelscan.benchmark import BenchmarkError

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "segmenter.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(BenchmarkError, match=r"row 'onnx' failed: .*segmenter\.onnx.*cannot load ONNX graph"):
        run_benchmark(broken, frames=1, warmup=0, size=(32, 128), threads=1, engines=(("onnx", "fp32"),))
    code = main(["benchmark", "--model", str(broken), "--frames", "1", "--warmup", "0", "--size", "32", "128",
                 "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("steelscan benchmark: error: row 'onnx' failed:")
