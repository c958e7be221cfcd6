"""Live sources of the line runner (steelscan.line.sources, watch, simulate, camera): a watched
folder across a SIGTERM and a restart, the reorder window and late frames, skipping on purpose
when inspection falls behind a simulated line, replay never skipping, the camera's one-line error.

Frames are test_line's small synthetic strips (64 x 400 px, 2 mm x 0.5 mm pixels) with the truth
inspector (OracleInspector), or synth-coil frames of 32 x 256 px with a fake slow inspector on a
fake clock (no wall-clock thresholds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelscan.cli import main
from steelscan.inference.cascade import InspectionResult
from steelscan.line import LineConfig, LineRunner, read_frames
from steelscan.line.oracle import OracleInspector
from steelscan.line.simulate import SimulatedLine
from steelscan.line.state import LineState
from steelscan.line.watch import WatchSource
from steelscan.rle import encode_rle
from test_line import ALONG, CONFIG, FRAME_M, H, MemorySink, strip_image

SRC = str(Path(__file__).resolve().parents[1] / "src")


class Camera:
    """Writes frames into a watched folder the way a camera driver should: image and sidecar
    under temporary names, then renamed. Keeps the truth (train.csv) for the oracle."""

    def __init__(self, root: Path, truth: Path) -> None:
        self.root, self.truth = root, truth
        root.mkdir(parents=True, exist_ok=True)
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text("ImageId,ClassId,EncodedPixels\n")
        self.n = 0

    def frame(self, coil: str, position_m: float, box=None, *, surface: str = "top", sidecar: bool = True) -> str:
        name = f"f{self.n:04d}.png"
        im = strip_image(seed=self.n)
        self.n += 1
        if box is not None:   # (class, y0, y1, x0, x1), drawn dark and written as truth
            c, y0, y1, x0, x1 = box
            m = np.zeros(im.shape[:2], np.uint8)
            m[y0:y1 + 1, x0:x1 + 1] = 1
            im[y0:y1 + 1, x0:x1 + 1] = 20
            with open(self.truth, "a") as f:
                f.write(f"{name},{c},{encode_rle(m)}\n")
        Image.fromarray(im).save(self.root / f".{name}.tmp", format="PNG")
        if sidecar:
            (self.root / f".{name}.json.tmp").write_text(json.dumps(
                {"coil_id": coil, "surface": surface, "position_m": round(position_m, 6)}))
            os.replace(self.root / f".{name}.json.tmp", self.root / f"f{self.n - 1:04d}.json")
        os.replace(self.root / f".{name}.tmp", self.root / name)
        return name


def wait_for(cond, timeout=120.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def _state_top(state: Path) -> dict:
    try:
        data = json.loads((state / "state-all.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return (data.get("surfaces") or {}).get("top") or {}


def _line(args, log):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "steelscan", "line", *args], env=env, stdout=log, stderr=log)


def test_watch_survives_sigterm_and_restart_no_frame_twice_none_skipped(tmp_path):
    """A camera writes coil A (10 frames, 3 defects, one across two frames) and coil B; the runner
    is stopped by SIGTERM mid-coil A and restarted; A ends up inspected once, whole, with every
    defect once."""
    watch, state, db = tmp_path / "cam", tmp_path / "state", tmp_path / "coils.db"
    cam = Camera(watch, tmp_path / "truth" / "train.csv")
    (watch / "line.yaml").write_text("pixel_mm: [2.0, 0.5]\nbatch_size: 2\n")
    args = ["--oracle", str(cam.truth), "--db", str(db), "--watch", str(watch), "--state", str(state),
            "--quiet", "--reorder-s", "0.2", "--max-lag-s", "600"]
    boxes = {1: (1, 10, 20, 100, 140), 4: (2, 30, 63, 200, 220), 5: (2, 0, 12, 200, 220), 8: (3, 5, 9, 300, 310)}
    for i in range(2):
        cam.frame("A", i * FRAME_M, boxes.get(i))
    with open(tmp_path / "run1.log", "w") as log:
        proc = _line(args, log)
        for i in range(2, 4):                   # frames arrive while it runs
            cam.frame("A", i * FRAME_M, boxes.get(i))
        wait_for(lambda: _state_top(state).get("coil", {}).get("frames", 0) >= 4 or proc.poll() is not None,
                 what="first frames inspected")
        proc.send_signal(signal.SIGTERM)        # (a defect across the stop would be stored as two)
        assert proc.wait(timeout=60) in (0, 1), (tmp_path / "run1.log").read_text()
    first = _state_top(state)["coil"]
    assert first["coil_id"] == "A" and first["frames"] == 4
    for i in range(4, 10):                      # the camera goes on while the runner is down
        cam.frame("A", i * FRAME_M, boxes.get(i))
    with open(tmp_path / "run2.log", "w") as log:
        proc = _line(args, log)
        for i in range(3):
            cam.frame("B", i * FRAME_M)
        wait_for(lambda: _state_top(state).get("coil", {}).get("coil_id") == "B"
                 and _state_top(state)["coil"]["frames"] == 3, what="coil B reached")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, 1), (tmp_path / "run2.log").read_text()
    assert "Traceback" not in (tmp_path / "run1.log").read_text() + (tmp_path / "run2.log").read_text()

    from steelscan.coils.store import CoilStore

    with CoilStore(str(db)) as store:
        coil = store.coil("A")
        defects = store.defects("A")
        spans = store.uninspected("A")
    top = next(s for s in coil["surfaces"] if s["surface"] == "top")
    assert top["frames"] == 10                                    # none twice, none skipped
    assert top["inspected_m"] == pytest.approx(10 * FRAME_M)
    assert spans == []
    assert sorted((d["class_id"], round(d["start_m"], 3)) for d in defects) == [   # frames 4+5: one defect
        (1, round(FRAME_M + 10 * ALONG / 1000, 3)), (2, round(4 * FRAME_M + 30 * ALONG / 1000, 3)),
        (3, round(8 * FRAME_M + 5 * ALONG / 1000, 3))]


def _watch_run(folder: Path, truth: Path, stop_when, reorder_frames=8, reorder_s=0.2):
    """Run the runner over a watched folder in a thread until `stop_when(sink)`; the sink."""
    sink = MemorySink()
    stop = threading.Event()
    problems: list[str] = []
    src = WatchSource(folder, poll_s=0.02, reorder_frames=reorder_frames, reorder_s=reorder_s,
                      on_problem=problems.append)
    runner = LineRunner(OracleInspector(truth), sink, CONFIG, stop=stop, max_lag_s=600, on_problem=problems.append)
    t = threading.Thread(target=runner.run_source, args=(src,), daemon=True)
    t.start()
    return sink, stop, t, runner, problems


def test_watch_reorders_ignores_temp_files_and_names_late_frames(tmp_path):
    watch = tmp_path / "cam"
    cam = Camera(watch, tmp_path / "train.csv")
    (watch / ".half-written.png.tmp").write_bytes(b"\x89PNG")       # never looked at
    (watch / "junk.png.part").write_bytes(b"\x89PNG")
    order = [0, 2, 1, 3]                                           # within the reorder window
    for i in order:
        cam.frame("A", i * FRAME_M)
    sink, stop, t, runner, problems = _watch_run(watch, cam.truth, None, reorder_s=0.3)
    wait_for(lambda: runner.summary.inspected == 4, what="4 frames")
    for i in (5, 6):                                               # frame 4 is missing ...
        cam.frame("A", i * FRAME_M)
    wait_for(lambda: runner.summary.inspected == 6, what="6 frames")
    late = cam.frame("A", 4 * FRAME_M)                             # ... and comes after its place was passed
    wait_for(lambda: runner.summary.late == 1, what="the late frame")
    stop.set()
    t.join(30)
    assert runner.summary.stopped
    spans = sorted((s.reason, round(s.start_m, 4), round(s.end_m, 4)) for s in sink.spans)
    assert spans == [("late", round(4 * FRAME_M, 4), round(5 * FRAME_M, 4)),
                     ("missing", round(4 * FRAME_M, 4), round(5 * FRAME_M, 4))]
    assert any(late in p and "late" in p for p in problems)
    assert not any("tmp" in p or "part" in p for p in problems)


def test_watch_metadata_from_a_growing_frames_csv(tmp_path):
    watch = tmp_path / "cam"
    cam = Camera(watch, tmp_path / "train.csv")
    names = [cam.frame("A", i * FRAME_M, sidecar=False) for i in range(3)]
    (watch / "frames.csv").write_text("file,coil_id,surface,position_m\n" + "".join(
        f"{n},A,top,{i * FRAME_M:.6f}\n" for i, n in enumerate(names[:2])) + f"{names[2]},A,to")   # a half line
    sink, stop, t, runner, problems = _watch_run(watch, cam.truth, None, reorder_s=0.1)
    wait_for(lambda: runner.summary.inspected == 2, what="2 frames")
    with open(watch / "frames.csv", "a") as f:
        f.write(f"p,{2 * FRAME_M:.6f}\n")
    wait_for(lambda: runner.summary.inspected == 3, what="the third frame")
    stop.set()
    t.join(30)
    assert runner._streams["top"].coil.cursor_m == pytest.approx(3 * FRAME_M)
    assert problems == []


# --- falling behind a simulated line: a fake clock and an inspector that takes its time --------
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(0.0, s)


class SlowInspector:
    """No defects; each frame costs `seconds` on the fake clock (a slow model)."""

    class_names = ["pits", "inclusion", "scratches", "patches"]

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def inspect(self, images, ids):
        self.clock.t += self.seconds * len(images)
        return [InspectionResult(i, "OK", np.zeros((4, *im.shape[:2]), np.uint8), np.zeros(4, np.float32), [],
                                 True, {}, None, self.class_names, "slow") for im, i in zip(images, ids)]


def simulated(clock, realtime=True, coils=2):
    # 32-row frames of 1 mm: 0.032 m; at 0.32 m/s a frame passes every 0.1 s
    return SimulatedLine(coils=coils, coil_length_m=2.0, speed_m_s=0.32, realtime=realtime, width_mm=200,
                         frame_size=(32, 256), surfaces=("top",), clock=clock, sleep=clock.sleep)


def test_behind_a_realtime_line_skips_on_purpose_and_records_every_metre(tmp_path, caplog):
    clock = FakeClock()
    sink = MemorySink()
    runner = LineRunner(SlowInspector(clock, 0.3), sink, LineConfig(batch_size=4), max_lag_s=1.0, clock=clock)
    summary = runner.run_source(simulated(clock))
    from steelscan.line.lag import LAG

    assert summary.frames == 125 and summary.behind > 0
    # the inspector takes 3x the frame time: about 2/3 of the frames are skipped
    assert summary.behind / summary.frames == pytest.approx(2 / 3, abs=0.05)
    reasons = Counter(s.reason for s in sink.spans)
    assert set(reasons) == {"behind"}
    # one record per skipped frame, two for a skipped frame that straddles the weld (one per coil)
    assert len({s.detail.split(":")[0] for s in sink.spans}) == summary.behind
    for coil in ("C0-001", "C0-002"):                # every metre inspected or recorded, once
        s = next(x for x in sink.surfaces if x.coil_id == coil)
        skipped = sum(x.end_m - x.start_m for x in sink.spans if x.coil_id == coil)
        assert s.inspected_m + skipped == pytest.approx(2.0, abs=1e-6)
    assert 1.0 <= LAG._value.get() <= 1.0 + 0.3 * 4 + 0.2
    assert any("behind the line" in r.message for r in caplog.records)
    assert len([r for r in caplog.records if "behind the line" in r.message]) < summary.behind


def test_fast_enough_or_not_realtime_never_skips(tmp_path):
    clock = FakeClock()
    runner = LineRunner(SlowInspector(clock, 0.05), MemorySink(), LineConfig(batch_size=4), max_lag_s=1.0,
                        clock=clock)
    assert runner.run_source(simulated(clock)).behind == 0      # keeps up with the line
    clock = FakeClock()
    runner = LineRunner(SlowInspector(clock, 0.3), MemorySink(), LineConfig(batch_size=4), max_lag_s=1.0,
                        clock=clock)
    assert runner.run_source(simulated(clock, realtime=False)).behind == 0   # as fast as inspection goes


def test_replay_never_skips_with_a_slow_inspector(tmp_path):
    from test_line import Coil

    coil = Coil(tmp_path / "rec")
    for i in range(12):
        coil.frame("A", "top", i * FRAME_M)
    root = coil.write()
    clock = FakeClock()
    sink = MemorySink()
    runner = LineRunner(SlowInspector(clock, 30.0), sink, CONFIG, max_lag_s=0.001, clock=clock)
    summary = runner.run(read_frames(root / "frames.csv"), root)
    assert summary.inspected == 12 and summary.behind == 0 and sink.spans == []


def test_simulated_line_stopped_and_restarted_continues_the_open_coil(tmp_path):
    clock = FakeClock()
    state = tmp_path / "state"
    sink = MemorySink()
    stop = threading.Event()

    class StopAfter(SlowInspector):
        def inspect(self, images, ids):
            if runner.summary.inspected >= 20:
                stop.set()
            return super().inspect(images, ids)

    runner = LineRunner(StopAfter(clock, 0.0), sink, LineConfig(batch_size=4), stop=stop,
                        state=LineState(state), clock=clock)
    first = runner.run_source(simulated(clock, realtime=False))
    assert first.stopped and sink.surfaces == []             # the coil stays open
    line = simulated(clock, realtime=False)
    line.resume(LineState(state).surface("top")["coil"]["coil_id"])
    runner = LineRunner(SlowInspector(clock, 0.0), sink, LineConfig(batch_size=4), state=LineState(state),
                        clock=clock)
    second = runner.run_source(line)
    assert second.resumed == first.inspected and not second.stopped
    s = {x.coil_id: x for x in sink.surfaces}
    assert set(s) == {"C0-001", "C0-002"}
    assert s["C0-001"].inspected_m == pytest.approx(2.0) and s["C0-002"].inspected_m == pytest.approx(2.0)
    assert first.inspected + second.inspected == 125                 # none twice, none skipped
    assert sink.spans == []


def test_camera_without_harvesters_is_one_clear_line(tmp_path, capsys):
    rc = main(["line", "--oracle", str(tmp_path / "t.csv"), "--db", str(tmp_path / "x.jsonl"), "--camera",
               "--surface", "top"])
    err = capsys.readouterr().err
    assert rc == 2 and "harvesters" in err and "steelscan[camera]" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("flags, field", [
    (["--simulate", "--coils", "three"], "--coils"),
    (["--simulate", "--speed-m-s", "0"], "--speed-m-s"),
    (["--simulate", "--max-lag-s", "0"], "--max-lag-s"),
    (["--watch", "no-such-folder"], None),
])
def test_bad_live_flags_are_one_line(tmp_path, capsys, monkeypatch, flags, field):
    monkeypatch.chdir(tmp_path)
    rc = main(["line", "--oracle", str(tmp_path / "t.csv"), "--db", str(tmp_path / "x.jsonl"), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert field is None or field in err


def test_simulated_line_with_its_truth_stores_what_synth_coil_writes(tmp_path):
    """--simulate is synth-coil as a running line: with the painted masks as the inspector, the
    defects per coil are the ones synth-coil's defects.csv holds for the same line."""
    import csv
    from dataclasses import replace

    from steelscan.data.synth_coil import synthesize_coils
    from steelscan.line.simulate import TruthInspector

    line = SimulatedLine(coils=2, coil_length_m=6.0, width_mm=400, frame_size=(64, 512), surfaces=("top", "bottom"),
                         truth=True)
    synthesize_coils(tmp_path / "coil", replace(line.base, coils=2), progress=False)
    truth = Counter(r["coil_id"] for r in csv.DictReader(open(tmp_path / "coil" / "defects.csv")))
    sink = MemorySink()
    summary = LineRunner(TruthInspector(line), sink, LineConfig(surfaces={})).run_source(line)
    assert summary.problems == [] and summary.uninspected_m == 0
    assert Counter(d.coil_id for d in sink.defects) == truth and sum(truth.values()) > 0
    assert {(s.coil_id, s.surface) for s in sink.surfaces} == {(c, s) for c in truth for s in ("top", "bottom")}


def test_cli_simulate_with_the_truth_fills_the_database(tmp_path):
    from steelscan.coils.store import CoilStore

    (tmp_path / "line.yaml").write_text("frame_size: [64, 512]\n")
    db = tmp_path / "coils.db"
    rc = main(["line", "--simulate", "--oracle", "truth", "--coils", "2", "--coil-length-m", "4", "--db", str(db),
               "--config", str(tmp_path / "line.yaml"), "--quiet"])
    assert rc == 0
    with CoilStore(str(db)) as store:
        coils, n = store.list_coils()
        assert n == 2
        for c in coils:
            detail = store.coil(c["coil_id"])
            assert {s["surface"] for s in detail["surfaces"]} == {"top", "bottom"}
            assert all(s["inspected_m"] == pytest.approx(4.0) for s in detail["surfaces"])
    assert json.loads((tmp_path / "coils.db.line" / "state-all.json").read_text())["surfaces"]["top"]["coil"] is None
    assert not list((tmp_path / "coils.db.line" / "spool-all").glob("journal-*.jsonl"))[1:]


def test_second_runner_on_the_same_state_is_refused(tmp_path):
    from steelscan.errors import ConfigError

    first = LineState(tmp_path / "state")
    first.lock()
    with pytest.raises(ConfigError, match="another steelscan line"):
        LineState(tmp_path / "state").lock()
    LineState(tmp_path / "state", "top").lock()       # another camera process: its own state
