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
    faint[:2, :2] = 100  # below the default threshold 128: background; at threshold 77: defect
    faint[5, 5] = 200
    Image.fromarray(faint).save(tmp_path / "masks" / "s000.png")
    s = import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out")
    assert s.num_classes == 1 and s.class_names == ["defect"]
    _, masks = _decoded(tmp_path / "out")
    assert masks["s000.png"][0].sum() == 1
    np.testing.assert_array_equal(masks["s001.jpg"][0], stored[1] > 127)
    import_masks(tmp_path / "images", tmp_path / "masks", tmp_path / "out", threshold=77, overwrite=True)
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
    with pytest.raises(DatasetError, match="look like class indices.*pass --classes 3"):
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
    rc, _, err = _cli(capsys, "--images", tmp_path / "images", "--masks", tmp_path / "masks")
    assert rc == 2 and "--out is required" in err
    with pytest.raises(SystemExit) as e:
        main(["import-masks", "--masks", str(tmp_path)])
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


# --- real-world layouts: decided once per dataset, patterns, masks beside images, class folders -------

def _ringed(y0, x0, h, w, core=255, rings=(90, 30)):
    """An anti-aliased-looking 0..255 mask: an h x w core of `core`, wrapped in 1-px rings of
    `rings` values (the halo a resampled drawing leaves), on an H x W zero frame."""
    m = np.zeros((H, W), np.uint8)
    for k, v in reversed(list(enumerate(rings, start=1))):
        m[max(y0 - k, 0):y0 + h + k, max(x0 - k, 0):x0 + w + k] = v
    m[y0:y0 + h, x0:x0 + w] = core
    return m


def _rect(y0, x0, h, w):
    m = np.zeros((H, W), np.uint8)
    m[y0:y0 + h, x0:x0 + w] = 1
    return m


def _grey(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W), np.uint8)).save(path)


def _kolektor(root):
    """KolektorSDD-like: Part<k>.jpg + Part<k>_label.bmp side by side, 0/1 masks, one stray 2."""
    root.mkdir()
    labels = [_rect(2, 3, 4, 6), _rect(0, 0, 1, 1), np.zeros((H, W), np.uint8), _rect(10, 20, 5, 2)]
    labels[3][15, 25] = 2  # the stray value, outside the defect
    labels[1][19, 29] = 1
    for k, m in enumerate(labels):
        _grey(root / f"Part{k}.jpg", k)
        Image.fromarray(m).save(root / f"Part{k}_label.bmp")
    return root


def _rows(out):
    lines = (out / "train.csv").read_text().splitlines()
    assert lines[0] == "ImageId,ClassId,EncodedPixels"
    return sorted(lines[1:])


def test_kolektor_like_zero_one_with_a_stray_value_is_binary(tmp_path, capsys):
    kos = _kolektor(tmp_path / "kos")
    s = import_masks(kos, None, tmp_path / "out", num_classes=1, pattern="{stem}_label.bmp")
    assert (s.n_images, s.n_clean) == (4, 1)  # the label files were not taken as images
    assert (s.mode.kind, s.mode.rule) == ("binary", "0/1")
    assert s.values == {0: 4 * H * W - 24 - 2 - 10 - 1, 1: 24 + 2 + 10, 2: 1}
    assert s.stray_files == {kos / "Part3_label.bmp": [2]}
    assert s.pixels_per_class == {"defect": 24 + 2 + 10 + 1} and s.images_per_class == {"defect": 3}
    # Kaggle RLE: 1-indexed, column-major (pixel = x * H + y + 1)
    assert _rows(tmp_path / "out") == [
        "Part0.jpg,1,63 4 83 4 103 4 123 4 143 4 163 4",
        "Part1.jpg,1,1 1 600 1",
        f"Part3.jpg,1,{20 * H + 11} 5 {21 * H + 11} 5 {25 * H + 16} 1",
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "train_images").iterdir()) == \
        ["Part0.jpg", "Part1.jpg", "Part2.jpg", "Part3.jpg"]
    # the mode is forced: as class indices the stray file is an error that names it
    with pytest.raises(MaskImportError, match=r"Part3_label.bmp: mask value 2 above the number of classes 1"):
        import_masks(kos, None, tmp_path / "o2", num_classes=1, pattern="{stem}_label.bmp", mask_mode="index")
    rc, out, err = _cli(capsys, "--images", kos, "--mask-pattern", "{stem}_label.bmp", "--classes", "1",
                        "--out", tmp_path / "o3")
    assert rc == 0 and "imported 4 images (1 clean)" in out
    assert "mask mode: binary, 0/1 masks, non-zero is defect (" in out and "2: 1 px" in out
    assert f"{kos / 'Part3_label.bmp'}: 2" in out  # the stray file is named


def test_anti_aliased_masks_beside_the_images_threshold_at_128(tmp_path):
    """0..255 masks named like the images (x.jpg + x.png in one folder): halos stay background."""
    d = tmp_path / "data"
    d.mkdir()
    masks = {"a": _ringed(3, 4, 5, 7), "b": np.zeros((H, W), np.uint8), "c": _ringed(0, 0, 2, 3)}
    for k, (stem, m) in enumerate(masks.items()):
        _grey(d / f"{stem}.jpg", k)
        Image.fromarray(m).save(d / f"{stem}.png")
    s = import_masks(d, None, tmp_path / "out", pattern="{stem}.png")
    assert (s.n_images, s.n_clean) == (3, 1) and (s.mode.kind, s.mode.rule) == ("binary", "threshold")
    assert s.pixels_per_class == {"defect": 35 + 6}  # the cores only
    assert s.values[90] == (7 * 9 - 35) + (3 * 4 - 6)  # c sits in the corner: its rings are cut
    assert "pixels with 0 < value < 128" in s.mode.reason
    _, got = _decoded(tmp_path / "out")
    np.testing.assert_array_equal(got["a.jpg"][0], _rect(3, 4, 5, 7))
    np.testing.assert_array_equal(got["c.jpg"][0], _rect(0, 0, 2, 3))
    assert _rows(tmp_path / "out")[1] == "c.jpg,1,1 2 21 2 41 2"
    s = import_masks(d, None, tmp_path / "out", pattern="{stem}.png", threshold=60, overwrite=True)
    assert s.pixels_per_class == {"defect": 7 * 9 + 3 * 4}  # core + the first ring
    with pytest.raises(DatasetError, match="need --mask-pattern"):
        import_masks(d, None, tmp_path / "o2")
    with pytest.raises(DatasetError, match="must be a file name holding {stem} once"):
        import_masks(d, None, tmp_path / "o2", pattern="label.png")


def _class_folders(root, folders=("scratch", "pit")):
    """images/ + masks/<class>/<stem>.png, anti-aliased 0..255; x2 is clean (no mask at all) and
    masks/pit/ghost.png names no image."""
    (root / "images").mkdir(parents=True)
    for k, stem in enumerate(("x0", "x1", "x2")):
        _grey(root / "images" / f"{stem}.png", k)
    for f in folders:
        (root / "masks" / f).mkdir(parents=True)
    scratch, pit = folders
    Image.fromarray(_ringed(1, 1, 2, 20)).save(root / "masks" / scratch / "x0.png")
    Image.fromarray(_ringed(10, 10, 3, 3)).save(root / "masks" / pit / "x0.png")
    Image.fromarray(_ringed(5, 25, 4, 4)).save(root / "masks" / pit / "x1.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "masks" / scratch / "x1.png")  # empty mask
    Image.fromarray(_ringed(5, 5, 1, 1)).save(root / "masks" / pit / "ghost.png")
    return root


def test_one_folder_per_class_named_by_folder(tmp_path):
    root = _class_folders(tmp_path / "ds")
    with pytest.raises(MaskImportError, match=r"x2.png: no mask x2.png in .*masks/<class>"):
        import_masks(root / "images", root / "masks", tmp_path / "out", class_from_folder=True)
    s = import_masks(root / "images", root / "masks", tmp_path / "out", class_from_folder=True,
                     missing_mask="clean")
    assert s.class_names == ["pit", "scratch"] and (s.n_images, s.n_clean, s.n_missing_mask) == (3, 1, 1)
    assert s.images_per_class == {"pit": 2, "scratch": 1}
    assert s.pixels_per_class == {"pit": 9 + 16, "scratch": 40} and s.mode.rule == "threshold"
    assert s.unpaired_masks == [root / "masks" / "pit" / "ghost.png"]
    ds, got = _decoded(tmp_path / "out")
    assert ds.class_names == ["pit", "scratch"]
    np.testing.assert_array_equal(got["x0.png"], np.stack([_rect(10, 10, 3, 3), _rect(1, 1, 2, 20)]))
    np.testing.assert_array_equal(got["x1.png"], np.stack([_rect(5, 25, 4, 4), np.zeros((H, W), np.uint8)]))
    assert not got["x2.png"].any()
    # labels.txt gives the order; numbered folders take names from --class-names
    (root / "labels.txt").write_text("_background_\nscratch\npit\n")
    s = import_masks(root / "images", root / "masks", tmp_path / "out", class_from_folder=True,
                     missing_mask="clean", overwrite=True)
    assert s.class_names == ["scratch", "pit"] and s.pixels_per_class == {"scratch": 40, "pit": 25}
    num = _class_folders(tmp_path / "num", folders=("2", "1"))
    s = import_masks(num / "images", num / "masks", tmp_path / "o2", class_from_folder=True,
                     missing_mask="clean", class_names=["pit", "scratch"])
    assert s.pixels_per_class == {"pit": 25, "scratch": 40}
    assert "x0.png,1," in (tmp_path / "o2" / "train.csv").read_text()
    with pytest.raises(DatasetError, match="class folder 'pit' is not among --class-names dent,scratch"):
        import_masks(root / "images", root / "masks", tmp_path / "o3", class_from_folder=True,
                     class_names=["dent", "scratch"])
    with pytest.raises(DatasetError, match="--mask-mode index needs class-index masks"):
        import_masks(root / "images", root / "masks", tmp_path / "o3", class_from_folder=True,
                     mask_mode="index")


def test_dry_run_prints_the_pairing_and_writes_nothing(tmp_path, capsys):
    root = _class_folders(tmp_path / "ds")
    rc, out, err = _cli(capsys, "--images", root / "images", "--masks", root / "masks", "--class-from-folder",
                        "--out", tmp_path / "out", "--dry-run")
    assert rc == 0 and not (tmp_path / "out").exists()
    lines = out.splitlines()
    assert "  x0.png -> pit/x0.png (pit), scratch/x0.png (scratch)" in lines
    assert "  x2.png -> (no mask)" in lines
    assert "images without a mask: 1" in lines and "mask files without an image: 1" in lines
    assert f"  {root / 'masks' / 'pit' / 'ghost.png'}" in lines
    assert "dry run: would import 3 images (1 clean)" in out and "pit" in out
    kos = _kolektor(tmp_path / "kos")
    rc, out, _ = _cli(capsys, "--images", kos, "--mask-pattern", "{stem}_label.bmp", "--dry-run")
    assert rc == 0 and "  Part3.jpg -> Part3_label.bmp (defect)" in out.splitlines()
    assert "Part0_label.bmp ->" not in out


@pytest.mark.parametrize("values, classes, requested, rule", [
    ({0: 900, 1: 100}, 1, "auto", "0/1"),
    ({0: 900, 1: 1000, 2: 3, 7: 1}, 1, "auto", "0/1"),  # strays
    ({0: 900, 255: 100, 128: 4, 40: 30}, 1, "auto", "threshold"),
    ({0: 900, 1: 10, 2: 10, 3: 10}, 1, "binary", "nonzero"),
    ({0: 900, 1: 10, 2: 10, 3: 10}, 3, "auto", "index"),
    ({0: 900, 1: 10}, 1, "index", "index"),
])
def test_decide_mask_mode(values, classes, requested, rule):
    from steelscan.data.mask_values import decide_mask_mode

    assert decide_mask_mode(values, classes, requested=requested).rule == rule


def test_bad_label_files_are_one_line_each(tmp_path, capsys):
    kos = _kolektor(tmp_path / "kos")
    Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(kos / "Part1_label.bmp")
    (kos / "Part2_label.bmp").write_bytes(b"BM not really a bitmap")
    rc, out, err = _cli(capsys, "--images", kos, "--mask-pattern", "{stem}_label.bmp", "--out", tmp_path / "out")
    lines = err.splitlines()
    assert rc == 2 and not (tmp_path / "out").exists()
    assert f"  {kos / 'Part1_label.bmp'}: mask is 20x32 but the image Part1.jpg is 20x30 (HxW)" in lines
    assert any(line.startswith(f"  {kos / 'Part2_label.bmp'}: unreadable mask (") for line in lines)
    assert lines[-1].startswith("steelscan import-masks: error: 2 problem(s), nothing written; first: ")
