"""Defect lists with known truth, for measuring the periodic detector apart from the segmenter.

A coil gets random defects (Poisson along, uniform across, any class) and roll marks: each
mark repeats every `period_m` (the roll's period with wear), a turn leaves no detected mark
with probability `miss_rate`, each position jitters uniformly by +-`jitter_mm`, and the
mark wanders sideways by up to `drift_mm` (two slow sinusoids, 20..200 m long, like the
strip path of `steelscan synth-coil`). Seeded: same arguments, same list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .defect_list import DefectList


@dataclass(frozen=True)
class MarkSpec:
    period_m: float
    surface: str = "top"
    class_id: int = 1
    across_mm: float = 500.0
    phase_m: float = 0.0          # first turn position
    start_m: float = 0.0          # the mark appears from here ...
    end_m: float | None = None    # ... to here (None: the coil end)
    miss_rate: float = 0.3
    jitter_mm: float = 3.0
    drift_mm: float = 50.0
    class_flip: float = 0.0       # probability that one occurrence is classified as another class
    length_mm: float = 40.0
    width_mm: float = 40.0


@dataclass
class SyntheticCoil:
    defects: DefectList
    truth: np.ndarray             # per defect: index of its mark in `marks`, -1 for random defects
    marks: list[MarkSpec]
    length_m: float


def make_coil(rng: np.random.Generator, *, length_m: float, marks: list[MarkSpec] = (),
              random_per_m: float = 2.0, width_mm: float = 1500.0, classes: int = 4,
              coil_id: str = "coil", surfaces: tuple[str, ...] = ("top", "bottom")) -> SyntheticCoil:
    """One coil's defects (random per surface at `random_per_m`, plus the marks), sorted by start_m."""
    parts = []   # (surface, class, start_m, across_start, across_end, length_mm, truth)
    for surface in surfaces:
        n = rng.poisson(random_per_m * length_m)
        start = rng.uniform(0, length_m, n)
        w = rng.uniform(5, 80, n)
        a0 = rng.uniform(0, width_mm - w)
        parts.append((np.full(n, surface, object), rng.integers(1, classes + 1, n), start, a0, a0 + w,
                      rng.uniform(5, 200, n), np.full(n, -1)))
    for k, mk in enumerate(marks):
        end = length_m if mk.end_m is None else min(mk.end_m, length_m)
        turns = np.arange(int(np.ceil((mk.start_m - mk.phase_m) / mk.period_m)),
                          int((end - mk.phase_m) / mk.period_m) + 1)
        pos = mk.phase_m + turns * mk.period_m + rng.uniform(-mk.jitter_mm, mk.jitter_mm, len(turns)) / 1000
        keep = (rng.random(len(turns)) >= mk.miss_rate) & (pos >= 0) & (pos < length_m)
        pos = pos[keep]
        amp = mk.drift_mm * rng.dirichlet([1.0, 1.0])
        lam = np.exp(rng.uniform(np.log(20), np.log(200), 2))
        ph = rng.uniform(0, 2 * np.pi, 2)
        drift = (amp[:, None] * np.sin(2 * np.pi * pos[None, :] / lam[:, None] + ph[:, None])).sum(0)
        centre = np.clip(mk.across_mm + drift, mk.width_mm / 2, width_mm - mk.width_mm / 2)
        cls = np.full(len(pos), mk.class_id)
        flip = rng.random(len(pos)) < mk.class_flip
        cls[flip] = rng.integers(1, classes + 1, int(flip.sum()))
        parts.append((np.full(len(pos), mk.surface, object), cls, pos, centre - mk.width_mm / 2,
                      centre + mk.width_mm / 2, np.full(len(pos), mk.length_mm), np.full(len(pos), k)))
    surface, cls, start, a0, a1, length, truth = (np.concatenate([p[i] for p in parts]) for i in range(7))
    order = np.argsort(start, kind="stable")
    surface, cls, start, a0, a1, length, truth = (v[order] for v in (surface, cls, start, a0, a1, length, truth))
    defects = DefectList.from_arrays(coil_id=np.full(len(start), coil_id, object), surface=surface, class_id=cls,
                                     start_m=start, end_m=start + length / 1000, across_start_mm=a0,
                                     across_end_mm=a1, length_mm=length)
    return SyntheticCoil(defects, truth, list(marks), length_m)
