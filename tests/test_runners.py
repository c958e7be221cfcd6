"""Runner wrappers: flip test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from steelscan.errors import ModelError
from steelscan.inference.runners import FlipTTA, with_tta


class RampSegmenter:
    """Probability = the image's red channel times a left-to-right ramp: not flip-invariant."""

    kind, num_classes, in_channels = "segmenter", 1, 3

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        ramp = np.linspace(0.0, 1.0, batch.shape[-1], dtype=np.float32)
        return (batch[:, :1] * ramp).astype(np.float32)


def test_flip_tta_averages_the_mirrored_views_mapped_back():
    rng = np.random.default_rng(0)
    batch = rng.random((2, 3, 8, 10), dtype=np.float32)
    base = RampSegmenter()
    out = FlipTTA(base)(batch)
    ramp = np.linspace(0.0, 1.0, 10, dtype=np.float32)
    red = batch[:, :1]
    # plain view, h-flip (ramp reversed once mapped back), v-flip (same ramp)
    expected = (red * ramp + red * ramp[::-1] + red * ramp) / 3
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert base.calls == 3
    assert (FlipTTA(base).kind, FlipTTA(base).num_classes) == ("segmenter", 1)


def test_flip_tta_leaves_a_flip_invariant_model_unchanged_and_classifier_scores_unflipped():
    class MeanClassifier:
        kind, num_classes, in_channels = "classifier", 2, 3

        def __call__(self, batch):
            m = batch.mean(axis=(1, 2, 3))
            return np.stack([m, 1 - m], axis=1).astype(np.float32)

    batch = np.random.default_rng(1).random((3, 3, 5, 7), dtype=np.float32)
    np.testing.assert_allclose(FlipTTA(MeanClassifier())(batch), MeanClassifier()(batch), rtol=1e-6)
    assert with_tta(None, True) is None and isinstance(with_tta(MeanClassifier(), True), FlipTTA)


def test_unknown_flip_is_refused():
    with pytest.raises(ModelError, match="tta"):
        FlipTTA(RampSegmenter(), flips=("rot90",))
