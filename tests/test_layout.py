"""Kaggle layout: label formats, dataset opening, image loading and the writer round trip."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from steelscan.data.layout import (KaggleLayoutWriter, decode_image_bytes, decode_masks, image_size, load_image,
                                   open_dataset, read_label_table, write_labels_csv)
from steelscan.errors import DatasetError, ImageError, RLEError
from steelscan.rle import encode_rle


def _write(path, text):
    path.write_text(text)
    return path


# --- label tables -----------------------------------------------------------------------------

def test_current_format(tmp_path):
    t = read_label_table(_write(tmp_path / "t.csv", "ImageId,ClassId,EncodedPixels\na.jpg,1,1 3\na.jpg,3,7 2\nb.jpg,2,5 1\n"))
    assert t.format == "current" and t.images == ["a.jpg", "b.jpg"]
    assert [(r.image_id, r.class_id, r.rle, r.line) for r in t.rows] == [
        ("a.jpg", 1, "1 3", 2), ("a.jpg", 3, "7 2", 3), ("b.jpg", 2, "5 1", 4)]
    assert t.by_image() == {"a.jpg": {1: "1 3", 3: "7 2"}, "b.jpg": {2: "5 1"}}


def test_legacy_format_lists_clean_images(tmp_path):
    text = "ImageId_ClassId,EncodedPixels\n" + "".join(
        f"{i}_{c},{'1 2' if (i, c) == ('x_1.jpg', 2) else ''}\n" for i in ("x_1.jpg", "y.jpg") for c in range(1, 5))
    t = read_label_table(_write(tmp_path / "legacy.csv", text))
    assert t.format == "legacy" and t.images == ["x_1.jpg", "y.jpg"]  # '_' inside the image id is kept
    assert t.by_image() == {"x_1.jpg": {2: "1 2"}, "y.jpg": {}}
    assert len(t.rows) == 8


def test_submission_format(tmp_path):
    t = read_label_table(_write(tmp_path / "s.csv", "ImageId,EncodedPixels,ClassId\na.jpg,1 2,1\na.jpg,,2\n"))
    assert t.format == "submission" and t.by_image() == {"a.jpg": {1: "1 2"}}


def test_bom_and_blank_lines_and_multiline_records(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffImageId,ClassId,EncodedPixels\n\na.jpg,1,\"1 2\n3 1\"\nb.jpg,2,4 1\n".encode())
    t = read_label_table(path)
    assert [(r.image_id, r.line) for r in t.rows] == [("a.jpg", 3), ("b.jpg", 5)]


@pytest.mark.parametrize("text, pattern", [
    ("", r"t.csv:1: empty file"),
    ("Image,Class\n", r"t.csv:1: unknown header 'Image,Class'"),
    ("ImageId,ClassId,EncodedPixels\na.jpg,1\n", r"t.csv:2: expected 3 fields, found 2"),
    ("ImageId,ClassId,EncodedPixels\na.jpg,1,1 1\na.jpg,one,1 1\n", r"t.csv:3 \[ClassId\]: ClassId 'one' is not an integer"),
    ("ImageId,ClassId,EncodedPixels\na.jpg,0,1 1\n", r"t.csv:2 \[ClassId\]: ClassId 0 out of range >= 1"),
    ("ImageId,ClassId,EncodedPixels\n,1,1 1\n", r"t.csv:2 \[ImageId\]: empty ImageId"),
    ("ImageId_ClassId,EncodedPixels\nabc,1 1\n", r"t.csv:2 \[ImageId_ClassId\]: ImageId_ClassId 'abc' has no '_<class>'"),
])
def test_malformed_label_files(tmp_path, text, pattern):
    with pytest.raises(DatasetError, match=pattern):
        read_label_table(_write(tmp_path / "t.csv", text))


def test_strict_classes_and_on_error(tmp_path):
    path = _write(tmp_path / "t.csv", "ImageId,ClassId,EncodedPixels\na.jpg,5,1 1\nb.jpg,x,1\nc.jpg,2,1 1\n")
    with pytest.raises(DatasetError, match="ClassId 5 out of range 1..4"):
        read_label_table(path, strict_classes=4)
    errors = []
    t = read_label_table(path, strict_classes=4, on_error=errors.append)
    assert [e.line for e in errors] == [2, 3] and [r.image_id for r in t.rows] == ["c.jpg"]
    with pytest.raises(DatasetError, match="label file not found"):
        read_label_table(tmp_path / "missing.csv")


# --- datasets ---------------------------------------------------------------------------------

def _dataset(root, sizes=((16, 40), (16, 40), (10, 12)), num_classes=4):
    """Images of the given sizes (PNG grey, JPEG RGB, PNG RGB) with known masks."""
    rng = np.random.default_rng(0)
    (root / "train_images").mkdir(parents=True)
    masks = {}
    rows = []
    for k, (h, w) in enumerate(sizes):
        name = f"img{k}" + (".jpg" if k == 1 else ".png")
        shape = (h, w) if k == 0 else (h, w, 3)
        Image.fromarray(rng.integers(0, 255, shape, np.uint8)).save(root / "train_images" / name)
        m = np.zeros((num_classes, h, w), np.uint8)
        if k == 0:  # two classes
            m[0, :3, :5] = 1
            m[2, 5:, 10:] = 1
        if k == 2:
            m[1, 2:4, 2:4] = 1
        masks[name] = m
        rows += [f"{name},{c + 1},{encode_rle(m[c])}" for c in range(num_classes) if m[c].any()]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "train_images" / "clean.png")
    masks["clean.png"] = np.zeros((num_classes, 8, 8), np.uint8)
    _write(root / "train.csv", "ImageId,ClassId,EncodedPixels\n" + "\n".join(rows) + "\n")
    return masks


def test_open_dataset_clean_multiclass_any_size(tmp_path):
    masks = _dataset(tmp_path)
    ds = open_dataset(tmp_path)
    assert [r.image_id for r in ds] == ["clean.png", "img0.png", "img1.jpg", "img2.png"]
    assert ds.num_classes == 4 and ds.class_names == ["class_1", "class_2", "class_3", "class_4"]
    assert ds[0].is_clean and ds[1].class_ids == [1, 3]
    np.testing.assert_array_equal(ds.presence(), [[0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    for r in ds:
        h, w = image_size(r.path)
        img = load_image(r.path)
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        got = ds.masks(r, h, w)
        assert got.shape == (4, h, w)
        np.testing.assert_array_equal(got, masks[r.image_id])
    assert [r.image_id for r in open_dataset(tmp_path, labelled_only=True)] == ["img0.png", "img2.png"]
    sub = ds.subset([3, 1])
    assert [r.image_id for r in sub] == ["img2.png", "img0.png"] and len(sub) == 2


def test_grey_image_loads_as_three_equal_channels(tmp_path):
    _dataset(tmp_path)
    img = load_image(tmp_path / "train_images" / "img0.png")
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    assert np.array_equal(img[..., 0], np.asarray(Image.open(tmp_path / "train_images" / "img0.png")))


def test_sixteen_bit_png_is_scaled_in_file_and_bytes(tmp_path):
    a = (np.arange(12).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "x.png")
    img = load_image(tmp_path / "x.png")
    assert img.shape == (3, 4, 3) and img[0, 0, 0] == 0 and img[-1, -1, 0] == 255
    np.testing.assert_array_equal(decode_image_bytes((tmp_path / "x.png").read_bytes()), img)


def test_steelscan_json_and_more_classes(tmp_path):
    _dataset(tmp_path)
    with open(tmp_path / "train.csv", "a") as f:
        f.write("img2.png,6,1 1\n")
    ds = open_dataset(tmp_path)
    assert ds.num_classes == 6 and ds.presence().shape == (4, 6)
    _write(tmp_path / "steelscan.json", '{"num_classes": 6, "class_names": ["a","b","c","d","e","f"]}')
    assert open_dataset(tmp_path).class_names[-1] == "f"
    _write(tmp_path / "steelscan.json", "[1, 2]")
    with pytest.raises(DatasetError, match="expected a JSON object"):
        open_dataset(tmp_path)


def test_flat_folder_with_labels_csv(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    _write(tmp_path / "labels.csv", "ImageId,ClassId,EncodedPixels\na.png,2,1 3\n")
    ds = open_dataset(tmp_path)
    assert ds.images_dir == tmp_path and ds[0].rles == {2: "1 3"}


def test_images_folder_named_in_steelscan_json(tmp_path):
    # what synth-coil writes: frames/ + train.csv + {"images_dir": "frames"}: trainable as it is
    (tmp_path / "frames").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "frames" / "f1.png")
    _write(tmp_path / "train.csv", "ImageId,ClassId,EncodedPixels\nf1.png,3,2 2\n")
    _write(tmp_path / "steelscan.json", '{"num_classes": 4, "images_dir": "frames"}')
    ds = open_dataset(tmp_path)
    assert ds.images_dir == tmp_path / "frames" and ds[0].rles == {3: "2 2"}


def test_open_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="data folder not found"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "train_images").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        open_dataset(tmp_path)


def test_image_errors(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    for fn in (load_image, image_size):
        with pytest.raises(ImageError, match="bad.jpg: unreadable or corrupt"):
            fn(tmp_path / "bad.jpg")
        with pytest.raises(ImageError, match="image not found"):
            fn(tmp_path / "none.jpg")
    with pytest.raises(ImageError, match="up.png: not a readable image"):
        decode_image_bytes(b"\x89PNG broken", "up.png")


def test_decode_masks_checks_class_range():
    assert decode_masks({1: "1 2", 2: ""}, 2, 2, 2).tolist() == [[[1, 0], [1, 0]], [[0, 0], [0, 0]]]
    with pytest.raises(RLEError, match="class id 3 outside 1..2"):
        decode_masks({3: "1 1"}, 2, 2, 2)


# --- writer -----------------------------------------------------------------------------------

def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    w = KaggleLayoutWriter(tmp_path / "out", 3, ["a", "b", "c"])
    originals = {}
    for k, (name, shape) in enumerate([("p.png", (12, 20)), ("q.png", (12, 20, 3)), ("r.jpg", (9, 7, 3)),
                                       ("s.bmp", (5, 6))]):
        img = rng.integers(0, 255, shape, np.uint8)
        m = (rng.random((3,) + shape[:2]) < 0.2).astype(np.uint8)
        m[1] = 0
        w.add(name, img, m)
        originals[name] = (img, m)
    raw = (tmp_path / "out" / "train_images" / "p.png").read_bytes()
    w.add("t.png", raw, originals["p.png"][1])  # bytes are written as they are
    originals["t.png"] = originals["p.png"]
    csv_path = w.close()
    assert csv_path == tmp_path / "out" / "train.csv"
    with open(csv_path, newline="") as f:
        assert next(csv.reader(f)) == ["ImageId", "ClassId", "EncodedPixels"]
    ds = open_dataset(tmp_path / "out")
    assert ds.num_classes == 3 and ds.class_names == ["a", "b", "c"]
    for r in ds:
        img, m = originals[r.image_id]
        h, w_ = image_size(r.path)
        np.testing.assert_array_equal(ds.masks(r, h, w_), m)
        loaded = load_image(r.path)
        if r.image_id != "r.jpg":  # lossless formats are pixel-exact
            np.testing.assert_array_equal(loaded, img if img.ndim == 3 else np.repeat(img[..., None], 3, 2))
    assert (tmp_path / "out" / "train_images" / "t.png").read_bytes() == raw
    assert Image.open(tmp_path / "out" / "train_images" / "s.bmp").format == "BMP"
    assert Image.open(tmp_path / "out" / "train_images" / "r.jpg").format == "JPEG"


def test_writer_rejects_bad_masks_before_writing(tmp_path):
    w = KaggleLayoutWriter(tmp_path, 2)
    with pytest.raises(DatasetError, match="writer expects"):
        w.add("a.png", np.zeros((4, 4), np.uint8), np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match="image is 4x4 but masks are 5x4"):
        w.add("b.png", np.zeros((4, 4), np.uint8), np.zeros((2, 5, 4), np.uint8))
    assert not any((tmp_path / "train_images").iterdir())


# --- real data --------------------------------------------------------------------------------

def test_real_severstal_train(shared_data):
    sev = shared_data / "severstal"
    ds = open_dataset(sev)
    assert len(ds) == 36 and ds.csv_path == sev / "train.csv"
    with open(sev / "labels" / "image_level_all_train.csv", newline="") as f:
        level = {r["ImageId"]: r for r in csv.DictReader(f)}
    assert sum(len(r.rles) for r in ds) == 21
    for r in ds:
        m = ds.masks(r, 256, 1600)
        assert image_size(r.path) == (256, 1600)
        areas = [int(level[r.image_id][f"area_class_{c}"]) for c in range(1, 5)]
        assert m.reshape(4, -1).sum(axis=1).tolist() == areas
    assert load_image(ds[0].path).shape == (256, 1600, 3)


def test_real_png_decodes(shared_data):
    root = shared_data / "severstal" / "png_decodes"
    ds = open_dataset(root)
    assert len(ds) == 19 and ds.csv_path == root / "labels.csv"
    multi = [r for r in ds if len(r.rles) > 1]
    assert multi and ds.masks(multi[0], 256, 1600).shape == (4, 256, 1600)
    img = load_image(multi[0].path)
    assert img.shape == (256, 1600, 3)
    buf = io.BytesIO(multi[0].path.read_bytes())
    assert np.array_equal(decode_image_bytes(buf.getvalue()), img)


def test_write_labels_csv_writes_positives_only_and_reads_back(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("old contents\n")
    rows = [("a.png", 2, "1 3"), ("a.png", 1, ""), ("b.png", 4, "5 2 9 1")]
    assert write_labels_csv(path, rows) == path
    assert path.read_text() == "ImageId,ClassId,EncodedPixels\na.png,2,1 3\nb.png,4,5 2 9 1\n"
    table = read_label_table(path)
    assert table.format == "current" and table.by_image() == {"a.png": {2: "1 3"}, "b.png": {4: "5 2 9 1"}}
    assert [p.name for p in tmp_path.iterdir()] == ["train.csv"]  # no temporary file left behind
