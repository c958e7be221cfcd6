"""One call that builds an `Inspector` from a bundle or from run folders."""

from __future__ import annotations

from pathlib import Path

from ..inference.cascade import Inspector


def build_inspector(model: str | Path | None = None, *, classifier: str | Path | None = None,
                    segmenter: str | Path | None = None, thresholds: str | Path | None = None,
                    engine: str = "torch", device: str = "cpu", precision: str = "fp32",
                    threads: int | None = None, tta: bool | None = None, batch_size: int = 8,
                    tile: tuple[int, int] | None = None) -> Inspector:
    """An Inspector for a bundle (`model`: a shipped name or a folder) or for run folders
    (`segmenter`, optional `classifier`). `tile` (height, width) pixels: default from the model.
    The returned inspector carries `.settings` (sources, engine, tile, ...) for reports."""
    from ..inference.loading import default_tile, load_cascade

    cascade = load_cascade(classifier, segmenter, model=model, thresholds_path=thresholds, engine=engine,
                           device=device, precision=precision, threads=threads, tta=tta)
    tile = tile or default_tile(cascade.segmenter_config)
    inspector = Inspector(cascade.classifier, cascade.segmenter, cascade.thresholds, cascade.class_names,
                          tile=tile, batch_size=batch_size)
    inspector.settings = {**cascade.settings, "tile": list(inspector.tiling.tile),
                          "overlap": list(inspector.tiling.overlap), "batch_size": batch_size,
                          "gated": cascade.classifier is not None}
    return inspector
