"""One physical defect, one record: per-frame components in coil coordinates, merged across
frame boundaries while the strip streams past.

A *segment* is the rows [r0, r1) of one frame that belong to one coil (a whole frame, the part of
a frame not already seen, or one side of a weld). Its defects are the 8-connected components of
each class mask on the strip's columns (`frame_pieces`). Two pieces on either side of a
boundary between consecutive segments are one defect when they have the same class and their
pixels touch across the boundary the way 8-connectivity says: a column of the last row of the
upper one within one pixel of a column of the first row of the lower one. That is exactly what
labelling the two frames stacked into one image would give, so a scratch over five frames is one
defect with its true start and end.

Streaming (`DefectMerger`): only the defects whose pixels reach the bottom row of the latest
segment stay open; every other one is finished and handed out at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..geometry import PixelSize, box_to_coil
from ..inference.postprocess import label_components
from .crops import CropPart, cut_part, keep_head


@dataclass
class Segment:
    """Where rows [r0, r1) of a frame lie: `frame_m` is the coil position of the frame's row 0."""

    frame: str
    frame_m: float
    rows: tuple[int, int]
    strip: tuple[float, float]   # strip edges [left, right) px
    columns: tuple[int, int]     # on-strip columns [first, stop)
    drive_side: str


@dataclass
class CoilDefect:
    """A defect (one piece, or pieces merged) in coil coordinates. `bottom_cols`: image columns of
    its pixels in the last row of the latest segment (None: it does not reach it: finished);
    `top_cols`: the same for the first row of a fresh piece."""

    class_id: int
    class_name: str
    start_m: float
    end_m: float
    across_start_mm: float
    across_end_mm: float
    area_px: int
    score_area: float                 # sum of score x pixels: the score is their area-weighted mean
    frames: list[str]
    crop_parts: list[CropPart] = field(default_factory=list)
    top_cols: np.ndarray | None = None
    bottom_cols: np.ndarray | None = None

    @property
    def score(self) -> float:
        return self.score_area / self.area_px if self.area_px else 0.0

    def absorb(self, other: CoilDefect, crop_max_rows: int) -> None:
        self.start_m, self.end_m = min(self.start_m, other.start_m), max(self.end_m, other.end_m)
        self.across_start_mm = min(self.across_start_mm, other.across_start_mm)
        self.across_end_mm = max(self.across_end_mm, other.across_end_mm)
        self.area_px += other.area_px
        self.score_area += other.score_area
        self.frames += [f for f in other.frames if f not in self.frames]
        self.crop_parts = keep_head(self.crop_parts + other.crop_parts, crop_max_rows)


def _piece_score(defects: Sequence, class_id: int, bbox: tuple[int, int, int, int], fallback: float) -> float:
    """The score of the inspector's defect of this class that overlaps the box most (its score is
    the mean probability over its pixels); `fallback` when none does."""
    y0, x0, y1, x1 = bbox
    best, best_overlap = fallback, 0
    for d in defects:
        if d.class_id != class_id:
            continue
        dy0, dx0, dy1, dx1 = d.bbox
        overlap = max(0, min(y1, dy1) - max(y0, dy0) + 1) * max(0, min(x1, dx1) - max(x0, dx0) + 1)
        if overlap > best_overlap:
            best, best_overlap = float(d.score), overlap
    return best


def frame_pieces(masks: np.ndarray, seg: Segment, pixel: PixelSize, class_names: Sequence[str], *,
                 defects: Sequence = (), class_scores: np.ndarray | None = None,
                 image: np.ndarray | None = None, stream_row0: int = 0, crop_margin: int = 16) -> list[CoilDefect]:
    """The defects of one segment: components of each class of `masks` (C, H, W) 0/1 within the
    segment's rows and the strip's columns, in coil coordinates. Scores come from the inspector's
    `defects` (per-frame components with `class_id, score, bbox`), else `class_scores`, else 1.
    With `image`, each piece carries its crop part (`stream_row0`: stream row of frame row 0)."""
    (r0, r1), (c0, c1) = seg.rows, seg.columns
    out: list[CoilDefect] = []
    if r1 <= r0 or c1 <= c0:
        return out
    for c in range(masks.shape[0]):
        sub = masks[c, r0:r1, c0:c1]
        rows_on = np.flatnonzero(sub.any(axis=1))
        if not len(rows_on):
            continue
        cols_on = np.flatnonzero(sub.any(axis=0))
        ya, xa = int(rows_on[0]), int(cols_on[0])   # label only the box holding the pixels
        labels, n = label_components(sub[ya:int(rows_on[-1]) + 1, xa:int(cols_on[-1]) + 1])
        areas = np.bincount(labels.ravel(), minlength=n + 1)
        y_off, x_off = r0 + ya, c0 + xa
        fallback = 1.0 if class_scores is None else float(class_scores[c])
        for k, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
            bbox = (y_off + ys.start, x_off + xs.start, y_off + ys.stop - 1, x_off + xs.stop - 1)
            box = box_to_coil(bbox, seg.frame_m, seg.strip, seg.drive_side, pixel, clamp=True)
            score = _piece_score(defects, c + 1, bbox, fallback)
            piece = CoilDefect(
                c + 1, class_names[c] if c < len(class_names) else f"class_{c + 1}",
                box.start_m, box.end_m, box.across_start_mm, box.across_end_mm, int(areas[k]),
                score * int(areas[k]), [seg.frame],
                top_cols=x_off + np.flatnonzero(labels[0] == k) if bbox[0] == r0 else None,
                bottom_cols=x_off + np.flatnonzero(labels[-1] == k) if bbox[2] == r1 - 1 else None)
            if image is not None:
                piece.crop_parts = [cut_part(image, bbox, seg.rows, crop_margin, stream_row0)]
            out.append(piece)
    return out


def _touch(upper: np.ndarray, lower: np.ndarray) -> bool:
    """8-connectivity across a boundary: some column of `lower` within one of a column of `upper`."""
    return bool(np.isin(lower, np.concatenate([upper - 1, upper, upper + 1])).any())


class DefectMerger:
    """Merge the pieces of consecutive segments of one surface; hand out finished defects."""

    def __init__(self, crop_max_rows: int = 1024) -> None:
        self.open: list[CoilDefect] = []
        self.crop_max_rows = crop_max_rows

    def add(self, pieces: list[CoilDefect], continues: bool) -> list[CoilDefect]:
        """The next segment's pieces. `continues`: its first row directly follows the previous
        segment's last row (same coil, no gap). Returns the defects finished by it."""
        finished: list[CoilDefect] = []
        if not continues:
            finished, self.open = self.open, []
        n = len(self.open)
        parent = list(range(n + len(pieces)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, g in enumerate(self.open):
            for j, p in enumerate(pieces):
                if g.class_id == p.class_id and p.top_cols is not None and _touch(g.bottom_cols, p.top_cols):
                    parent[root(n + j)] = root(i)
        groups: dict[int, list[int]] = {}
        for i in range(len(parent)):
            groups.setdefault(root(i), []).append(i)
        still_open: list[CoilDefect] = []
        for members in groups.values():
            olds = [self.open[i] for i in members if i < n]
            news = [pieces[i - n] for i in members if i >= n]
            if not news:  # not continued in this segment
                finished += olds
                continue
            bottoms = [p.bottom_cols for p in news if p.bottom_cols is not None]
            ordered = sorted(olds, key=lambda d: d.start_m) + news
            merged = ordered[0]
            for other in ordered[1:]:
                merged.absorb(other, self.crop_max_rows)
            merged.top_cols = None
            merged.bottom_cols = np.unique(np.concatenate(bottoms)) if bottoms else None
            (still_open if bottoms else finished).append(merged)
        self.open = still_open
        return finished

    def close(self) -> list[CoilDefect]:
        """Finish every open defect (a gap, a bad frame, the end of a coil)."""
        finished, self.open = self.open, []
        return finished
