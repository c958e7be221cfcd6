"""The model shipped in models/neu-seg: it loads by name and segments real NEU-Seg images
it was not trained on (its own validation ids) about as well as its model card says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelscan.metrics import score_pairs

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "models" / "neu-seg"


@pytest.fixture(scope="module")
def neu_inspector():
    if not (BUNDLE / "manifest.json").is_file():
        pytest.skip("models/neu-seg is not in this checkout")
    from steelscan.runtime import build_inspector, read_manifest

    inspector = build_inspector("neu-seg", engine="torch", precision="fp32", batch_size=8)
    return inspector, read_manifest(BUNDLE)


def test_shipped_model_resolves_by_name_and_describes_itself(neu_inspector):
    _, manifest = neu_inspector
    assert manifest["name"] == "neu-seg"
    assert manifest["class_names"] == ["Inclusions", "Patches", "Scratches"]
    card = (BUNDLE / "README.md").read_text()
    for needed in ("steelscan train segmenter", "configs/neu_seg.yaml", "Kaggle", "93.08"):
        assert needed in card
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert size <= 30 * 1024 * 1024


def test_shipped_model_segments_held_out_real_images(neu_inspector, shared_data):
    inspector, manifest = neu_inspector
    root = shared_data / "neu_seg"
    val_ids = manifest["segmenter"]["config"]["data"]["val_ids"][:24]
    images, truths = [], []
    for image_id in val_ids:
        images.append(np.asarray(Image.open(root / "images" / image_id).convert("RGB")))
        index = np.asarray(Image.open(root / "masks" / (Path(image_id).stem + ".png")))
        truths.append(np.stack([index == c for c in (1, 2, 3)]))
    results = inspector.inspect(images, val_ids)
    scores = score_pairs(np.stack([r.masks for r in results]), np.stack(truths))
    assert scores["kaggle_dice"] > 0.85, json.dumps(scores)
    assert all(r.verdict == "NG" for r in results if r.defects) and any(r.defects for r in results)


def test_shipped_model_identity_for_a_manifest_without_sha256(neu_inspector):
    """models/neu-seg predates manifest "version"/"sha256": it loads, and its sha256 is
    computed by the documented recipe (sha256sum segmenter.safetensors thresholds.json | sha256sum)."""
    import hashlib

    inspector, manifest = neu_inspector
    listing = "".join(f"{hashlib.sha256((BUNDLE / name).read_bytes()).hexdigest()}  {name}\n"
                      for name in ("segmenter.safetensors", "thresholds.json"))
    assert inspector.model_info == {"name": "neu-seg", "version": manifest.get("version"),
                                    "sha256": hashlib.sha256(listing.encode()).hexdigest()}
    assert inspector.settings["engine"] == "torch" and inspector.settings["bundle"] == "neu-seg"
