"""Training run folders as the models of an inspector: read their configs, check that a
classifier, a segmenter and a thresholds file belong together before any weights load,
then load them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..inference.runners import Runner, run_config, runner_from_run, with_tta
from ..inference.thresholds import Thresholds, load_thresholds
from .bundle import THRESHOLDS_FILE, content_sha256, thresholds_bytes


def describe(config: dict) -> tuple[int, int]:
    """(class count, input channels) of a run's config.json."""
    spec = config.get("model", {})
    return int(config.get("num_classes", spec.get("num_classes", 0))), int(spec.get("in_channels", 3))


def _kind(config: dict) -> str | None:
    return config.get("kind") or config.get("model", {}).get("kind")


def check_runs(classifier_run: str | Path | None, segmenter_run: str | Path) -> tuple[dict | None, dict]:
    """Read both configs (no weights) and check kinds, class counts and channels agree."""
    seg = run_config(segmenter_run)
    if _kind(seg) != "segmenter":
        raise ModelError(f"--segmenter: expected a segmenter run, this one is a {seg.get('kind')!r}",
                         path=segmenter_run)
    if classifier_run is None:
        return None, seg
    cls = run_config(classifier_run)
    if _kind(cls) != "classifier":
        raise ModelError(f"--classifier: expected a classifier run, this one is a {cls.get('kind')!r}",
                         path=classifier_run)
    (cc, cch), (sc, sch) = describe(cls), describe(seg)
    if cc != sc:
        raise ModelError(f"the classifier ({classifier_run}) predicts {cc} classes but the segmenter "
                         f"({segmenter_run}) predicts {sc}")
    if cch != sch:
        raise ModelError(f"the classifier ({classifier_run}) takes {cch}-channel images but the "
                         f"segmenter ({segmenter_run}) takes {sch}-channel images")
    return cls, seg


@dataclass
class LoadedRuns:
    """What an inspector needs from two run folders."""

    classifier: Runner | None
    segmenter: Runner
    thresholds: Thresholds
    class_names: list[str]
    segmenter_config: dict
    model_info: dict


def _weights(run_dir: str | Path) -> Path:
    """The weights `runner_from_run` loads: best.safetensors, else last.safetensors."""
    best = Path(run_dir) / "best.safetensors"
    return best if best.is_file() else Path(run_dir) / "last.safetensors"


def load_runs(classifier_run: str | Path | None, segmenter_run: str | Path,
              thresholds_path: str | Path | None, *, device: str = "cpu", precision: str = "fp32",
              tta: bool = False) -> LoadedRuns:
    """Check, then load, a segmenter run and an optional classifier run with thresholds
    (None: the defaults). model_info: the segmenter run's folder name, no version, and the
    sha256 the bundle written from these runs and thresholds would carry."""
    cls_cfg, seg_cfg = check_runs(classifier_run, segmenter_run)
    num_classes, _ = describe(seg_cfg)
    names = list(seg_cfg.get("class_names") or [f"class_{i}" for i in range(1, num_classes + 1)])
    thresholds = load_thresholds(thresholds_path, num_classes, names)
    segmenter, seg_cfg = runner_from_run(segmenter_run, "segmenter", device, precision)
    classifier = None
    if classifier_run is not None:
        classifier, _ = runner_from_run(classifier_run, "classifier", device, precision)
    files = [("classifier.safetensors", _weights(classifier_run))] if classifier_run is not None else []
    files += [("segmenter.safetensors", _weights(segmenter_run)), (THRESHOLDS_FILE, thresholds_bytes(thresholds))]
    info = {"name": Path(segmenter_run).resolve().name, "version": None, "sha256": content_sha256(files)}
    return LoadedRuns(with_tta(classifier, tta), with_tta(segmenter, tta), thresholds, names, seg_cfg, info)
