"""`steelscan benchmark`: how fast is the cascade on plain CPUs, against what Kaggle users run?

One run times, on 1600x256 frames, batch 1, after warm-up:
- baseline: segmentation-models-pytorch Unet with a ResNet-34 encoder, fp32, eager
  PyTorch, every frame segmented (the usual Severstal Kaggle kernel);
- our segmenter alone in each engine (PyTorch fp32, PyTorch bf16 channels-last,
  ONNX Runtime fp32, ONNX Runtime int8);
- the whole cascade (`Inspector`: classifier on every frame, segmenter + post-processing
  on a `defect_rate` fraction of them, chosen evenly through the stream) per engine.
Each row gives median and p99 latency per frame (ms) and frames/s (frames over total
time), and its Kaggle Dice on `--data` when given. Timings on a shared machine are
noisy (+-20 %): compare rows of one run, never numbers across machines.

Line speed: a strip moving at v m/s imaged at p mm/pixel with frames 256 px long
(along the strip) needs v * 1000 / (256 * p) frames/s per camera/surface."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .defaults import FRAME_HEIGHT, FRAME_SIZE, FRAME_WIDTH
from .errors import SteelscanError

FRAME_LENGTH_PX = FRAME_HEIGHT  # frame extent along the strip, pixels
SEVERSTAL_DEFECT_RATE = 0.53  # 6,666 of 12,568 train images carry a defect
STRIP_SPEEDS_M_S = (5.0, 10.0, 20.0)
PIXEL_SIZES_MM = (1.0, 0.5, 0.25)
DEFAULT_FRAMES = 20
WARMUP = 3
DICE_TOLERANCE = 0.005  # an engine's cascade may lose at most this much Kaggle Dice vs torch fp32
BASELINE_SPEC = {"kind": "segmenter", "arch": "smp_unet", "encoder": "resnet34", "num_classes": 4,
                 "in_channels": 3, "weights": "none"}
ENGINES = (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx-int8", "int8"))


class BenchmarkError(SteelscanError):
    """A benchmark row that could not be measured; the message names the row and why."""


@contextmanager
def naming_row(label: str) -> Iterator[None]:
    """Turn any failure inside a row into a BenchmarkError that names the row: the run stops
    with one line (`steelscan benchmark: error: row 'onnx': ...`) instead of a silent gap."""
    try:
        yield
    except BenchmarkError:
        raise
    except SteelscanError as e:
        raise BenchmarkError(f"row {label!r} failed: {e}") from e
    except Exception as e:  # torch / onnxruntime errors: typed here, with the row's name
        raise BenchmarkError(f"row {label!r} failed: {e.__class__.__name__}: {e}") from e


@dataclass
class Row:
    """One timed configuration. Latencies in milliseconds per frame."""

    name: str
    engine: str
    scope: str  # "baseline" | "segmenter" | "cascade"
    frames: int
    median_ms: float
    p99_ms: float
    frames_per_s: float
    kaggle_dice: float | None = None
    segmented_fraction: float = 1.0
    note: str = ""


def frames_needed(speed_m_s: float, pixel_mm: float, frame_length_px: int = FRAME_LENGTH_PX) -> float:
    """Frames/s one surface needs: strip speed / frame length on the strip."""
    return speed_m_s * 1000.0 / (frame_length_px * pixel_mm)


def line_speed_table(cascade_fps: float, speeds: Sequence[float] = STRIP_SPEEDS_M_S,
                     pixel_sizes: Sequence[float] = PIXEL_SIZES_MM) -> list[dict]:
    """For each (speed, pixel size): frames/s needed, and whether `cascade_fps` keeps up."""
    table = []
    for v in speeds:
        for p in pixel_sizes:
            need = frames_needed(v, p)
            table.append({"speed_m_s": v, "pixel_mm": p, "frames_per_s_needed": round(need, 2),
                          "keeps_up": bool(cascade_fps >= need),
                          "machines_like_this_needed": int(np.ceil(need / cascade_fps)) if cascade_fps else None})
    return table


def machine_info(threads: int | None) -> dict:
    """CPU model, core count, library versions: what a number in this run depends on."""
    import onnxruntime
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "logical_cores": os.cpu_count(), "threads": threads or torch.get_num_threads(),
            "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def time_calls(fn: Callable[[int], None], n: int, warmup: int = WARMUP) -> np.ndarray:
    """Call fn(i) for i in 0..n-1 after `warmup` untimed calls; per-call times in ms."""
    for i in range(warmup):
        fn(i % max(n, 1))
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times[i] = (time.perf_counter() - t0) * 1000.0
    return times


def summarise(name: str, engine: str, scope: str, times_ms: np.ndarray, **extra) -> Row:
    return Row(name, engine, scope, len(times_ms), round(float(np.median(times_ms)), 2),
               round(float(np.percentile(times_ms, 99)), 2),
               round(len(times_ms) / (times_ms.sum() / 1000.0), 3), **extra)


class GatedClassifier:
    """Runs the real classifier (so its time counts) but replaces its scores: 1.0 on frames
    the stream marks as defective, 0.0 otherwise. Fixes the segmented fraction at the
    requested defect rate whatever the (possibly random) weights say."""

    def __init__(self, classifier, num_classes: int) -> None:
        self.inner = classifier
        self.kind, self.num_classes = "classifier", num_classes
        self.in_channels = getattr(classifier, "in_channels", 3)
        self.defective = False

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.inner(batch)
        return np.full((batch.shape[0], self.num_classes), 1.0 if self.defective else 0.0, np.float32)


def defect_pattern(n: int, rate: float) -> np.ndarray:
    """(n,) bool, `rate` of them True, spread evenly (Bresenham) through the stream."""
    i = np.arange(n)
    return np.floor((i + 1) * rate) > np.floor(i * rate)


def synthetic_stream(n: int, size: tuple[int, int], seed: int = 7) -> list[np.ndarray]:
    """`n` generated steel frames, RGB uint8 (H, W, 3), cycling through at most 8 renders."""
    from .data.synth import generate_image, image_rng

    unique = [generate_image(image_rng(seed, i), *size)[0] for i in range(min(n, 8))]
    return [unique[i % len(unique)] for i in range(n)]


def kaggle_dice_on(classifier, segmenter, thresholds, data) -> float:
    """Kaggle Dice of the cascade (or segmenter alone when classifier is None) on `data`
    = (images RGB uint8, true masks (N, C, H, W))."""
    from .inference.cascade import Inspector
    from .metrics import kaggle_dice

    images, truth = data
    results = Inspector(classifier, segmenter, thresholds, batch_size=1).inspect(
        images, [f"val_{i}" for i in range(len(images))])
    return round(kaggle_dice(np.stack([r.masks for r in results]), truth), 5)


def load_dice_data(root: str | Path, limit: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    from .data.layout import open_dataset
    from .images import load_image

    ds = open_dataset(root)
    records = ds.records[:limit] if limit else ds.records
    images = [load_image(r.path) for r in records]
    truth = np.stack([ds.masks(r, im.shape[0], im.shape[1]) for r, im in zip(records, images)])
    return images, truth


def default_bundle(out_dir: Path, size: tuple[int, int]) -> Path:
    """Our default architectures with random weights (speed only), exported like a real
    bundle: ONNX fp32 + int8 calibrated on synthetic frames. Parity is measured, not gated."""
    import torch

    from .atomic import write_json
    from .export.exporter import export_bundle
    from .models import build_model, model_spec_defaults, save_run_weights

    for kind in ("classifier", "segmenter"):
        spec = {**model_spec_defaults(kind), "weights": "none"}
        torch.manual_seed(0)
        model = settle_batchnorm(build_model(spec), size)
        run = out_dir / f"{kind}_run"
        save_run_weights(run, model)
        write_json(run / "config.json", {"kind": kind, "model": spec, "num_classes": spec["num_classes"],
                                         "class_names": [f"class_{i}" for i in range(1, spec["num_classes"] + 1)],
                                         "train": {}, "data": {"note": "random weights: speed only"}})
    # A random segmenter paints salt-and-pepper "defects" everywhere; a trained one finds a
    # handful. Dropping components under 64 px (vectorised) keeps post-processing's
    # per-defect work (bbox, score, RLE) at a trained model's scale, not thousands of specks.
    from .inference.thresholds import Thresholds
    thresholds = Thresholds.defaults(4)
    for c in range(4):
        thresholds = thresholds.with_class(c, min_component=64)
    bundle = out_dir / "default"
    export_bundle(bundle, out_dir / "classifier_run", out_dir / "segmenter_run", thresholds=thresholds, int8=True,
                  calib_images=4, parity_images=1, image_size=size, name="default-random",
                  min_mask_dice={"onnx": 0.0, "onnx-int8": 0.0})
    return bundle


def settle_batchnorm(model, size: tuple[int, int] = (64, 256), batches: int = 2):
    """Give a randomly initialised model batch-norm statistics of real activations (a few
    train-mode passes over noise), so its outputs are not saturated. Returns it in eval mode."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the passes
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(2, 3, min(size[0], 128), min(size[1], 256)))
    return model.eval()


def log(message: str) -> None:
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def run_benchmark(model: str | Path | None = None, frames: int = DEFAULT_FRAMES,
                  defect_rate: float = SEVERSTAL_DEFECT_RATE, data: str | Path | None = None,
                  threads: int | None = None, size: tuple[int, int] = FRAME_SIZE,
                  baseline_run: str | Path | None = None, dice_images: int | None = None,
                  warmup: int = WARMUP, engines: Sequence[tuple[str, str]] = ENGINES) -> dict:
    """Time every row (see module doc) and return the full result as a JSON-able dict."""
    import torch

    from .inference.cascade import to_batch_array
    from .inference.runners import TorchRunner
    from .models import build_model
    from .runtime import build_inspector, read_manifest, resolve_model
    from .runtime.bundle import bundle_engines

    if threads:
        torch.set_num_threads(int(threads))
    if not 0.0 <= defect_rate <= 1.0:
        from .errors import ConfigError
        raise ConfigError(f"must be in 0..1, got {defect_rate}", field="defect-rate")
    tmp = tempfile.TemporaryDirectory(prefix="steelscan-bench-")
    try:
        note = ""
        if model is None:
            log("no --model: exporting our default architectures with random weights (speed only)")
            model = default_bundle(Path(tmp.name), size)
            note = "random weights"
        has_engines = bundle_engines(read_manifest(resolve_model(model)))
        stream = synthetic_stream(frames, size)
        batches = [to_batch_array(im)[None] for im in stream]
        pattern = defect_pattern(frames, defect_rate)
        dice_data = load_dice_data(data, dice_images) if data else None
        rows: list[Row] = []

        with naming_row("baseline"):
            if baseline_run:
                from .models import load_run
                base_model, _ = load_run(baseline_run)
                base_note = f"trained: {baseline_run}"
            else:
                torch.manual_seed(0)
                base_model, base_note = build_model(BASELINE_SPEC), "random weights (speed only)"
            base = TorchRunner(base_model, precision="fp32", kind="segmenter", num_classes=4)
            log("timing baseline smp Unet ResNet-34 fp32")
            row = summarise("baseline: smp Unet ResNet-34, PyTorch fp32, no gating", "torch-fp32", "baseline",
                            time_calls(lambda i: base(batches[i]), frames, warmup), note=base_note)
            if dice_data is not None and baseline_run:
                thr = build_inspector(model, engine="torch").thresholds
                row.kaggle_dice = kaggle_dice_on(None, base, thr, dice_data)
            rows.append(row)
            del base, base_model

        for engine, precision in engines:
            label = f"{engine}-{precision}" if engine == "torch" else engine
            if engine not in has_engines:  # not exported: say so, keep going
                log(f"skipping {label}: the bundle has no {engine} graphs (steelscan export"
                    f"{' --int8' if engine == 'onnx-int8' else ''})")
                continue
            with naming_row(label):
                rows += engine_rows(build_inspector(model, engine=engine, threads=threads, batch_size=1,
                                                    precision="bf16" if precision == "bf16" else "fp32"),
                                    label, stream, batches, pattern, defect_rate, frames, warmup, note, dice_data)
    finally:
        tmp.cleanup()
    return assemble(rows, machine_info(threads), {
        "frames": frames, "frame_size_hw": list(size), "batch": 1, "warmup": warmup,
        "defect_rate": defect_rate, "model": str(model) if note == "" else "default architectures, random weights",
        "data": str(data) if data else None, "dice_images": len(dice_data[0]) if dice_data else None})


def engine_rows(inspector, label: str, stream: list[np.ndarray], batches: list[np.ndarray], pattern: np.ndarray,
                defect_rate: float, frames: int, warmup: int, note: str, dice_data) -> list[Row]:
    """The segmenter-alone row and (with a classifier) the cascade row of one engine."""
    from .inference.cascade import Inspector

    log(f"timing {label}: segmenter alone, then the cascade")
    seg, thr = inspector.segmenter, inspector.thresholds
    row = summarise(f"segmenter alone ({inspector.settings['segmenter_arch']}), {label}", label, "segmenter",
                    time_calls(lambda i: seg(batches[i]), frames, warmup), note=note)
    if dice_data is not None:
        row.kaggle_dice = kaggle_dice_on(None, seg, thr, dice_data)
    if inspector.classifier is None:
        return [row]
    gate = GatedClassifier(inspector.classifier, thr.num_classes)
    gated = Inspector(gate, seg, thr, tile=inspector.tiling.tile, overlap=inspector.tiling.overlap, batch_size=1)

    def cascade_frame(i: int) -> None:
        gate.defective = bool(pattern[i])
        gated.inspect([stream[i]], [f"frame_{i}"])

    cascade = summarise(f"cascade ({defect_rate:.0%} segmented), {label}", label, "cascade",
                        time_calls(cascade_frame, frames, warmup),
                        segmented_fraction=round(float(pattern.mean()), 4), note=note)
    if dice_data is not None:
        cascade.kaggle_dice = kaggle_dice_on(inspector.classifier, seg, thr, dice_data)
    return [row, cascade]


def choose_cascade(rows: list[Row]) -> Row | None:
    """Our answer: the fastest cascade whose Kaggle Dice (when measured) is within
    DICE_TOLERANCE of the PyTorch fp32 cascade's."""
    cascades = [r for r in rows if r.scope == "cascade"]
    reference = next((r for r in cascades if r.engine == "torch-fp32"), None)
    ok = [r for r in cascades if reference is None or reference.kaggle_dice is None or r.kaggle_dice is None
          or r.kaggle_dice >= reference.kaggle_dice - DICE_TOLERANCE]
    return max(ok, key=lambda r: r.frames_per_s, default=None)


def assemble(rows: list[Row], machine: dict, settings: dict) -> dict:
    baseline = next(r for r in rows if r.scope == "baseline")
    chosen = choose_cascade(rows)
    cascade_fps = chosen.frames_per_s if chosen else 0.0
    return {
        "machine": machine,
        "settings": settings,
        "rows": [asdict(r) for r in rows],
        "chosen_cascade": chosen.name if chosen else None,
        "speedup_vs_baseline": round(cascade_fps / baseline.frames_per_s, 2) if chosen else None,
        "target_speedup": 5.0,
        "dice_tolerance": DICE_TOLERANCE,
        "line_speed": line_speed_table(cascade_fps),
    }


def to_markdown(result: dict) -> str:
    """The result as a Markdown report (tables of rows and of line speeds)."""
    m, s = result["machine"], result["settings"]
    lines = [
        "# steelscan benchmark: cascade vs the Kaggle baseline on CPU", "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['threads']} threads, "
        f"1-min load average at the end {m['load_average_1m']}; Python {m['python']}, torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}.",
        f"Frames: {s['frames']} x {s['frame_size_hw'][1]}x{s['frame_size_hw'][0]} px (W x H), batch {s['batch']}, "
        f"{s['warmup']} warm-up calls; cascade segments {s['defect_rate']:.0%} of frames. Model: {s['model']}. "
        f"Dice data: {s['data'] or 'none (speed only)'}.", "",
        "| configuration | engine | median ms/frame | p99 ms/frame | frames/s | Kaggle Dice | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        dice = "n/a" if r["kaggle_dice"] is None else f"{r['kaggle_dice']:.4f}"
        lines.append(f"| {r['name']} | {r['engine']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['frames_per_s']:.2f} | {dice} | {r['note']} |")
    lines += ["", f"**Speed-up of our cascade ({result['chosen_cascade']}) over the baseline: "
                  f"{result['speedup_vs_baseline']}x frames/s** (target {result['target_speedup']}x).", "",
              f"Line speed (one surface, {FRAME_WIDTH}-px-wide frames, {FRAME_LENGTH_PX} px along the strip):", "",
              "| strip m/s | pixel mm | frames/s needed | keeps up | machines like this needed |",
              "|---:|---:|---:|---|---:|"]
    for t in result["line_speed"]:
        lines.append(f"| {t['speed_m_s']:g} | {t['pixel_mm']:g} | {t['frames_per_s_needed']:.1f} | "
                     f"{'yes' if t['keeps_up'] else 'no'} | {t['machines_like_this_needed']} |")
    return "\n".join(lines) + "\n"
