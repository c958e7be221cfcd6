"""Synthetic strip generator: determinism, statistics, exclusive masks that cover what is drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.data.layout import load_image, open_dataset
from steelscan.data.synth import (CLASS_PRIORS, MIN_CONTRAST, NUM_CLASSES, generate_image,
                                  image_rng, render_sample, synthesize_dataset)
from steelscan.errors import DatasetError
from steelscan.rle import decode_rle, rle_area

SMALL = dict(height=128, width=800)


@pytest.fixture(scope="module")
def samples():
    """200 small frames with the default class mix (seed 3)."""
    return [render_sample(image_rng(3, i), **SMALL) for i in range(200)]


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    a = synthesize_dataset(tmp_path / "a", 6, seed=5, progress=False, **SMALL)
    b = synthesize_dataset(tmp_path / "b", 6, seed=5, progress=False, **SMALL)
    c = synthesize_dataset(tmp_path / "c", 6, seed=6, progress=False, **SMALL)
    files = sorted(p.name for p in (a / "train_images").iterdir())
    assert len(files) == 6
    for name in files:
        assert (a / "train_images" / name).read_bytes() == (b / "train_images" / name).read_bytes()
    assert (a / "train.csv").read_bytes() == (b / "train.csv").read_bytes()
    diff_a = [(a / "train_images" / n).read_bytes() for n in files]
    diff_c = [p.read_bytes() for p in sorted((c / "train_images").iterdir())]
    assert all(x != y for x, y in zip(diff_a, diff_c))


def test_image_depends_only_on_seed_and_index(tmp_path):
    """Image i is the same whatever n is (per-image generators), so n and order don't interact."""
    short = synthesize_dataset(tmp_path / "s", 3, seed=9, progress=False, **SMALL)
    long = synthesize_dataset(tmp_path / "l", 5, seed=9, progress=False, **SMALL)
    for p in sorted((short / "train_images").iterdir()):
        assert p.read_bytes() == (long / "train_images" / p.name).read_bytes()
    img1, m1 = generate_image(image_rng(9, 4), **SMALL)
    img2, m2 = generate_image(image_rng(9, 4), **SMALL)
    assert np.array_equal(img1, img2) and np.array_equal(m1, m2)


def test_parallel_generation_gives_the_same_bytes(tmp_path):
    one = synthesize_dataset(tmp_path / "one", 4, seed=2, progress=False, height=64, width=400)
    two = synthesize_dataset(tmp_path / "two", 4, seed=2, progress=False, height=64, width=400,
                             workers=2)
    for p in sorted((one / "train_images").iterdir()):
        assert p.read_bytes() == (two / "train_images" / p.name).read_bytes()
    assert (one / "train.csv").read_text() == (two / "train.csv").read_text()


def test_clean_fraction_and_class_frequencies_follow_the_real_data(samples):
    presence = np.array([[c in s.class_ids for c in range(1, NUM_CLASSES + 1)] for s in samples])
    clean = ~presence.any(axis=1)
    assert abs(clean.mean() - 0.47) < 0.1  # binomial sd at n=200 is 0.035
    counts = presence.sum(axis=0)
    assert counts[2] == counts.max() and counts[2] > 0.55 * counts.sum()  # class 3 ~72 % of masks
    assert counts[0] > counts[1] and counts[3] > counts[1]  # class 2 is the rarest
    assert (presence.sum(axis=1) == 2).sum() >= 1  # some frames carry two classes


def test_forced_clean_fraction_extremes():
    for i in range(5):
        assert not render_sample(image_rng(0, i), clean_fraction=1.0, **SMALL).masks.any()
        assert render_sample(image_rng(0, i), clean_fraction=0.0, **SMALL).masks.any()


def test_masks_are_exclusive_and_nonempty_exactly_for_listed_classes(samples):
    for s in samples:
        assert s.masks.shape == (NUM_CLASSES, 128, 800) and s.masks.dtype == np.uint8
        assert s.masks.max() <= 1
        assert s.masks.sum(axis=0).max() <= 1  # no pixel in two classes
        nonempty = [c + 1 for c in range(NUM_CLASSES) if s.masks[c].any()]
        assert nonempty == s.class_ids


def test_forced_pairs_stay_exclusive():
    for i in range(8):
        s = render_sample(image_rng(11, i), class_ids=[3, 4], **SMALL)
        assert s.masks.sum(axis=0).max() <= 1
        assert set(s.class_ids) <= {3, 4} and s.class_ids


def test_drawn_pixels_change_exactly_under_the_masks(samples):
    """Before JPEG: outside every mask the frame is the clean background, and every mask
    pixel differs from it by at least MIN_CONTRAST grey levels."""
    for s in samples:
        grey = s.image[:, :, 0].astype(int)
        assert np.array_equal(s.image[:, :, 0], s.image[:, :, 1])
        diff = np.abs(grey - s.background.astype(int))
        inside = s.masks.any(axis=0)
        assert not diff[~inside].any()
        if inside.any():
            assert diff[inside].min() >= MIN_CONTRAST
            assert diff[inside].mean() >= 1.5 * MIN_CONTRAST


def test_defects_stay_visible_after_jpeg(tmp_path):
    root = synthesize_dataset(tmp_path / "d", 12, seed=4, clean_fraction=0.0, progress=False, **SMALL)
    ds = open_dataset(root)
    for i, record in enumerate(ds):
        image = load_image(record.path)[:, :, 0].astype(int)
        background = render_sample(image_rng(4, i), clean_fraction=0.0, **SMALL).background
        inside = ds.masks(record, 128, 800).any(axis=0)
        diff = np.abs(image - background.astype(int))
        assert np.median(diff[inside]) >= 2 * MIN_CONTRAST
        assert np.median(diff[~inside]) <= 3  # JPEG noise only


def test_mask_areas_follow_the_real_statistics():
    """Median mask area per class at 256x1600 within a factor 2 of the real median."""
    for c in range(1, NUM_CLASSES + 1):
        areas = [render_sample(image_rng(5, i), class_ids=[c]).masks[c - 1].sum() for i in range(60)]
        real = CLASS_PRIORS[c].area[2]
        assert real / 2 < np.median(areas) < real * 2, (c, np.median(areas), real)


def test_sizes_scale_with_the_image_height():
    """Half-size frames carry defects of about a quarter of the area."""
    for c in (1, 3):
        full = [render_sample(image_rng(8, i), class_ids=[c]).masks.sum() for i in range(30)]
        half = [render_sample(image_rng(8, i), class_ids=[c], **SMALL).masks.sum() for i in range(30)]
        ratio = np.median(half) / np.median(full)
        assert 0.25 / 2 < ratio < 0.25 * 2, (c, ratio)


def test_texture_runs_along_the_rolling_direction(samples):
    """Clean strip texture is streaky down the rows: neighbouring rows agree more than
    neighbouring columns."""
    for s in samples[:20]:
        g = s.background.astype(float)
        assert np.abs(np.diff(g, axis=0)).mean() < np.abs(np.diff(g, axis=1)).mean()


@pytest.mark.parametrize("height,width", [(200, 200), (64, 400), (256, 1600), (300, 90)])
def test_other_sizes_work(height, width):
    for i in range(4):
        s = render_sample(image_rng(1, i), height, width, clean_fraction=0.0)
        assert s.image.shape == (height, width, 3) and s.masks.shape == (4, height, width)
        assert s.masks.sum(axis=0).max() <= 1 and s.class_ids


def test_dataset_opens_and_rles_decode(tmp_path):
    root = synthesize_dataset(tmp_path / "ds", 10, seed=0, progress=False, **SMALL)
    ds = open_dataset(root)
    assert len(ds) == 10 and ds.num_classes == 4
    for i, record in enumerate(ds):
        _, masks = generate_image(image_rng(0, i), **SMALL)
        assert record.class_ids == [c + 1 for c in range(4) if masks[c].any()]
        for c, rle in record.rles.items():
            assert np.array_equal(decode_rle(rle, 128, 800), masks[c - 1])
            assert rle_area(rle, 128, 800) == masks[c - 1].sum()
        with Image.open(record.path) as im:
            assert im.format == "JPEG" and im.size == (800, 128)


def test_bad_arguments_raise_typed_errors(tmp_path):
    with pytest.raises(DatasetError):
        synthesize_dataset(tmp_path / "x", 0, seed=0)
    with pytest.raises(DatasetError):
        synthesize_dataset(tmp_path / "x", 2, seed=0, clean_fraction=1.5)
    with pytest.raises(DatasetError):
        render_sample(image_rng(0, 0), 4, 4)


def test_cli_writes_dataset_and_preview(tmp_path, capsys):
    out, png = tmp_path / "cli", tmp_path / "preview.png"
    rc = main(["synth", "--out", str(out), "--n", "6", "--seed", "1", "--height", "64",
               "--width", "400", "--preview", str(png), "--quiet"])
    assert rc == 0
    assert len(open_dataset(out)) == 6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    assert "wrote 6 images" in capsys.readouterr().out


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["synth", "--out", str(tmp_path / "o"), "--n", "3", "--clean-fraction", "2"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--clean-fraction" in err[0]


def test_rerun_into_the_same_folder_leaves_no_stale_images(tmp_path):
    root = synthesize_dataset(tmp_path / "r", 5, seed=0, progress=False, height=64, width=400)
    synthesize_dataset(root, 2, seed=1, progress=False, height=64, width=400)
    ds = open_dataset(root)
    assert len(ds) == 2 and all(r.image_id.startswith("synth1_") for r in ds)


def test_refuses_a_folder_with_other_images(tmp_path):
    (tmp_path / "o" / "train_images").mkdir(parents=True)
    (tmp_path / "o" / "train_images" / "real.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not made by steelscan synth"):
        synthesize_dataset(tmp_path / "o", 2, seed=0, progress=False, height=64, width=400)
    assert (tmp_path / "o" / "train_images" / "real.jpg").exists()
