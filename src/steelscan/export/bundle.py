"""Writing model bundles (their layout, and the reading side, live in `steelscan.runtime.bundle`).

`write_bundle` copies two training runs' weights and configs and the thresholds into a
folder and writes manifest.json, with "version" (the steelscan that wrote it) and
"sha256" (`steelscan.runtime.bundle.content_sha256` over the weights and thresholds.json:
`sha256sum [classifier.safetensors] segmenter.safetensors thresholds.json | sha256sum`).
The ONNX files are added by `exporter.export_bundle`."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import __version__
from ..atomic import write_json
from ..errors import ModelError
from ..inference.thresholds import Thresholds, load_thresholds
from ..runtime.bundle import FORMAT, MANIFEST, THRESHOLDS_FILE, bundle_files, content_sha256


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
    manifest.json (PyTorch-only until ONNX files are added), with "version" and "sha256"
    (see the module doc). Returns the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seg_config, seg_weights = read_run(segmenter_run, "segmenter")
    num_classes = int(seg_config.get("num_classes") or seg_config["model"].get("num_classes", 4))
    class_names = list(seg_config.get("class_names") or [f"class_{i}" for i in range(1, num_classes + 1)])
    manifest: dict = {"format": FORMAT, "name": name or out.name, "version": __version__, "num_classes": num_classes,
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
        thresholds = load_thresholds(thresholds, num_classes, class_names)
    if thresholds.num_classes != num_classes:
        raise ModelError(f"thresholds name {thresholds.num_classes} classes, the models {num_classes}")
    thresholds.save(out / THRESHOLDS_FILE)
    files = bundle_files(out, manifest)
    manifest["sha256"] = content_sha256(files)
    manifest["sha256_of"] = [name for name, _ in files]
    write_json(out / MANIFEST, manifest)
    return manifest
