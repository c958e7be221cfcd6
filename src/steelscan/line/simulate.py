"""`--simulate`: a running line made by the synth-coil generator, no data needed.

Coil after coil with welds (frames across a weld split between the coils, as synth-coil writes
them), top and bottom surface. Endless unless `coils` is given: the line is planned in blocks of
`BLOCK_COILS` coils, block k with seed `seed + k` (coil ids `C<seed+k>-001`, ...). Frames are
rendered only when the runner inspects them (a frame skipped as `behind` costs nothing).

Pace: as fast as the runner takes frames, or with `realtime` at the strip speed: frame f of a
block passes the camera `f x frame length / speed` seconds after the block began, and the runner
falls behind when inspection is slower than that.

Roll marks: `roll_diameters_mm` (synth-coil's `--roll-diameter-mm`, `miss_rate`): each block's rolls
keep turning across its welds; `roll_table()` is the matching roll table.

Restarts: with a state, the line goes on from the block of the coil that was open; the frames
before the runner's saved place are passed quietly (`resumed`)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from typing import Iterator

import numpy as np

from ..coils.records import CoilInfo
from ..data.synth_coil import (GRADES, LINE_ID, SynthCoilConfig, defects_by_frame, frame_table, plan_line,
                               render_frame)
from ..geometry import PixelSize
from .frames import FrameRow
from .sources import SourceFrame

BLOCK_COILS = 4
DEFAULT_MODEL = "synthetic-strip"  # the shipped bundle trained on these frames (models/synthetic-strip)


class SimulatedLine:
    def __init__(self, *, coils: int | None = None, coil_length_m: float = 200.0, speed_m_s: float = 2.0,
                 realtime: bool = False, width_mm: float | None = None, seed: int = 0,
                 pixel_mm: tuple[float, float] = (1.0, 1.0), frame_size: tuple[int, int] = (256, 1600),
                 surfaces: tuple[str, ...] = ("top", "bottom"), start_block: int = 0,
                 clock=time.monotonic, sleep=None, truth: bool = False, density: float = 1.0,
                 roll_diameters_mm: tuple[float, ...] = (), miss_rate: float = 0.0) -> None:
        from ..errors import ConfigError

        if coils is not None and coils < 1:
            raise ConfigError(f"must be at least 1, got {coils}", field="--coils")
        if not (math.isfinite(speed_m_s) and speed_m_s > 0):
            raise ConfigError(f"must be > 0, got {speed_m_s}", field="--speed-m-s")
        self.n_coils, self.realtime, self.speed = coils, realtime, speed_m_s
        if width_mm is None:   # a 1250 mm strip, or 80 % of a smaller camera field
            width_mm = min(1250.0, round(0.8 * frame_size[1] * pixel_mm[1]))
        self.base = SynthCoilConfig(length_m=coil_length_m, width_mm=width_mm, seed=seed,
                                    pixel=PixelSize(*pixel_mm), frame_height=frame_size[0],
                                    frame_width=frame_size[1], surfaces=tuple(surfaces), density=density,
                                    roll_diameters_mm=tuple(roll_diameters_mm), miss_rate=miss_rate)
        self.base.validate()
        self.start_block = start_block
        self.clock, self.sleep = clock, sleep
        self._resume = False
        self.truth = truth
        self.masks: dict[str, np.ndarray] = {}   # file -> (4, H, W) painted masks (truth=True), until inspected
        self.coils: dict[str, CoilInfo] = {}
        self._order: list[str] = []
        self.total = None if coils is None else self._frames_total()
        self.live = realtime   # as fast as possible: the runner sets the pace, nothing to fall behind

    def roll_table(self):
        """The rolls that mark this line (`roll_diameters_mm`) as a roll table: R1, R2, ... on the
        surfaces synth-coil gives them (roll i marks surface i mod the number of surfaces)."""
        from ..coils.rolls import Roll, RollTable

        surfaces = self.base.surfaces
        return RollTable(tuple(Roll(name=f"R{j + 1}", diameter_mm=d, surface=surfaces[j % len(surfaces)])
                               for j, d in enumerate(self.base.roll_diameters_mm)))

    def _frames_total(self) -> int:
        per = len(self.base.surfaces)
        total, left, k = 0, self.n_coils, 0
        while left > 0:
            n = min(BLOCK_COILS, left)
            cfg = replace(self.base, coils=n)
            total += math.ceil(cfg.length_m * n * 1000 / cfg.pixel.along_mm / cfg.frame_height - 1e-9) * per
            left, k = left - n, k + 1
        return total

    def next_coil(self, surface: str, coil_id: str) -> str | None:
        if coil_id in self._order and self._order.index(coil_id) + 1 < len(self._order):
            return self._order[self._order.index(coil_id) + 1]
        return None

    @staticmethod
    def block_of(coil_id: str, seed: int) -> int | None:
        """The block a coil id of this line came from (for a restart), None if not ours."""
        try:
            return int(coil_id.split("-")[0][1:]) - seed
        except (ValueError, IndexError):
            return None

    def _block(self, k: int):
        left = None if self.n_coils is None else self.n_coils - k * BLOCK_COILS
        if left is not None and left <= 0:
            return None
        cfg = replace(self.base, coils=min(BLOCK_COILS, left) if left else BLOCK_COILS, seed=self.base.seed + k)
        plan = plan_line(cfg)
        crng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 5]))
        for i, cid in enumerate(plan.coil_ids):
            self.coils[cid] = CoilInfo(cid, LINE_ID, GRADES[int(crng.integers(len(GRADES)))], cfg.width_mm,
                                       round(float(crng.uniform(0.4, 3.0)), 2), cfg.length_m,
                                       f"ORD-{cfg.seed}-{i // 3 + 1:04d}", "simulated line", cfg.surfaces[0])
            self._order.append(cid)
        return plan

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame | None]:
        sleep = self.sleep or (lambda s: stop.wait(s))
        k = self.start_block
        while not stop.is_set():
            plan = self._block(k)
            if plan is None:
                return
            cfg = plan.config
            by_frame = defects_by_frame(plan)
            t0 = self.clock()
            frame_s = cfg.frame_length_m / self.speed
            for info in frame_table(plan):
                if stop.is_set():
                    return
                due = t0 + info.frame * frame_s
                if self.realtime and self.clock() < due:
                    sleep(due - self.clock())
                row = FrameRow(file=info.file, coil_id=plan.coil_ids[info.coil], surface=info.surface,
                               position_m=info.position_m, camera_id=info.surface)
                ids = by_frame.get((info.surface, info.frame), ())

                def load(plan=plan, info=info, ids=ids):
                    grey, masks, _ = render_frame(plan, info.surface, info.frame, [plan.defects[i] for i in ids])
                    if self.truth:
                        self.masks[info.file] = masks
                    return np.repeat(grey[:, :, None], 3, axis=2)

                yield SourceFrame(row, due if self.realtime else self.clock(), load=load, resumed=self._resume)
            k += 1
            self._resume = False

    def resume(self, coil_id: str | None) -> None:
        """Go on from the block of `coil_id` (the coil open when the runner stopped)."""
        block = self.block_of(coil_id, self.base.seed) if coil_id else None
        if block is not None and block >= 0:
            self.start_block = block
            self._resume = True


class TruthInspector:
    """An inspector that answers a simulated line's frames with the masks the generator painted
    (the oracle for `--simulate`: geometry, speed of everything but the model, the spool
    benchmark). Works with `SimulatedLine(truth=True)`, which keeps each rendered frame's masks
    until this inspector takes them."""

    class_names = ["pits", "inclusion", "scratches", "patches"]

    def __init__(self, line: "SimulatedLine") -> None:
        from ..inference.cascade import InspectionResult
        from ..inference.postprocess import find_defects

        self._result, self._find = InspectionResult, find_defects
        self.line = line
        self.model_info = {"name": "simulated-truth", "version": None, "sha256": None}

    def inspect(self, images, image_ids):
        out = []
        for im, i in zip(images, image_ids):
            masks = self.line.masks.pop(i)
            defects = self._find(masks, None, self.class_names)
            scores = masks.reshape(len(masks), -1).any(axis=1).astype(np.float32)
            out.append(self._result(i, "NG" if defects else "OK", masks, scores, defects, True, {}, None,
                                    list(self.class_names), "simulated-truth"))
        return out
