"""`import_masks` / `steelscan import-masks`: lossless import of class-index and binary masks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.data.importer import MaskImportError, import_masks, read_labels_txt
from steelscan.data.layout import open_dataset
from steelscan.errors import DatasetError

H, W = 20, 30


def _make(root, n=5, num_classes=3, binary=False, grey=True):
    """images/ (JPEG and PNG, grey or RGB) + masks/ (class-index or 0/255) + the masks as an array."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    stored = np.zeros((n, H, W), np.uint8)
    for k in range(n):
        if k != 0:  # image 0 stays clean
            for c in range(1, num_classes + 1):
                y, x = rng.integers(0, H - 5), rng.integers(0, W - 5)
                stored[k, y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = 255 if binary else c
        shape = (H, W) if grey else (H, W, 3)
        suffix = ".jpg" if k % 2 else ".png"
        Image.fromarray(rng.integers(0, 255, shape, np.uint8)).save(root / "images" / f"s{k:03d}{suffix}")
        Image.fromarray(stored[k]).save(root / "masks" / f"s{k:03d}.png")
    return stored


def _decoded(out):
    ds = open_dataset(out)
    return ds, {r.image_id: ds.masks(r, H, W) for r in ds}


def test_class_index_import_is_lossless_and_copies_bytes(tmp_path):
    stored = _make(tmp_path, grey=False)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nalpha\nbeta\ngamma\nothers\n")
    s = import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out")
    assert (s.num_classes, s.class_names, s.n_images, s.n_clean) == (3, ["alpha", "beta", "gamma"], 5, 1)
    ds, masks = _decoded(tmp_path / "out")
    assert ds.num_classes == 3 and ds.class_names == ["alpha", "beta", "gamma"]
    for k, image_id in enumerate(sorted(masks)):
        expected = np.stack([(stored[k] == c) for c in (1, 2, 3)]).astype(np.uint8)
        np.testing.assert_array_equal(masks[image_id], expected)
        assert (tmp_path / "out" / "train_images" / image_id).read_bytes() == \
            (tmp_path / "images" / image_id).read_bytes()
    assert sorted(masks) == ["s000.png", "s001.jpg", "s002.png", "s003.jpg", "s004.png"]
    meta = json.loads((tmp_path / "out" / "steelscan.json").read_text())
    assert meta["num_classes"] == 3 and meta["class_names"] == ["alpha", "beta", "gamma"]


def test_binary_masks_with_threshold(tmp_path):
    stored = _make(tmp_path, num_classes=1, binary=True)
    faint = np.zeros((H, W), np.uint8)
    faint[:2, :2] = 100  # below 0.5*255: background; above 0.3*255: defect
    faint[5, 5] = 200
    Image.fromarray(faint).save(tmp_path / "masks" / "s000.png")
    s = import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out")
    assert s.num_classes == 1 and s.class_names == ["defect"]
    _, masks = _decoded(tmp_path / "out")
    assert masks["s000.png"][0].sum() == 1
    np.testing.assert_array_equal(masks["s001.jpg"][0], stored[1] > 127)
    import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", threshold=0.3, overwrite=True)
    _, masks = _decoded(tmp_path / "out")
    assert masks["s000.png"][0].sum() == 5


def test_zero_one_binary_masks(tmp_path):
    stored = _make(tmp_path, num_classes=1)  # values 0/1
    import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", class_names=["crack"])
    ds, masks = _decoded(tmp_path / "out")
    assert ds.class_names == ["crack"]
    np.testing.assert_array_equal(masks["s003.jpg"][0], stored[3])


def test_missing_masks_are_errors_or_clean(tmp_path):
    _make(tmp_path)
    os.remove(tmp_path / "masks" / "s002.png")
    os.remove(tmp_path / "masks" / "s004.png")
    with pytest.raises(MaskImportError) as e:
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", num_classes=3)
    assert len(e.value.problems) == 2 and "s002" in e.value.problems[0] and "no mask" in e.value.problems[0]
    assert not (tmp_path / "out" / "train.csv").exists()
    s = import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", num_classes=3, missing_mask="clean")
    assert s.n_missing_mask == 2 and s.n_clean == 3
    ds, _ = _decoded(tmp_path / "out")
    assert len(ds) == 5 and ds.records[2].is_clean


def test_bad_masks_are_named(tmp_path):
    _make(tmp_path)
    with pytest.raises(MaskImportError, match=r"s00\d.png: mask value 3 above the number of classes 2"):
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", num_classes=2)
    with pytest.raises(MaskImportError, match="look like class indices"):
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out")  # no labels.txt: binary
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(tmp_path / "masks" / "s001.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "masks" / "s002.png")
    with pytest.raises(MaskImportError) as e:
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", num_classes=3)
    msgs = "\n".join(e.value.problems)
    assert "s001.png: mask is 21x30 but the image s001.jpg is 20x30" in msgs
    assert "s002.png: colour mask" in msgs


def test_flag_errors(tmp_path):
    _make(tmp_path)
    with pytest.raises(DatasetError, match="2 names but --classes is 3"):
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "o", num_classes=3, class_names=["a", "b"])
    with pytest.raises(DatasetError, match="masks folder not found"):
        import_masks(tmp_path / "images", tmp_path / "nope", tmp_path / "o")
    with pytest.raises(DatasetError, match="threshold"):
        import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "o", threshold=1.5)


def test_read_labels_txt(tmp_path):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\n\nInclusions\nPatches\nScratches\nothers\n")
    assert read_labels_txt(tmp_path / "labels.txt") == ["Inclusions", "Patches", "Scratches"]


# --- real NEU-Seg -----------------------------------------------------------------------------

def _neu(shared_data):
    neu = shared_data / "neu_seg"
    if not (neu / "images").is_dir():
        pytest.skip(f"{neu} not present")
    return neu


def test_neu_seg_subset_lossless(shared_data, tmp_path):
    neu = _neu(shared_data)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    names = sorted(p.stem for p in (neu / "images").glob("*.jpg"))[::18][:200]
    for stem in names:
        os.symlink(neu / "images" / f"{stem}.jpg", tmp_path / "images" / f"{stem}.jpg")
        os.symlink(neu / "masks" / f"{stem}.png", tmp_path / "masks" / f"{stem}.png")
    os.symlink(neu / "labels.txt", tmp_path / "labels.txt")
    s = import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out")
    assert s.class_names == ["Inclusions", "Patches", "Scratches"] and s.n_images == len(names)
    ds = open_dataset(tmp_path / "out")
    for r in ds:
        stem = r.image_id[:-4]
        original = np.asarray(Image.open(neu / "masks" / f"{stem}.png"))
        expected = np.stack([original == c for c in (1, 2, 3)]).astype(np.uint8)
        np.testing.assert_array_equal(ds.masks(r, 200, 200), expected)
        assert r.path.read_bytes() == (neu / "images" / r.image_id).read_bytes()


def test_neu_seg_full_import_through_cli(shared_data, tmp_path, capsys):
    neu = _neu(shared_data)
    rc = main(["import-masks", "--images", str(neu / "images"), "--masks", str(neu / "masks"),
               "--out", str(tmp_path / "neu")])
    out, err = capsys.readouterr()
    assert rc == 0 and "imported 3630 images" in out and "Traceback" not in err
    ds = open_dataset(tmp_path / "neu")
    assert len(ds) == 3630 and ds.class_names == ["Inclusions", "Patches", "Scratches"]
    assert ds.presence().sum(axis=0).tolist() == [1460, 1448, 1429]


# --- CLI --------------------------------------------------------------------------------------

def _cli(capsys, *argv):
    rc = main(["import-masks", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_cli_exit_codes(tmp_path, capsys):
    _make(tmp_path)
    args = ["--images", tmp_path / "images", "--masks", tmp_path / "masks", "--out", tmp_path / "out"]
    rc, out, err = _cli(capsys, *args, "--classes", "3", "--class-names", "a,b,c")
    assert rc == 0 and "imported 5 images (1 clean)" in out
    rc, _, err = _cli(capsys, *args, "--classes", "3")
    assert rc == 2 and "--overwrite" in err
    rc, _, err = _cli(capsys, *args, "--classes", "2", "--overwrite")
    errors = [line for line in err.splitlines() if line.startswith("steelscan import-masks: error")]
    assert rc == 2 and len(errors) == 1 and "above the number of classes 2" in errors[0]
    assert "  " in err.splitlines()[0]  # the problems are listed above the error line
    rc, _, err = _cli(capsys, *args, "--class-names", "a,,c", "--overwrite")
    assert rc == 2 and "empty name" in err
    with pytest.raises(SystemExit) as e:
        main(["import-masks", "--images", str(tmp_path)])
    assert e.value.code == 2


def test_import_synthetic_frames_as_class_index_masks(tmp_path):
    from steelscan.data.synth import synthesize_dataset

    syn = open_dataset(synthesize_dataset(tmp_path / "syn", 8, seed=1, height=48, width=300, progress=False))
    (tmp_path / "masks").mkdir()
    truth = {}
    for r in syn:
        m = syn.masks(r, 48, 300)
        assert (m.sum(axis=0) <= 1).all()  # classes never overlap, so one index mask holds them all
        index = (m * np.arange(1, 5)[:, None, None]).sum(axis=0).astype(np.uint8)
        Image.fromarray(index).save(tmp_path / "masks" / f"{r.image_id[:-4]}.png")
        truth[r.image_id] = m
    s = import_masks(syn.images_dir, tmp_path / "masks", tmp_path / "out", num_classes=4)
    assert s.n_images == 8
    ds = open_dataset(tmp_path / "out")
    for r in ds:
        np.testing.assert_array_equal(ds.masks(r, 48, 300), truth[r.image_id])
    # the same RLE rows as the generator wrote (RLE is canonical)
    assert sorted((tmp_path / "out" / "train.csv").read_text().splitlines()) == \
        sorted(syn.csv_path.read_text().splitlines())
