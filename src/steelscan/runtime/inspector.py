"""One call that builds an `Inspector` from a bundle or from run folders: what predict,
evaluate, tune, the benchmark, the service, the line runner and the demo all use."""

from __future__ import annotations

from pathlib import Path

from ..defaults import BATCH_SIZE, TILE
from ..errors import ConfigError
from ..inference.cascade import Inspector
from ..inference.thresholds import Thresholds, load_thresholds
from .bundle import ENGINES, load_bundle, model_info
from .runs import load_runs

MIN_TILE = 16  # px: a smaller tile leaves the networks nothing to see


def default_tile(segmenter_config: dict) -> tuple[int, int]:
    """Tile (height, width) pixels for inspection: a Severstal frame (`defaults.TILE`)
    unless the run says it was trained on larger images."""
    crop = (segmenter_config.get("train") or {}).get("crop")
    if isinstance(crop, (list, tuple)) and len(crop) == 2:
        return max(TILE[0], int(crop[0])), max(TILE[1], int(crop[1]))
    return TILE


def _check(engine: str, batch_size: int, tile) -> None:
    if engine not in ("auto",) + ENGINES:
        raise ConfigError(f"unknown engine {engine!r} (choose from auto, {', '.join(ENGINES)})", field="engine")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}", field="batch_size")
    for name, v in zip(("--tile-height", "--tile-width"), tile or (None, None)):
        if v is not None and v < MIN_TILE:
            raise ConfigError(f"{name} must be >= {MIN_TILE} pixels, got {v}", field="tile")


def build_inspector(model: str | Path | None = None, *, classifier: str | Path | None = None,
                    segmenter: str | Path | None = None, thresholds: str | Path | None = None,
                    engine: str = "torch", device: str = "cpu", precision: str = "fp32",
                    threads: int | None = None, tta: bool | None = None, batch_size: int = BATCH_SIZE,
                    tile: tuple[int | None, int | None] | None = None) -> Inspector:
    """An Inspector for a bundle (`model`: a shipped name or a folder) or for run folders
    (`segmenter`, optional `classifier`), checked before any weights load.

    thresholds: a thresholds.json replacing the bundle's (run folders: default 0.5/0.5/0/0).
    engine: "torch", "onnx", "onnx-int8" (bundles only) or "auto" (the fastest the bundle
    has: onnx-int8, else onnx, else torch; run folders: torch).
    tta: flip test-time augmentation (None: the bundle's own setting; off for run folders).
    tile: (height, width) pixels, either may be None: default from the model (`default_tile`).
    The inspector carries `.settings` (sources, engine, tile, ...) and `.model_info`."""
    _check(engine, batch_size, tile)
    if threads:
        import torch
        torch.set_num_threads(int(threads))
    if model is not None:
        if classifier or segmenter:
            raise ConfigError("give either --model or --classifier/--segmenter, not both")
        parts = _from_bundle(model, thresholds, engine, device, precision, threads, tta)
    else:
        if segmenter is None:
            raise ConfigError("a segmenter is needed: --segmenter RUN_DIR or --model NAME_OR_DIR")
        if engine not in ("torch", "auto"):
            raise ConfigError(f"--engine {engine} needs an exported bundle (--model); run folders use torch")
        parts = _from_runs(classifier, segmenter, thresholds, device, precision, tta)
    cls, seg, thr, names, seg_config, info, settings = parts
    settings.update({"thresholds": thr.source, "device": device, "precision": precision, "threads": threads,
                     "segmenter_arch": (seg_config.get("model") or {}).get("arch", "segmenter")})
    tile_h, tile_w = default_tile(seg_config)
    tile = tile or (None, None)
    return Inspector(cls, seg, thr, names, tile=(tile[0] or tile_h, tile[1] or tile_w), batch_size=batch_size,
                     settings=settings, model_info=info)


def _from_bundle(model, thresholds, engine, device, precision, threads, tta) -> tuple:
    """(classifier, segmenter, thresholds, class names, segmenter config, model info, settings)."""
    if thresholds is not None:
        Thresholds.load(thresholds)  # a malformed file stops us before any weights load
    cls, seg, thr, manifest = load_bundle(model, engine=engine, precision=precision, threads=threads,
                                          device=device, tta=tta)
    names = list(manifest.get("class_names") or thr.class_names)
    if thresholds is not None:
        thr = load_thresholds(thresholds, len(names), names)
    info = model_info(manifest["path"], manifest, thr if thresholds is not None else None)
    settings = {"model": str(model), "bundle": manifest.get("name"), "engine": manifest["engine"],
                "tta": bool(manifest.get("tta", False)) if tta is None else tta}
    return cls, seg, thr, names, manifest["segmenter"].get("config", {}), info, settings


def _from_runs(classifier, segmenter, thresholds, device, precision, tta) -> tuple:
    """The same seven parts as `_from_bundle`, from training run folders (PyTorch)."""
    runs = load_runs(classifier, segmenter, thresholds, device=device, precision=precision, tta=bool(tta))
    settings = {"classifier": str(classifier) if classifier else None, "segmenter": str(segmenter),
                "engine": "torch", "tta": bool(tta)}
    return (runs.classifier, runs.segmenter, runs.thresholds, runs.class_names, runs.segmenter_config,
            runs.model_info, settings)
