"""Export: bundles, ONNX with dynamic sizes, int8 calibrated on frames of a Kaggle folder,
parity numbers in the manifest, the loud failure when parity breaks, bundle resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steelscan.atomic import write_json
from steelscan.cli import main
from steelscan.data.layout import KaggleLayoutWriter
from steelscan.data.synth import generate_image, image_rng
from steelscan.errors import ModelError
from steelscan.export import write_bundle
from steelscan.export.exporter import ParityError, export_bundle
from steelscan.export.parity import MIN_MASK_DICE
from steelscan.inference.cascade import Inspector, to_batch_array
from steelscan.models import build_model, save_run_weights
from steelscan.runtime import OnnxRunner, build_inspector, load_bundle, resolve_model

SIZE = (64, 256)


def settle(model):
    """Batch-norm statistics from a few passes, so a random model's outputs are not saturated."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, *SIZE))
    return model.eval()


def make_run(path, spec):
    torch.manual_seed(0)
    save_run_weights(path, settle(build_model(spec)))
    write_json(path / "config.json", {"kind": spec["kind"], "model": spec, "num_classes": 4,
                                      "class_names": ["c1", "c2", "c3", "c4"], "train": {}, "data": {}})
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cls = make_run(root / "cls", {"kind": "classifier", "arch": "resnet18", "num_classes": 4,
                                  "in_channels": 3, "weights": "none"})
    seg = make_run(root / "seg", {"kind": "segmenter", "arch": "resunet", "num_classes": 4,
                                  "in_channels": 3, "base_width": 4})
    data = root / "calib"
    writer = KaggleLayoutWriter(data, 4)
    for i in range(6):
        image, masks = generate_image(image_rng(3, i), *SIZE)
        writer.add(f"img_{i}.png", image, masks)
    writer.close()
    return cls, seg, data


@pytest.fixture(scope="module")
def bundle(runs, tmp_path_factory):
    cls, seg, data = runs
    out = tmp_path_factory.mktemp("models") / "tiny"
    manifest = export_bundle(out, cls, seg, int8=True, calib_data=data, calib_images=4, parity_images=2,
                             name="tiny", min_mask_dice={"onnx-int8": 0.0})
    return out, manifest


def test_bundle_files_and_manifest(bundle):
    out, manifest = bundle
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["format"] == "steelscan-bundle/1" and manifest["name"] == "tiny"
    assert manifest["class_names"] == ["c1", "c2", "c3", "c4"]
    for role in ("classifier", "segmenter"):
        entry = manifest[role]
        for key in ("weights", "onnx", "onnx_int8"):
            assert (out / entry[key]).is_file()
        assert entry["config"]["model"]["kind"] == role
    assert (out / "thresholds.json").is_file() and not out.with_name("tiny.partial").exists()
    assert manifest["export"]["opset"] >= 17
    assert max(manifest["export"]["max_abs_prob_dynamic_check"].values()) < 1e-4


def test_parity_numbers_recorded(bundle):
    parity = bundle[1]["parity"]
    fp32, int8 = parity["onnx"], parity["onnx-int8"]
    assert fp32["passed"] and fp32["min_mask_dice"] == MIN_MASK_DICE["onnx"] == 0.99
    assert fp32["mask_dice_agreement"] >= 0.99 and fp32["max_abs_prob_segmenter"] < 1e-4
    assert fp32["max_abs_prob_classifier"] < 1e-4 and fp32["n_images"] == 2
    assert 0.0 < int8["max_abs_prob_segmenter"] < 0.5  # int8 really differs, but not wildly
    assert 0.0 <= int8["mask_dice_agreement"] <= 1.0 and "pooled_pixel_dice" in int8
    assert "calib" in parity["data"]  # parity frames came from the Kaggle folder, after the calibration ones


def test_int8_calibrated_on_the_given_folder(bundle, runs):
    info = bundle[1]["export"]["int8"]
    assert str(runs[2]) in info["calibration_data"] and "4 images" in info["calibration_data"]
    assert info["format"] == "QDQ" and "per-channel" in info["weights"]
    import onnx
    graph = onnx.load(bundle[0] / "segmenter.int8.onnx").graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)


@pytest.mark.parametrize("size", [(64, 256), (37, 101)])
def test_onnx_dynamic_batch_and_size(bundle, size):
    out, _ = bundle
    x = np.random.default_rng(1).random((3, 3, *size), dtype=np.float32)
    _, seg_t, _, _ = load_bundle(out, engine="torch")
    cls_o, seg_o, _, _ = load_bundle(out, engine="onnx", threads=1)
    assert isinstance(seg_o, OnnxRunner) and seg_o.kind == "segmenter" and seg_o.num_classes == 4
    got = seg_o(x)
    assert got.shape == (3, 4, *size) and np.abs(got - seg_t(x)).max() < 1e-4
    assert cls_o(x).shape == (3, 4)


def test_every_engine_runs_the_cascade(bundle):
    image = generate_image(image_rng(9, 0), *SIZE)[0]
    for engine in ("torch", "onnx", "onnx-int8"):
        cls, seg, thr, manifest = load_bundle(bundle[0], engine=engine)
        result = Inspector(cls, seg, thr).inspect_image(image, "x")
        assert result.masks.shape == (4, *SIZE) and result.verdict in ("OK", "NG")
    cls, seg, thr, _ = load_bundle(bundle[0], engine="torch", precision="bf16")
    assert seg(to_batch_array(image)[None]).shape == (1, 4, *SIZE)


def test_broken_parity_fails_loudly(runs, tmp_path, monkeypatch, capsys):
    cls, seg, _ = runs
    real_call = OnnxRunner.__call__
    monkeypatch.setattr(OnnxRunner, "__call__", lambda self, batch: 1.0 - real_call(self, batch))
    out = tmp_path / "broken"
    with pytest.raises(ParityError, match=r"onnx: mask Dice agreement 0\.\d+ \(min 0\.99\)"):
        export_bundle(out, None, seg, parity_images=2, image_size=SIZE)
    assert not out.exists()  # never a half-valid bundle under the asked name
    manifest = json.loads((tmp_path / "broken.partial" / "manifest.json").read_text())
    assert manifest["parity"]["onnx"]["passed"] is False
    code = main(["export", "--segmenter", str(seg), "--out", str(out),
                 "--parity-images", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("steelscan export: error: parity check failed: onnx: mask Dice")


def test_resolve_model_names_and_errors(bundle, tmp_path):
    assert resolve_model(bundle[0]) == bundle[0]
    with pytest.raises(ModelError, match="shipped models"):
        resolve_model("no-such-model-xyz")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelError, match="not a steelscan model bundle"):
        resolve_model(tmp_path / "plain")
    with pytest.raises(ModelError, match="no onnx-int8"):
        seg_only = tmp_path / "seg_only"
        write_bundle(seg_only, None, _seg_run(bundle))
        load_bundle(seg_only, engine="onnx-int8")


def _seg_run(bundle):
    """Rebuild a segmenter run folder from the bundle's own files."""
    out, manifest = bundle
    run = out.parent / "seg_run_copy"
    run.mkdir(exist_ok=True)
    (run / "best.safetensors").write_bytes((out / "segmenter.safetensors").read_bytes())
    write_json(run / "config.json", manifest["segmenter"]["config"])
    return run


def test_write_bundle_checks_kinds(runs, tmp_path):
    cls, seg, _ = runs
    with pytest.raises(ModelError, match="expected a segmenter run"):
        write_bundle(tmp_path / "b", None, cls)
    manifest = write_bundle(tmp_path / "b", None, seg)
    assert manifest["classifier"] is None
    c, s, thr, _ = load_bundle(tmp_path / "b")
    assert c is None and thr.num_classes == 4


def test_engine_auto_picks_the_fastest_graph_the_bundle_has(bundle, tmp_path):
    out, manifest = bundle
    fast = build_inspector(out, engine="auto", threads=1)
    assert fast.settings["engine"] == "onnx-int8" and isinstance(fast.segmenter, OnnxRunner)
    assert fast.segmenter.path.name == "segmenter.int8.onnx" and fast.classifier.num_classes == 4
    assert fast.model_info == {"name": "tiny", "version": manifest["version"], "sha256": manifest["sha256"]}
    torch_only = tmp_path / "torch_only"
    write_bundle(torch_only, None, _seg_run(bundle))
    assert build_inspector(torch_only, engine="auto").settings["engine"] == "torch"
