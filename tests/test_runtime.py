"""steelscan.runtime: build_inspector from run folders and from the bundle written from them
gives the same masks and the same identity; manifests carry version + sha256 (old ones load
without); engine auto; the service inspects long strips in tiles as predict does."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import steelscan
from steelscan.atomic import write_json
from steelscan.errors import ConfigError, ModelError
from steelscan.export import write_bundle
from steelscan.inference.thresholds import Thresholds
from steelscan.models import build_model, save_run_weights
from steelscan.runtime import build_inspector, fastest_engine

NAMES = ["a", "b", "c"]


def make_run(run_dir, spec, train=None):
    torch.manual_seed(1)
    save_run_weights(run_dir, build_model(spec).eval())
    write_json(run_dir / "config.json", {"kind": spec["kind"], "model": spec, "num_classes": 3,
                                         "class_names": NAMES, "train": train or {}, "data": {}})
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime")
    seg = make_run(root / "seg", {"kind": "segmenter", "arch": "resunet", "num_classes": 3, "in_channels": 3,
                                  "base_width": 4}, train={"crop": [64, 1800]})  # wider than a frame
    cls = make_run(root / "cls", {"kind": "classifier", "arch": "resnet18", "num_classes": 3, "in_channels": 3,
                                  "weights": "none"})
    # thresholds that let random weights through (label 0: every class passes the gate)
    thresholds = Thresholds.defaults(3, NAMES)
    for c in range(3):
        thresholds = thresholds.with_class(c, label_threshold=0.0, pixel_threshold=0.5)
    thresholds.save(root / "thresholds.json")
    bundle = root / "bundle"
    manifest = write_bundle(bundle, cls, seg, root / "thresholds.json", name="tiny")
    return {"seg": seg, "cls": cls, "thresholds": root / "thresholds.json", "bundle": bundle, "manifest": manifest}


def frames(n=3, size=(32, 96)):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def shell_sha256(folder, names):
    """What `sha256sum NAMES... | sha256sum` prints, computed by hand."""
    listing = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    return hashlib.sha256(listing.encode()).hexdigest()


def test_runs_and_their_bundle_give_the_same_masks_and_identity(runs):
    from_runs = build_inspector(classifier=runs["cls"], segmenter=runs["seg"], thresholds=runs["thresholds"])
    from_bundle = build_inspector(runs["bundle"])
    images = frames()
    a = from_runs.inspect(images, ["x", "y", "z"])
    b = from_bundle.inspect(images, ["x", "y", "z"])
    masks_a, masks_b = np.stack([r.masks for r in a]), np.stack([r.masks for r in b])
    assert masks_a.any() and not masks_a.all()  # a real comparison, not two empty stacks
    np.testing.assert_array_equal(masks_a, masks_b)
    np.testing.assert_allclose(np.stack([r.class_scores for r in a]), np.stack([r.class_scores for r in b]),
                               atol=1e-6)
    assert from_runs.model_info["sha256"] == from_bundle.model_info["sha256"] == runs["manifest"]["sha256"]
    assert from_runs.model_info["name"] == "seg" and from_bundle.model_info["name"] == "tiny"
    assert from_bundle.settings["engine"] == from_runs.settings["engine"] == "torch"
    assert from_bundle.settings["tile"] == from_runs.settings["tile"] == [256, 1800]  # the training crop
    assert from_bundle.settings["gated"]


def test_manifest_version_and_sha256_and_an_old_manifest_still_loads(runs, tmp_path):
    bundle, manifest = runs["bundle"], runs["manifest"]
    assert manifest["version"] == steelscan.__version__
    names = ["classifier.safetensors", "segmenter.safetensors", "thresholds.json"]
    assert manifest["sha256_of"] == names and manifest["sha256"] == shell_sha256(bundle, names)
    old = tmp_path / "old"
    old.mkdir()
    for name in names:
        (old / name).write_bytes((bundle / name).read_bytes())
    legacy = {k: v for k, v in manifest.items() if k not in ("version", "sha256", "sha256_of")}
    (old / "manifest.json").write_text(json.dumps(legacy))
    inspector = build_inspector(old)
    assert inspector.model_info == {"name": "tiny", "version": None, "sha256": manifest["sha256"]}
    other = tmp_path / "other.json"
    Thresholds.defaults(3, NAMES).save(other)
    assert build_inspector(old, thresholds=other).model_info["sha256"] != manifest["sha256"]


def test_engine_auto_and_the_errors_before_any_weights(runs, tmp_path):
    assert build_inspector(segmenter=runs["seg"], engine="auto").settings["engine"] == "torch"
    with pytest.raises(ConfigError, match="needs an exported bundle"):
        build_inspector(segmenter=runs["seg"], engine="onnx")
    with pytest.raises(ConfigError, match="not both"):
        build_inspector(runs["bundle"], segmenter=runs["seg"])
    with pytest.raises(ConfigError, match="--tile-width must be >= 16"):
        build_inspector(runs["bundle"], tile=(None, 8))
    with pytest.raises(ModelError, match="no onnx"):
        build_inspector(runs["bundle"], engine="onnx")
    seg = {"config": {}, "onnx": "s.onnx", "onnx_int8": "s.int8.onnx"}
    assert fastest_engine({"segmenter": seg, "classifier": None}) == "onnx-int8"
    assert fastest_engine({"segmenter": seg, "classifier": {"onnx": "c.onnx"}}) == "onnx"
    assert fastest_engine({"segmenter": {"config": {}}, "classifier": None}) == "torch"


class Recorder:
    """A segmenter wrapper that remembers the widths and mean brightness it was given."""

    def __init__(self, inner):
        self.inner, self.widths, self.means = inner, [], []
        self.kind, self.num_classes, self.in_channels = inner.kind, inner.num_classes, inner.in_channels

    def __call__(self, batch):
        self.widths.append(batch.shape[-1])
        self.means.append(float(batch.mean()))
        return self.inner(batch)


def png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_service_inspects_a_long_strip_in_tiles_like_predict(runs, tmp_path):
    from fastapi.testclient import TestClient

    from steelscan.service.app import create_app

    app = create_app(runs["bundle"], db_path=tmp_path / "db.sqlite")
    inspector = app.state.inspector
    # the tile predict uses for this model (its training crop), not the service's own choice
    assert inspector.batch_size == 1 and inspector.tiling.tile == (256, 1800)
    recorder = inspector.segmenter = Recorder(inspector.segmenter)
    strip = np.random.default_rng(0).integers(0, 256, (32, 2000, 3), dtype=np.uint8)
    deep = np.linspace(0, 60000, 32 * 64).reshape(32, 64).astype(np.uint16)  # a 16-bit grey frame
    with TestClient(app) as client:
        assert client.get("/healthz").json()["model"] == "tiny"
        r = client.post("/v1/inspect", files={"file": ("strip.png", png(strip), "image/png")})
        assert r.status_code == 200 and r.json()["result"]["width"] == 2000
        assert recorder.widths == [1800, 1800]  # two overlapping tiles, not one 2000-px pass
        r = client.post("/v1/inspect", files={"file": ("deep.png", png(deep), "image/png")})
    assert r.status_code == 200 and r.json()["result"]["width"] == 64
    assert 0.4 < recorder.means[-1] < 0.6  # scaled to 0..255; clipped it would be almost all white
