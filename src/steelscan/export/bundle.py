"""Model bundles: one folder that holds everything the cascade needs to run.

    MODEL_DIR/
      manifest.json            {"format": "steelscan-bundle/1", "name", "num_classes", "class_names",
                                "classifier": {"config", "weights", "onnx"?, "onnx_int8"?} | null,
                                "segmenter":  {"config", "weights", "onnx"?, "onnx_int8"?},
                                "thresholds": "thresholds.json", "parity"?: {...}}
      classifier.safetensors   (+ classifier.onnx, classifier.int8.onnx)
      segmenter.safetensors    (+ segmenter.onnx, segmenter.int8.onnx)
      thresholds.json

A bundle runs under PyTorch (the safetensors weights + the model spec in the config)
or ONNX Runtime (fp32 or int8). `--model NAME` means <repo>/models/NAME (the shipped
models); any other value is a folder path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..atomic import write_json
from ..errors import ModelError
from ..inference.thresholds import Thresholds

FORMAT = "steelscan-bundle/1"
MANIFEST = "manifest.json"
THRESHOLDS_FILE = "thresholds.json"
ENGINES = ("torch", "onnx", "onnx-int8")
ROLES = ("classifier", "segmenter")
# src/steelscan/export/bundle.py -> the repository root is three folders up from the package.
REPO_ROOT = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO_ROOT / "models"


def shipped_models() -> list[str]:
    """Names of the bundles in <repo>/models (folders holding a manifest.json)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / MANIFEST).is_file())


def resolve_model(name_or_dir: str | Path) -> Path:
    """A bundle folder from a path or a shipped model's name; ModelError when neither."""
    text = str(name_or_dir)
    candidates = [Path(text)]
    if "/" not in text and "\\" not in text and text not in (".", ".."):
        candidates.append(MODELS_DIR / text)
    for path in candidates:
        if (path / MANIFEST).is_file():
            return path
    shipped = shipped_models()
    listing = ", ".join(shipped) if shipped else f"none in {MODELS_DIR}"
    if candidates[0].is_dir():
        raise ModelError(f"folder has no {MANIFEST} (not a steelscan model bundle; shipped models: "
                         f"{listing})", path=candidates[0])
    raise ModelError(f"no such model folder or shipped model (shipped models: {listing})", path=text)


def run_weights(run_dir: Path) -> Path:
    """RUN_DIR/best.safetensors, else last.safetensors (an interrupted run)."""
    for which in ("best", "last"):
        path = run_dir / f"{which}.safetensors"
        if path.is_file():
            return path
    raise ModelError("run folder has no best.safetensors or last.safetensors", path=run_dir)


def read_run(run_dir: str | Path, kind: str) -> tuple[dict, Path]:
    """(config.json dict, weights path) of a training run, checked to be a `kind` run."""
    from ..models.checkpoint import read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    found = config.get("kind") or config["model"].get("kind")
    if found != kind:
        raise ModelError(f"expected a {kind} run, this one is a {found!r} run", path=run_dir)
    return config, run_weights(run_dir)


def write_bundle(out_dir: str | Path, classifier_run: str | Path | None, segmenter_run: str | Path,
                 thresholds: Thresholds | str | Path | None = None, name: str | None = None,
                 tta: bool = False) -> dict:
    """Copy the runs' weights and configs and the thresholds into `out_dir` and write
    manifest.json (PyTorch-only until ONNX files are added). Returns the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seg_config, seg_weights = read_run(segmenter_run, "segmenter")
    num_classes = int(seg_config.get("num_classes") or seg_config["model"].get("num_classes", 4))
    class_names = list(seg_config.get("class_names") or [f"class_{i}" for i in range(1, num_classes + 1)])
    manifest: dict = {"format": FORMAT, "name": name or out.name, "num_classes": num_classes,
                      "class_names": class_names, "classifier": None, "segmenter": None,
                      "thresholds": THRESHOLDS_FILE, "tta": bool(tta)}
    runs = {"segmenter": (seg_config, seg_weights)}
    if classifier_run is not None:
        runs["classifier"] = read_run(classifier_run, "classifier")
        cls_c = int(runs["classifier"][0].get("num_classes") or 0)
        if cls_c and cls_c != num_classes:
            raise ModelError(f"the classifier predicts {cls_c} classes but the segmenter {num_classes}",
                             path=classifier_run)
    for role, (config, weights) in runs.items():
        shutil.copyfile(weights, out / f"{role}.safetensors")
        manifest[role] = {"config": config, "weights": f"{role}.safetensors"}
    if thresholds is None:
        thresholds = Thresholds.defaults(num_classes, class_names)
    elif not isinstance(thresholds, Thresholds):
        from ..inference.thresholds import load_thresholds
        thresholds = load_thresholds(thresholds, num_classes, class_names)
    if thresholds.num_classes != num_classes:
        raise ModelError(f"thresholds name {thresholds.num_classes} classes, the models {num_classes}")
    thresholds.save(out / THRESHOLDS_FILE)
    write_json(out / MANIFEST, manifest)
    return manifest


def read_manifest(model_dir: str | Path) -> dict:
    """manifest.json of a bundle, checked for the fields the loaders use."""
    path = Path(model_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no {MANIFEST} (not a steelscan model bundle)", path=model_dir) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read manifest ({e.__class__.__name__}: {e})", path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"not a {FORMAT} manifest", path=path, field="format")
    if not isinstance(manifest.get("segmenter"), dict):
        raise ModelError("manifest names no segmenter", path=path, field="segmenter")
    for role in ROLES:
        entry = manifest.get(role)
        if entry is not None and not (isinstance(entry, dict) and isinstance(entry.get("config"), dict)
                                      and isinstance(entry["config"].get("model"), dict)):
            raise ModelError("expected {\"config\": {\"model\": spec, ...}, \"weights\": ...}",
                             path=path, field=role)
    return manifest


def _torch_runner(model_dir: Path, role: str, entry: dict, precision: str, device: str):
    from ..inference.runners import TorchRunner
    from ..models import build_model, load_state

    spec = entry["config"]["model"]
    weights = model_dir / entry.get("weights", f"{role}.safetensors")
    if not weights.is_file():
        raise ModelError(f"{role} weights not found", path=weights)
    model = build_model({**spec, "weights": "none"})
    load_state(model, weights)
    return TorchRunner(model, device=device, precision=precision, channels_last=precision == "bf16",
                       kind=role, num_classes=int(spec.get("num_classes", 0)),
                       in_channels=int(spec.get("in_channels", 3)))


def _onnx_runner(model_dir: Path, role: str, entry: dict, engine: str, threads: int | None):
    from .onnx_runner import OnnxRunner

    key = "onnx" if engine == "onnx" else "onnx_int8"
    if not entry.get(key):
        hint = " (export with --int8)" if key == "onnx_int8" else " (run steelscan export)"
        raise ModelError(f"bundle has no {engine} {role}{hint}", path=model_dir / MANIFEST, field=f"{role}.{key}")
    return OnnxRunner(model_dir / entry[key], threads=threads)


def load_bundle(name_or_dir: str | Path, engine: str = "torch", precision: str = "fp32",
                threads: int | None = None, device: str = "cpu", tta: bool | None = None):
    """Load a bundle's runners: (classifier Runner | None, segmenter Runner, Thresholds, manifest).

    engine: "torch" (precision fp32 | bf16, bf16 runs channels-last), "onnx" (fp32) or
    "onnx-int8"; threads sets the intra-op threads of either engine (None = all cores)."""
    if engine not in ENGINES:
        raise ModelError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})", field="engine")
    if precision not in ("fp32", "bf16"):
        raise ModelError(f"precision must be fp32 or bf16, got {precision!r}", field="precision")
    model_dir = resolve_model(name_or_dir)
    manifest = read_manifest(model_dir)
    if threads and engine == "torch":
        import torch
        torch.set_num_threads(int(threads))
    runners = {}
    for role in ROLES:
        entry = manifest.get(role)
        if entry is None:
            runners[role] = None
        elif engine == "torch":
            runners[role] = _torch_runner(model_dir, role, entry, precision, device)
        else:
            runners[role] = _onnx_runner(model_dir, role, entry, engine, threads)
    from ..inference.thresholds import load_thresholds
    thresholds = load_thresholds(model_dir / manifest.get("thresholds", THRESHOLDS_FILE),
                                 int(manifest["num_classes"]), manifest.get("class_names"))
    manifest = {**manifest, "path": str(model_dir)}
    from ..inference.runners import with_tta
    use_tta = bool(manifest.get("tta", False)) if tta is None else tta  # its thresholds were tuned so
    return (with_tta(runners["classifier"], use_tta), with_tta(runners["segmenter"], use_tta),
            thresholds, manifest)
