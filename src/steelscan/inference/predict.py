"""Inspect a set of image files and write what a line needs, into one folder:

- submission.csv: Kaggle format, ImageId,EncodedPixels,ClassId for every image x class
  (EncodedPixels empty where the class is absent; unreadable images get empty rows too).
- results.jsonl: one line per image (`InspectionResult.to_json`): verdict OK/NG, defects
  (class, name, score = mean segmenter probability over the component, area px, bbox
  [ymin,xmin,ymax,xmax] inclusive, RLE), image size, per-stage timings in ms, whether
  the segmenter ran; or {"image_id", "verdict": null, "error": "..."} for an image that
  could not be read (the run carries on).
- overlays/<image stem>.png: the image with its defects tinted in class colours, legend on top.
- summary.json: settings, counts (images, NG, errors, segmenter skips) and throughput.
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..atomic import atomic_path, write_json
from ..data.layout import SUBMISSION_HEADER, find_images_dir, list_images
from ..images import IMAGE_SUFFIXES, load_image
from ..errors import ImageError, SteelscanError
from ..rle import encode_rle
from .cascade import InspectionResult, Inspector

SUBMISSION_FILE = "submission.csv"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
OVERLAY_DIR = "overlays"


def collect_images(sources: Sequence[str | Path]) -> list[Path]:
    """Image files named by `sources`: files as given, folders expanded (sorted; a Kaggle
    folder's train_images/ or images/ is used when the folder itself holds no image).
    A file with another suffix is kept (it will be reported as unreadable); a missing
    path raises ImageError before any work."""
    paths: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = list_images(p)
            if not found and find_images_dir(p) != p:
                found = list_images(find_images_dir(p))
            if not found:
                raise ImageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=p)
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise ImageError("no such file or folder", path=p)
    if not paths:
        raise ImageError("no images given")
    return paths


def _load(path: Path) -> np.ndarray | ImageError:
    try:
        return load_image(path)
    except ImageError as e:
        return e


def load_batches(paths: Sequence[Path], batch_size: int, workers: int = 2
                 ) -> Iterator[list[tuple[Path, np.ndarray | ImageError]]]:
    """Decode images in background threads, one batch ahead of the caller."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        chunks = [list(paths[i:i + batch_size]) for i in range(0, len(paths), batch_size)]
        pending = [pool.submit(lambda c=c: [(p, _load(p)) for p in c]) for c in chunks[:2]]
        for k in range(len(chunks)):
            batch = pending.pop(0).result()
            if k + 2 < len(chunks):
                pending.append(pool.submit(lambda c=chunks[k + 2]: [(p, _load(p)) for p in c]))
            yield batch


def submission_rows(result: InspectionResult, num_classes: int) -> list[tuple[str, str, int]]:
    """(ImageId, EncodedPixels, ClassId) for every class of one image."""
    if result.masks is None:
        return [(result.image_id, "", c + 1) for c in range(num_classes)]
    return [(result.image_id, encode_rle(result.masks[c]), c + 1) for c in range(num_classes)]


def overlay_image(image: np.ndarray, result: InspectionResult):
    """The image with its final masks tinted, a legend of the classes found (or 'OK') on top."""
    from ..overlay import class_color, draw_legend, overlay_masks
    from PIL import Image

    tinted = overlay_masks(image, result.masks)
    found = sorted({d.class_id for d in result.defects})
    entries = [(f"{result.class_names[c - 1]} ({sum(d.class_id == c for d in result.defects)})",
                class_color(c - 1)) for c in found]
    title = f"{result.image_id}: {result.verdict}"
    legend = draw_legend([(title, (0, 170, 0) if result.verdict == "OK" else (200, 0, 0))] + entries,
                         width=tinted.shape[1], font_size=int(np.clip(tinted.shape[1] / 80, 11, 20)))
    sheet = Image.new("RGB", (tinted.shape[1], legend.height + tinted.shape[0]))
    sheet.paste(legend, (0, 0))
    sheet.paste(Image.fromarray(tinted), (0, legend.height))
    return sheet


@dataclass
class PredictionSummary:
    images: int = 0
    ng: int = 0
    ok: int = 0
    errors: int = 0
    segmented: int = 0
    skipped: int = 0
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        per_s = self.images / self.seconds if self.seconds > 0 else None
        return {"images": self.images, "ng": self.ng, "ok": self.ok, "errors": self.errors,
                "segmenter_ran": self.segmented, "segmenter_skipped": self.skipped,
                "seconds": round(self.seconds, 3), "images_per_second": per_s and round(per_s, 3),
                "settings": self.settings}


def predict_files(inspector: Inspector, paths: Sequence[Path], out_dir: str | Path, *,
                  overlays: bool = True, settings: dict | None = None, progress: bool = True,
                  workers: int = 2) -> PredictionSummary:
    """Inspect `paths` in batches and write submission.csv, results.jsonl, overlays/ and
    summary.json into out_dir (the two tables atomically, when the run completes).
    settings: what summary.json records about the run (default: `inspector.settings`)."""
    from ..overlay import save_png
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if overlays:
        (out / OVERLAY_DIR).mkdir(exist_ok=True)
    C = inspector.thresholds.num_classes
    summary = PredictionSummary(settings=dict(inspector.settings if settings is None else settings))
    summary.settings.setdefault("model_info", inspector.model_info)
    start_stats = inspector.stats.to_json()
    t0 = time.perf_counter()
    bar = tqdm(total=len(paths), unit="img", desc="inspect", disable=not progress, dynamic_ncols=True)
    with atomic_path(out / SUBMISSION_FILE) as sub_tmp, atomic_path(out / RESULTS_FILE) as res_tmp, \
            open(sub_tmp, "w", newline="", encoding="utf-8") as sub_f, \
            open(res_tmp, "w", encoding="utf-8") as res_f:
        writer = csv.writer(sub_f, lineterminator="\n")
        writer.writerow(SUBMISSION_HEADER)
        for batch in load_batches(paths, inspector.batch_size, workers):
            good = [(p, im) for p, im in batch if isinstance(im, np.ndarray)]
            inspected = iter(inspector.inspect([im for _, im in good], [p.name for p, _ in good]))
            images = dict((p, im) for p, im in good)
            for path, image in batch:
                if isinstance(image, ImageError):
                    result = InspectionResult.failed(path.name, str(image))
                    summary.errors += 1
                else:
                    result = next(inspected)
                    summary.ng += result.verdict == "NG"
                    summary.ok += result.verdict == "OK"
                    if overlays:
                        save_png(out / OVERLAY_DIR / f"{path.stem}.png", overlay_image(images[path], result))
                writer.writerows(submission_rows(result, C))
                res_f.write(json.dumps(result.to_json()) + "\n")
                summary.images += 1
            bar.update(len(batch))
            bar.set_postfix(ng=summary.ng, skipped=inspector.stats.skipped - start_stats["skipped"])
    bar.close()
    summary.seconds = time.perf_counter() - t0
    summary.segmented = inspector.stats.segmented - start_stats["segmented"]
    summary.skipped = inspector.stats.skipped - start_stats["skipped"]
    summary.settings.setdefault("thresholds", inspector.thresholds.to_json())
    write_json(out / SUMMARY_FILE, summary.to_json())
    return summary


def read_results(path: str | Path) -> list[dict]:
    """results.jsonl as a list of dicts (evaluation reads it back)."""
    lines = []
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise SteelscanError(f"not a JSON line ({e.msg})", path=path, line=n) from None
    return lines
