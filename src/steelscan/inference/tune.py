"""Choose per-class thresholds that maximise Kaggle Dice on held-out images.

The models run ONCE over the images; what the search needs is cached: the classifier
scores (N, C) and, per image, the segmenter probabilities after the one-class-per-pixel
rule, quantised to uint8 and block-averaged by an integer factor when the whole cache
would not fit the memory budget (truth masks are pooled the same way; component sizes
and areas are then counted in full-resolution pixels, factor^2 per cell).

Classes are independent in Kaggle Dice once the one-class-per-pixel rule is applied,
so each class is searched on its own, over the full grid of
  label threshold x pixel threshold x min component x min area.
For each pixel threshold every image is labelled once (8-connected components); each
component's size and its overlap with the truth then give, vectorised, every image's
predicted area and intersection for every min component, min area and label threshold.

A class with fewer than `min_positives` positive images keeps the defaults: a handful
of examples would pick thresholds that fit them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..defaults import BATCH_SIZE
from ..errors import ConfigError, DatasetError
from .postprocess import exclusive_classes, label_components
from .thresholds import DEFAULT_LABEL_THRESHOLD, Thresholds
from .tiling import Tiling, tiled_classify, tiled_segment

LABEL_GRID = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist())
PIXEL_GRID = tuple(np.round(np.arange(0.2, 0.851, 0.05), 2).tolist())
SIZE_STEPS = tuple(2 ** k / 10000 for k in range(0, 9))  # fractions of the image area
DEFAULT_MEMORY_BYTES = 2 * 1024 ** 3
DEFAULT_MIN_POSITIVES = 20


@dataclass
class ProbabilityCache:
    """What the search needs from one pass of the models over N images.

    probs[i]: (C, h, w) uint8, segmenter probability x 255 after one-class-per-pixel,
    pooled by `factor`. truth[i]: (C, h, w) bool, pooled the same way (cell = defect when
    at least half its pixels are). scores: (N, C) classifier probabilities or None.
    full_area: (N,) image areas in pixels."""

    image_ids: list[str]
    probs: list[np.ndarray]
    truth: list[np.ndarray]
    scores: np.ndarray | None
    factor: int
    full_area: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def positives(self) -> np.ndarray:
        """(C,) number of images whose (pooled) truth holds the class."""
        return np.array([sum(int(t[c].any()) for t in self.truth) for c in range(self.num_classes)])


def pool(a: np.ndarray, factor: int) -> np.ndarray:
    """Block-mean (C, H, W) by `factor` (zero-padded to a multiple) -> (C, ceil(H/f), ceil(W/f)) float32."""
    if factor == 1:
        return a.astype(np.float32, copy=False)
    c, h, w = a.shape
    H, W = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.zeros((c, H, W), np.float32)
    padded[:, :h, :w] = a
    return padded.reshape(c, H // factor, factor, W // factor, factor).mean(axis=(2, 4))


def choose_factor(total_pixels: int, num_classes: int, memory_bytes: int) -> int:
    """Smallest integer pooling factor whose cache (2 bytes per class-pixel) fits the budget."""
    need = 2 * num_classes * total_pixels
    return max(1, int(np.ceil(np.sqrt(need / max(memory_bytes, 1)))))


def build_cache(classifier, segmenter, items: Iterable[tuple[str, np.ndarray, np.ndarray]],
                class_names: list[str], tiling: Tiling = Tiling(), batch_size: int = BATCH_SIZE, factor: int = 1,
                progress=None) -> ProbabilityCache:
    """Run the models once over `items`: (image id, RGB uint8 (H, W, 3), truth (C, H, W) 0/1),
    streamed, batch_size images at a time (only the pooled cache stays in memory)."""
    from .cascade import to_batch_array

    ids, probs, truth, scores, areas = [], [], [], [], []
    batch: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        arrays = [to_batch_array(im) for _, im, _ in batch]
        if classifier is not None:
            scores.append(tiled_classify(classifier, arrays, tiling, batch_size))
        for (image_id, _, t), p in zip(batch, tiled_segment(segmenter, arrays, tiling, batch_size)):
            ids.append(image_id)
            probs.append(np.round(pool(exclusive_classes(p), factor) * 255).astype(np.uint8))
            truth.append(pool(t, factor) >= 0.5)
            areas.append(t.shape[1] * t.shape[2])
        if progress is not None:
            progress.update(len(batch))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return ProbabilityCache(ids, probs, truth, np.concatenate(scores) if scores else None,
                            factor, np.array(areas, np.int64), list(class_names))


def size_grid(image_area: float) -> np.ndarray:
    """Min component / min area candidates (pixels): 0 and 1/10000 .. 256/10000 of the image."""
    steps = np.round(np.array(SIZE_STEPS) * image_area).astype(np.int64)
    return np.unique(np.concatenate([[0], steps[steps > 0]]))


def _components(cache: ProbabilityCache, c: int, pixel_threshold: float):
    """Per component, over all images: (image index, size px, overlap with truth px)."""
    level = int(np.ceil(pixel_threshold * 255 - 1e-6))
    img, size, inter = [], [], []
    cell = cache.factor ** 2
    for i, (p, t) in enumerate(zip(cache.probs, cache.truth)):
        mask = p[c] >= max(level, 1)
        if not mask.any():
            continue
        labels, n = label_components(mask)
        flat = labels.ravel()
        size.append(np.bincount(flat, minlength=n + 1)[1:] * cell)
        inter.append(np.bincount(flat, weights=t[c].ravel(), minlength=n + 1)[1:] * cell)
        img.append(np.full(n, i))
    if not img:
        return np.zeros(0, int), np.zeros(0), np.zeros(0)
    return np.concatenate(img), np.concatenate(size).astype(np.float64), np.concatenate(inter)


def class_dice_grid(cache: ProbabilityCache, c: int, pixel_threshold: float, min_components: np.ndarray,
                    min_areas: np.ndarray, label_thresholds: np.ndarray) -> np.ndarray:
    """Mean Dice of class c over the images for every (min component, min area, label
    threshold) at one pixel threshold: array (M, A, L)."""
    n = len(cache.probs)
    cell = cache.factor ** 2
    true_area = np.array([t[c].sum() * cell for t in cache.truth], np.float64)  # (N,)
    img, size, inter = _components(cache, c, pixel_threshold)
    keep = size[None, :] >= min_components[:, None]  # (M, K)
    pa = np.zeros((len(min_components), n))
    it = np.zeros_like(pa)
    for m in range(len(min_components)):
        pa[m] = np.bincount(img, weights=size * keep[m], minlength=n)
        it[m] = np.bincount(img, weights=inter * keep[m], minlength=n)
    scores = cache.scores[:, c] if cache.scores is not None else np.ones(n)
    area_ok = (pa[:, None, :] >= min_areas[None, :, None]) & (pa[:, None, :] > 0)  # (M, A, N)
    label_ok = scores[None, :] >= label_thresholds[:, None]  # (L, N)
    predicted = area_ok[:, :, None, :] & label_ok[None, None, :, :]  # (M, A, L, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice_if_pred = np.where(pa + true_area > 0, 2 * it / (pa + true_area), 1.0)  # (M, N)
    dice_if_empty = (true_area == 0).astype(np.float64)  # (N,)
    dice = np.where(predicted, dice_if_pred[:, None, None, :], dice_if_empty)
    return dice.mean(axis=-1)


@dataclass
class ClassReport:
    name: str
    positives: int
    default_dice: float
    tuned_dice: float
    empty_dice: float
    chosen: dict
    kept_default: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "positive_images": self.positives, "dice_default": self.default_dice,
                "dice_tuned": self.tuned_dice, "dice_all_empty": self.empty_dice, "chosen": self.chosen,
                "kept_default": self.kept_default}


@dataclass
class TuneReport:
    thresholds: Thresholds
    classes: list[ClassReport]
    n_images: int
    factor: int
    warnings: list[str] = field(default_factory=list)

    def score(self, key: str) -> float:
        """Kaggle Dice (mean over classes of the per-class means; every image has every class)."""
        return float(np.mean([getattr(c, key) for c in self.classes]))

    def to_json(self) -> dict:
        return {"n_images": self.n_images, "pool_factor": self.factor,
                "kaggle_dice_default": self.score("default_dice"),
                "kaggle_dice_tuned": self.score("tuned_dice"),
                "kaggle_dice_all_empty": self.score("empty_dice"),
                "classes": [c.to_json() for c in self.classes], "warnings": self.warnings,
                "thresholds": self.thresholds.to_json()}


def search(cache: ProbabilityCache, min_positives: int = DEFAULT_MIN_POSITIVES,
           pixel_grid: Sequence[float] = PIXEL_GRID, label_grid: Sequence[float] = LABEL_GRID) -> TuneReport:
    """Grid-search every class; returns the chosen Thresholds and what they gained."""
    C = cache.num_classes
    area = float(np.median(cache.full_area)) if len(cache.full_area) else 0.0
    sizes = size_grid(area)
    labels = np.array(label_grid if cache.scores is not None else [DEFAULT_LABEL_THRESHOLD])
    thresholds = Thresholds.defaults(C, cache.class_names)
    positives = cache.positives()
    reports, warnings = [], []
    for c in range(C):
        name = cache.class_names[c]
        d = thresholds[c]
        default = class_dice_grid(cache, c, d.pixel_threshold, np.array([d.min_component]),
                                  np.array([d.min_area]), np.array([d.label_threshold]))[0, 0, 0]
        empty = float(np.mean([not t[c].any() for t in cache.truth])) if cache.truth else 1.0
        if positives[c] < min_positives:
            msg = (f"{name}: only {positives[c]} positive image(s) (< {min_positives}); "
                   f"kept the default thresholds — too few to tune on")
            if empty > default:
                msg += (f" (note: on these images the defaults score {default:.3f} for this class, "
                        f"predicting it never would score {empty:.3f})")
            warnings.append(msg)
            reports.append(ClassReport(name, int(positives[c]), float(default), float(default), empty,
                                       {}, msg))
            continue
        best = (-1.0, None)
        for p in pixel_grid:
            grid = class_dice_grid(cache, c, p, sizes, sizes, labels)
            m, a, l = np.unravel_index(int(np.argmax(grid)), grid.shape)
            if grid[m, a, l] > best[0] + 1e-12:
                best = (float(grid[m, a, l]), (p, int(sizes[m]), int(sizes[a]), float(labels[l])))
        score, (p, m, a, l) = best
        if score <= default + 1e-12:  # nothing beats the defaults: keep them
            score, (p, m, a, l) = float(default), (d.pixel_threshold, d.min_component, d.min_area,
                                                   d.label_threshold)
        thresholds = thresholds.with_class(c, pixel_threshold=float(p), min_component=m, min_area=a,
                                           label_threshold=l)
        chosen = {"label_threshold": l, "pixel_threshold": float(p), "min_component": m, "min_area": a}
        reports.append(ClassReport(name, int(positives[c]), float(default), score, empty, chosen))
    return TuneReport(thresholds, reports, len(cache.probs), cache.factor, warnings)


def split_ids(split: str, segmenter_config: dict, classifier_config: dict | None,
              available: Sequence[str]) -> list[str]:
    """The image ids to tune on: 'val' (the runs' held-out ids; both runs' when there are two),
    'all', or a text FILE with one image id per line."""
    available_set = set(available)
    if split == "all":
        return list(available)
    if split == "val":
        sets = []
        for cfg, role in ((segmenter_config, "segmenter"), (classifier_config, "classifier")):
            if cfg is None:
                continue
            ids = (cfg.get("data") or {}).get("val_ids")
            if not ids:
                raise ConfigError(f"the {role} run's config.json has no data.val_ids; "
                                  f"use --split all or --split FILE", field="data.val_ids")
            sets.append(set(ids))
        wanted = set.intersection(*sets)
        ids = [i for i in available if i in wanted]
        if not ids:
            raise DatasetError("none of the runs' validation images are in this data folder "
                               "(or the two runs share none)")
        return ids
    path = Path(split)
    if not path.is_file():
        raise ConfigError("--split must be val, all or a file of image ids", path=path)
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [i for i in ids if i not in available_set]
    if missing:
        raise DatasetError(f"{len(missing)} image id(s) not in the data folder, e.g. {missing[0]!r}", path=path)
    if not ids:
        raise DatasetError("no image ids in the split file", path=path)
    return ids


def format_report(report: TuneReport) -> str:
    """A plain-text table of the tune result."""
    lines = [f"tuned on {report.n_images} images" + (f" (probabilities pooled x{report.factor})"
                                                     if report.factor > 1 else ""),
             f"{'class':<14}{'pos':>5}{'empty':>8}{'default':>9}{'tuned':>8}   label  pixel  min_comp  min_area"]
    for c, t in zip(report.classes, report.thresholds.classes):
        lines.append(f"{c.name[:13]:<14}{c.positives:>5}{c.empty_dice:>8.4f}{c.default_dice:>9.4f}"
                     f"{c.tuned_dice:>8.4f}   {t.label_threshold:5.2f}  {t.pixel_threshold:5.2f}  "
                     f"{t.min_component:>8}  {t.min_area:>8}" + ("  (default kept)" if c.kept_default else ""))
    d, t, e = report.score("default_dice"), report.score("tuned_dice"), report.score("empty_dice")
    lines.append(f"Kaggle Dice: tuned {t:.4f} | defaults {d:.4f} ({t - d:+.4f}) | "
                 f"all-empty {e:.4f} ({t - e:+.4f})")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def dataset_items(dataset, ids: Sequence[str], skipped: list[str]) -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
    """(image id, image, truth masks) of the dataset's images named by ids; unreadable
    images are skipped and their ids appended to `skipped`."""
    from ..images import load_image
    from ..errors import ImageError

    records = {r.image_id: r for r in dataset.records}
    for image_id in ids:
        record = records[image_id]
        try:
            image = load_image(record.path)
        except ImageError:
            skipped.append(image_id)
            continue
        yield image_id, image, dataset.masks(record, *image.shape[:2])


def tune_on_dataset(inspector, dataset, ids: Sequence[str], *, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                    min_positives: int = DEFAULT_MIN_POSITIVES, min_label_threshold: float = 0.0,
                    progress: bool = True) -> TuneReport:
    """Run the models of `inspector` (steelscan.inference.cascade.Inspector: its classifier,
    segmenter, tiling and batch size; its thresholds only name the classes) once over the
    dataset images `ids`, then search thresholds (label thresholds from min_label_threshold
    up: a floor keeps the classifier gating, so the search does not trade it for area filters
    that drop small defects). Raises DatasetError when the data's classes do not match."""
    from tqdm import tqdm

    from ..images import image_size

    if dataset.num_classes != inspector.thresholds.num_classes:
        raise DatasetError(f"the data has {dataset.num_classes} classes but the models predict "
                           f"{inspector.thresholds.num_classes}", path=dataset.root)
    records = {r.image_id: r for r in dataset.records}
    total = 0
    for image_id in ids:
        try:
            h, w = image_size(records[image_id].path)
            total += h * w
        except Exception:  # unreadable: skipped later, with a warning
            pass
    factor = choose_factor(total, dataset.num_classes, memory_bytes)
    skipped: list[str] = []
    with tqdm(total=len(ids), unit="img", desc="tune: run models", disable=not progress,
              dynamic_ncols=True) as bar:
        cache = build_cache(inspector.classifier, inspector.segmenter, dataset_items(dataset, ids, skipped),
                            inspector.class_names, inspector.tiling, inspector.batch_size, factor, bar)
    if not cache.probs:
        raise DatasetError("no readable images to tune on", path=dataset.root)
    report = search(cache, min_positives=min_positives,
                    label_grid=tuple(t for t in LABEL_GRID if t >= min_label_threshold - 1e-9) or LABEL_GRID[-1:])
    if skipped:
        report.warnings.append(f"{len(skipped)} unreadable image(s) skipped, e.g. {skipped[0]}")
    if len(cache.probs) < 50:
        report.warnings.append(f"only {len(cache.probs)} images: the tuned thresholds are a rough guide")
    return report
