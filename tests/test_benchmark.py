"""Benchmark: rows, JSON keys, line-speed maths, defect pattern (tiny sizes; no timing asserts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steelscan.atomic import write_json
from steelscan.benchmark import (Row, assemble, cascade_cost, choose_cascade, defect_pattern, frames_across,
                                 frames_needed, line_speed_table, run_benchmark, to_markdown)
from steelscan.cli import main
from steelscan.export.exporter import export_bundle
from steelscan.models import build_model, save_run_weights


def test_frames_needed_is_speed_over_frame_length_times_frames_across():
    # 256 px x 1 mm = 0.256 m per frame: 5 m/s needs 19.53 frames/s for one frame across.
    assert frames_needed(5, 1.0) == pytest.approx(5 / 0.256)
    assert frames_needed(20, 0.25) == pytest.approx(312.5)
    # 0.25 mm pixels: a 1.6 m strip is 6,400 px = 4 frames of 1,600 px across -> 1,250 frames/s at 20 m/s
    assert frames_across(1600, 0.25) == 4 and frames_needed(20, 0.25, strip_width_mm=1600) == pytest.approx(1250)
    assert frames_across(1600, 1.0) == 1 and frames_across(1601, 1.0) == 2 and frames_across(1200, 0.5) == 2
    assert frames_across(None, 0.25) == 1
    table = line_speed_table(50.0, strip_width_mm=1600)
    assert len(table) == 9
    by_key = {(t["speed_m_s"], t["pixel_mm"]): t for t in table}
    assert by_key[(20.0, 0.25)]["frames_per_s_needed"] == 1250 and by_key[(20.0, 0.25)]["frames_across"] == 4
    assert by_key[(5.0, 1.0)]["keeps_up"] and not by_key[(5.0, 0.5)]["keeps_up"]  # 2 across: 78 frames/s
    assert by_key[(10.0, 0.25)]["machines_like_this_needed"] == 13  # 625 frames/s / 50
    narrow = {(t["speed_m_s"], t["pixel_mm"]): t for t in line_speed_table(50.0, strip_width_mm=None)}
    assert narrow[(5.0, 0.5)]["keeps_up"] and narrow[(10.0, 0.25)]["machines_like_this_needed"] == 4


def test_flops_of_a_tiny_conv_net_are_exact():
    from steelscan.models.flops import forward_cost

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 4, 1), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 10, 5))
    cost = forward_cost(net, (2, 3, 6, 10))
    conv1 = 2 * (3 * 3 * 3) * 8 * 6 * 10  # 2 FLOPs per multiply-add, per output element
    conv2 = 2 * 8 * 4 * 6 * 10
    linear = 2 * 240 * 5
    assert cost.flops == 2 * (conv1 + conv2 + linear)
    assert cost.bytes >= 4 * (2 * 3 * 6 * 10 + 2 * 8 * 6 * 10)  # at least the input and the first activation
    assert cost.intensity == cost.flops / cost.bytes


def test_cascade_cost_is_classifier_plus_gated_segmenter():
    from steelscan.models.flops import ForwardCost

    c = cascade_cost({"classifier": ForwardCost(10, 4), "segmenter": ForwardCost(100, 40)}, 0.5)
    assert (c.flops, c.bytes) == (60, 24)


def test_hardware_probes_are_positive_and_the_roofline_picks_the_binding_limit():
    from steelscan.runtime.hardware import probe_peaks, roofline

    peaks = probe_peaks(seconds=0.02, threads=1)
    assert peaks["gflops"]["fp32"] > 0 and peaks["bandwidth_gb_s"] > 0
    assert all(v is None or v > 0 for v in peaks["gflops"].values())
    from steelscan.runtime.hardware import _onnx_peak
    assert _onnx_peak("fp32", 64, 1e-3, 0.01, 1) > 0 and _onnx_peak("int8", 64, 1e-3, 0.01, 1) > 0
    # balance 100 GFLOP/s / 10 GB/s = 10 FLOP/byte: intensity 1 is bandwidth-bound, 100 compute-bound
    low = roofline(1e9, 1e9, 2.0, 100.0, 10.0)
    assert low["bound"] == "bandwidth" and low["attainable_gflops"] == 10.0 and low["achieved_gflops"] == 2.0
    high = roofline(100e9, 1e9, 0.5, 100.0, 10.0)
    assert high["bound"] == "compute" and high["fraction_of_peak"] == 0.5


def test_gated_classifier_follows_the_pattern_through_batches_of_tiles():
    from steelscan.benchmark import GatedClassifier

    calls = []
    gate = GatedClassifier(lambda b: calls.append(len(b)), 2, np.array([True, False, False, True]),
                           windows_per_frame=2)
    scores = np.concatenate([gate(np.zeros((n, 3, 4, 4), np.float32)) for n in (3, 3, 2)])
    assert calls == [3, 3, 2] and scores.shape == (8, 2)
    assert scores[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]  # tiles 0-1: frame 0, ..., tiles 6-7: frame 3


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
    result = run_benchmark(tiny_bundle, frames=2, warmup=0, size=(32, 128), threads=1, probe_seconds=0.02)
    rows = {(r["scope"], r["engine"], r["mode"]) for r in result["rows"]}
    assert ("baseline", "torch-fp32", "latency") in rows
    for engine in ("torch-fp32", "torch-bf16", "onnx", "onnx-int8"):
        assert {("segmenter", engine, "latency"), ("cascade", engine, "latency"),
                ("cascade", engine, "throughput")} <= rows
    for r in result["rows"]:
        assert r["frames"] == 2 and r["median_ms"] > 0 and r["p99_ms"] >= r["median_ms"] and r["frames_per_s"] > 0
        assert r["kaggle_dice"] is None
        if r["scope"] == "cascade":
            assert r["segmented_fraction"] == 0.5
    assert result["speedup_vs_baseline"] > 0 and len(result["line_speed"]) == 9
    assert result["machine"]["threads"] == 1 and result["machine"]["onnxruntime"]
    assert result["hardware"]["gflops"]["fp32"] > 0 and result["hardware"]["bandwidth_gb_s"] > 0
    by = {(r["scope"], r["engine"]): r for r in result["rows"] if r["mode"] == "latency"}
    for r in result["rows"]:
        assert r["gflop_per_frame"] > 0 and r["achieved_gflops"] > 0 and r["bound"] in ("compute", "bandwidth")
        assert r["peak_dtype"] in ("fp32", "bf16", "int8") and r["intensity_flop_per_byte"] > 0
    assert by[("segmenter", "onnx-int8")]["peak_dtype"] == "int8"
    seg, cascade = by[("segmenter", "torch-fp32")], by[("cascade", "torch-fp32")]
    # the same graph in every engine: the same FLOPs; the cascade adds the classifier, segments half
    assert by[("segmenter", "onnx")]["gflop_per_frame"] == seg["gflop_per_frame"]
    assert seg["gflop_per_frame"] * 0.5 < cascade["gflop_per_frame"]


def test_cli_writes_json_and_markdown_with_dice(tiny_bundle, tmp_path, capsys):
    from steelscan.data.layout import KaggleLayoutWriter
    from steelscan.data.synth import generate_image, image_rng

    data = tmp_path / "val"
    writer = KaggleLayoutWriter(data, 4)
    for i in range(2):
        writer.add(f"v{i}.png", *generate_image(image_rng(5, i), 32, 128))
    writer.close()
    code = main(["benchmark", "--model", str(tiny_bundle), "--frames", "2", "--warmup", "0", "--size", "32", "128",
                 "--threads", "1", "--probe-seconds", "0.02", "--strip-width-mm", "1600", "--pixel-mm", "0.25",
                 "--data", str(data), "--json", str(tmp_path / "b.json"),
                 "--markdown", str(tmp_path / "b.md")])
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert {"machine", "settings", "rows", "speedup_vs_baseline", "chosen_cascade", "line_speed",
            "hardware"} <= set(result)
    assert [t["frames_across"] for t in result["line_speed"]] == [4, 4, 4]
    assert all("gflop_per_frame" in r and "fraction_of_peak" in r and "bound" in r for r in result["rows"])
    ours = [r for r in result["rows"] if r["scope"] != "baseline"]
    assert all(0.0 <= r["kaggle_dice"] <= 1.0 for r in ours)
    md = (tmp_path / "b.md").read_text()
    assert "Speed-up of our cascade" in md and "GFLOP/frame" in md and "1600 mm wide strip" in md
    assert "frames/s needed" in capsys.readouterr().out


def test_engines_choose_the_rows(tiny_bundle, tmp_path, capsys):
    code = main(["benchmark", "--model", str(tiny_bundle), "--frames", "2", "--warmup", "0", "--size", "32", "128",
                 "--threads", "1", "--probe-seconds", "0.02", "--engines", "onnx", "--json", str(tmp_path / "b.json")])
    assert code == 0
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert {r["engine"] for r in rows} == {"torch-fp32", "onnx"}          # the baseline, then onnx only
    assert [r["engine"] for r in rows if r["scope"] != "baseline"] == ["onnx"] * 3
    assert main(["benchmark", "--model", str(tiny_bundle), "--engines", "onnx,tensorrt"]) == 2
    assert "unknown engine tensorrt" in capsys.readouterr().err


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
