"""`steelscan demo`: the whole pipeline end to end, at toy size (speed, not quality, is checked
here; the quality bar is measured by `make demo` and recorded in benchmarks/results/demo.md)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from steelscan.cli import main
from steelscan.data.layout import open_dataset
from steelscan.demo import DemoConfig, Paths, step_commands, write_subset

TINY = ["--n-train", "48", "--n-tune", "16", "--n-test", "16", "--threads", "1", "--height", "64", "--width", "256",
        "--cls-epochs", "1", "--seg-epochs", "1", "--seg-crop", "64x128", "--seg-base-width", "4",
        "--cls-batch-size", "8", "--seg-batch-size", "8", "--bench-frames", "2", "--workers", "0"]


@pytest.mark.slow
def test_demo_runs_every_step_into_one_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("kaggle_dice", "all_empty_dice", "classifier_f1", "frames_per_s"):
        assert summary[key] is not None, key
    assert 0.0 <= summary["kaggle_dice"] <= 1.0
    assert 0.0 < summary["all_empty_dice"] < 1.0          # synthetic data has clean and defective pairs
    assert summary["frames_per_s"] > 0
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    for path in ("classifier/best.safetensors", "segmenter/best.safetensors", "thresholds.json",
                 "model/manifest.json", "model/segmenter.onnx", "evaluation/metrics.json"):
        assert (out / path).is_file(), path
    captured = capsys.readouterr()
    printed = captured.out
    assert "Kaggle Dice" in printed and "steelscan predict --model" in printed
    assert str(out / "report.html") in printed and str(out / "summary.json") in printed
    for step in ("synth", "train classifier", "train segmenter", "tune", "evaluate", "export", "benchmark"):
        assert f"$ steelscan {step} " in captured.err, step
    assert set(summary["seconds"]) >= {"data", "classifier", "segmenter", "tune", "evaluate", "total"}


def test_write_subset_keeps_labels_and_class_names(tmp_path):
    from steelscan.data.synth import synthesize_dataset

    src = synthesize_dataset(tmp_path / "src", 12, seed=5, height=32, width=96, progress=False)
    data = open_dataset(src)
    view = open_dataset(write_subset(data, [1, 3, 4], tmp_path / "view"))
    assert [r.image_id for r in view] == sorted(data.records[i].image_id for i in (1, 3, 4))
    by_id = {r.image_id: r.rles for r in data}
    assert all(r.rles == by_id[r.image_id] for r in view)
    assert view.class_names == data.class_names and view.num_classes == data.num_classes


def test_demo_flags_mirror_the_config():
    from steelscan.cli import build_parser

    args = build_parser().parse_args(["demo", "--seg-epochs", "3", "--int8"])
    assert args.seg_epochs == 3 and args.int8 is True
    assert args.n_train == DemoConfig().n_train


def _parse(line: str):
    from steelscan.cli import build_parser

    argv = shlex.split(line)
    assert argv[0] == "steelscan"
    return build_parser().parse_args(argv[1:])


def test_printed_commands_are_valid_and_train_the_same_models(tmp_path):
    """Every command the demo prints parses, and `steelscan train` with the printed flags builds
    exactly the TrainConfig the demo trains with."""
    from steelscan.cli.train import setting_flags
    from steelscan.training import load_config

    cfg = DemoConfig(out=str(tmp_path / "d"), seed=3, threads=1, seg_epochs=7, cls_lr=2e-4)
    commands = step_commands(cfg, Paths(tmp_path / "d"))
    assert set(commands) == {"data", "classifier", "segmenter", "tune", "evaluate", "export", "benchmark"}
    for lines in commands.values():
        for line in lines:
            _parse(line)
    for kind in ("classifier", "segmenter"):
        (line,) = commands[kind]
        args = _parse(line)
        assert args.kind == kind and args.overwrite
        from_shell = load_config(kind, None, {name: getattr(args, name) for name, *_ in setting_flags()})
        assert from_shell == load_config(kind, None, cfg.train_settings(kind))
        assert from_shell.threads == 1 and from_shell.seed == 3
    assert int(_parse(commands["segmenter"][0]).epochs) == 7
    data_seeds = [_parse(line).seed for line in commands["data"]]
    assert data_seeds == [3, 4, 5]                       # train, tune and test frames all differ


def test_demo_imports_no_command_line_module():
    import ast

    import steelscan.demo as demo

    tree = ast.parse(Path(demo.__file__).read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if "cli" in m.split(".")], modules
