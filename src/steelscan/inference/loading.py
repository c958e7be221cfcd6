"""Load the cascade's parts (two run folders or one bundle, and thresholds) and check
that they belong together, before any image is touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, ModelError
from .runners import Runner, run_config, runner_from_run, with_tta
from .thresholds import Thresholds, load_thresholds
from .tiling import DEFAULT_TILE


@dataclass
class Cascade:
    """A classifier (or None), a segmenter, their thresholds and where they came from."""

    classifier: Runner | None
    segmenter: Runner
    thresholds: Thresholds
    class_names: list[str]
    settings: dict = field(default_factory=dict)  # for reports: sources, engine, device...
    segmenter_config: dict = field(default_factory=dict)
    classifier_config: dict | None = None


def _describe(config: dict) -> tuple[int, int]:
    spec = config.get("model", {})
    return int(config.get("num_classes", spec.get("num_classes", 0))), int(spec.get("in_channels", 3))


def check_runs(classifier_run: str | Path | None, segmenter_run: str | Path) -> tuple[dict | None, dict]:
    """Read both configs (no weights) and check kinds, class counts and channels agree."""
    seg = run_config(segmenter_run)
    if (seg.get("kind") or seg["model"].get("kind")) != "segmenter":
        raise ModelError(f"--segmenter: expected a segmenter run, this one is a {seg.get('kind')!r}",
                         path=segmenter_run)
    if classifier_run is None:
        return None, seg
    cls = run_config(classifier_run)
    if (cls.get("kind") or cls["model"].get("kind")) != "classifier":
        raise ModelError(f"--classifier: expected a classifier run, this one is a {cls.get('kind')!r}",
                         path=classifier_run)
    (cc, cch), (sc, sch) = _describe(cls), _describe(seg)
    if cc != sc:
        raise ModelError(f"the classifier ({classifier_run}) predicts {cc} classes but the segmenter "
                         f"({segmenter_run}) predicts {sc}")
    if cch != sch:
        raise ModelError(f"the classifier ({classifier_run}) takes {cch}-channel images but the "
                         f"segmenter ({segmenter_run}) takes {sch}-channel images")
    return cls, seg


def load_cascade(classifier_run: str | Path | None = None, segmenter_run: str | Path | None = None, *,
                 model: str | None = None, thresholds_path: str | Path | None = None,
                 engine: str = "torch", device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None, tta: bool | None = None) -> Cascade:
    """Two run folders (classifier optional) or one bundle (`model`, a name or folder).
    tta: flip test-time augmentation (None: the bundle's own setting; off for run folders).

    Every mismatch (class count, channels, thresholds) raises before weights load."""
    if threads:
        import torch
        torch.set_num_threads(int(threads))
    if model is not None:
        if classifier_run or segmenter_run:
            raise ConfigError("give either --model or --classifier/--segmenter, not both")
        return _load_bundle(model, thresholds_path, engine, device, precision, threads, tta)
    if segmenter_run is None:
        raise ConfigError("a segmenter is needed: --segmenter RUN_DIR or --model NAME_OR_DIR")
    if engine != "torch":
        raise ConfigError(f"--engine {engine} needs an exported bundle (--model); run folders use torch")
    cls_cfg, seg_cfg = check_runs(classifier_run, segmenter_run)
    num_classes, _ = _describe(seg_cfg)
    names = list(seg_cfg.get("class_names") or [f"class_{i}" for i in range(1, num_classes + 1)])
    thresholds = load_thresholds(thresholds_path, num_classes, names)
    segmenter, seg_cfg = runner_from_run(segmenter_run, "segmenter", device, precision)
    classifier = None
    if classifier_run is not None:
        classifier, cls_cfg = runner_from_run(classifier_run, "classifier", device, precision)
    classifier, segmenter = with_tta(classifier, bool(tta)), with_tta(segmenter, bool(tta))
    settings = {"classifier": str(classifier_run) if classifier_run else None,
                "segmenter": str(segmenter_run), "thresholds": thresholds.source,
                "engine": engine, "device": device, "precision": precision, "threads": threads,
                "tta": bool(tta)}
    return Cascade(classifier, segmenter, thresholds, names, settings, seg_cfg, cls_cfg)


def _load_bundle(model: str, thresholds_path, engine, device, precision, threads, tta) -> Cascade:
    if thresholds_path is not None:
        Thresholds.load(thresholds_path)  # a malformed file stops us before any weights load
    try:
        from ..export.bundle import load_bundle
    except ModuleNotFoundError as e:
        raise ConfigError(f"--model needs steelscan.export.bundle, which is not available ({e})") from None
    classifier, segmenter, thresholds, manifest = load_bundle(model, engine=engine, precision=precision,
                                                              threads=threads, device=device, tta=tta)
    names = list(manifest.get("class_names") or thresholds.class_names)
    if thresholds_path is not None:
        thresholds = load_thresholds(thresholds_path, len(names), names)
    seg_cfg = (manifest.get("segmenter") or {}).get("config", {})
    cls_cfg = (manifest.get("classifier") or {}).get("config") if manifest.get("classifier") else None
    for runner, cfg, kind in ((segmenter, seg_cfg, "segmenter"), (classifier, cls_cfg, "classifier")):
        if runner is not None and cfg:
            runner_classes, runner_channels = _describe(cfg)
            for attr, value in (("kind", kind), ("num_classes", runner_classes), ("in_channels", runner_channels)):
                if not hasattr(runner, attr):
                    setattr(runner, attr, value)
    settings = {"model": model, "bundle": manifest.get("name"), "thresholds": thresholds.source,
                "engine": engine, "device": device, "precision": precision, "threads": threads,
                "tta": bool(manifest.get("tta", False)) if tta is None else tta}
    return Cascade(classifier, segmenter, thresholds, names, settings, seg_cfg, cls_cfg)


def default_tile(segmenter_config: dict) -> tuple[int, int]:
    """Tile (height, width) pixels for inspection: Severstal's full 256x1600 image unless the
    run says it was trained on larger images."""
    crop = (segmenter_config.get("train") or {}).get("crop")
    if isinstance(crop, (list, tuple)) and len(crop) == 2:
        return max(DEFAULT_TILE[0], int(crop[0])), max(DEFAULT_TILE[1], int(crop[1]))
    return DEFAULT_TILE
