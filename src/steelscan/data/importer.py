"""Import a folder of images + masks into the Kaggle layout, losslessly.

Pairing (`mask_pairing`): masks are matched to images by file stem (`images/0001.jpg` <->
`masks/0001.png`), by a name pattern (`'{stem}_label.bmp'`, also beside the images), or
come one folder per class (`masks/<class name or number>/<stem>.png`).
Values (`mask_values`): the mask mode - class indices (value k is class k) or binary
(0/1: non-zero is defect; 0..255: value >= threshold) - is decided once for the whole
dataset from the histogram of every mask's values, and can be forced.

Image bytes are copied unchanged under their original names; `train.csv` holds one RLE
row per (image, class) with a defect, so `decode(train.csv)` equals the masks as read;
`steelscan.json` names the classes. Class names come from --class-names, else the class
folders, else a `labels.txt` (labelme style, one name a line; `__ignore__`,
`_background_` and `others` are skipped) beside or inside the images/masks folders.

Every problem (image without a mask, mask values above N, mask size != image size,
colour masks) is collected first; nothing is written unless there are none.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import DatasetError, SteelscanError
from ..rle import encode_rle
from .layout import META_FILE, default_class_names, image_size, write_labels_csv
from .mask_pairing import MaskPair, Pairing, pair_masks
from .mask_values import MASK_MODES, MaskMode, decide_mask_mode, read_mask, value_counts

LABELS_FILE = "labels.txt"
IGNORED_LABELS = ("__ignore__", "_background_", "others")
MISSING_MASK_CHOICES = ("error", "clean")
DEFAULT_THRESHOLD = 128
CACHE_BYTES = 512 * 2**20  # masks read in pass 1 are kept up to this size, so pass 2 need not read them again


class MaskImportError(DatasetError):
    """The import found problems; `problems` lists one line per file."""

    def __init__(self, message: str, problems: list[str], **kw) -> None:
        self.problems = problems
        super().__init__(message, **kw)


@dataclass
class ImportPlan:
    """The pairing and the classes: everything decided before a mask is read."""

    pairing: Pairing
    num_classes: int
    class_names: list[str]
    folder_class: dict[str, int] = field(default_factory=dict)  # class folder -> class id (1-based)

    def mask_class(self, key: str | None) -> str:
        """What a mask file holds, for the dry run: its folder's class, or the classes its values give."""
        if key is not None:
            return self.class_names[self.folder_class[key] - 1]
        return self.class_names[0] if self.num_classes == 1 else "class indices"


@dataclass
class ImportSummary:
    out_dir: Path | None  # None: a dry run without an output folder
    csv_path: Path | None
    num_classes: int
    class_names: list[str]
    n_images: int = 0
    n_clean: int = 0
    n_missing_mask: int = 0
    images_per_class: dict[str, int] = field(default_factory=dict)
    pixels_per_class: dict[str, int] = field(default_factory=dict)  # defect pixels
    values: dict[int, int] = field(default_factory=dict)  # stored mask value -> pixels, every mask
    mode: MaskMode | None = None
    stray_files: dict[Path, list[int]] = field(default_factory=dict)  # 0/1 masks with other values
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)
    dry_run: bool = False


def read_labels_txt(path: Path) -> list[str]:
    """Class names from a labelme-style labels.txt, skipping the non-class entries."""
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    return [n for n in names if n and n not in IGNORED_LABELS]


def find_labels_txt(images_dir: Path, masks_dir: Path) -> Path | None:
    for folder in (images_dir, masks_dir, images_dir.parent, masks_dir.parent):
        if (folder / LABELS_FILE).is_file():
            return folder / LABELS_FILE
    return None


def _labels_txt_names(images_dir: Path, masks_dir: Path) -> list[str]:
    labels = find_labels_txt(images_dir, masks_dir)
    return read_labels_txt(labels) if labels else []


def resolve_classes(images_dir: Path, masks_dir: Path, num_classes: int | None,
                    class_names: list[str] | None) -> tuple[int, list[str]]:
    """Number of classes and their names from the flags, else labels.txt, else binary (1)."""
    if class_names and num_classes and len(class_names) != num_classes:
        raise DatasetError(f"--class-names gives {len(class_names)} names but --classes is {num_classes}")
    if class_names:
        return len(class_names), list(class_names)
    names = _labels_txt_names(images_dir, masks_dir)
    n = num_classes or len(names) or 1
    if names and len(names) != n:
        names = []  # labels.txt disagrees with --classes: do not guess which names apply
    return n, names or (["defect"] if n == 1 else default_class_names(n))


def resolve_folder_classes(pairing: Pairing, num_classes: int | None,
                           class_names: list[str] | None) -> tuple[int, list[str], dict[str, int]]:
    """Classes of one-folder-per-class masks: folders named 1..N are class numbers (names from
    --class-names or labels.txt); other folder names are class names, ordered as --class-names,
    else labels.txt when it lists them all, else alphabetically."""
    folders = pairing.class_folders
    if class_names and num_classes and len(class_names) != num_classes:
        raise DatasetError(f"--class-names gives {len(class_names)} names but --classes is {num_classes}")
    labels = _labels_txt_names(pairing.images_dir, pairing.masks_dir)
    if all(f.isdigit() for f in folders):
        ids = {f: int(f) for f in folders}
        n = num_classes or (len(class_names) if class_names else 0) or max(ids.values())
        bad = [f for f, i in ids.items() if not 1 <= i <= n]
        if bad:
            raise DatasetError(f"class folder {bad[0]} is not a class number 1..{n}", path=pairing.masks_dir / bad[0])
        names = class_names or (labels if len(labels) == n else default_class_names(n))
        return n, list(names), ids
    order = class_names or (labels if set(folders) <= set(labels) else sorted(folders))
    unknown = [f for f in folders if f not in order]
    if unknown:
        raise DatasetError(f"class folder {unknown[0]!r} is not among --class-names {','.join(order)}",
                           path=pairing.masks_dir / unknown[0])
    if num_classes and num_classes != len(order):
        raise DatasetError(f"--classes is {num_classes} but there are {len(order)} classes ({', '.join(order)})")
    return len(order), list(order), {f: order.index(f) + 1 for f in folders}


def plan_import(images_dir: str | Path, masks_dir: str | Path | None = None, *, pattern: str | None = None,
                class_from_folder: bool = False, num_classes: int | None = None,
                class_names: list[str] | None = None) -> ImportPlan:
    """Pair images with masks and resolve the classes; reads no pixels."""
    if num_classes is not None and num_classes < 1:
        raise DatasetError(f"--classes must be at least 1, got {num_classes}")
    pairing = pair_masks(images_dir, masks_dir, pattern=pattern, class_from_folder=class_from_folder)
    if class_from_folder:
        return ImportPlan(pairing, *resolve_folder_classes(pairing, num_classes, class_names))
    n, names = resolve_classes(pairing.images_dir, pairing.masks_dir, num_classes, class_names)
    return ImportPlan(pairing, n, names)


@dataclass
class _MaskScan:
    """Pass 1 over the masks: each readable mask's values (file -> value -> pixels), and the
    masks themselves while they fit in CACHE_BYTES."""

    values: dict[Path, dict[int, int]] = field(default_factory=dict)
    cache: dict[Path, np.ndarray] = field(default_factory=dict)
    cached_bytes: int = 0

    def keep(self, path: Path, mask: np.ndarray) -> None:
        if self.cached_bytes + mask.nbytes <= CACHE_BYTES:
            self.cache[path] = mask
            self.cached_bytes += mask.nbytes

    def read(self, path: Path, image: Path) -> np.ndarray:
        mask = self.cache.pop(path, None)
        return mask if mask is not None else _read_sized_mask(path, image)

    def histogram(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for counts in self.values.values():
            for v, n in counts.items():
                total[v] = total.get(v, 0) + n
        return dict(sorted(total.items()))


def _read_sized_mask(path: Path, image: Path) -> np.ndarray:
    h, w = image_size(image)
    stored = read_mask(path)
    if stored.shape != (h, w):
        raise DatasetError(f"mask is {stored.shape[0]}x{stored.shape[1]} but the image {image.name} is "
                           f"{h}x{w} (HxW)", path=path)
    return stored


def _problem(e: Exception, path: Path) -> str:
    # our errors (DatasetError, ImageError) name their file; anything else: one bad file must not hide the others
    return str(e) if isinstance(e, SteelscanError) else f"{path}: {e.__class__.__name__}: {e}"


def _scan_masks(pairs: list[MaskPair], problems: list[str], progress: bool) -> _MaskScan:
    from tqdm import tqdm

    scan = _MaskScan()
    files = [(path, p.image) for p in pairs for path in p.masks.values()]
    for path, image in tqdm(files, desc="reading masks", unit="mask", disable=_quiet(progress, len(files))):
        try:
            mask = _read_sized_mask(path, image)
            scan.values[path] = value_counts(mask)
            scan.keep(path, mask)
        except Exception as e:  # noqa: BLE001 - collected, reported together
            problems.append(_problem(e, path))
    return scan


def _quiet(progress: bool, n: int) -> bool | None:
    return True if not progress or n < 100 else None


def _pair_classes(plan: ImportPlan, mode: MaskMode, pair: MaskPair, scan: _MaskScan) -> tuple[np.ndarray, np.ndarray]:
    """(C,) images-with-class flags and (C,) defect pixels of one pair, from its masks' histograms."""
    present = np.zeros(plan.num_classes, bool)
    pixels = np.zeros(plan.num_classes, np.int64)
    for key, path in pair.masks.items():
        counts = scan.values[path]
        for v, c in mode.value_classes(counts).items():
            if c:
                cls = c if key is None else plan.folder_class[key]
                present[cls - 1] = True
                pixels[cls - 1] += counts[v]
    return present, pixels


def _pair_masks_array(plan: ImportPlan, mode: MaskMode, pair: MaskPair, scan: _MaskScan) -> np.ndarray:
    """(C, H, W) uint8 0/1 masks of one image, from its mask file(s)."""
    out = None
    for key, path in pair.masks.items():
        labels = mode.labels(scan.read(path, pair.image))
        if out is None:
            out = np.zeros((plan.num_classes, *labels.shape), np.uint8)
        if key is None:
            out |= (labels[None] == np.arange(1, plan.num_classes + 1)[:, None, None])
        else:
            out[plan.folder_class[key] - 1] |= (labels != 0)
    return out


def _label_rows(plan: ImportPlan, mode: MaskMode, pairs: list[MaskPair], scan: _MaskScan,
                progress: bool) -> list[tuple[str, int, str]]:
    """Pass 2: one (ImageId, ClassId, RLE) row per image and class with a defect."""
    from tqdm import tqdm

    rows: list[tuple[str, int, str]] = []
    for pair in tqdm(pairs, desc="encoding", unit="img", disable=_quiet(progress, len(pairs))):
        per = _pair_masks_array(plan, mode, pair, scan)
        present = per.reshape(plan.num_classes, -1).any(axis=1)
        rows += [(pair.image.name, int(c) + 1, encode_rle(per[c])) for c in np.flatnonzero(present)]
    return rows


def import_masks(images_dir: str | Path, masks_dir: str | Path | None, out_dir: str | Path | None, *,
                 num_classes: int | None = None, threshold: int = DEFAULT_THRESHOLD,
                 class_names: list[str] | None = None, mask_mode: str = "auto", pattern: str | None = None,
                 class_from_folder: bool = False, missing_mask: str = "error", overwrite: bool = False,
                 dry_run: bool = False, progress: bool = False) -> ImportSummary:
    """Convert images + masks to `out_dir/{train_images/, train.csv, steelscan.json}`.

    masks_dir None: the masks lie beside the images (needs `pattern`). threshold: 0..255 binary
    masks, a pixel is a defect when its value >= threshold. dry_run: pair, read and decide
    everything, write nothing (images without a mask are then listed, not an error)."""
    from tqdm import tqdm

    if out_dir is None and not dry_run:
        raise DatasetError("an output folder is required (or a dry run)")
    out_dir = Path(out_dir) if out_dir is not None else None
    if missing_mask not in MISSING_MASK_CHOICES:
        raise DatasetError(f"--missing-mask must be one of {', '.join(MISSING_MASK_CHOICES)}")
    if mask_mode not in MASK_MODES:
        raise DatasetError(f"--mask-mode must be one of {', '.join(MASK_MODES)}, got {mask_mode!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or not 1 <= threshold <= 255:
        raise DatasetError(f"--threshold must be an integer mask value 1..255, got {threshold!r}")
    if not dry_run and (out_dir / "train.csv").exists() and not overwrite:
        raise DatasetError("already holds a train.csv; choose another folder or --overwrite", path=out_dir)
    plan = plan_import(images_dir, masks_dir, pattern=pattern, class_from_folder=class_from_folder,
                       num_classes=num_classes, class_names=class_names)
    pairing, n_cls, names = plan.pairing, plan.num_classes, plan.class_names
    missing = pairing.unpaired_images
    problems: list[str] = []
    if missing and missing_mask == "error" and not dry_run:
        problems += [f"{p}: no mask {pairing.expected_mask(p.stem)}" for p in missing]

    scan = _scan_masks(pairing.pairs, problems, progress)
    histogram = scan.histogram()
    try:
        mode = decide_mask_mode(histogram, n_cls, requested=mask_mode, threshold=int(threshold),
                                one_class_per_file=class_from_folder)
    except DatasetError as e:  # a dataset-level answer; with file problems too, show them all
        if not problems:
            raise
        problems.insert(0, str(e))
        raise MaskImportError(f"{len(problems)} problem(s), nothing written; first: {problems[0]}", problems) from None
    if mode.kind == "index":  # values above N: name every such file
        problems += [f"{path}: mask value {max(counts)} above the number of classes {n_cls} "
                     f"(values must be 0..{n_cls}; set --classes)"
                     for path, counts in scan.values.items() if max(counts) > n_cls]
    if problems:
        raise MaskImportError(f"{len(problems)} problem(s), nothing written; first: {problems[0]}", problems)

    per_class, pixels, n_clean = np.zeros(n_cls, np.int64), np.zeros(n_cls, np.int64), 0
    for pair in pairing.pairs:
        present, px = _pair_classes(plan, mode, pair, scan)
        per_class += present
        pixels += px
        n_clean += int(not present.any())
    summary = ImportSummary(
        out_dir, out_dir / "train.csv" if out_dir else None, n_cls, names, len(pairing.pairs), n_clean, len(missing),
        {names[c]: int(per_class[c]) for c in range(n_cls)}, {names[c]: int(pixels[c]) for c in range(n_cls)},
        histogram, mode, {p: mode.stray_values(c) for p, c in scan.values.items() if mode.stray_values(c)},
        missing, pairing.unpaired_masks, dry_run)
    if dry_run:
        return summary

    rows = _label_rows(plan, mode, [p for p in pairing.pairs if p.masks], scan, progress)
    # Plain copies (no per-file fsync: 10x faster on thousands of files); the dataset becomes
    # valid only when train.csv, written atomically last, appears.
    (out_dir / "train_images").mkdir(parents=True, exist_ok=True)
    images = [p.image for p in pairing.pairs]
    for p in tqdm(images, desc="copying", unit="img", disable=_quiet(progress, len(images))):
        shutil.copyfile(p, out_dir / "train_images" / p.name)
    write_json(out_dir / META_FILE, {
        "num_classes": n_cls, "class_names": names,
        "source": {"images": str(pairing.images_dir), "masks": str(pairing.masks_dir),
                   "mask_pattern": pairing.pattern, "class_from_folder": class_from_folder,
                   "mask_kind": "binary" if mode.kind == "binary" else "class-index",
                   "mask_rule": mode.rule, "threshold": mode.threshold}})
    write_labels_csv(summary.csv_path, rows)
    return summary
