"""The Kaggle "Severstal" dataset layout: `train_images/` + `train.csv`.

Two label formats are read:
- current:           ImageId,ClassId,EncodedPixels      (positives only)
- competition-era:   ImageId_ClassId,EncodedPixels      (every image x class, empty = clean)
Images with no row are clean. An optional `steelscan.json` beside the CSV names the
classes (`{"num_classes": 3, "class_names": [...]}`); without it there are 4 classes.
Images may be any size, grey or RGB, JPEG or PNG; they are always loaded as RGB uint8
(`steelscan.images`, the one decoder). `write_labels_csv` is the one label-CSV writer.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from ..atomic import write_bytes, write_json, write_text
from ..errors import DatasetError, RLEError
from ..images import IMAGE_SUFFIXES, decode_image_bytes, image_size, load_image  # noqa: F401 (re-exported)
from ..rle import decode_rle, encode_rle
from .csv_rows import read_csv_rows

DEFAULT_NUM_CLASSES = 4
META_FILE = "steelscan.json"
CURRENT_HEADER = ["ImageId", "ClassId", "EncodedPixels"]
LEGACY_HEADER = ["ImageId_ClassId", "EncodedPixels"]
SUBMISSION_HEADER = ["ImageId", "EncodedPixels", "ClassId"]


@dataclass
class LabelRow:
    """One CSV row: which image, which class (1-based), its RLE and CSV line number."""

    image_id: str
    class_id: int
    rle: str
    line: int


@dataclass
class LabelTable:
    """Rows of a label CSV, grouped by image. `images` lists every image the file names
    (legacy and submission files also name clean images)."""

    path: Path
    format: str  # "current" | "legacy" | "submission"
    rows: list[LabelRow]
    images: list[str]

    def by_image(self) -> dict[str, dict[int, str]]:
        out: dict[str, dict[int, str]] = {i: {} for i in self.images}
        for r in self.rows:
            if r.rle.strip():
                out.setdefault(r.image_id, {})[r.class_id] = r.rle
        return out


def read_label_table(path: str | Path, *, strict_classes: int | None = None,
                     on_error: Callable[[DatasetError], None] | None = None) -> LabelTable:
    """Parse a label CSV in any of the three formats.

    Malformed rows raise DatasetError naming the file and line; with `on_error`, each
    row-level error is passed to it instead and the row skipped (a bad header still
    raises). RLE strings are not decoded here (that needs the image size); see `decode_masks`."""
    path = Path(path)
    header, records = read_csv_rows(path, (), what="label file")
    if not header:
        raise DatasetError("empty file, expected a header line", path=path, line=1)
    if header == CURRENT_HEADER:
        fmt = "current"
    elif header == LEGACY_HEADER:
        fmt = "legacy"
    elif header == SUBMISSION_HEADER:
        fmt = "submission"
    else:
        raise DatasetError(f"unknown header {','.join(header)!r}; expected "
                           f"{','.join(CURRENT_HEADER)!r} or {','.join(LEGACY_HEADER)!r} "
                           f"or {','.join(SUBMISSION_HEADER)!r}", path=path, line=1)
    rows: list[LabelRow] = []
    seen: dict[str, None] = {}
    for lineno, rec in records:
        try:
            row = _parse_row(rec, header, fmt, path, lineno, strict_classes)
        except DatasetError as e:
            if on_error is None:
                raise
            on_error(e)
            continue
        seen.setdefault(row.image_id, None)
        rows.append(row)
    return LabelTable(path=path, format=fmt, rows=rows, images=list(seen))


def _parse_row(rec: list[str], header: list[str], fmt: str, path: Path, lineno: int,
               strict_classes: int | None) -> LabelRow:
    if len(rec) != len(header):
        raise DatasetError(f"expected {len(header)} fields, found {len(rec)}", path=path, line=lineno)
    if fmt == "current":
        image_id, cls, rle = rec
    elif fmt == "submission":
        image_id, rle, cls = rec
    else:
        key, rle = rec
        image_id, sep, cls = key.rpartition("_")
        if not sep or not image_id:
            raise DatasetError(f"ImageId_ClassId {key!r} has no '_<class>' suffix", path=path,
                               line=lineno, field="ImageId_ClassId")
    image_id = image_id.strip()
    if not image_id:
        raise DatasetError("empty ImageId", path=path, line=lineno, field="ImageId")
    try:
        class_id = int(cls)
    except ValueError:
        raise DatasetError(f"ClassId {cls!r} is not an integer", path=path, line=lineno,
                           field="ClassId") from None
    if class_id < 1 or (strict_classes is not None and class_id > strict_classes):
        limit = f"1..{strict_classes}" if strict_classes else ">= 1"
        raise DatasetError(f"ClassId {class_id} out of range {limit}", path=path, line=lineno,
                           field="ClassId")
    return LabelRow(image_id, class_id, rle.strip(), lineno)


@dataclass
class ImageRecord:
    """One image of a dataset and its labels: class id (1-based) -> RLE."""

    image_id: str
    path: Path
    rles: dict[int, str] = field(default_factory=dict)

    @property
    def is_clean(self) -> bool:
        return not self.rles

    @property
    def class_ids(self) -> list[int]:
        return sorted(self.rles)


@dataclass
class KaggleDataset:
    """A Kaggle-layout dataset: every image of `images_dir`, labelled from `csv_path`."""

    root: Path
    images_dir: Path
    csv_path: Path | None
    records: list[ImageRecord]
    num_classes: int = DEFAULT_NUM_CLASSES
    class_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.records[i]

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def presence(self) -> np.ndarray:
        """(N, C) bool matrix: does image i carry class c+1."""
        out = np.zeros((len(self.records), self.num_classes), dtype=bool)
        for i, r in enumerate(self.records):
            for c in r.rles:
                if 1 <= c <= self.num_classes:
                    out[i, c - 1] = True
        return out

    def subset(self, indices: Iterable[int]) -> "KaggleDataset":
        return KaggleDataset(self.root, self.images_dir, self.csv_path,
                             [self.records[i] for i in indices], self.num_classes, list(self.class_names))

    def masks(self, record: ImageRecord, height: int, width: int) -> np.ndarray:
        return decode_masks(record.rles, height, width, self.num_classes)


def default_class_names(n: int) -> list[str]:
    return [f"class_{i}" for i in range(1, n + 1)]


def read_meta(root: Path) -> dict:
    meta_path = root / META_FILE
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"not valid JSON ({e})", path=meta_path) from None
    if not isinstance(meta, dict):
        raise DatasetError("expected a JSON object", path=meta_path)
    return meta


def list_images(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_label_csv(root: Path) -> Path | None:
    for name in ("train.csv", "labels.csv"):
        if (root / name).is_file():
            return root / name
    return None


def find_images_dir(root: Path) -> Path:
    """train_images/ or images/ under root, or the folder steelscan.json names ("images_dir":
    synth-coil writes its frames/ so), else root itself."""
    named = read_meta(root).get("images_dir") if (root / META_FILE).is_file() else None
    if isinstance(named, str) and named and (root / named).is_dir():
        return root / named
    for name in ("train_images", "images"):
        if (root / name).is_dir():
            return root / name
    return root


def locate_layout(root: str | Path, csv_path: str | Path | None = None,
                  images_dir: str | Path | None = None) -> tuple[Path, Path, Path | None, dict]:
    """Find a layout's parts: (root, images folder, label CSV or None, steelscan.json contents).
    The CSV is looked for beside the images, then in the root."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("data folder not found", path=root)
    images = Path(images_dir) if images_dir else find_images_dir(root)
    if not images.is_dir():
        raise DatasetError("images folder not found", path=images)
    label_path = Path(csv_path) if csv_path else (find_label_csv(images) or find_label_csv(root))
    return root, images, label_path, read_meta(root)


def open_dataset(root: str | Path, *, csv_path: str | Path | None = None,
                 images_dir: str | Path | None = None, labelled_only: bool = False) -> KaggleDataset:
    """Open a Kaggle-layout folder. Every image in the images folder is a record; images
    with no label row are clean. Label rows for images that are not on disk are ignored
    here (`steelscan validate` reports them)."""
    root, images, label_path, meta = locate_layout(root, csv_path, images_dir)
    num_classes = int(meta.get("num_classes", DEFAULT_NUM_CLASSES))
    labels: dict[str, dict[int, str]] = {}
    if label_path is not None:
        table = read_label_table(label_path)
        labels = table.by_image()
        top = max((r.class_id for r in table.rows if r.rle), default=0)
        if "num_classes" not in meta:
            num_classes = max(num_classes, top)
    files = list_images(images)
    if not files:
        raise DatasetError("no images (.jpg/.png/...) in the images folder", path=images)
    records = [ImageRecord(p.name, p, dict(labels.get(p.name, {}))) for p in files]
    if labelled_only:
        records = [r for r in records if r.image_id in labels]
    names = meta.get("class_names") or default_class_names(num_classes)
    return KaggleDataset(root, images, label_path, records, num_classes, list(names))


def write_labels_csv(path: str | Path, rows: Iterable[tuple[str, int, str]]) -> Path:
    """Write a label CSV in the current format (ImageId,ClassId,EncodedPixels), atomically.
    rows: (image id, 1-based class id, Kaggle RLE); rows with an empty RLE are left out
    (a clean image has no row). Returns the path."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CURRENT_HEADER)
    w.writerows((image_id, int(class_id), rle) for image_id, class_id, rle in rows if rle)
    write_text(path, out.getvalue())
    return Path(path)


def decode_masks(rles: dict[int, str], height: int, width: int, num_classes: int) -> np.ndarray:
    """Stack per-class RLEs into a (C, H, W) uint8 0/1 mask; class id c goes to channel c-1."""
    out = np.zeros((num_classes, height, width), dtype=np.uint8)
    for c, rle in rles.items():
        if not 1 <= c <= num_classes:
            raise RLEError(f"class id {c} outside 1..{num_classes}")
        if rle:
            out[c - 1] = decode_rle(rle, height, width)
    return out


class KaggleLayoutWriter:
    """Write images and their (C, H, W) masks as `train_images/` + `train.csv` + `steelscan.json`.

    Rows are collected in memory and the CSV is written atomically by `close()`."""

    def __init__(self, out_dir: str | Path, num_classes: int = DEFAULT_NUM_CLASSES,
                 class_names: list[str] | None = None, extra_meta: dict | None = None) -> None:
        self.root = Path(out_dir)
        self.images_dir = self.root / "train_images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.num_classes = num_classes
        self.class_names = class_names or default_class_names(num_classes)
        self.extra_meta = extra_meta or {}
        self.rows: list[tuple[str, int, str]] = []

    def add(self, image_id: str, image: np.ndarray | bytes, masks: np.ndarray) -> None:
        """image: RGB/grey uint8 array (encoded by the file name's suffix; JPEG at quality 95)
        or already-encoded bytes written as they are. masks: (C, H, W) 0/1."""
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[0] != self.num_classes:
            raise DatasetError(f"masks of shape {masks.shape}, writer expects ({self.num_classes}, H, W)",
                               path=image_id)
        if isinstance(image, (bytes, bytearray)):
            write_bytes(self.images_dir / image_id, bytes(image))
        else:
            image = np.asarray(image)
            if image.shape[:2] != masks.shape[1:]:
                raise DatasetError(f"image is {image.shape[0]}x{image.shape[1]} but masks are "
                                   f"{masks.shape[1]}x{masks.shape[2]}", path=image_id)
            buf = io.BytesIO()
            # the file name's suffix picks the format (.jpg -> JPEG q95, .bmp -> BMP, ...); PNG otherwise
            fmt = Image.registered_extensions().get(Path(image_id).suffix.lower(), "PNG")
            pil = Image.fromarray(np.ascontiguousarray(image))
            if fmt == "JPEG":
                pil.save(buf, format="JPEG", quality=95)
            else:
                pil.save(buf, format=fmt)
            write_bytes(self.images_dir / image_id, buf.getvalue())
        for c in range(self.num_classes):
            if masks[c].any():
                self.rows.append((image_id, c + 1, encode_rle(masks[c])))

    def close(self) -> Path:
        csv_path = write_labels_csv(self.root / "train.csv", self.rows)
        write_json(self.root / META_FILE, {"num_classes": self.num_classes,
                                           "class_names": self.class_names, **self.extra_meta})
        return csv_path
