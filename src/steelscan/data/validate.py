"""Check a Kaggle-layout dataset and describe it: `validate_dataset(root) -> ValidationReport`.

Statistics: images (clean / defective), images per number of classes, per-class image
counts and mask-area percentiles (pixels), image sizes.
Problems (each with file, CSV line and image where known):
- unreadable_image     image header cannot be read, empty file, or truncated (no JPEG/PNG end
                       marker); `deep=True` also decodes every pixel
- missing_image        label rows for an image that is not in the images folder
- unlisted_image       legacy/submission CSVs list every image: an image on disk with no row
- incomplete_rows      legacy/submission CSVs: an image without a row for every class
- size_mismatch        an image whose size differs from the asked height/width
- rle_exceeds_image    an RLE that runs outside its image (wrong image size)
- bad_rle              an RLE that breaks the format (odd tokens, unsorted, ...)
- bad_row              a CSV row that cannot be parsed
- duplicate_row        two rows for the same image and class
- unknown_class        a class id outside 1..num_classes
- overlap              one pixel in the masks of two classes
- no_images            the images folder holds no images

Only image headers are read (plus the last bytes, for truncation); RLE strings are
parsed for every row and decoded only for images with two or more classes (overlap).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError, RLEError
from ..rle import decode_rle, rle_area
from .layout import (DEFAULT_NUM_CLASSES, default_class_names, locate_layout,
                     list_images, read_label_table)

PROBLEM_KINDS = ("no_images", "unreadable_image", "missing_image", "unlisted_image", "incomplete_rows",
                 "size_mismatch", "rle_exceeds_image", "bad_rle", "bad_row", "duplicate_row",
                 "unknown_class", "overlap")
AREA_PERCENTILES = (5, 50, 95)
_NO_LIMIT = 1 << 62  # pixel count for a syntax-only RLE check


@dataclass
class Problem:
    kind: str
    message: str
    path: str | None = None
    line: int | None = None
    image_id: str | None = None

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
        return f"[{self.kind}] {where + ': ' if where else ''}{self.message}"


@dataclass
class ValidationReport:
    root: str
    images_dir: str
    csv_path: str | None
    label_format: str | None
    num_classes: int
    class_names: list[str]
    n_images: int = 0
    n_label_rows: int = 0
    n_clean: int = 0
    n_defective: int = 0
    images_per_num_classes: dict[int, int] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)  # "HxW" -> count
    per_class: dict[str, dict] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem_counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.problems)
        return {k: counts[k] for k in PROBLEM_KINDS if counts[k]}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["problem_counts"] = self.problem_counts()
        d["images_per_num_classes"] = {str(k): v for k, v in self.images_per_num_classes.items()}
        return d

    def format_text(self, max_problems: int = 50) -> str:
        out = [f"dataset   {self.root}",
               f"images    {self.images_dir}: {self.n_images} ({self.n_clean} clean, {self.n_defective} defective)",
               f"labels    {self.csv_path or '(none)'}"
               + (f" [{self.label_format}], {self.n_label_rows} rows" if self.label_format else ""),
               f"sizes     " + (", ".join(f"{k} x{v}" for k, v in self.image_sizes.items()) or "-"),
               "classes per image  " + ", ".join(f"{k}: {v}" for k, v in self.images_per_num_classes.items()),
               "",
               f"{'class':<16}{'images':>7}{'area p5':>10}{'p50':>9}{'p95':>9}{'max':>9}  (pixels)"]
        for name, s in self.per_class.items():
            a = s["area"]
            cells = [f"{a[k]:>9.0f}" if a[k] is not None else f"{'-':>9}" for k in ("p5", "p50", "p95", "max")]
            out.append(f"{name:<16}{s['images']:>7} {''.join(cells)}")
        out += [f"note: {n}" for n in self.notes]
        out.append("")
        if self.ok:
            out.append("OK: no problems found")
        else:
            counts = ", ".join(f"{k} {v}" for k, v in self.problem_counts().items())
            out.append(f"PROBLEMS: {len(self.problems)} ({counts})")
            out += [f"  {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                out.append(f"  ... and {len(self.problems) - max_problems} more (see --json)")
        return "\n".join(out)


def _probe(path: Path, deep: bool) -> tuple[tuple[int, int] | None, str | None]:
    """((height, width), None) from the header, or (None, why it is unreadable)."""
    try:
        if path.stat().st_size == 0:
            return None, "empty file"
        with Image.open(path) as im:
            w, h = im.size
            fmt = im.format
            if deep:
                im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        return None, f"unreadable or corrupt image ({e.__class__.__name__}: {e})"
    why = _truncation(path, fmt)
    return (None, why) if why else ((h, w), None)


def _truncation(path: Path, fmt: str | None) -> str | None:
    """Cheap check of the file's end marker (a cut-off download keeps a valid header)."""
    markers = {"JPEG": (b"\xff\xd9", "JPEG end-of-image marker"), "PNG": (b"IEND", "PNG IEND chunk")}
    if fmt not in markers:
        return None
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 256))
        tail = f.read()
    marker, name = markers[fmt]
    return None if marker in tail else f"truncated image (no {name})"


def _percentiles(areas: list[int]) -> dict:
    if not areas:
        return {**{f"p{q}": None for q in AREA_PERCENTILES}, "mean": None, "min": None, "max": None}
    a = np.asarray(areas, dtype=np.float64)
    vals = np.percentile(a, AREA_PERCENTILES)
    return {**{f"p{q}": float(v) for q, v in zip(AREA_PERCENTILES, vals)},
            "mean": float(a.mean()), "min": int(a.min()), "max": int(a.max())}


def _overlaps(rles: dict[int, tuple[str, int]], h: int, w: int) -> list[tuple[int, int, int]]:
    """(class a, class b, shared pixels) for every pair of classes of one image that overlap."""
    classes = sorted(rles)
    masks = {c: decode_rle(rles[c][0], h, w).astype(bool) for c in classes}
    return [(a, b, n) for i, a in enumerate(classes) for b in classes[i + 1:]
            if (n := int(np.logical_and(masks[a], masks[b]).sum()))]


def validate_dataset(root: str | Path, *, csv_path: str | Path | None = None,
                     images_dir: str | Path | None = None, height: int | None = None,
                     width: int | None = None, num_classes: int | None = None, deep: bool = False,
                     progress: bool = False) -> ValidationReport:
    """Check the dataset at `root` (Kaggle layout) and gather statistics.

    height/width: the expected image size; every image of another size is a problem, and
    rows for images not on disk are range-checked against it. num_classes: default from
    `steelscan.json`, else 4. deep: also decode every image fully (slow); by default only
    headers and end markers are read. Raises DatasetError only when the folder or label file cannot
    be opened at all; everything else is reported."""
    from tqdm import tqdm

    root, images, label_path, meta = locate_layout(root, csv_path, images_dir)
    n_cls = int(num_classes or meta.get("num_classes", DEFAULT_NUM_CLASSES))
    names = list(meta.get("class_names") or [])[:n_cls]
    names += default_class_names(n_cls)[len(names):]
    report = ValidationReport(str(root), str(images), str(label_path) if label_path else None, None, n_cls, names)
    problems = report.problems
    expected = (height, width) if height and width else None

    # --- images: headers only ---------------------------------------------------------------
    files = list_images(images)
    report.n_images = len(files)
    if not files:
        problems.append(Problem("no_images", "no images (.jpg/.png/...) in the images folder", str(images)))
    sizes: dict[str, tuple[int, int] | None] = {}
    for p in tqdm(files, desc="image headers", unit="img", disable=True if not progress or len(files) < 200 else None):
        size, why = _probe(p, deep)
        sizes[p.name] = size
        if why:
            problems.append(Problem("unreadable_image", why, str(p), image_id=p.name))
        elif expected and size != expected:
            problems.append(Problem("size_mismatch", f"image is {size[0]}x{size[1]}, expected "
                                    f"{expected[0]}x{expected[1]} (HxW)", str(p), image_id=p.name))
    report.image_sizes = {f"{h}x{w}": n for (h, w), n in Counter(s for s in sizes.values() if s).most_common()}
    if len(report.image_sizes) > 1 and not expected:
        report.notes.append(f"{len(report.image_sizes)} different image sizes (HxW); pass --height/--width "
                            f"to flag the ones that differ")

    # --- labels -----------------------------------------------------------------------------
    labels: dict[str, dict[int, tuple[str, int]]] = {}  # image -> class -> (rle, line)
    if label_path is None:
        report.notes.append("no train.csv/labels.csv found: every image counts as clean")
    else:
        def bad_row(e: DatasetError) -> None:
            kind = "unknown_class" if e.field == "ClassId" and "out of range" in e.message else "bad_row"
            problems.append(Problem(kind, e.message + (f" [{e.field}]" if e.field else ""), str(label_path), e.line))

        table = read_label_table(label_path, on_error=bad_row)
        report.label_format = table.format
        report.n_label_rows = len(table.rows)
        csv_str = str(label_path)
        first_line: dict[tuple[str, int], int] = {}
        listed: dict[str, set[int]] = {}
        missing: dict[str, int] = {}
        for r in tqdm(table.rows, desc="label rows", unit="row",
                      disable=True if not progress or len(table.rows) < 2000 else None):
            key = (r.image_id, r.class_id)
            if key in first_line:
                problems.append(Problem("duplicate_row", f"second row for {r.image_id} class {r.class_id} "
                                        f"(first at line {first_line[key]})", csv_str, r.line, r.image_id))
                continue
            first_line[key] = r.line
            listed.setdefault(r.image_id, set()).add(r.class_id)
            if r.class_id > n_cls:
                problems.append(Problem("unknown_class", f"class id {r.class_id} outside 1..{n_cls} (set "
                                        f"num_classes in steelscan.json or --classes)", csv_str, r.line, r.image_id))
                continue
            on_disk = r.image_id in sizes
            if not on_disk:
                missing.setdefault(r.image_id, r.line)
            if not r.rle:
                continue
            try:
                rle_area(r.rle, 1, _NO_LIMIT)
            except RLEError as e:
                problems.append(Problem("bad_rle", f"{r.image_id} class {r.class_id}: {e.message}",
                                        csv_str, r.line, r.image_id))
                continue
            size = sizes.get(r.image_id) if on_disk else expected
            if size is None:
                continue  # unreadable image or unknown size: only the syntax was checkable
            try:
                rle_area(r.rle, *size)
            except RLEError as e:
                problems.append(Problem("rle_exceeds_image", f"{r.image_id} class {r.class_id}: {e.message} "
                                        f"(image is {size[0]}x{size[1]})", csv_str, r.line, r.image_id))
                continue
            if on_disk:
                labels.setdefault(r.image_id, {})[r.class_id] = (r.rle, r.line)
        for image_id, line in missing.items():
            problems.append(Problem("missing_image", f"label rows for {image_id}, which is not in "
                                    f"{images}", csv_str, line, image_id))
        if table.format != "current":
            for image_id in sizes:
                if image_id not in listed:
                    problems.append(Problem("unlisted_image", f"{image_id} has no row; a {table.format} CSV "
                                            f"lists every image", csv_str, None, image_id))
            every = set(range(1, n_cls + 1))
            for image_id, got in listed.items():
                if image_id in sizes and not every <= got:
                    lacking = ",".join(map(str, sorted(every - got)))
                    problems.append(Problem("incomplete_rows", f"{image_id} has no row for class(es) {lacking}",
                                            csv_str, first_line[(image_id, min(got))], image_id))

    # --- statistics and overlaps ------------------------------------------------------------
    areas: dict[int, list[int]] = {c: [] for c in range(1, n_cls + 1)}
    per_count: Counter = Counter()
    multi = [(i, r) for i, r in labels.items() if len(r) > 1]
    for image_id, rles in labels.items():
        h, w = sizes[image_id]  # type: ignore[misc]
        for c, (rle, _) in rles.items():
            areas[c].append(rle_area(rle, h, w))
    for image_id in sizes:
        per_count[len(labels.get(image_id, {}))] += 1
    for image_id, rles in tqdm(multi, desc="overlaps", unit="img",
                               disable=True if not progress or len(multi) < 200 else None):
        h, w = sizes[image_id]  # type: ignore[misc]
        for a, b, n in _overlaps(rles, h, w):
            problems.append(Problem("overlap", f"{image_id}: classes {a} and {b} share {n} pixels",
                                    report.csv_path, rles[b][1], image_id))
    report.n_clean = per_count.get(0, 0)
    report.n_defective = report.n_images - report.n_clean
    report.images_per_num_classes = {k: per_count[k] for k in sorted(per_count)}
    report.per_class = {names[c - 1]: {"class_id": c, "images": len(areas[c]), "area": _percentiles(areas[c])}
                        for c in range(1, n_cls + 1)}
    order = {k: i for i, k in enumerate(PROBLEM_KINDS)}
    problems.sort(key=lambda p: (order[p.kind], p.path or "", p.line or 0, p.image_id or ""))
    return report
