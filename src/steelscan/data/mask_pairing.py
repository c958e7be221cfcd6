"""Which mask file belongs to which image, for importing a folder of images + masks.

Three layouts are understood:
- a masks folder with one mask per image, matched by file stem (`images/0001.jpg` <->
  `masks/0001.png`, PNG preferred) or by a name pattern (`'{stem}_label.bmp'`);
- masks beside the images (`Part3.jpg` + `Part3_label.bmp` in one folder): the masks folder
  is the images folder, a pattern is required, and the files it matches are masks, never images;
- one folder per class (`masks/<class>/<stem>.png`): each file is the mask of its folder's class.
Nothing is decoded here; this only lists folders.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError
from .layout import IMAGE_SUFFIXES, list_images

STEM = "{stem}"


@dataclass
class MaskPair:
    """An image and its mask files: class folder name -> file (key None: one mask whose values
    give the class). No key at all: the image has no mask."""

    image: Path
    masks: dict[str | None, Path] = field(default_factory=dict)


@dataclass
class Pairing:
    images_dir: Path
    masks_dir: Path
    pattern: str | None
    class_folders: list[str]  # sorted; empty unless one folder per class
    pairs: list[MaskPair]  # every image, sorted by name
    unpaired_masks: list[Path]  # mask files whose stem names no image

    @property
    def unpaired_images(self) -> list[Path]:
        return [p.image for p in self.pairs if not p.masks]

    def expected_mask(self, stem: str) -> str:
        """Where the mask of `stem` was looked for, for messages."""
        name = self.pattern.replace(STEM, stem) if self.pattern else f"{stem}.png"
        where = f"{self.masks_dir}/<class>" if self.class_folders else str(self.masks_dir)
        return f"{name} in {where}"


def mask_name_regex(pattern: str) -> re.Pattern:
    """'{stem}_label.bmp' -> a regex whose group 'stem' takes the image stem from a mask file name."""
    parts = pattern.split(STEM)
    if len(parts) != 2 or any(c in pattern.replace(STEM, "") for c in "{}/\\"):
        raise DatasetError(f"--mask-pattern {pattern!r} must be a file name holding {STEM} once, "
                           f"e.g. '{{stem}}_label.bmp'")
    return re.compile(re.escape(parts[0]) + r"(?P<stem>.+)" + re.escape(parts[1]))


def _masks_by_stem(folder: Path, regex: re.Pattern | None) -> dict[str, Path]:
    """stem -> mask file in `folder`. Without a pattern: any image file, PNG preferred when a stem
    has several."""
    index: dict[str, Path] = {}
    if regex is None:
        for p in list_images(folder):
            if p.stem not in index or p.suffix.lower() == ".png":
                index[p.stem] = p
        return index
    for p in sorted(folder.iterdir()):
        m = regex.fullmatch(p.name)
        if m and p.is_file():
            index[m["stem"]] = p
    return index


def pair_masks(images_dir: str | Path, masks_dir: str | Path | None = None, *, pattern: str | None = None,
               class_from_folder: bool = False) -> Pairing:
    """Pair every image of `images_dir` with its mask file(s) in `masks_dir` (default: beside the images)."""
    images_dir = Path(images_dir)
    masks_dir = Path(masks_dir) if masks_dir is not None else images_dir
    for name, folder in (("images", images_dir), ("masks", masks_dir)):
        if not folder.is_dir():
            raise DatasetError(f"{name} folder not found", path=folder)
    regex = mask_name_regex(pattern) if pattern is not None else None
    beside = images_dir.resolve() == masks_dir.resolve() and not class_from_folder
    if beside and regex is None:
        raise DatasetError("masks beside the images need --mask-pattern (e.g. '{stem}_label.bmp') to tell "
                           "them from the images", path=images_dir)

    images = list_images(images_dir)
    if beside:  # the label files are masks, not images
        images = [p for p in images if not regex.fullmatch(p.name)]
    if not images:
        raise DatasetError(f"no images ({'/'.join(IMAGE_SUFFIXES)}) in the images folder", path=images_dir)
    dupes = [s for s, k in Counter(p.stem for p in images).items() if k > 1]
    if dupes:
        raise DatasetError(f"{len(dupes)} image names share a stem, so masks are ambiguous (e.g. {dupes[0]})",
                           path=images_dir)

    if class_from_folder:
        folders = sorted(p.name for p in masks_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise DatasetError("--class-from-folder: no class folders in the masks folder", path=masks_dir)
        indexes = {f: _masks_by_stem(masks_dir / f, regex) for f in folders}
    else:
        folders = []
        indexes = {None: _masks_by_stem(masks_dir, regex)}
    stems = {p.stem for p in images}
    pairs = [MaskPair(p, {key: index[p.stem] for key, index in indexes.items() if p.stem in index})
             for p in images]
    unpaired = sorted(path for index in indexes.values() for stem, path in index.items() if stem not in stems)
    return Pairing(images_dir, masks_dir, pattern, folders, pairs, unpaired)
