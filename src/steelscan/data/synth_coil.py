"""Synthetic coils: a recorded line (frames of top and bottom surface, coil after coil) with its
ground truth in coil coordinates. What `steelscan synth-coil` writes.

What is modelled. A line runs strip under one camera per surface. The camera field
(frame width x pixel size across) is wider than the strip, so each frame shows dark off-strip
margins left and right of a soft strip edge; the strip wanders sideways slowly (a sum of long
sinusoids, metres to hundreds of metres, plus a faint fast component), the same strip for both
cameras, the bottom one seeing it mirrored. The strip surface is synth.py's Severstal-like
texture (`strip_texture`: rolling streaks, stains, illumination, glare, grain, specks) and the
defects are synth.py's painters (`paint_defect`: pits, grooves, scratches, patches), so a model
trained on `steelscan synth` frames of the same size sees the same thing here.

The defect population is planned for the whole line first, in millimetres, then painted:
- random defects per class as clusters (`POPULATIONS`: clusters per 100 m, components per
  cluster, spread along and across; component sizes from synth.py's real Kaggle priors read as
  mm), three times as dense in the first and last 5 % of a coil; a share of scratches and
  grooves run for metres, across many frames;
- periodic marks of each given roll (`--roll-diameter-mm`): one mark shape per roll repeated
  every pi x D x (1 + wear) metres along the line (the roll keeps turning across welds), each
  occurrence shifted by up to +-jitter mm along, missed with probability miss-rate, and drifting
  sideways relative to the drive-side strip edge within +-wander mm. Roll i marks surface
  i mod (number of surfaces) (`rolls.csv` says which);
- welds: coils follow each other on one frame stream; a frame belongs to the coil under its
  row 0 and a frame across a weld shows the seam. Positions restart at 0 for every coil.
Any two defects of one surface keep `MIN_GAP_MM` apart (boxes), so "one physical defect" is
unambiguous; nothing is painted off the strip.

Truth is measured, not planned: each frame reports the pixels it actually painted per defect
(after clipping to the strip), the frame's box goes through `geometry.box_to_coil` with that
frame's strip edges (mean over its rows) and drive side, and the boxes of all frames a defect
touches are joined into ONE row of `defects.csv`; `area_mm2` counts the painted pixels. The same
masks go to `train.csv` (Kaggle RLE per frame) for an oracle segmenter. `truth_pieces` measures the
same pieces without drawing a frame (`--truth-only`: the same defects.csv, fast, for defect-list
tools such as roll-mark detection).

Determinism: the plan depends on (seed, flags) only; frame f of a surface on (seed, surface, f)
and the plan; any number of worker processes gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..atomic import write_json, write_text
from ..errors import ConfigError, DatasetError
from ..geometry import PixelSize, box_to_coil
from ..rle import encode_rle
from .layout import CURRENT_HEADER, META_FILE, default_class_names, read_meta
from .synth import (CLASS_DESCRIPTIONS, CLASS_PRIORS, NUM_CLASSES, QUANTILE_LEVELS,
                    REFERENCE_HEIGHT, apply_defect, encode_jpeg, largest_component, paint_defect,
                    previous_outputs, strip_texture)

SOURCE = "steelscan synth-coil"
SURFACES = ("top", "bottom")
DRIVE_SIDES = {"top": "left", "bottom": "right"}  # the bottom camera sees the strip mirrored
CAMERA_IDS = {"top": "top", "bottom": "bottom"}
LINE_ID = "L1"
MIN_GAP_MM = 30.0  # least distance between the boxes of two defects of one surface
EDGE_SOFT_PX = 1.5  # half-width of the strip edge's blur
EDGE_INSET_PX = 4.0  # nothing is painted closer than this to a strip edge
MAX_STRIP_WANDER_MM = 25.0  # sideways wander of the strip in the camera field (amplitude)

FRAMES_HEADER = ["file", "coil_id", "surface", "position_m", "camera_id", "strip_left_px",
                 "strip_right_px"]
COILS_HEADER = ["coil_id", "line_id", "grade", "width_mm", "thickness_mm", "length_m", "order",
                "customer", "exposed_surface"]
DEFECTS_HEADER = ["coil_id", "surface", "class_id", "start_m", "end_m", "across_start_mm",
                  "across_end_mm", "length_mm", "width_mm", "area_mm2", "source"]
ROLLS_HEADER = ["name", "diameter_mm", "surface"]
GRADES = ("DC01", "DC04", "DX51D", "S235JR", "S355MC")
CUSTOMERS = ("Acme Automotive", "Nordic Appliances", "Delta Construction", "Orbit Packaging")


# --------------------------------------------------------------------------------------------
# What to make
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthCoilConfig:
    """Everything `synth-coil` needs; one home for its defaults (the CLI reads them here)."""

    length_m: float  # length of each coil
    width_mm: float  # strip width
    seed: int = 0
    roll_diameters_mm: tuple[float, ...] = ()
    coils: int = 1
    pixel: PixelSize = PixelSize(1.0, 1.0)
    frame_height: int = 256  # rows, along the strip
    frame_width: int = 1600  # columns, across
    surfaces: tuple[str, ...] = SURFACES
    miss_rate: float = 0.0  # probability that a roll turn leaves no mark
    jitter_mm: float = 0.0  # each mark shifted by up to +-jitter along the strip
    wear: float = 0.0  # true period = pi * D * (1 + wear)
    wander_mm: float = 0.0  # a roll's mark drifts sideways within +-wander of its mean
    density: float = 1.0  # scales the random defect rates

    @property
    def field_mm(self) -> float:
        return self.frame_width * self.pixel.across_mm

    @property
    def frame_length_m(self) -> float:
        return self.frame_height * self.pixel.along_mm / 1000.0

    def strip_wander_mm(self) -> float:
        """Amplitude of the strip's sideways wander: what the camera field leaves, at most 25 mm."""
        slack = (self.field_mm - self.width_mm) / 2 - 8 * self.pixel.across_mm
        return float(max(0.0, min(MAX_STRIP_WANDER_MM, slack)))

    def validate(self) -> None:
        """Raise ConfigError naming the flag of the first bad value."""
        def bad(flag: str, msg: str) -> ConfigError:
            return ConfigError(msg, field=flag)

        if not (math.isfinite(self.length_m) and self.length_m > 0):
            raise bad("--length-m", f"must be > 0, got {self.length_m}")
        if self.length_m < 2 * self.frame_length_m:
            raise bad("--length-m", f"a coil must be at least two frames long "
                                    f"({2 * self.frame_length_m:g} m), got {self.length_m:g}")
        if self.length_m * self.coils > 100_000:
            raise bad("--length-m", f"{self.coils} coils x {self.length_m:g} m is over 100 km")
        if self.coils < 1:
            raise bad("--coils", f"must be at least 1, got {self.coils}")
        if self.frame_height < 16 or self.frame_width < 16:
            raise bad("--frame-size", f"must be at least 16x16, got {self.frame_height}x{self.frame_width}")
        if not (math.isfinite(self.width_mm) and self.width_mm > 0):
            raise bad("--width-mm", f"must be > 0, got {self.width_mm}")
        room = self.field_mm - 16 * self.pixel.across_mm
        if self.width_mm > room:
            raise bad("--width-mm", f"a {self.width_mm:g} mm strip does not fit the camera field "
                                    f"({self.frame_width} px x {self.pixel.across_mm:g} mm = "
                                    f"{self.field_mm:g} mm, less 8 px each side)")
        if self.width_mm < 100:
            raise bad("--width-mm", f"must be at least 100 mm, got {self.width_mm:g}")
        if not self.surfaces or len(set(self.surfaces)) != len(self.surfaces) \
                or not set(self.surfaces) <= set(SURFACES):
            raise bad("--surfaces", f"must be top, bottom or top,bottom, got {','.join(self.surfaces)}")
        for d in self.roll_diameters_mm:
            if not (math.isfinite(d) and 60 <= d <= 5000):  # marks up to 60 mm long, 30 mm apart
                raise bad("--roll-diameter-mm", f"must be within 60..5000 mm, got {d:g}")
        if not 0.0 <= self.miss_rate < 1.0:
            raise bad("--miss-rate", f"must be within 0..1 (1 excluded), got {self.miss_rate}")
        if not -0.2 <= self.wear <= 0.2:
            raise bad("--wear", f"must be within -0.2..0.2 (a period scale), got {self.wear}")
        shortest = min((math.pi * d * (1 + self.wear) for d in self.roll_diameters_mm), default=math.inf)
        if not (self.jitter_mm >= 0 and self.jitter_mm < shortest / 4):
            raise bad("--jitter-mm", f"must be within 0..a quarter of the shortest period "
                                     f"({shortest / 4:.0f} mm), got {self.jitter_mm}")
        if not (self.wander_mm >= 0 and 2 * self.wander_mm + 160 <= self.width_mm):
            raise bad("--wander-mm", f"must be >= 0 and leave a mark room on the strip "
                                     f"(at most {(self.width_mm - 160) / 2:.0f} mm), got {self.wander_mm}")
        if not (math.isfinite(self.density) and 0 <= self.density <= 50):
            raise bad("--density", f"must be within 0..50, got {self.density}")


@dataclass(frozen=True)
class ClassPopulation:
    """Random defects of one class on one surface: clusters along the coil."""

    class_id: int
    clusters_per_100m: float
    components: tuple[float, ...]  # per cluster, quantiles at QUANTILE_LEVELS
    cluster_along_mm: float  # components of a cluster spread this far along
    long_share: float  # share of components much longer than a frame
    long_mm: tuple[float, float]  # their length range (log-uniform)


# Rates are per surface. Sizes: synth.py's real Kaggle component priors read as mm (a Severstal
# frame is ~1600 mm of strip across); the long share is the prior's full-height share.
POPULATIONS: dict[int, ClassPopulation] = {
    1: ClassPopulation(1, 2.0, (1, 1, 2, 4, 8), 400.0, 0.0, (0, 0)),
    2: ClassPopulation(2, 1.0, (1, 1, 1, 2, 2), 300.0, CLASS_PRIORS[2].full_height, (300, 1500)),
    3: ClassPopulation(3, 4.0, (1, 1, 2, 3, 5), 800.0, CLASS_PRIORS[3].full_height, (300, 4000)),
    4: ClassPopulation(4, 1.0, (1, 1, 1, 2, 3), 500.0, 0.0, (0, 0)),
}


# --------------------------------------------------------------------------------------------
# The plan: strip path, coils, rolls, defects (all in rows/columns of the line's frame stream)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedDefect:
    """One physical defect as planned: rows [row0, row0+h) of the line's stream; its crop's
    column 0 lies `across0` px from the drive-side strip edge (it moves with the strip).
    `shape_key` seeds its shape (shared by all marks of one roll)."""

    defect_id: int
    surface: str
    coil: int
    class_id: int
    row0: int
    across0: float
    h: int
    w: int
    shape_key: int
    source: str

    def frames(self, frame_height: int) -> range:
        """The frames (of `frame_height` rows, numbered along the stream) its rows touch."""
        return range(self.row0 // frame_height, (self.row0 + self.h - 1) // frame_height + 1)


@dataclass
class RollSpec:
    name: str
    diameter_mm: float
    surface: str
    class_id: int
    period_m: float  # true period on the strip (worn)
    phase_m: float


@dataclass
class CoilPlan:
    """The whole line, before any pixel is drawn. Picklable: workers get it once."""

    config: SynthCoilConfig
    coil_ids: list[str]
    coil_start_rows: np.ndarray  # (coils + 1,) float: first row of each coil, then the end
    n_frames: int
    wander: np.ndarray  # (k, 3): amplitude mm, period m, phase rad of the strip's sideways path
    defects: list[PlannedDefect]
    rolls: list[RollSpec]
    edge_look: dict  # off-strip appearance per surface
    levels: dict  # (coil, surface) -> base grey of that coil's surface (one steel, one level)

    def row_to_line_m(self, rows: np.ndarray | float) -> np.ndarray | float:
        return np.asarray(rows) * self.config.pixel.along_mm / 1000.0

    def strip_edges(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical (top camera) strip edges at rows (float, columns): [left, right)."""
        cfg = self.config
        x = self.row_to_line_m(np.asarray(rows, np.float64) + 0.5)
        amp, period, phase = self.wander[:, 0:1], self.wander[:, 1:2], self.wander[:, 2:3]
        offset_mm = (amp * np.sin(2 * np.pi * x[None, :] / period + phase)).sum(axis=0)
        centre = cfg.frame_width / 2 + offset_mm / cfg.pixel.across_mm
        half = cfg.width_mm / cfg.pixel.across_mm / 2
        return centre - half, centre + half

    def coil_of_row(self, row: int) -> int:
        return int(np.searchsorted(self.coil_start_rows, row, side="right") - 1)


def _sinusoids(rng: np.random.Generator, amplitude: float, periods: tuple[float, float], k: int,
               fast: float = 0.0) -> np.ndarray:
    """(k[+1], 3) amplitude, period, phase of a smooth path within +-amplitude (+ fast)."""
    weights = rng.uniform(0.3, 1.0, k)
    rows = [(amplitude * w / weights.sum(), float(np.exp(rng.uniform(*np.log(periods)))),
             rng.uniform(0, 2 * np.pi)) for w in weights]
    if fast > 0:
        rows.append((fast, rng.uniform(3.0, 8.0), rng.uniform(0, 2 * np.pi)))
    return np.array(rows, dtype=np.float64)


class _Occupancy:
    """Boxes already given to defects, per surface, bucketed by metre; keeps MIN_GAP_MM apart."""

    def __init__(self, gap_rows: int, gap_cols: int, bucket_rows: int) -> None:
        self.gap_rows, self.gap_cols, self.bucket = gap_rows, gap_cols, bucket_rows
        self.boxes: dict[tuple[str, int], list[tuple[int, int, int, int]]] = {}

    def _keys(self, surface: str, r0: int, r1: int) -> range:
        return range((r0 - self.gap_rows) // self.bucket, (r1 + self.gap_rows) // self.bucket + 1)

    def free(self, surface: str, r0: int, c0: int, h: int, w: int) -> bool:
        for k in self._keys(surface, r0, r0 + h):
            for (a0, b0, a1, b1) in self.boxes.get((surface, k), ()):
                if (r0 < a1 + self.gap_rows and a0 < r0 + h + self.gap_rows
                        and c0 < b1 + self.gap_cols and b0 < c0 + w + self.gap_cols):
                    return False
        return True

    def take(self, surface: str, r0: int, c0: int, h: int, w: int) -> None:
        for k in range(r0 // self.bucket, (r0 + h) // self.bucket + 1):
            self.boxes.setdefault((surface, k), []).append((r0, c0, r0 + h, c0 + w))


def plan_line(cfg: SynthCoilConfig) -> CoilPlan:
    """Coils, strip path, roll marks and random defects of the whole line (no pixels yet)."""
    cfg.validate()
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 0]))
    along, across = cfg.pixel.along_mm, cfg.pixel.across_mm
    rows_per_coil = cfg.length_m * 1000.0 / along
    starts = np.arange(cfg.coils + 1, dtype=np.float64) * rows_per_coil
    n_frames = int(math.ceil(starts[-1] / cfg.frame_height - 1e-9))
    coil_ids = [f"C{cfg.seed}-{k + 1:03d}" for k in range(cfg.coils)]
    wander = _sinusoids(rng, cfg.strip_wander_mm(), (30.0, 300.0), 3,
                        fast=min(0.6, cfg.strip_wander_mm() / 10))
    edge_look = {s: {"dark": float(rng.uniform(3, 12)), "rim": float(rng.uniform(-20, 30))}
                 for s in SURFACES}
    lrng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 6]))
    levels = {(k, s): float(40 + 85 * lrng.beta(2.0, 2.5)) for k in range(cfg.coils) for s in SURFACES}
    plan = CoilPlan(cfg, coil_ids, starts, n_frames, wander, [], [], edge_look, levels)
    gap_rows = int(math.ceil(MIN_GAP_MM / along))
    occupied = _Occupancy(gap_rows, int(math.ceil(MIN_GAP_MM / across)),
                          bucket_rows=max(1, int(1000 / along)))
    _plan_rolls(plan, rng, occupied)
    _plan_random(plan, rng, occupied)
    plan.defects.sort(key=lambda d: (SURFACES.index(d.surface), d.row0, d.across0))
    plan.defects = [replace(d, defect_id=i) for i, d in enumerate(plan.defects)]
    return plan


def _inside_one_coil(plan: CoilPlan, r0: int, h: int) -> int | None:
    """The coil holding rows [r0, r0+h) with a frame's margin to its welds, else None."""
    k = plan.coil_of_row(r0)
    if k < 0 or k >= plan.config.coils:
        return None
    margin = 4
    if r0 < plan.coil_start_rows[k] + margin or r0 + h > plan.coil_start_rows[k + 1] - margin:
        return None
    return k


def _plan_rolls(plan: CoilPlan, rng: np.random.Generator, occupied: _Occupancy) -> None:
    cfg = plan.config
    along, across = cfg.pixel.along_mm, cfg.pixel.across_mm
    total_m = cfg.coils * cfg.length_m
    for j, diameter in enumerate(cfg.roll_diameters_mm):
        rrng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 3, j]))
        surface = cfg.surfaces[j % len(cfg.surfaces)]
        period = math.pi * diameter * (1 + cfg.wear) / 1000.0
        roll = RollSpec(f"R{j + 1}", float(diameter), surface, int(rrng.choice([1, 4])), period,
                        float(rrng.uniform(0, period)))
        plan.rolls.append(roll)
        h_mm = float(rrng.uniform(20, 60))
        w_mm = float(rrng.uniform(20, 60))
        h, w = max(3, int(round(h_mm / along))), max(3, int(round(w_mm / across)))
        lo = cfg.wander_mm + 20
        base = float(rrng.uniform(lo, cfg.width_mm - cfg.wander_mm - w * across - 20))
        drift = _sinusoids(rrng, 1.0, (20.0, 200.0), 2)
        shape_key = 1_000_000 + j
        n_turns = int(total_m / period) + 2
        jitter = rrng.uniform(-cfg.jitter_mm, cfg.jitter_mm, n_turns) / 1000.0
        missed = rrng.random(n_turns) < cfg.miss_rate
        for t in range(n_turns):
            pos = roll.phase_m + t * period + jitter[t]
            if missed[t] or pos < 0:
                continue
            r0 = int(round(pos * 1000.0 / along))
            k = _inside_one_coil(plan, r0, h)
            if k is None:
                continue
            d = float((drift[:, 0] * np.sin(2 * np.pi * pos / drift[:, 1] + drift[:, 2])).sum())
            across0 = (base + cfg.wander_mm * d) / across
            c0 = int(round(across0))
            if not occupied.free(surface, r0, c0, h, w):
                continue  # two rolls on one spot: the later mark is not drawn
            occupied.take(surface, r0, c0, h, w)
            plan.defects.append(PlannedDefect(len(plan.defects), surface, k, roll.class_id, r0,
                                              across0, h, w, shape_key, f"roll:{roll.name}"))


def _from_quantiles(rng: np.random.Generator, q: Sequence[float], low: float, high: float) -> float:
    return float(np.interp(rng.random(), (0.0, *QUANTILE_LEVELS, 1.0), (low, *q, high)))


def _component_mm(rng: np.random.Generator, pop: ClassPopulation, width_mm: float) -> tuple[float, float]:
    """(length along, width across) in mm of one random component."""
    prior = CLASS_PRIORS[pop.class_id]
    z1, z2 = rng.standard_normal(2)
    lh = prior.log_h[0] + prior.log_h[1] * z1
    lw = prior.log_w[0] + prior.log_w[1] * (prior.corr_hw * z1 + math.sqrt(1 - prior.corr_hw ** 2) * z2)
    if rng.random() < pop.long_share:
        length = float(np.exp(rng.uniform(*np.log(pop.long_mm))))
    else:
        length = float(np.clip(np.exp(lh), 8, 250))
    return length, float(np.clip(np.exp(lw), 6, 0.5 * width_mm))


def _plan_random(plan: CoilPlan, rng: np.random.Generator, occupied: _Occupancy) -> None:
    cfg = plan.config
    for k in range(cfg.coils):
        for surface in cfg.surfaces:
            srng = np.random.default_rng(np.random.SeedSequence(
                [int(cfg.seed), 4, k, SURFACES.index(surface)]))
            for c, pop in POPULATIONS.items():
                n = int(srng.poisson(pop.clusters_per_100m * cfg.density * cfg.length_m / 100.0))
                for _ in range(n):
                    _plan_cluster(plan, srng, occupied, k, surface, pop)


def _plan_cluster(plan: CoilPlan, rng: np.random.Generator, occupied: _Occupancy, k: int,
                  surface: str, pop: ClassPopulation) -> None:
    """One cluster of `pop`'s class on coil k: head and tail (5 % each) three times as dense."""
    cfg = plan.config
    along, across = cfg.pixel.along_mm, cfg.pixel.across_mm
    L = cfg.length_m
    u = rng.random()
    if u < 0.3 / 1.2:  # 2 x 5 % of the length at 3x density = 0.3 of 1.2 units of defects
        centre_m = rng.uniform(0, 0.05 * L) if rng.random() < 0.5 else rng.uniform(0.95 * L, L)
    else:
        centre_m = rng.uniform(0, L)
    prior = CLASS_PRIORS[pop.class_id]
    spread_mm = min(_from_quantiles(rng, prior.spread, prior.spread[0] / 2, 1600), 0.8 * cfg.width_mm)
    centre_across = rng.uniform(0, cfg.width_mm)
    n = max(1, int(round(_from_quantiles(rng, pop.components, 1, 1.5 * pop.components[-1]))))
    inset = (EDGE_INSET_PX + 1) * across
    for _ in range(n):
        length_mm, width_mm = _component_mm(rng, pop, cfg.width_mm)
        h, w = max(3, int(round(length_mm / along))), max(3, int(round(width_mm / across)))
        shape_key = int(rng.integers(0, 2**31))
        for _try in range(5):
            start_m = centre_m + rng.uniform(-0.5, 0.5) * pop.cluster_along_mm / 1000 - length_mm / 2000
            a0 = centre_across + rng.uniform(-0.5, 0.5) * spread_mm - width_mm / 2
            a0 = float(np.clip(a0, inset, cfg.width_mm - inset - w * across))
            r0 = int(round(plan.coil_start_rows[k] + start_m * 1000.0 / along))
            if _inside_one_coil(plan, r0, h) != k:
                continue
            c0 = int(round(a0 / across))
            if occupied.free(surface, r0, c0, h, w):
                occupied.take(surface, r0, c0, h, w)
                plan.defects.append(PlannedDefect(len(plan.defects), surface, k, pop.class_id, r0,
                                                  a0 / across, h, w, shape_key, "random"))
                break


# --------------------------------------------------------------------------------------------
# Painting one frame (runs in worker processes)
# --------------------------------------------------------------------------------------------

@dataclass
class FrameResult:
    """What a worker hands back for one frame: the JPEG, each class's RLE, and per defect the
    inclusive box [ymin, xmin, ymax, xmax] of its painted pixels in the written (possibly
    mirrored) image and their count."""

    jpeg: bytes
    rles: dict[int, str]
    pieces: list[tuple[int, tuple[int, int, int, int], int]]
    strip: tuple[float, float]  # strip columns [left, right) of the written image (mean over rows)


_PLAN: CoilPlan | None = None


def _init_worker(plan: CoilPlan) -> None:
    global _PLAN
    _PLAN = plan


@lru_cache(maxsize=4)
def _defect_shape(seed: int, surface_index: int, shape_key: int, class_id: int, h: int, w: int,
                  s: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, surface_index, shape_key]))
    mask, delta = paint_defect(rng, class_id, h, w, s)
    return mask, delta.astype(np.float32)


_PLACED: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}


def _placed_defect(plan: CoilPlan, d: PlannedDefect) -> tuple[np.ndarray, np.ndarray, int]:
    """The defect's painter output laid on the strip: every row of its crop shifted to its
    offset from that row's drive-side edge (it moves with the wandering strip), then its
    largest 8-connected component, so one defect is one component however frames cut it.
    Returns (mask bool (h, span), brightness change (h, span), canonical column of column 0)."""
    key = (plan.config, d.defect_id)
    if key not in _PLACED:
        cfg = plan.config
        shape, delta = _defect_shape(int(cfg.seed), SURFACES.index(d.surface), d.shape_key,
                                     d.class_id, d.h, d.w, cfg.frame_height / REFERENCE_HEIGHT)
        left, _ = plan.strip_edges(d.row0 + np.arange(d.h))
        cols = np.round(left + d.across0).astype(np.int64)
        origin = int(cols.min())
        span = int(cols.max()) - origin + d.w
        ys, xs = np.nonzero(shape)
        tx = cols[ys] - origin + xs
        mask = np.zeros((d.h, span), dtype=bool)
        laid = np.zeros((d.h, span), dtype=np.float32)
        mask[ys, tx] = True
        laid[ys, tx] = delta[ys, xs]
        if len(_PLACED) >= 16:  # long scratches are MBs each; frames come in order
            _PLACED.clear()
        _PLACED[key] = (largest_component(mask), laid, origin)
    return _PLACED[key]


def render_frame(plan: CoilPlan, surface: str, frame: int,
                 defects: Sequence[PlannedDefect]) -> tuple[np.ndarray, np.ndarray, FrameResult]:
    """Frame `frame` of `surface`: (grey uint8 (H, W) as written, masks (4, H, W) uint8,
    FrameResult without the JPEG). `defects` are the planned defects touching its rows."""
    cfg = plan.config
    H, W = cfg.frame_height, cfg.frame_width
    si = SURFACES.index(surface)
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 1, si, frame]))
    img = strip_texture(rng, H, W, level=plan.levels[(plan.coil_of_row(frame * H), surface)])
    rows = frame * H + np.arange(H)
    left, right = plan.strip_edges(rows)
    _paint_margins(img, left, right, plan.edge_look[surface], rng)
    on_strip = _on_strip(left, right, W)
    _paint_welds(plan, img, rows, on_strip)
    np.clip(img, 0, 255, out=img)
    bg = img.copy()
    masks = np.zeros((NUM_CLASSES, H, W), dtype=np.uint8)
    occupied = np.zeros((H, W), dtype=bool)
    painted: list[tuple[int, np.ndarray, int, int]] = []
    pieces = []
    for d in defects:
        part = _defect_in_frame(plan, d, frame, on_strip)
        if part is None:
            continue
        box, m, dl = part
        m &= ~occupied[box]
        if not m.any():
            continue
        apply_defect(img[box], bg[box], m, dl)
        masks[d.class_id - 1][box] |= m
        occupied[box] |= m
        pieces.append(_piece(d, m, box, surface, W))
    grey = np.round(img).astype(np.uint8)
    strip = _frame_strip(left, right, surface, W)
    if surface == "bottom":  # the bottom camera sees the strip mirrored
        grey, masks = grey[:, ::-1], masks[:, :, ::-1]
    rles = {c + 1: encode_rle(masks[c]) for c in range(NUM_CLASSES) if masks[c].any()}
    return grey, masks, FrameResult(b"", rles, pieces, strip)


def _on_strip(left: np.ndarray, right: np.ndarray, width: int) -> np.ndarray:
    """(H, W) bool: where defects may be painted, EDGE_INSET_PX inside the strip edges."""
    x = np.arange(width, dtype=np.float32)[None, :] + 0.5
    return (x > (left + EDGE_INSET_PX)[:, None]) & (x < (right - EDGE_INSET_PX)[:, None])


def _frame_strip(left: np.ndarray, right: np.ndarray, surface: str, width: int) -> tuple[float, float]:
    """A frame's strip edges [left, right) in the written image: the mean over its rows."""
    strip = (float(left.mean()), float(right.mean()))
    return (width - strip[1], width - strip[0]) if surface == "bottom" else strip


def _defect_in_frame(plan: CoilPlan, d: PlannedDefect, frame: int, on_strip: np.ndarray
                     ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The part of defect d inside canonical frame `frame`, clipped to the strip: (box in the
    frame, mask bool, brightness change), or None."""
    H, W = on_strip.shape
    y0, y1 = max(d.row0, frame * H), min(d.row0 + d.h, (frame + 1) * H)
    if y0 >= y1:
        return None
    shape, delta, origin = _placed_defect(plan, d)
    bx0, bx1 = max(origin, 0), min(origin + shape.shape[1], W)
    if bx0 >= bx1:
        return None
    crop = (slice(y0 - d.row0, y1 - d.row0), slice(bx0 - origin, bx1 - origin))
    box = (slice(y0 - frame * H, y1 - frame * H), slice(bx0, bx1))
    return box, shape[crop] & on_strip[box], delta[crop]


def _piece(d: PlannedDefect, m: np.ndarray, box: tuple[slice, slice], surface: str,
           width: int) -> tuple[int, tuple[int, int, int, int], int]:
    """(defect id, inclusive [ymin, xmin, ymax, xmax] of the painted pixels in the written
    image, pixel count)."""
    ys, xs = np.nonzero(m)
    oy, ox = box[0].start, box[1].start
    ymin, ymax, xmin, xmax = oy + ys.min(), oy + ys.max(), ox + xs.min(), ox + xs.max()
    if surface == "bottom":
        xmin, xmax = width - 1 - xmax, width - 1 - xmin
    return d.defect_id, (int(ymin), int(xmin), int(ymax), int(xmax)), int(m.sum())


def truth_pieces(plan: CoilPlan) -> Iterator[tuple[FrameInfo, FrameResult]]:
    """Without drawing a frame: for every frame a defect touches, the pieces render_frame would
    report (the same masks, clipped the same way). Fast: what `--truth-only` writes."""
    cfg = plan.config
    H, W = cfg.frame_height, cfg.frame_width
    infos = {(i.surface, i.frame): i for i in frame_table(plan)}
    for d in plan.defects:
        for f in d.frames(H):
            left, right = plan.strip_edges(f * H + np.arange(H))
            part = _defect_in_frame(plan, d, f, _on_strip(left, right, W))
            if part is None or not part[1].any():
                continue
            piece = _piece(d, part[1], part[0], d.surface, W)
            yield infos[(d.surface, f)], FrameResult(b"", {}, [piece], _frame_strip(left, right, d.surface, W))


def _paint_margins(img: np.ndarray, left: np.ndarray, right: np.ndarray, look: dict,
                   rng: np.random.Generator) -> None:
    """Dark camera field off the strip [left, right) (per row, float columns), a soft edge and a
    bright or dark rim just inside it; in place. Only the columns near the edges are touched."""
    H, W = img.shape
    reach = int(4 * EDGE_SOFT_PX + 20)
    bands = [(0, min(W, int(np.ceil(left.max())) + reach)),
             (max(0, int(np.floor(right.min())) - reach), W)]
    if bands[0][1] >= bands[1][0]:
        bands = [(0, W)]
    for a, b in bands:
        if a >= b:
            continue
        x = np.arange(a, b, dtype=np.float32)[None, :] + 0.5
        dist = np.maximum(left[:, None].astype(np.float32) - x, x - right[:, None].astype(np.float32))
        off = np.clip(0.5 + dist / (2 * EDGE_SOFT_PX), 0.0, 1.0)
        dark = look["dark"] + 1.5 * rng.standard_normal((H, b - a), dtype=np.float32)
        rim = look["rim"] * np.exp(-np.abs(dist + 4) / 3)
        img[:, a:b] = (img[:, a:b] + rim) * (1 - off) + dark * off


def _paint_welds(plan: CoilPlan, img: np.ndarray, rows: np.ndarray, on_strip: np.ndarray) -> None:
    """The seam of every weld inside these rows: a few darker rows across the strip."""
    for start in plan.coil_start_rows[1:-1]:
        r = int(math.floor(start)) - int(rows[0])
        if -3 <= r < len(rows) + 3:
            seam = slice(max(0, r - 2), max(0, min(len(rows), r + 2)))
            img[seam] -= 18.0 * on_strip[seam]


def _render_job(job: tuple[str, int, tuple[int, ...]]) -> FrameResult:
    surface, frame, ids = job
    assert _PLAN is not None
    grey, _, result = render_frame(_PLAN, surface, frame, [_PLAN.defects[i] for i in ids])
    # one grey channel: decodes to exactly the pixels of the 3-channel JPEG synth.py writes
    result.jpeg = encode_jpeg(grey)
    return result


# --------------------------------------------------------------------------------------------
# Writing the line
# --------------------------------------------------------------------------------------------

@dataclass
class FrameInfo:
    file: str
    coil: int
    surface: str
    frame: int  # index in the line's stream
    position_m: float  # metres from the head of `coil` to row 0


def frame_table(plan: CoilPlan) -> list[FrameInfo]:
    """Every frame of the line, in stream order (frame by frame, top before bottom)."""
    cfg = plan.config
    infos: list[FrameInfo] = []
    count = [0] * cfg.coils
    for f in range(plan.n_frames):
        k = plan.coil_of_row(f * cfg.frame_height)
        i, count[k] = count[k], count[k] + 1
        pos = (f * cfg.frame_height - plan.coil_start_rows[k]) * cfg.pixel.along_mm / 1000.0
        for surface in cfg.surfaces:
            infos.append(FrameInfo(f"{plan.coil_ids[k]}_{surface}_{i:06d}.jpg", k, surface, f,
                                   round(pos, 6)))
    return infos


def defects_by_frame(plan: CoilPlan) -> dict[tuple[str, int], tuple[int, ...]]:
    """(surface, frame) -> ids of the planned defects that frame shows (frames with none left out)."""
    by_frame: dict[tuple[str, int], list[int]] = {}
    for d in plan.defects:
        for f in d.frames(plan.config.frame_height):
            by_frame.setdefault((d.surface, f), []).append(d.defect_id)
    return {k: tuple(ids) for k, ids in by_frame.items()}


def _jobs(plan: CoilPlan, infos: list[FrameInfo]) -> list[tuple[str, int, tuple[int, ...]]]:
    by_frame = defects_by_frame(plan)
    return [(i.surface, i.frame, by_frame.get((i.surface, i.frame), ())) for i in infos]


@dataclass
class SynthCoilSummary:
    out: Path
    frames: int
    coils: int
    defects: int
    roll_marks: int
    seconds: float
    per_class: dict[int, int] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def synthesize_coils(out_dir: str | Path, cfg: SynthCoilConfig, *, workers: int = 1,
                     progress: bool = True, truth_only: bool = False) -> SynthCoilSummary:
    """Write the line described by `cfg` into out_dir (see the module docstring).
    `truth_only`: no frames (no frames/, frames.csv, train.csv), the same defects.csv, fast."""
    from tqdm import tqdm

    if workers < 1:
        raise ConfigError(f"must be at least 1, got {workers}", field="--workers")
    t0 = time.perf_counter()
    plan = plan_line(cfg)
    out = Path(out_dir)
    stale = previous_outputs(out, "frames", SOURCE)
    frames_dir = out / "frames"
    if not truth_only:
        frames_dir.mkdir(parents=True, exist_ok=True)
    infos = frame_table(plan)
    labels: list[tuple[str, int, str]] = []
    pieces: dict[int, list[tuple[float, float, float, float, int]]] = {}
    strips: list[tuple[float, float]] = []
    if truth_only:
        stream = truth_pieces(plan)
        bar = tqdm(desc="synth-coil truth", unit="piece", disable=not progress)
    else:
        stream = zip(infos, _results(plan, _jobs(plan, infos), workers))
        bar = tqdm(total=len(infos), desc="synth-coil", unit="frame", disable=not progress)
    for info, result in stream:
        if not truth_only:
            (frames_dir / info.file).write_bytes(result.jpeg)  # the index files are written atomically
            labels.extend((info.file, c, rle) for c, rle in result.rles.items())
            strips.append(result.strip)
        for defect_id, bbox, npx in result.pieces:
            d = plan.defects[defect_id]
            frame_m = (info.frame * cfg.frame_height - plan.coil_start_rows[d.coil]) \
                * cfg.pixel.along_mm / 1000.0
            box = box_to_coil(bbox, frame_m, result.strip, DRIVE_SIDES[info.surface], cfg.pixel)
            pieces.setdefault(defect_id, []).append(
                (box.start_m, box.end_m, box.across_start_mm, box.across_end_mm, npx))
        bar.update(1)
    bar.close()
    truth = _truth_rows(plan, pieces)
    _write_tables(out, plan, None if truth_only else infos, strips, labels, truth)
    for name in stale - (set() if truth_only else {i.file for i in infos}):
        (frames_dir / name).unlink(missing_ok=True)
    per_class: dict[int, int] = {}
    for row in truth:
        per_class[row[2]] = per_class.get(row[2], 0) + 1
    marks = sum(1 for row in truth if str(row[-1]).startswith("roll:"))
    return SynthCoilSummary(out, 0 if truth_only else len(infos), cfg.coils, len(truth), marks,
                            time.perf_counter() - t0, dict(sorted(per_class.items())))


def _results(plan: CoilPlan, jobs: list, workers: int) -> Iterator[FrameResult]:
    """Rendered frames in job order; a window of jobs in flight keeps memory flat."""
    if workers == 1:
        _init_worker(plan)
        yield from map(_render_job, jobs)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    chunk = 8
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(plan,)) as pool:
        pending: deque = deque()
        batches = (jobs[i:i + chunk] for i in range(0, len(jobs), chunk))
        for batch in batches:
            pending.append(pool.submit(_render_batch, batch))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _render_batch(batch: list) -> list[FrameResult]:
    return [_render_job(job) for job in batch]


def _truth_rows(plan: CoilPlan, pieces: dict[int, list]) -> list[list]:
    """One row per painted defect: the union of its frame boxes, its painted area."""
    cfg = plan.config
    px_area = cfg.pixel.along_mm * cfg.pixel.across_mm
    rows = []
    for defect_id, parts in pieces.items():
        d = plan.defects[defect_id]
        p = np.array(parts, dtype=np.float64)
        start, end = p[:, 0].min(), p[:, 1].max()
        a0, a1 = p[:, 2].min(), p[:, 3].max()
        rows.append([plan.coil_ids[d.coil], d.surface, d.class_id, round(start, 6), round(end, 6),
                     round(a0, 3), round(a1, 3), round((end - start) * 1000, 3), round(a1 - a0, 3),
                     round(float(p[:, 4].sum()) * px_area, 3), d.source])
    rows.sort(key=lambda r: (plan.coil_ids.index(r[0]), SURFACES.index(r[1]), r[3], r[5]))
    return rows


def _csv_text(header: list[str], rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _write_tables(out: Path, plan: CoilPlan, infos: list[FrameInfo] | None, strips: list,
                  labels: list, truth: list) -> None:
    """The CSVs, line.yaml and steelscan.json; without `infos` (truth only) no frames.csv or
    train.csv, and stale ones are removed so the folder never pairs old frames with new truth."""
    import yaml

    cfg = plan.config
    if infos is None:
        for name in ("frames.csv", "train.csv"):
            (out / name).unlink(missing_ok=True)
    else:
        write_text(out / "frames.csv", _csv_text(FRAMES_HEADER, [
            [i.file, plan.coil_ids[i.coil], i.surface, f"{i.position_m:.6f}", CAMERA_IDS[i.surface],
             f"{s[0]:.3f}", f"{s[1]:.3f}"] for i, s in zip(infos, strips)]))
        write_text(out / "train.csv", _csv_text(CURRENT_HEADER, labels))
    crng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 5]))
    exposed = "top" if "top" in cfg.surfaces else "bottom"
    coils = []
    for k, cid in enumerate(plan.coil_ids):
        coils.append([cid, LINE_ID, GRADES[int(crng.integers(len(GRADES)))], f"{cfg.width_mm:g}",
                      f"{float(crng.uniform(0.4, 3.0)):.2f}", f"{cfg.length_m:g}",
                      f"ORD-{cfg.seed}-{k // 3 + 1:04d}", CUSTOMERS[int(crng.integers(len(CUSTOMERS)))],
                      exposed])
    write_text(out / "coils.csv", _csv_text(COILS_HEADER, coils))
    write_text(out / "defects.csv", _csv_text(DEFECTS_HEADER, truth))
    write_text(out / "rolls.csv", _csv_text(ROLLS_HEADER, [
        [r.name, f"{r.diameter_mm:g}", r.surface] for r in plan.rolls]))
    flags = asdict(cfg)
    flags["pixel"] = [cfg.pixel.along_mm, cfg.pixel.across_mm]
    flags["roll_diameters_mm"] = list(cfg.roll_diameters_mm)
    flags["surfaces"] = list(cfg.surfaces)
    write_json(out / META_FILE, {"num_classes": NUM_CLASSES,
                                 "class_names": default_class_names(NUM_CLASSES),
                                 "class_descriptions": CLASS_DESCRIPTIONS, "source": SOURCE,
                                 "images_dir": "frames"})
    line = {  # steelscan line's config (line/config.py); source, line_id, truth, synth: descriptive
        "source": SOURCE,
        "line_id": LINE_ID,
        "pixel_mm": {"along": cfg.pixel.along_mm, "across": cfg.pixel.across_mm},
        "frame": {"height": cfg.frame_height, "width": cfg.frame_width},
        "surfaces": {s: {"drive_side": DRIVE_SIDES[s], "camera_id": CAMERA_IDS[s]} for s in cfg.surfaces},
        "truth": {"min_gap_mm": MIN_GAP_MM,
                  "roll_periods_m": {r.name: round(r.period_m, 6) for r in plan.rolls}},
        "synth": flags,
    }
    write_text(out / "line.yaml", "# written by steelscan synth-coil (steelscan line reads it)\n"
               + yaml.safe_dump(line, sort_keys=False))


def draw_truth_map(out_dir: str | Path, png: str | Path, *, width_px: int = 1400) -> Path:
    """A picture of the truth: per coil and surface, the strip seen from above (metres from the
    head to the right, mm from the drive-side edge downwards), each defect its box in its
    class colour, roll marks outlined in black. Reads defects.csv and coils.csv of `out_dir`."""
    from PIL import Image, ImageDraw

    from ..atomic import write_bytes
    from ..overlay import class_color

    out = Path(out_dir)
    with open(out / "coils.csv", newline="") as f:
        coils = list(csv.DictReader(f))
    with open(out / "defects.csv", newline="") as f:
        defects = list(csv.DictReader(f))
    surfaces = [s for s in SURFACES if any(d["surface"] == s for d in defects)] or ["top"]
    panel_h, gap, margin = 110, 26, 60
    panels = [(c, s) for c in coils for s in surfaces]
    im = Image.new("RGB", (width_px + 2 * margin, 30 + len(panels) * (panel_h + gap)), "white")
    draw = ImageDraw.Draw(im)
    legend = "  ".join(f"class {c}: {d}" for c, d in enumerate(CLASS_DESCRIPTIONS, 1))
    draw.text((margin, 8), f"truth of {out.name}: {legend}; roll marks outlined", fill=(40, 40, 40))
    for i, (coil, surface) in enumerate(panels):
        y0 = 30 + i * (panel_h + gap) + 14
        length, width = float(coil["length_m"]), float(coil["width_mm"])
        sx, sy = width_px / length, panel_h / width
        draw.text((margin, y0 - 13), f"{coil['coil_id']} {surface}: {length:g} m x {width:g} mm "
                  f"(drive side at the top edge)", fill=(40, 40, 40))
        draw.rectangle((margin, y0, margin + width_px, y0 + panel_h), fill=(205, 205, 205))
        for d in (d for d in defects if d["coil_id"] == coil["coil_id"] and d["surface"] == surface):
            x0 = margin + float(d["start_m"]) * sx
            x1 = max(x0 + 2, margin + float(d["end_m"]) * sx)
            ya = y0 + float(d["across_start_mm"]) * sy
            yb = max(ya + 2, y0 + float(d["across_end_mm"]) * sy)
            roll = d["source"].startswith("roll:")
            draw.rectangle((x0, ya, x1, yb), fill=class_color(int(d["class_id"]) - 1),
                           outline="black" if roll else None)
        for m in range(0, int(length) + 1, max(1, int(length / 10))):
            draw.text((margin + m * sx - 4, y0 + panel_h + 1), f"{m}", fill=(80, 80, 80))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    write_bytes(png, buf.getvalue())
    return Path(png)

