"""Models: ResUNet shapes and structure, classifier transfer-learning semantics,
pretrained-weight loading (torchvision cache, offline EfficientNet-Lite0), safetensors
run folders and their errors, export-friendliness (ONNX, bf16, channels_last)."""

from __future__ import annotations

import json
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from steelscan.errors import ModelError
from steelscan.models import (DefectClassifier, ResUNet, SmpUnet, build_model, count_parameters,
                              load_run, load_state, model_spec_defaults, save_run_weights,
                              save_weights)
from steelscan.models.pretrained import (efficientnet_lite0_imagenet_state_dict,
                                         torchvision_cache_path)
from steelscan.models.resunet import ResidualBlock

# No torch.set_num_threads here: the test runner's OMP_NUM_THREADS=1 holds (one thread per
# pytest worker). Two threads per worker on a 2-core machine made OpenMP spin, not work: the
# overfit test took 205 s beside another worker instead of 7 s.


def tiny_resunet(**kw) -> ResUNet:
    torch.manual_seed(0)
    return ResUNet(base_width=kw.pop("base_width", 4), **kw)


# --- ResUNet --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(37, 61), (256, 400), (200, 200), (256, 1600), (1, 1), (8, 8)])
def test_resunet_output_has_input_size(size):
    model = ResUNet(base_width=8).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 4, *size)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_resunet_other_channels_and_classes():
    model = ResUNet(in_channels=1, num_classes=6, base_width=4).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 30, 50)).shape == (2, 6, 30, 50)


def test_resunet_structure():
    w = 16
    model = ResUNet(base_width=w)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    # 3 encoder + 1 bottleneck + 3 decoder + 1 in the last block
    assert len(blocks) == 8
    assert [e.conv1.out_channels for e in model.encoders] == [2 * w, 4 * w, 8 * w]
    assert model.bottleneck[0].conv1.out_channels == 16 * w
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 3 and all(u.kernel_size == (2, 2) and u.stride == (2, 2) for u in ups)
    # decoder residual blocks see the up-sampled features concatenated with the skip
    assert [d.residual.conv1.in_channels for d in model.decoders] == [16 * w, 8 * w, 4 * w]
    out_conv = model.head[-1]
    assert isinstance(out_conv, nn.Conv2d) and out_conv.kernel_size == (1, 1)
    assert out_conv.out_channels == 4
    # 1x1 projection shortcut exactly where channels change
    for block in blocks:
        changes = block.conv1.in_channels != block.conv2.out_channels
        assert isinstance(block.shortcut, nn.Sequential) == changes
    # normalisation constants are buffers, not learnt, not saved
    assert "normalize.mean" not in model.state_dict()
    assert dict(model.named_buffers())["normalize.mean"].shape == (1, 3, 1, 1)


def test_resunet_skips_are_concatenated(monkeypatch):
    model = tiny_resunet().eval()
    seen = []
    real_cat = torch.cat

    def spy(tensors, dim=0):
        seen.append([tuple(t.shape) for t in tensors])
        return real_cat(tensors, dim=dim)

    monkeypatch.setattr(torch, "cat", spy)
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 48))
    # (up-sampled, skip) at H/4, H/2, H with equal channels: 8w, 4w, 2w for w=4
    assert seen == [[(1, 32, 8, 12), (1, 32, 8, 12)], [(1, 16, 16, 24), (1, 16, 16, 24)],
                    [(1, 8, 32, 48), (1, 8, 32, 48)]]


def test_small_resunet_overfits_one_batch():
    # Two frames holding a bright square (class 1) and a bright line (class 3) of the same
    # brightness: only spatial context tells them apart, so random features under a trained head
    # (Dice <= 0.97 here) or a decoder that lost its skips (Dice ~0) fail; the model reaches >= 0.99
    # by step 40 on every seed tried. Base width 8: at width 4 a class's few last-layer features can
    # all die (ReLU).
    model = tiny_resunet(base_width=8)
    x = 0.3 + 0.2 * torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    target = torch.zeros(2, 4, 32, 48)
    for i, ((y, x0), (ly, lx)) in enumerate([((4, 6), (24, 4)), ((16, 30), (6, 14))]):
        x[i, :, y:y + 10, x0:x0 + 10] = 0.9
        target[i, 0, y:y + 10, x0:x0 + 10] = 1
        x[i, :, ly:ly + 2, lx:lx + 28] = 0.9
        target[i, 2, ly:ly + 2, lx:lx + 28] = 1
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():  # batch statistics still: the running ones lag behind 40 steps
        pred = model(x) > 0
    truth = target > 0
    for c in (0, 2):
        dice = 2 * (pred[:, c] & truth[:, c]).sum() / (pred[:, c].sum() + truth[:, c].sum())
        assert dice > 0.98, (c, float(dice))


# --- classifier -----------------------------------------------------------------------------

def small_classifier(arch="resnet18") -> DefectClassifier:
    torch.manual_seed(0)
    return DefectClassifier(arch, num_classes=4, weights="none")


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_classifier_any_size_full_width(arch):
    model = small_classifier(arch).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 400)).shape == (2, 4)
        assert model(torch.rand(1, 3, 37, 61)).shape == (1, 4)


def test_classifier_grey_single_channel():
    model = DefectClassifier("resnet18", num_classes=3, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 48, 80)).shape == (2, 3)


def _bn_stats(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_freeze_backbone_trains_head_only_and_keeps_bn_stats():
    model = small_classifier()
    model.freeze_backbone()
    model.train()
    assert model.training and model.head.training and not model.backbone.training
    before = _bn_stats(model.backbone)
    head_before = model.head.weight.clone()
    groups = model.param_groups(lr_backbone=1e-4, lr_head=1e-2)
    assert [g["name"] for g in groups] == ["head"]
    opt = torch.optim.SGD(groups, lr=1.0)
    loss = model(torch.rand(4, 3, 64, 96)).sum()
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.head.weight.grad is not None
    assert not torch.equal(model.head.weight, head_before)
    after = _bn_stats(model.backbone)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert count_parameters(model, trainable_only=True) == 512 * 4 + 4


def test_unfreeze_backbone_finetunes_everything():
    model = small_classifier()
    model.freeze_backbone()
    model.unfreeze_backbone()
    model.train()
    assert model.backbone.training
    before = _bn_stats(model.backbone)
    groups = model.param_groups(lr_backbone=1e-4, lr_head=1e-2)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 1e-4), ("head", 1e-2)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    model(torch.rand(4, 3, 64, 96)).sum().backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    after = _bn_stats(model.backbone)
    assert not all(torch.equal(before[k], after[k]) for k in before)


# --- pretrained weights ---------------------------------------------------------------------

@pytest.fixture()
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def test_imagenet_weights_load_from_torch_cache_without_network(torch_home, monkeypatch):
    import torchvision
    cached = torchvision_cache_path("resnet18")
    assert cached == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    cached.parent.mkdir(parents=True)
    torch.save(reference, cached)  # stands in for torchvision's (third-party) file

    def no_network(*args, **kwargs):
        raise AssertionError("must not download when the file is cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    model = build_model({"kind": "classifier", "arch": "resnet18", "weights": "imagenet"})
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in loaded)
    assert "fc.weight" not in loaded and model.head.out_features == 4


def test_imagenet_resnet34_encoder_for_smp_unet_from_cache(torch_home):
    import torchvision
    torch.manual_seed(3)
    reference = torchvision.models.resnet34(weights=None).state_dict()
    # old torchvision files carry no batch-norm step counters
    reference = {k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    cached = torchvision_cache_path("resnet34")
    cached.parent.mkdir(parents=True)
    torch.save(reference, cached)  # stands in for torchvision's (third-party) file
    unet = build_model({"kind": "segmenter", "arch": "smp_unet", "encoder": "resnet34",
                        "weights": "imagenet"})
    encoder = unet.encoder_module.state_dict()
    assert all(torch.equal(encoder[k], v) for k, v in reference.items() if not k.startswith("fc."))


def test_imagenet_weights_without_network_fail_with_one_line(torch_home, monkeypatch):
    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelError) as info:
        build_model({"kind": "classifier", "arch": "resnet34", "weights": "imagenet"})
    message = str(info.value)
    assert "\n" not in message
    assert "resnet34-b627a593.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "--weights PATH" in message


def test_weights_from_local_safetensors_and_grey_input(tmp_path):
    from safetensors.torch import save_file
    import torchvision
    torch.manual_seed(2)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
    model = build_model({"kind": "classifier", "arch": "resnet18", "weights": str(path)})
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    # one grey channel: the RGB kernels summed, so grey x == RGB (x, x, x)
    grey = build_model({"kind": "classifier", "arch": "resnet18", "weights": str(path),
                        "in_channels": 1}).backbone.conv1.weight
    assert torch.allclose(grey[:, 0], reference["conv1.weight"].sum(1))


def test_weights_file_that_does_not_fit(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "other.safetensors"
    save_file({"conv1.weight": torch.zeros(3, 3, 3, 3)}, str(path))
    with pytest.raises(ModelError, match="weights do not fit") as info:
        build_model({"kind": "classifier", "arch": "resnet18", "weights": str(path)})
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="not found"):
        build_model({"kind": "classifier", "arch": "resnet18", "weights": str(tmp_path / "no.pth")})


# --- EfficientNet-Lite0 offline ImageNet weights --------------------------------------------

@pytest.fixture(scope="module")
def lite0_imagenet():
    import timm
    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(efficientnet_lite0_imagenet_state_dict(), strict=True)
    return model


def _imagenet_top5(model, photo: np.ndarray) -> list[int]:
    from steelscan.models.image_input import ImageNetNormalize
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        return model(ImageNetNormalize(3)(x)).topk(5).indices[0].tolist()


@pytest.mark.parametrize("photo,classes", [
    ("chelsea", {281, 282, 285}),   # tabby / tiger cat / Egyptian cat
    ("coffee", {967, 968}),         # espresso / cup
])
def test_efficientnet_lite0_weights_classify_photos(lite0_imagenet, photo, classes):
    import skimage.data
    top5 = _imagenet_top5(lite0_imagenet, getattr(skimage.data, photo)())
    assert top5[0] in classes


def test_efficientnet_lite0_imagenet_backbone_in_classifier_and_unet(lite0_imagenet):
    reference = lite0_imagenet.state_dict()
    classifier = build_model({"kind": "classifier", "arch": "efficientnet_lite0",
                              "weights": "imagenet"})
    for key, value in classifier.backbone.state_dict().items():
        assert torch.equal(value, reference[key]), key
    unet = build_model({"kind": "segmenter", "arch": "smp_unet", "encoder": "efficientnet_lite0",
                        "weights": "imagenet"})
    encoder = unet.encoder_module.state_dict()
    assert len(encoder) > 250
    assert all(torch.equal(v, reference[k]) for k, v in encoder.items())


@pytest.mark.parametrize("encoder", ["resnet34", "efficientnet_lite0"])
def test_smp_unet_any_size(encoder):
    model = SmpUnet(encoder, num_classes=4).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 37, 61)).shape == (1, 4, 37, 61)


def test_smp_unet_narrow_decoder_is_smaller_and_old_specs_keep_smp_default():
    narrow = build_model({"kind": "segmenter", "arch": "smp_unet", "encoder": "efficientnet_lite0",
                          "decoder_channels": [128, 64, 32, 16, 8]})
    default = build_model({"kind": "segmenter", "arch": "smp_unet", "encoder": "efficientnet_lite0"})
    assert count_parameters(narrow.net.decoder) < count_parameters(default.net.decoder) * 0.5
    assert default.net.segmentation_head[0].in_channels == 16      # smp's (256, 128, 64, 32, 16)
    assert narrow.net.segmentation_head[0].in_channels == 8
    with torch.no_grad():
        assert narrow.eval()(torch.rand(1, 3, 40, 72)).shape == (1, 4, 40, 72)
    with pytest.raises(ModelError, match="5 positive integers") as info:
        build_model({"kind": "segmenter", "arch": "smp_unet", "decoder_channels": [64, 32]})
    assert info.value.field == "decoder_channels"


# --- specs, run folders ---------------------------------------------------------------------

def test_spec_defaults_and_errors():
    assert model_spec_defaults("segmenter") == {"kind": "segmenter", "arch": "resunet",
                                                "num_classes": 4, "in_channels": 3,
                                                "base_width": 16}
    assert model_spec_defaults("segmenter", "smp_unet")["encoder"] == "resnet34"
    assert isinstance(build_model({"kind": "segmenter", "base_width": 4}), ResUNet)
    with pytest.raises(ModelError, match="unknown segmenter arch") as info:
        build_model({"kind": "segmenter", "arch": "vit"})
    assert info.value.field == "arch"
    with pytest.raises(ModelError, match="unknown classifier arch"):
        build_model({"kind": "classifier", "arch": "resnet101", "weights": "none"})
    with pytest.raises(ModelError, match="positive integer"):
        build_model({"kind": "segmenter", "num_classes": 0})
    with pytest.raises(ModelError, match="unknown model kind"):
        build_model({"kind": "detector"})
    with pytest.raises(ModelError, match="unknown model kind"):
        build_model({"arch": "resunet"})


def make_run(run_dir, model, spec, which="best"):
    config = {"kind": spec["kind"], "model": spec, "num_classes": spec["num_classes"],
              "class_names": [f"class_{i + 1}" for i in range(spec["num_classes"])]}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    save_run_weights(run_dir, model, which)
    return config


@pytest.mark.parametrize("spec", [
    {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3, "base_width": 4},
    {"kind": "classifier", "arch": "resnet18", "num_classes": 4, "in_channels": 3,
     "weights": "imagenet"},  # load_run must not fetch ImageNet weights
])
def test_run_round_trip_gives_identical_outputs(tmp_path, spec):
    torch.manual_seed(0)
    model = build_model({**spec, "weights": "none"} if "weights" in spec else spec)
    model.train()
    model(torch.rand(2, 3, 32, 48))  # move BN running statistics off their defaults
    model.eval()
    config = make_run(tmp_path / "run", model, spec, "last")
    assert (tmp_path / "run" / "last.safetensors").is_file()
    assert not list((tmp_path / "run").glob("*.tmp"))
    loaded, loaded_config = load_run(tmp_path / "run", "last")
    assert loaded_config == config and not loaded.training
    x = torch.rand(2, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_save_handles_shared_tensors(tmp_path):
    tied = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    tied[1].weight = tied[0].weight
    save_weights(tmp_path / "tied.safetensors", tied)
    fresh = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    load_state(fresh, tmp_path / "tied.safetensors")
    assert torch.equal(fresh[1].weight, tied[0].weight)


def test_load_run_errors(tmp_path):
    spec = {"kind": "segmenter", "arch": "resunet", "num_classes": 4, "in_channels": 3,
            "base_width": 4}
    run = tmp_path / "run"

    def error(which="best") -> str:
        with pytest.raises(ModelError) as info:
            load_run(run, which)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "run folder not found" in error()
    run.mkdir()
    assert "no config.json" in error()
    make_run(run, tiny_resunet(), spec)
    assert "no last.safetensors" in error("last")
    (run / "config.json").write_text(json.dumps({"kind": "segmenter",
                                                 "model": {**spec, "arch": "segformer"}}))
    assert "unknown segmenter arch 'segformer'" in error()
    (run / "config.json").write_text("{not json")
    assert "cannot read config" in error()
    # weights trained for 3 classes, config says 4
    make_run(run, ResUNet(num_classes=3, base_width=4), spec)
    (run / "config.json").write_text(json.dumps({"kind": "segmenter", "model": spec}))
    message = error()
    assert "weights do not fit" in message and "head.1.weight" in message
    assert "(3, 4, 1, 1)" in message and "(4, 4, 1, 1)" in message


def test_save_run_weights_rejects_other_names(tmp_path):
    with pytest.raises(ModelError, match="best"):
        save_run_weights(tmp_path, tiny_resunet(), "final")


# --- deployment paths -----------------------------------------------------------------------

@pytest.mark.parametrize("model", [tiny_resunet(), DefectClassifier("resnet18", 4)],
                         ids=["resunet", "classifier"])
def test_bf16_autocast_and_channels_last(model):
    model = model.eval()
    x = torch.rand(2, 3, 40, 72)
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fast(x.to(memory_format=torch.channels_last))
    assert out.shape == reference.shape and out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    scale = reference.abs().max()
    assert (out.float() - reference).abs().max() < 0.1 * scale + 0.05


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_resunet_onnx_export_has_dynamic_size(tmp_path):
    import onnxruntime as ort
    model = tiny_resunet().eval()
    path = tmp_path / "resunet.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 32, 48),), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                    "logits": {0: "n", 2: "h", 3: "w"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(2, 3, 37, 61), (1, 3, 64, 200)]:
        x = torch.rand(*shape)
        out = session.run(None, {"image": x.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(out, model(x).numpy(), atol=1e-4)


def test_classifier_input_scale_resizes_inside_the_model():
    import torch.nn.functional as F

    full = build_model({"kind": "classifier", "arch": "resnet18", "num_classes": 3, "weights": "none"}).eval()
    half = build_model({"kind": "classifier", "arch": "resnet18", "num_classes": 3, "weights": "none",
                        "input_scale": 0.5}).eval()
    half.load_state_dict(full.state_dict())
    x = torch.rand(2, 3, 64, 200)
    small = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(half(x), full(small), atol=1e-5)
    with pytest.raises(ModelError, match="input_scale"):
        build_model({"kind": "classifier", "arch": "resnet18", "weights": "none", "input_scale": 1.5})
