"""Tiled inference: a long strip made of known tiles gives the same masks as the tiles
inspected one by one; stitching a local conv net leaves no seam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.inference.tiling import Tiling, ramp, tile_starts, tiled_classify, tiled_segment


class PixelSegmenter:
    """A segmenter whose output at a pixel depends on that pixel only: class c's
    probability is the image's channel c. Any tiling must reproduce it exactly."""

    kind, num_classes, in_channels = "segmenter", 3, 3

    def __init__(self):
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, batch):
        self.calls.append(batch.shape)
        return batch.astype(np.float32).copy()


def known_tiles(n=5, h=64, w=160, seed=0):
    """n RGB tiles, each with a few defect blobs (bright in one channel) away from its edges."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(n):
        im = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)  # background prob < 0.35
        for _ in range(3):
            c = rng.integers(0, 3)
            y, x = rng.integers(4, h - 14), rng.integers(4, w - 24)
            im[y:y + rng.integers(2, 10), x:x + rng.integers(1, 20), c] = 230
        im[10, 10, 0] = 250  # a lone pixel: removed by min_component
        tiles.append(im)
    return tiles


def test_tile_starts_cover_and_overlap():
    for length, tile, overlap in [(8000, 1600, 200), (1601, 1600, 100), (500, 128, 32), (300, 300, 50)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    w = ramp(1000, 200, 300, 50)
    assert w[0] < 0.05 and w[-1] < 0.05 and w[150] == 1.0
    assert (ramp(1000, 0, 300, 50)[:50] == 1).all()


def test_strip_of_known_tiles_equals_tiles_one_by_one():
    tiles = known_tiles()
    strip = np.concatenate(tiles, axis=1)  # 64 x 800
    thresholds = Thresholds.defaults(3).with_class(0, min_component=2)
    seg = PixelSegmenter()
    # tile width 128 does not line up with the 160 px known tiles: seams would show
    strip_inspector = Inspector(None, seg, thresholds, tile=(64, 128), overlap=(0, 40), batch_size=4)
    strip_result = strip_inspector.inspect_image(strip, "strip")
    assert len(seg.calls) > 1 and all(shape[2:] == (64, 128) for shape in seg.calls)
    one_by_one = Inspector(None, PixelSegmenter(), thresholds, tile=(64, 160), batch_size=4)
    tile_results = one_by_one.inspect(tiles, [f"t{i}" for i in range(len(tiles))])
    expected = np.concatenate([r.masks for r in tile_results], axis=2)
    assert strip_result.masks.shape == (3, 64, 800)
    assert np.array_equal(strip_result.masks, expected)
    assert len(strip_result.defects) == sum(len(r.defects) for r in tile_results) > 5
    assert strip_result.masks[0, 10, 10] == 0  # lone pixel removed


def test_tall_images_are_tiled_in_height_too():
    rng = np.random.default_rng(1)
    image = rng.random((3, 300, 500)).astype(np.float32)
    seg = PixelSegmenter()
    (probs,) = tiled_segment(seg, [image], Tiling((128, 200), (32, 50)), batch_size=16)
    assert all(s[2:] == (128, 200) for s in seg.calls)
    np.testing.assert_allclose(probs, image, rtol=1e-6, atol=1e-6)


def test_small_images_go_through_whole_and_mixed_sizes_batch():
    rng = np.random.default_rng(2)
    images = [rng.random((3, 40, 60)).astype(np.float32) for _ in range(3)] + [rng.random((3, 50, 50)).astype(np.float32)]
    seg = PixelSegmenter()
    out = tiled_segment(seg, images, Tiling((256, 1600)), batch_size=8)
    assert sorted(s[0] for s in seg.calls) == [1, 3]
    for a, b in zip(out, images):
        assert np.array_equal(a, b)


def test_classifier_score_of_a_strip_is_the_max_over_tiles():
    class MeanClassifier:
        num_classes, in_channels, kind = 3, 3, "classifier"

        def __call__(self, batch):
            return batch.max(axis=(2, 3))

    strip = np.zeros((3, 32, 1000), np.float32)
    strip[1, 5, 900] = 0.9
    scores = tiled_classify(MeanClassifier(), [strip], Tiling((32, 200), (0, 50)))
    assert scores.shape == (1, 3) and scores[0, 1] == pytest.approx(0.9) and scores[0, 0] == 0


def test_conv_net_stitching_has_no_seam():
    from steelscan.inference.runners import TorchRunner

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 2, 3, padding=1))
    runner = TorchRunner(net, kind="segmenter", num_classes=2, in_channels=3)
    rng = np.random.default_rng(3)
    strip = rng.random((3, 32, 2000)).astype(np.float32)
    whole = runner(strip[None])[0]
    (tiled,) = tiled_segment(runner, [strip], Tiling((32, 400), (32, 64)), batch_size=4)
    # receptive field 2 px: only pixels next to a cut see padding, and they weigh little there
    assert np.abs(tiled - whole).max() < 0.02
    assert np.abs(tiled - whole).mean() < 1e-4
