"""Training: config precedence and errors, data order/augmentation, the loop, the run folder,
resume after a hard kill, data-parallel ranks, classifier freeze/finetune, bad input."""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from steelscan.cli import main as cli_main
from steelscan.data.layout import KaggleLayoutWriter, open_dataset
from steelscan.errors import ConfigError
from steelscan.training import Callback, TrainConfig, load_config, resume, train
from steelscan.training.augment import Augment, sample_rng
from steelscan.training.dataset import DefectDataset, EpochSampler, class_balance_weights, scan_images
from steelscan.training.machine import seed_everything
from steelscan.training.trainer import lr_factor, weights_digest

REPO = Path(__file__).resolve().parents[1]
ENTRY = Path(__file__).resolve().parent / "train_entry.py"   # `steelscan train` + fault-injection callbacks
H, W = 64, 128


def write_toy_data(root: Path, n: int = 16, seed: int = 0) -> Path:
    """n grey 64x128 frames: class 1 = bright rectangles, class 3 = dark horizontal lines."""
    rng = np.random.default_rng(seed)
    writer = KaggleLayoutWriter(root, num_classes=4)
    for i in range(n):
        img = rng.normal(110, 8, (H, W)).clip(0, 255)
        masks = np.zeros((4, H, W), np.uint8)
        if i % 4 in (1, 3):
            y, x = rng.integers(4, H - 20), rng.integers(4, W - 40)
            masks[0, y:y + 14, x:x + 30] = 1
        if i % 4 in (2, 3):
            y = rng.integers(2, H - 6)
            masks[2, y:y + 3, 5:W - 5] = 1
        img[masks[0] > 0] = 220
        img[masks[2] > 0] = 30
        writer.add(f"img{i:03d}.png", np.repeat(img.astype(np.uint8)[..., None], 3, 2), masks)
    writer.close()
    return root


def quick(kind: str = "segmenter", **over) -> "object":
    base = dict(epochs=2, batch_size=4, crop="48x96", base_width=4, workers=0, threads=1,
                val_fraction=0.25, max_steps_per_epoch=3, lr=3e-3, patience=0)
    if kind == "classifier":
        base.pop("base_width")
        base.update(crop="full", backbone="resnet18")
    base.update(over)
    return load_config(kind, None, base)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_data(tmp_path_factory.mktemp("toy") / "data")


@pytest.fixture(scope="module")
def seg_run(toy, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "seg"
    summary = train(quick(epochs=8, lr=1e-2, max_steps_per_epoch=0), toy, out)
    return out, summary


# ----------------------------------------------------------------------------- config

def test_config_precedence_defaults_yaml_flags(tmp_path):
    assert load_config("classifier").crop is None and load_config("segmenter").crop == (256, 400)
    y = tmp_path / "c.yaml"
    y.write_text("epochs: 7\nlr: 0.01\ncrop: 128x200\nbalance: false\n")
    cfg = load_config("segmenter", y, {"lr": 0.5, "epochs": None})
    assert (cfg.epochs, cfg.lr, cfg.crop, cfg.balance) == (7, 0.5, (128, 200), False)


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_recipes_load(recipe):
    kind = "classifier" if "classifier" in recipe else "segmenter"
    cfg = load_config(kind, REPO / "configs" / recipe)
    assert cfg.kind == kind and cfg.epochs > 1
    if recipe == "neu_seg.yaml":  # the recipe of models/neu-seg: the same settings as its manifest
        manifest = json.loads((REPO / "models" / "neu-seg" / "manifest.json").read_text())
        shipped = manifest["segmenter"]["config"]["train"]
        differ = {k for k, v in cfg.to_dict().items() if k in shipped and shipped[k] != v}
        assert differ == {"epochs", "threads"}  # resumed to 12 epochs; trained with --threads 1
        assert set(cfg.to_dict()) - set(shipped) == NEWER_SETTINGS


@pytest.mark.parametrize("text, field", [("epoch: 3\n", "epoch"), ("lr: fast\n", "lr"),
                                         ("crop: 12by4\n", "crop"), ("precision: fp8\n", "precision"),
                                         ("hflip: 2\n", "hflip")])
def test_config_errors_name_file_and_key(tmp_path, text, field):
    y = tmp_path / "bad.yaml"
    y.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config("segmenter", y)
    assert e.value.field == field and str(y) in str(e.value)


def test_config_errors_name_the_field_and_where_the_value_came_from(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("epochs: 5\nstrategy: freeze\n")
    with pytest.raises(ConfigError) as e:
        load_config("segmenter", y, {"batch_size": 0})
    assert e.value.field == "batch_size" and e.value.path == "command line"
    assert "greater than 0" in str(e.value) and "got 0" in str(e.value) and "\n" not in str(e.value)
    y.write_text("epochs: true\n")                         # a yes/no where a number belongs
    with pytest.raises(ConfigError) as e:
        load_config("segmenter", y)
    assert e.value.field == "epochs" and e.value.path == y
    with pytest.raises(ConfigError) as e:                     # settings that do not fit together
        load_config("classifier", None, {"strategy": "freeze"})
    assert e.value.field == "strategy" and "pretrained weights" in str(e.value)
    # the same flag can repair what the file got wrong; values keep their types
    y.write_text("lr: 1e-3\ncrop: [128, 200]\nbalance: 'no'\n")  # YAML reads 1e-3 as a string
    cfg = load_config("segmenter", y, {"crop": "64x96"})
    assert (cfg.lr, cfg.crop, cfg.balance) == (0.001, (64, 96), False)
    assert TrainConfig.model_validate(cfg.to_dict()) == cfg and cfg.to_dict()["crop"] == [64, 96]


# The "train" section of a config.json written before input_scale existed (steelscan 0.1, d7b03dc).
OLD_RUN_TRAIN = {
    "kind": "segmenter", "arch": "resunet", "backbone": "efficientnet_lite0", "base_width": 4,
    "weights": "none", "strategy": "finetune", "warmup_frozen_epochs": 0, "backbone_lr_scale": 1.0,
    "epochs": 8, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0001, "warmup_epochs": 1.0,
    "min_lr_ratio": 0.01, "clip_grad_norm": 0.0, "max_steps_per_epoch": 0, "patience": 0, "crop": [48, 96],
    "defect_crop_prob": 0.6, "hflip": 0.5, "vflip": 0.5, "brightness": 0.1, "contrast": 0.1, "shift": 8,
    "balance": True, "val_fraction": 0.25, "dice_weight": 1.0, "max_pos_weight": 10.0, "threshold": 0.5,
    "device": "auto", "precision": "auto", "channels_last": True, "workers": 0, "threads": 1, "seed": 0}


# TrainConfig fields added after models/neu-seg was trained (its manifest does not name them)
NEWER_SETTINGS = {"decoder_channels", "monitor", "val_every"}


def test_shipped_model_and_old_runs_still_load(seg_run, tmp_path):
    from steelscan.inference.thresholds import load_thresholds
    from steelscan.training.config import from_dict
    bundle = REPO / "models" / "neu-seg"
    manifest = json.loads((bundle / "manifest.json").read_text())
    saved = manifest["segmenter"]["config"]["train"]
    cfg = from_dict(saved, where=bundle / "manifest.json")
    written = cfg.to_dict()
    assert {k: written[k] for k in saved} == saved            # read back exactly as written
    assert {k: written[k] for k in NEWER_SETTINGS} == {       # settings added since: their defaults
        "decoder_channels": [256, 128, 64, 32, 16], "monitor": "auto", "val_every": 1}
    assert (cfg.arch, cfg.backbone, cfg.epochs, cfg.crop) == ("smp_unet", "efficientnet_lite0", 12, None)
    # the model it was built as: smp's default decoder, now written out
    assert cfg.model_spec(3) == {**manifest["segmenter"]["config"]["model"], "decoder_channels": [256, 128, 64, 32, 16]}
    t = load_thresholds(bundle / "thresholds.json", 3, manifest["class_names"])
    assert t.class_names == ["Inclusions", "Patches", "Scratches"]
    assert [(c.pixel_threshold, c.min_component, c.min_area) for c in t.classes] == [
        (0.35, 32, 256), (0.8, 16, 0), (0.7, 16, 128)]
    # an old run folder (no input_scale yet) resumes: the new setting takes its default
    assert from_dict(OLD_RUN_TRAIN).input_scale == 1.0
    run = tmp_path / "old"
    shutil.copytree(seg_run[0], run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "train": OLD_RUN_TRAIN}))
    assert resume(run, {"batch_size": 4, "epochs": 8})["epochs_run"] == 8  # complete: nothing to do
    (run / "config.json").write_text(json.dumps({**config, "train": {**OLD_RUN_TRAIN, "hflip": 3}}))
    with pytest.raises(ConfigError) as e:
        resume(run)
    assert e.value.field == "hflip" and str(e.value.path).endswith("config.json")


def test_resume_refuses_only_a_changed_value(seg_run, capsys):
    run, _ = seg_run
    same = {"batch_size": 4, "crop": "48x96", "lr": 1e-2, "base_width": 4, "seed": None}
    assert resume(run, same)["epochs_run"] == 8               # same values as the run: fine
    assert "run already complete" in capsys.readouterr().err
    with pytest.raises(ConfigError) as e:
        resume(run, {**same, "crop": "64x96"})
    assert e.value.field == "crop" and "from 48x96 to 64x96" in str(e.value)
    argv = ["train", "segmenter", "--out", str(run), "--resume", "--batch-size", "4", "--crop", "48x96",
            "--epochs", "8"]
    assert cli_main(argv) == 0
    assert cli_main([*argv, "--batch-size", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cannot change batch_size from 4 to 2" in err and "Traceback" not in err


def test_cli_bad_input_is_one_line(tmp_path, toy, capsys):
    y = tmp_path / "bad.yaml"
    y.write_text("learning_rate: 0.1\n")
    empty = tmp_path / "empty"
    (empty / "train_images").mkdir(parents=True)
    cases = [(["train", "segmenter", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")],
              "data folder not found"),
             (["train", "segmenter", "--data", str(empty), "--out", str(tmp_path / "r")], "no images"),
             (["train", "segmenter", "--data", str(toy), "--out", str(tmp_path / "r"), "--config", str(y)],
              "learning_rate"),
             (["train", "segmenter", "--data", str(toy), "--out", str(tmp_path / "r"), "--batch-size", "0"],
              "command line [batch_size]: input should be greater than 0"),
             (["train", "segmenter", "--data", str(toy), "--out", str(tmp_path / "r"), "--balance", "maybe"],
              "command line [balance]: input should be a valid boolean"),
             (["train", "segmenter", "--out", str(tmp_path / "none"), "--resume"], "no run to resume")]
    for argv, expected in cases:
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err


# ----------------------------------------------------------------------------- data

def test_epoch_order_is_seeded_balanced_and_sharded():
    presence = np.zeros((40, 4), bool)
    presence[:4, 1] = True                                   # a rare class on 4 of 40 images
    w = class_balance_weights(presence)
    full = list(EpochSampler(40, w, seed=3))
    assert full == list(EpochSampler(40, w, seed=3))          # pure function of (seed, epoch)
    s = EpochSampler(40, w, seed=3)
    s.set_epoch(1)
    assert [k[0] for k in s] != [k[0] for k in full]
    drawn = np.array([k[0] for k in full])
    assert (drawn < 4).mean() > 0.3                          # the rare class is drawn ~1/2, not 1/10
    ranks = [list(EpochSampler(40, w, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == sorted(full)       # the shards split one global order


def test_augment_is_deterministic_and_keeps_masks_aligned():
    image = np.random.default_rng(0).random((3, 32, 48), dtype=np.float32)
    masks = (image[:1] > 0.7).astype(np.uint8)
    aug = Augment(hflip=0.5, vflip=0.5, brightness=0.0, contrast=0.0, shift=0)
    for pos in range(6):
        a_img, a_m = aug(sample_rng(1, 2, pos), image, masks)
        b_img, b_m = aug(sample_rng(1, 2, pos), image, masks)
        assert np.array_equal(a_img, b_img) and np.array_equal(a_m, b_m)
        assert np.array_equal(a_m[0] > 0, a_img[0] > 0.7)    # geometry moved image and mask alike


def test_training_crops_prefer_defects_and_corrupt_images_are_skipped(toy, tmp_path, capsys):
    data, sizes, skipped = scan_images(open_dataset(toy))
    ds = DefectDataset(data, sizes, seed=0, crop=(16, 32), defect_crop_prob=1.0)
    defect_idx = [i for i, r in enumerate(data.records) if r.rles]
    hits = [ds.training_item(i, 0, k)["masks"].any().item() for k, i in enumerate(defect_idx)]
    assert all(hits)
    assert ds.training_item(0, 0, 0)["image"].shape == (3, 16, 32)
    # a file with a valid header but truncated pixels: substituted by the next image, warned once
    raw = (toy / "train_images" / "img001.png").read_bytes()
    broken = tmp_path / "data"
    write_toy_data(broken, n=4)
    (broken / "train_images" / "img000.png").write_bytes(raw[:200])
    data, sizes, _ = scan_images(open_dataset(broken))
    ds = DefectDataset(data, sizes, seed=0, crop=(16, 32))
    item = ds.training_item(0, 0, 0)
    item = ds.training_item(0, 0, 1)
    assert item["image"].shape == (3, 16, 32)
    err = capsys.readouterr().err
    assert err.count("warning: skipping unreadable image") == 1 and "img000.png" in err
    val = DefectDataset(data, sizes)[0]
    assert not val["valid"]


def test_garbage_image_in_data_is_reported_and_training_goes_on(tmp_path, capsys):
    data = write_toy_data(tmp_path / "data", n=8)
    (data / "train_images" / "zz_corrupt.jpg").write_bytes(b"not a jpeg at all")
    summary = train(quick(epochs=1, max_steps_per_epoch=1), data, tmp_path / "run")
    err = capsys.readouterr().err
    assert err.count("zz_corrupt.jpg") == 1 and "warning: skipping unreadable image" in err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["skipped_unreadable"] == ["zz_corrupt.jpg"] and summary["epochs_run"] == 1


def test_callbacks_see_every_step_and_epoch(toy, tmp_path):
    class Recorder(Callback):
        def __init__(self):
            self.steps, self.rows, self.ends = [], [], 0

        def on_step_end(self, run):
            self.steps.append((run.progress.epoch, run.progress.step))

        def on_epoch_end(self, run, row):
            assert (run.run_dir / "state" / "state.json").is_file()  # called after the epoch is saved
            self.rows.append(row)

        def on_fit_end(self, run):
            self.ends += 1

    rec = Recorder()
    summary = train(quick(epochs=2, max_steps_per_epoch=2), toy, tmp_path / "run", callbacks=[rec])
    assert rec.steps == [(1, 1), (1, 2), (2, 3), (2, 4)] and rec.ends == 1
    assert [r["epoch"] for r in rec.rows] == [1, 2] and rec.rows[-1] == summary["last"]


# ----------------------------------------------------------------------------- the loop

def test_lr_schedule_warms_up_then_decays():
    f = [lr_factor(s, 5, 50, 0.01) for s in range(50)]
    assert f[0] == pytest.approx(0.2) and f[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[4:], f[5:])) and f[-1] < 0.02


def test_training_lowers_the_loss(seg_run):
    run, summary = seg_run
    rows = json.loads((run / "state" / "state.json").read_text())["history"]
    losses = [r["train_loss"] for r in rows]
    assert len(losses) == 8 and losses[-1] < losses[0] * 0.9
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert summary["best_score"] > rows[0]["val_kaggle_dice"]


def test_validate_every_n_epochs_and_pick_the_best_by_loss(toy, tmp_path):
    run = tmp_path / "seg"
    summary = train(quick(epochs=5, val_every=2, monitor="loss"), toy, run)
    rows = json.loads((run / "state" / "state.json").read_text())["history"]
    validated = [r["epoch"] for r in rows if "val_loss" in r]
    assert validated == [2, 4, 5]                      # every 2nd epoch and always the last
    best = min((r for r in rows if "val_loss" in r), key=lambda r: r["val_loss"])
    assert summary["monitor"] == "val_loss" and summary["best_epoch"] == best["epoch"]
    assert summary["best_score"] == pytest.approx(best["val_loss"])
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "val_loss" in header and (run / "curves.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="macro_f1 is not a segmenter score"):
        quick(monitor="macro_f1")


def test_run_folder_tells_its_story(seg_run, toy):
    from steelscan.models import load_run
    run, summary = seg_run
    for name in ("config.json", "best.safetensors", "last.safetensors", "metrics.csv", "metrics.json",
                 "curves.png", "state/state.json", "state/split.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "segmenter" and config["model"]["base_width"] == 4
    assert len(config["data"]["val_ids"]) == 4 and config["train"]["epochs"] == 8
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,lr,train_loss,val_loss,val_kaggle_dice") and len(lines) == 9
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val_kaggle_dice" and 1 <= metrics["best_epoch"] <= 8
    assert 0.0 <= metrics["best_score"] <= 1.0
    model, cfg = load_run(run, "best")
    out = model(torch.rand(1, 3, H, W))
    assert out.shape == (1, 4, H, W)
    assert not list(run.glob("**/*.tmp")) and not list(run.glob("**/*.pt*"))  # atomic, never pickle
    # a second run into the same folder needs --resume or --overwrite
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(quick(), toy, run)


def test_resume_after_hard_kill_reproduces_uninterrupted_run(toy, tmp_path):
    flags = ["--epochs", "3", "--batch-size", "4", "--crop", "48x96", "--base-width", "4", "--workers", "0",
             "--threads", "1", "--max-steps-per-epoch", "3", "--val-fraction", "0.25", "--patience", "0"]
    ref = tmp_path / "ref"
    killed = tmp_path / "killed"
    # stall mid-epoch 2 (3 steps per epoch), through the test-side entry script's callback
    proc = subprocess.Popen([sys.executable, str(ENTRY), "--hang-at-step", "5", "segmenter", "--data", str(toy),
                             "--out", str(killed), *flags], env=entry_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert cli_main(["train", "segmenter", "--data", str(toy), "--out", str(ref), *flags]) == 0  # meanwhile
        hung = any("hanging at step 5" in line for line in proc.stderr)  # the hook announces itself
        assert hung, "the run ended before it reached step 5"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    state = json.loads((killed / "state" / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 3
    # resuming with the same flags as the first run is fine: only a changed value is refused
    assert cli_main(["train", "segmenter", "--out", str(killed), "--resume", *flags]) == 0
    a, b = load_file(str(ref / "last.safetensors")), load_file(str(killed / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ref_rows = (ref / "metrics.csv").read_text().splitlines()
    got_rows = (killed / "metrics.csv").read_text().splitlines()
    assert len(got_rows) == 4
    strip = lambda rows: [",".join(r.split(",")[:-2]) for r in rows]  # drop the timing columns
    assert strip(got_rows) == strip(ref_rows)


def entry_env(**extra: str) -> dict:
    """The environment of a subprocess that must import this very steelscan package."""
    import steelscan
    src = str(Path(steelscan.__file__).resolve().parents[1])
    path = [src, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}


def test_two_process_data_parallel_ranks_end_identical(toy, tmp_path):
    digests = tmp_path / "digests"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ENTRY),
           "--rank-digest-dir", str(digests),
           "segmenter", "--data", str(toy), "--out", str(tmp_path / "ddp"), "--epochs", "1",
           "--batch-size", "2", "--crop", "48x96", "--base-width", "4", "--workers", "0", "--threads", "1",
           "--max-steps-per-epoch", "3", "--val-fraction", "0.25"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=entry_env(OMP_NUM_THREADS="1"), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    d0, d1 = (digests / "rank0.txt").read_text(), (digests / "rank1.txt").read_text()
    assert d0 == d1
    saved = load_file(str(tmp_path / "ddp" / "last.safetensors"))
    assert weights_digest(saved) == d0
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["run"]["world_size"] == 2
    # the ranks did train: weights moved away from the seeded initial model
    from steelscan.models import build_model
    seed_everything(0)
    init = build_model(config["model"]).state_dict()
    assert any(not torch.equal(init[k], saved[k]) for k in saved)


def test_no_test_switches_in_the_library():
    """Fault injection lives in tests/train_entry.py, as callbacks: nothing in src reads a test
    variable from the environment."""
    import steelscan
    package = Path(steelscan.__file__).parent
    offenders = [p.relative_to(package) for p in package.rglob("*.py")
                 if "STEELSCAN_TEST" in p.read_text(encoding="utf-8")]
    assert offenders == []


# ----------------------------------------------------------------------------- classifier

def test_classifier_freeze_trains_head_only_and_finetune_unfreezes(toy, tmp_path):
    from steelscan.models import build_model
    pretrained = tmp_path / "backbone.safetensors"
    torch.manual_seed(123)
    source = build_model({"kind": "classifier", "arch": "resnet18", "num_classes": 4, "weights": "none"})
    save_file({k: v.contiguous() for k, v in source.backbone.state_dict().items()}, str(pretrained))

    def initial():
        seed_everything(0)
        return build_model({"kind": "classifier", "arch": "resnet18", "num_classes": 4,
                            "weights": str(pretrained)}).state_dict()

    def changed(run: Path, prefix: str) -> bool:
        init, got = initial(), load_file(str(run / "last.safetensors"))
        keys = [k for k in got if k.startswith(prefix)]
        return any(not torch.equal(init[k], got[k]) for k in keys)

    frozen = tmp_path / "freeze"
    train(quick("classifier", strategy="freeze", weights=str(pretrained), epochs=1, max_steps_per_epoch=2),
          toy, frozen)
    assert changed(frozen, "head.") and not changed(frozen, "backbone.")  # BN statistics included

    warm = tmp_path / "warm"
    train(quick("classifier", strategy="finetune", weights=str(pretrained), warmup_frozen_epochs=1,
                epochs=1, max_steps_per_epoch=2), toy, warm)
    assert changed(warm, "head.") and not changed(warm, "backbone.")
    summary = resume(warm, {"epochs": 2})                     # epoch 2: the backbone learns too
    assert changed(warm, "backbone.") and summary["epochs_run"] == 2
    metrics = json.loads((warm / "metrics.json").read_text())
    assert metrics["monitor"] == "val_macro_f1" and "val_any_f1" in metrics["last"]
