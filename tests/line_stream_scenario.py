"""A small damaged simulated line for the runner-path comparison (test_line_stream.py).

Two welded coils of 3 m, top and bottom, 64 x 512 px frames of 1 mm, inspected as fast as
possible; a few frames unreadable, one of the wrong size, one the inspector fails on. Two
inspectors: the generator's painted masks (`TruthInspector`, which has `inspect` only) and the
real cascade (`Inspector`: models, then post-processing) with a segmenter that answers each
frame with its painted masks as probabilities. What the
runner hands its sink (defects, uninspected lengths, surface summaries, in order) and its
problem lines are reduced to plain JSON; `tests/data/line_stream_golden.json` holds them as the
runner's per-batch path wrote them before it went through the inference stream (commit 4e64d1c,
`PYTHONPATH=src:tests python tests/line_stream_scenario.py tests/data/line_stream_golden.json`).
Only API both paths have is used here."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict

import numpy as np

from steelscan.errors import ImageError
from steelscan.inference.cascade import Inspector
from steelscan.inference.thresholds import Thresholds
from steelscan.line import LineConfig, LineRunner
from steelscan.line.simulate import SimulatedLine, TruthInspector

UNREADABLE = (3, 40, 41, 97)      # indices of the frames (in the source's order) that cannot be read
WRONG_SIZE = 60                   # this one comes 32 rows high
FAILS = 75                        # the inspector fails on this one


class DamagedLine:
    """A SimulatedLine whose frames UNREADABLE are corrupt and WRONG_SIZE is cut short."""

    live = False

    def __init__(self, line: SimulatedLine) -> None:
        self.line = line
        self.files: list[str] = []
        self.painted: dict[bytes, np.ndarray] = {}   # sha256 of a rendered frame -> its masks

    @property
    def coils(self):
        return self.line.coils

    @property
    def total(self):
        return self.line.total

    def next_coil(self, surface, coil_id):
        return self.line.next_coil(surface, coil_id)

    def frames(self, stop):
        for sf in self.line.frames(stop):
            if sf is not None:
                i = len(self.files)
                self.files.append(sf.row.file)
                if i in UNREADABLE:
                    sf.load = _corrupt(sf.row.file)
                elif i == WRONG_SIZE:
                    sf.load = _short(sf.load)
                else:
                    sf.load = self._keep_masks(sf.load, sf.row.file)
            yield sf

    def _keep_masks(self, load, file):
        def keep():
            image = load()
            self.painted[hashlib.sha256(image.tobytes()).digest()] = self.line.masks[file]
            return image
        return keep


def _corrupt(file):
    def load():
        raise ImageError("cannot identify image file (corrupt)", path=file)
    return load


def _short(load):
    return lambda: load()[:32]


class FailsOn:
    """Any inspector, except that it reports an error for one frame."""

    def __init__(self, inner, source: DamagedLine) -> None:
        self.inner, self.source = inner, source
        self.class_names = getattr(inner, "class_names", None)
        self.model_info = getattr(inner, "model_info", None)

    def inspect(self, images, ids):
        out = self.inner.inspect(images, ids)
        for r in out:
            if len(self.source.files) > FAILS and r.image_id == self.source.files[FAILS]:
                r.error, r.masks = "model exploded", None
        return out


class Sink:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def upsert_coil(self, coil):
        self.records.append({"kind": "coil", **asdict(coil)})

    def add_defects(self, defects):
        for d in defects:
            rec = asdict(d)
            png = rec.pop("crop_png")
            rec["crop_sha256"] = hashlib.sha256(png).hexdigest()[:16] if png else None
            self.records.append({"kind": "defect", **rec})

    def add_uninspected(self, spans):
        self.records += [{"kind": "uninspected", **asdict(s)} for s in spans]

    def close_surface(self, summary):
        self.records.append({"kind": "surface", **asdict(summary)})

    def flush(self):
        pass

    def close(self):
        pass


class PaintedSegmenter:
    """A segmenter (Runner protocol) that answers each whole frame with the masks the generator
    painted on it (found by the frame's pixels): 0.9 inside, 0.05 outside."""

    kind, num_classes, in_channels = "segmenter", 4, 3

    def __init__(self, source: DamagedLine) -> None:
        self.source = source

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = []
        for x in batch:
            image = np.ascontiguousarray((x * 255.0).round().astype(np.uint8).transpose(1, 2, 0))
            masks = self.source.painted[hashlib.sha256(image.tobytes()).digest()]
            out.append(np.where(masks > 0, 0.9, 0.05).astype(np.float32))
        return np.stack(out)


def cascade(source: DamagedLine, batch_size: int) -> Inspector:
    return Inspector(None, PaintedSegmenter(source), Thresholds.defaults(4), tile=(64, 512), batch_size=batch_size)


def run(kind: str, batch_size: int = 4, **runner_kw) -> dict:
    """kind: "truth" (the painted masks: an inspector with `inspect` only) or "cascade" (the real
    Inspector). Returns {"records": [...], "problems": [...], "summary": {...}}."""
    line = SimulatedLine(coils=2, coil_length_m=3.0, width_mm=400, frame_size=(64, 512),
                         surfaces=("top", "bottom"), truth=True, seed=3, density=4.0)
    source = DamagedLine(line)
    inner = TruthInspector(line) if kind == "truth" else cascade(source, batch_size)
    sink = Sink()
    runner = LineRunner(FailsOn(inner, source), sink, LineConfig(batch_size=batch_size), **runner_kw)
    summary = runner.run_source(source)
    return {"records": sink.records, "problems": summary.problems,
            "summary": {"frames": summary.frames, "inspected": summary.inspected, "defects": summary.defects,
                        "uninspected_m": round(summary.uninspected_m, 6), "coils": summary.coils}}


if __name__ == "__main__":
    out = {kind: run(kind) for kind in ("truth", "cascade")}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
    for kind, r in out.items():
        print(kind, r["summary"], len(r["records"]), "records", len(r["problems"]), "problems")
