"""Reading model bundles: one folder that holds everything the cascade needs to run.

    MODEL_DIR/
      manifest.json            {"format": "steelscan-bundle/1", "name", "version", "sha256", "sha256_of",
                                "num_classes", "class_names",
                                "classifier": {"config", "weights", "onnx"?, "onnx_int8"?} | null,
                                "segmenter":  {"config", "weights", "onnx"?, "onnx_int8"?},
                                "thresholds": "thresholds.json", "parity"?: {...}}
      classifier.safetensors   (+ classifier.onnx, classifier.int8.onnx)
      segmenter.safetensors    (+ segmenter.onnx, segmenter.int8.onnx)
      thresholds.json

A bundle runs under PyTorch (the safetensors weights + the model spec in the config)
or ONNX Runtime (fp32 or int8). `--model NAME` means <repo>/models/NAME (the shipped
models); any other value is a folder path. `steelscan.export` writes bundles; this
module only reads them. "version" (the steelscan that wrote the bundle) and "sha256"
(`content_sha256`) are absent from bundles written before they existed: such bundles
load all the same, and their sha256 is computed on reading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from ..errors import ModelError
from ..inference.runners import TorchRunner, with_tta
from ..inference.thresholds import Thresholds, load_thresholds

FORMAT = "steelscan-bundle/1"
MANIFEST = "manifest.json"
THRESHOLDS_FILE = "thresholds.json"
ENGINES = ("torch", "onnx", "onnx-int8")
ROLES = ("classifier", "segmenter")
# src/steelscan/runtime/bundle.py -> the repository root is three folders up from the package.
REPO_ROOT = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO_ROOT / "models"


def shipped_models() -> list[str]:
    """Names of the bundles in <repo>/models (folders holding a manifest.json)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / MANIFEST).is_file())


def shipped_model(name: str) -> Path:
    """The folder of the shipped bundle `name` (<repo>/models/NAME); ModelError naming that
    path when this checkout does not hold it (an installed package without the repository)."""
    path = MODELS_DIR / name
    if not (path / MANIFEST).is_file():
        raise ModelError(f"the shipped model {name!r} is not here (it comes with a checkout of the steelscan "
                         "repository); give --model NAME_OR_DIR", path=path)
    return path


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


def content_sha256(files: Iterable[tuple[str, bytes | Path]]) -> str:
    """What identifies a model: the sha256 of `sha256sum`'s output over its files, i.e. of
    the lines "<sha256 of the file's bytes>  <name>\\n" in the order given. For a bundle
    (`bundle_files`) the same digest comes from the shell:
        sha256sum segmenter.safetensors thresholds.json | sha256sum
    (with classifier.safetensors first when there is one)."""
    lines = []
    for name, content in files:
        data = content.read_bytes() if isinstance(content, Path) else content
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def thresholds_bytes(thresholds: Thresholds) -> bytes:
    """thresholds.json as `Thresholds.save` writes it (atomic.write_json's format)."""
    return (json.dumps(thresholds.to_json(), indent=2, sort_keys=False) + "\n").encode("utf-8")


def bundle_files(model_dir: str | Path, manifest: dict) -> list[tuple[str, Path]]:
    """(name, path) of what `content_sha256` covers: the safetensors weights of each role
    (classifier, then segmenter) and the thresholds file. ONNX graphs are derived from
    the weights and left out."""
    model_dir = Path(model_dir)
    names = [manifest[role].get("weights", f"{role}.safetensors") for role in ROLES if manifest.get(role)]
    names.append(manifest.get("thresholds", THRESHOLDS_FILE))
    return [(name, model_dir / name) for name in names]


def model_info(model_dir: str | Path, manifest: dict, thresholds: Thresholds | None = None) -> dict:
    """{"name", "version", "sha256"} of a bundle; the sha256 is computed for a bundle
    written before manifests carried it (version stays None there), and for `thresholds`
    that replace the bundle's own (the bundle's weights with those thresholds)."""
    sha = manifest.get("sha256") if thresholds is None else None
    if not sha:
        files: list = bundle_files(model_dir, manifest)
        if thresholds is not None:
            files[-1] = (files[-1][0], thresholds_bytes(thresholds))
        try:
            sha = content_sha256(files)
        except OSError as e:
            raise ModelError(f"cannot read the bundle's files ({e.__class__.__name__}: {e})",
                             path=model_dir) from None
    return {"name": manifest.get("name"), "version": manifest.get("version"), "sha256": sha}


def bundle_engines(manifest: dict) -> list[str]:
    """The engines a bundle can run, slowest first: torch, then onnx and onnx-int8 when
    every model of the bundle has that graph."""
    entries = [manifest[role] for role in ROLES if manifest.get(role)]
    return ["torch"] + [engine for engine, key in (("onnx", "onnx"), ("onnx-int8", "onnx_int8"))
                        if all(e.get(key) for e in entries)]


def fastest_engine(manifest: dict) -> str:
    """The fastest engine a bundle can run: onnx-int8, else onnx, else torch."""
    return bundle_engines(manifest)[-1]


def _describe(spec: dict) -> dict:
    return {"num_classes": int(spec.get("num_classes", 0)), "in_channels": int(spec.get("in_channels", 3))}


def _torch_runner(model_dir: Path, role: str, entry: dict, precision: str, device: str) -> TorchRunner:
    from ..models import build_model, load_state

    spec = entry["config"]["model"]
    weights = model_dir / entry.get("weights", f"{role}.safetensors")
    if not weights.is_file():
        raise ModelError(f"{role} weights not found", path=weights)
    model = build_model({**spec, "weights": "none"})
    load_state(model, weights)
    return TorchRunner(model, device=device, precision=precision, channels_last=precision == "bf16",
                       kind=role, **_describe(spec))


def _onnx_runner(model_dir: Path, role: str, entry: dict, engine: str, threads: int | None):
    from .onnx_runner import OnnxRunner

    key = "onnx" if engine == "onnx" else "onnx_int8"
    if not entry.get(key):
        hint = " (export with --int8)" if key == "onnx_int8" else " (run steelscan export)"
        raise ModelError(f"bundle has no {engine} {role}{hint}", path=model_dir / MANIFEST, field=f"{role}.{key}")
    return OnnxRunner(model_dir / entry[key], threads=threads, kind=role, **_describe(entry["config"]["model"]))


def load_bundle(name_or_dir: str | Path, engine: str = "torch", precision: str = "fp32",
                threads: int | None = None, device: str = "cpu", tta: bool | None = None):
    """Load a bundle's runners: (classifier Runner | None, segmenter Runner, Thresholds, manifest).

    engine: "torch" (precision fp32 | bf16, bf16 runs channels-last), "onnx" (fp32),
    "onnx-int8" or "auto" (`fastest_engine`); threads sets the intra-op threads of either
    engine (None = all cores). The returned manifest carries "path" (the folder) and
    "engine" (the one used)."""
    if engine not in ENGINES + ("auto",):
        raise ModelError(f"unknown engine {engine!r} (choose from auto, {', '.join(ENGINES)})", field="engine")
    if precision not in ("fp32", "bf16"):
        raise ModelError(f"precision must be fp32 or bf16, got {precision!r}", field="precision")
    model_dir = resolve_model(name_or_dir)
    manifest = read_manifest(model_dir)
    if engine == "auto":
        engine = fastest_engine(manifest)
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
    thresholds: Thresholds = load_thresholds(model_dir / manifest.get("thresholds", THRESHOLDS_FILE),
                                             int(manifest["num_classes"]), manifest.get("class_names"))
    manifest = {**manifest, "path": str(model_dir), "engine": engine}
    use_tta = bool(manifest.get("tta", False)) if tta is None else tta  # its thresholds were tuned so
    return (with_tta(runners["classifier"], use_tta), with_tta(runners["segmenter"], use_tta),
            thresholds, manifest)
