"""`steelscan benchmark`: how fast is the cascade on plain CPUs, against what Kaggle users run?

One run times, on 1600x256 frames, after warm-up (batch 1 unless said):
- baseline: segmentation-models-pytorch Unet with a ResNet-34 encoder, fp32, eager
  PyTorch, every frame segmented (the usual Severstal Kaggle kernel);
- our segmenter alone in each engine (PyTorch fp32, PyTorch bf16 channels-last,
  ONNX Runtime fp32, ONNX Runtime int8);
- the whole cascade (`Inspector`: classifier on every frame, segmenter + post-processing
  on a `defect_rate` fraction of them, chosen evenly through the stream) per engine, in
  latency mode (one frame per call) and in throughput mode (`inference.stream`: the models on
  `stream_batch` frames per call while another thread post-processes the previous batch).
Each row gives median and p99 latency per frame (ms) and frames/s (frames over total
time), and its Kaggle Dice on `--data` when given. Timings on a shared machine are
noisy (+-20 %): compare rows of one run, never numbers across machines.

Against the hardware: every row states its FLOPs per frame, counted from the torch graph
(`models.flops.forward_cost` on the eager model at the frame size; a cascade's is the
classifier's + segmented fraction x the segmenter's), the GFLOP/s it achieved, and that as a
fraction of this machine's measured matmul peak for the row's dtype (`runtime.hardware`:
fp32, bf16, int8 probes and a memory-bandwidth probe). `bound` says which limit binds: the
work's arithmetic intensity (FLOPs per operator byte) under the machine balance (peak /
bandwidth) is bandwidth-bound, above it compute-bound.

Line speed: a strip W mm wide moving at v m/s, imaged at p mm/pixel in frames of 1600 x 256 px
(across x along), is ceil(W / p / 1600) frames across per 256-px block of rows, so one surface
needs v * 1000 / (256 * p) * frames_across frames/s (0.25 mm, 1.6 m strip: 4 frames across;
20 m/s: 1,250 frames/s)."""

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

from .defaults import FRAME_HEIGHT, FRAME_SIZE, FRAME_WIDTH, STREAM_BATCH_SIZE
from .errors import SteelscanError

FRAME_LENGTH_PX = FRAME_HEIGHT  # frame extent along the strip, pixels
SEVERSTAL_DEFECT_RATE = 0.53  # 6,666 of 12,568 train images carry a defect
STRIP_SPEEDS_M_S = (5.0, 10.0, 20.0)
PIXEL_SIZES_MM = (1.0, 0.5, 0.25)
STRIP_WIDTH_MM = 1600.0  # a wide hot-rolled strip; --strip-width-mm for yours
DEFAULT_FRAMES = 20
WARMUP = 3
DICE_TOLERANCE = 0.005  # an engine's cascade may lose at most this much Kaggle Dice vs torch fp32
BASELINE_SPEC = {"kind": "segmenter", "arch": "smp_unet", "encoder": "resnet34", "num_classes": 4,
                 "in_channels": 3, "weights": "none"}
ENGINES = (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx-int8", "int8"))
PEAK_DTYPE = {"torch-fp32": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8"}
ENGINE_LABELS = {f"{e}-{p}" if e == "torch" else e: (e, p) for e, p in ENGINES}   # "onnx" -> ("onnx", "fp32")


def parse_engines(text: str) -> tuple[tuple[str, str], ...]:
    """'onnx,torch-fp32' -> (("onnx", "fp32"), ("torch", "fp32")); ConfigError naming an unknown one."""
    from .errors import ConfigError

    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in ENGINE_LABELS]
    if unknown or not chosen:
        raise ConfigError(f"unknown engine {', '.join(unknown) or repr(text)} (choose from "
                          f"{', '.join(ENGINE_LABELS)})", field="engines")
    return tuple(ENGINE_LABELS[c] for c in chosen)
PROBE_SECONDS = 0.3  # per hardware probe (fp32, bf16, int8 matmul; bandwidth)
# operator bytes are counted on the fp32 graph; a bf16 engine moves 2-byte, an int8 one 1-byte tensors
BYTES_PER_FP32_BYTE = {"fp32": 1.0, "bf16": 0.5, "int8": 0.25}


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
    gflop_per_frame: float | None = None  # counted from the torch graph (2 x multiply-adds)
    peak_dtype: str | None = None  # the matmul peak this row is compared with: fp32 | bf16 | int8
    achieved_gflops: float | None = None  # gflop_per_frame x frames_per_s
    fraction_of_peak: float | None = None  # achieved / this machine's measured peak for peak_dtype
    intensity_flop_per_byte: float | None = None  # FLOPs / operator bytes (no fusion: a lower bound)
    bound: str | None = None  # "compute" | "bandwidth": which roof is lower at this intensity
    mode: str = "latency"  # "latency": one frame per call | "throughput": inference.stream, batched, overlapped


def frames_across(strip_width_mm: float | None, pixel_mm: float, frame_width_px: int = FRAME_WIDTH) -> int:
    """Frames side by side covering the strip's width (1 when no width is given)."""
    if not strip_width_mm:
        return 1
    return max(1, int(np.ceil(round(strip_width_mm / pixel_mm / frame_width_px, 9))))


def frames_needed(speed_m_s: float, pixel_mm: float, frame_length_px: int = FRAME_LENGTH_PX,
                  strip_width_mm: float | None = None, frame_width_px: int = FRAME_WIDTH) -> float:
    """Frames/s one surface needs: (strip speed / frame length on the strip) x frames across."""
    return speed_m_s * 1000.0 / (frame_length_px * pixel_mm) * frames_across(strip_width_mm, pixel_mm,
                                                                               frame_width_px)


def line_speed_table(cascade_fps: float, speeds: Sequence[float] = STRIP_SPEEDS_M_S,
                     pixel_sizes: Sequence[float] = PIXEL_SIZES_MM,
                     strip_width_mm: float | None = STRIP_WIDTH_MM) -> list[dict]:
    """For each (speed, pixel size): frames across the strip, frames/s needed, and whether
    `cascade_fps` keeps up."""
    table = []
    for v in speeds:
        for p in pixel_sizes:
            need = frames_needed(v, p, strip_width_mm=strip_width_mm)
            table.append({"speed_m_s": v, "pixel_mm": p, "strip_width_mm": strip_width_mm,
                          "frames_across": frames_across(strip_width_mm, p),
                          "frames_per_s_needed": round(need, 2),
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

    def __init__(self, classifier, num_classes: int, pattern: np.ndarray | None = None,
                 windows_per_frame: int = 1) -> None:
        self.inner = classifier
        self.kind, self.num_classes = "classifier", num_classes
        self.in_channels = getattr(classifier, "in_channels", 3)
        self.defective = False
        # with a pattern: the stream's frames arrive in order, `windows_per_frame` tiles each,
        # so the k-th tile scored belongs to frame k // windows_per_frame (batches of any size)
        self.pattern, self.windows_per_frame, self.cursor = pattern, max(1, windows_per_frame), 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.inner(batch)
        n = batch.shape[0]
        if self.pattern is None:
            return np.full((n, self.num_classes), 1.0 if self.defective else 0.0, np.float32)
        frames = (self.cursor + np.arange(n)) // self.windows_per_frame
        self.cursor += n
        hit = self.pattern[frames % len(self.pattern)].astype(np.float32)
        return np.repeat(hit[:, None], self.num_classes, axis=1)


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


def runner_cost(runner, size: tuple[int, int], tiling=None):
    """ForwardCost per frame of `size` (H, W) of a torch-backed Runner (FlipTTA unwrapped: each
    flip is another pass), counted tile by tile as the Inspector runs it."""
    from .models.flops import ForwardCost, forward_cost

    passes = 1
    while hasattr(runner, "flips"):  # FlipTTA
        passes *= 1 + len(runner.flips)
        runner = runner.runner
    windows = tiling.windows(0, *size) if tiling is not None else None
    shape = (windows[0].height, windows[0].width) if windows else size
    one = forward_cost(runner.model, (1, runner.in_channels, *shape))
    n = passes * (len(windows) if windows else 1)
    return ForwardCost(one.flops * n, one.bytes * n)


def model_costs(model: str | Path, size: tuple[int, int]) -> dict:
    """{"classifier": ForwardCost | None, "segmenter": ForwardCost} per frame of a bundle's
    models, counted on their eager torch graphs (the same graphs every engine runs)."""
    from .runtime import build_inspector

    ti = build_inspector(model, engine="torch", batch_size=1)
    return {"classifier": None if ti.classifier is None else runner_cost(ti.classifier, size, ti.tiling),
            "segmenter": runner_cost(ti.segmenter, size, ti.tiling)}


def add_roofline(row: Row, flops: float, nbytes: float, peaks: dict, dtype: str) -> Row:
    """Fill a row's FLOP and roofline fields from its per-frame cost (bytes of the fp32 graph,
    scaled to the row's dtype) and the machine's peaks."""
    from .runtime.hardware import roofline

    r = roofline(flops, nbytes * BYTES_PER_FP32_BYTE[dtype], row.frames_per_s, peaks["gflops"].get(dtype),
                 peaks["bandwidth_gb_s"])
    row.gflop_per_frame, row.peak_dtype = round(flops / 1e9, 3), dtype
    row.achieved_gflops, row.fraction_of_peak = r["achieved_gflops"], r["fraction_of_peak"]
    row.intensity_flop_per_byte, row.bound = r["intensity_flop_per_byte"], r["bound"]
    return row


def log(message: str) -> None:
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def run_benchmark(model: str | Path | None = None, frames: int = DEFAULT_FRAMES,
                  defect_rate: float = SEVERSTAL_DEFECT_RATE, data: str | Path | None = None,
                  threads: int | None = None, size: tuple[int, int] = FRAME_SIZE,
                  baseline_run: str | Path | None = None, dice_images: int | None = None,
                  warmup: int = WARMUP, engines: Sequence[tuple[str, str]] = ENGINES,
                  strip_width_mm: float = STRIP_WIDTH_MM, pixel_sizes: Sequence[float] = PIXEL_SIZES_MM,
                  probe_seconds: float = PROBE_SECONDS, stream_batch: int = STREAM_BATCH_SIZE) -> dict:
    """Time every row (see module doc) and return the full result as a JSON-able dict."""
    import torch

    from .inference.cascade import to_batch_array
    from .inference.runners import TorchRunner
    from .models import build_model
    from .models.flops import forward_cost
    from .runtime import build_inspector, read_manifest, resolve_model
    from .runtime.hardware import probe_peaks
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
        log("probing this machine's matmul peaks (fp32, bf16, int8) and memory bandwidth")
        peaks = probe_peaks(probe_seconds, threads)
        costs = model_costs(model, size)
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
            base_cost = forward_cost(base_model, (1, 3, *size))
            rows.append(add_roofline(row, base_cost.flops, base_cost.bytes, peaks, "fp32"))
            del base, base_model

        for engine, precision in engines:
            label = f"{engine}-{precision}" if engine == "torch" else engine
            if engine not in has_engines:  # not exported: say so, keep going
                log(f"skipping {label}: the bundle has no {engine} graphs (steelscan export"
                    f"{' --int8' if engine == 'onnx-int8' else ''})")
                continue
            with naming_row(label):
                engine_part = engine_rows(build_inspector(model, engine=engine, threads=threads, batch_size=1,
                                                          precision="bf16" if precision == "bf16" else "fp32"),
                                          label, stream, batches, pattern, defect_rate, frames, warmup, note,
                                          dice_data, stream_batch)
                for row in engine_part:
                    cost = cascade_cost(costs, row.segmented_fraction) if row.scope == "cascade" \
                        else costs["segmenter"]
                    rows.append(add_roofline(row, cost.flops, cost.bytes, peaks, PEAK_DTYPE[label]))
    finally:
        tmp.cleanup()
    return assemble(rows, machine_info(threads), {
        "frames": frames, "frame_size_hw": list(size), "batch": 1, "warmup": warmup,
        "defect_rate": defect_rate, "model": str(model) if note == "" else "default architectures, random weights",
        "data": str(data) if data else None, "dice_images": len(dice_data[0]) if dice_data else None,
        "strip_width_mm": strip_width_mm, "pixel_sizes_mm": list(pixel_sizes), "stream_batch": stream_batch},
        peaks)


def cascade_cost(costs: dict, segmented_fraction: float):
    """ForwardCost per frame of the cascade: classifier on every frame, segmenter on a fraction."""
    from .models.flops import ForwardCost

    seg, cls = costs["segmenter"], costs["classifier"]
    return ForwardCost((cls.flops if cls else 0) + segmented_fraction * seg.flops,
                       (cls.bytes if cls else 0) + segmented_fraction * seg.bytes)


def engine_rows(inspector, label: str, stream: list[np.ndarray], batches: list[np.ndarray], pattern: np.ndarray,
                defect_rate: float, frames: int, warmup: int, note: str, dice_data,
                stream_batch: int = STREAM_BATCH_SIZE) -> list[Row]:
    """The segmenter-alone row and (with a classifier) the cascade rows of one engine: latency
    mode (one frame per call) and throughput mode (`throughput_row`)."""
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
    stream_row = throughput_row(inspector, label, stream, pattern, defect_rate, frames, warmup, stream_batch, note)
    stream_row.kaggle_dice = cascade.kaggle_dice  # the same masks as latency mode (tests/test_stream.py)
    return [row, cascade, stream_row]


def throughput_row(inspector, label: str, stream: list[np.ndarray], pattern: np.ndarray, defect_rate: float,
                   frames: int, warmup: int, batch: int, note: str) -> Row:
    """The cascade in throughput mode (`inference.stream.inspect_stream`: models `batch` frames
    per call, post-processing on another thread), the same gating pattern. A frame's time is its
    batch's share of the interval between consecutive batches of results; frames come from
    memory (no decoding)."""
    from .inference.cascade import Inspector
    from .inference.stream import inspect_stream

    thr = inspector.thresholds
    per_frame = len(inspector.tiling.windows(0, *stream[0].shape[:2]))
    gate = GatedClassifier(inspector.classifier, thr.num_classes, pattern, per_frame)
    piped = Inspector(gate, inspector.segmenter, thr, tile=inspector.tiling.tile, overlap=inspector.tiling.overlap,
                      batch_size=batch)
    frame, name = stream.__getitem__, "frame_{}".format
    for _ in inspect_stream(piped, range(min(warmup, frames)), frame, name):
        pass
    gate.cursor = 0
    done = [time.perf_counter()]
    for _ in inspect_stream(piped, range(frames), frame, name):
        done.append(time.perf_counter())
    ends = np.array(done)[np.r_[0:frames:batch, frames]]  # results arrive a batch at a time
    sizes = np.diff(np.r_[0:frames:batch, frames])
    times_ms = np.repeat(np.diff(ends) * 1000.0 / sizes, sizes)
    return summarise(f"cascade ({defect_rate:.0%} segmented), {label}, throughput mode batch {batch}", label,
                     "cascade", times_ms, segmented_fraction=round(float(pattern.mean()), 4),
                     note=note, mode="throughput")


def choose_cascade(rows: list[Row]) -> Row | None:
    """Our answer: the fastest cascade whose Kaggle Dice (when measured) is within
    DICE_TOLERANCE of the PyTorch fp32 cascade's."""
    cascades = [r for r in rows if r.scope == "cascade"]
    reference = next((r for r in cascades if r.engine == "torch-fp32"), None)
    ok = [r for r in cascades if reference is None or reference.kaggle_dice is None or r.kaggle_dice is None
          or r.kaggle_dice >= reference.kaggle_dice - DICE_TOLERANCE]
    return max(ok, key=lambda r: r.frames_per_s, default=None)


def assemble(rows: list[Row], machine: dict, settings: dict, hardware: dict | None = None) -> dict:
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
        "hardware": hardware,
        "line_speed": line_speed_table(cascade_fps, pixel_sizes=settings.get("pixel_sizes_mm", PIXEL_SIZES_MM),
                                       strip_width_mm=settings.get("strip_width_mm", STRIP_WIDTH_MM)),
    }


def strip_text(table: list[dict]) -> str:
    width = table[0].get("strip_width_mm") if table else None
    return f"a {width:g} mm wide strip" if width else "one frame across the strip"


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
    ]
    hw = result.get("hardware")
    if hw:
        g = hw["gflops"]
        peaks = ", ".join(f"{d} {g[d]:.0f}" if g.get(d) else f"{d} n/a" for d in ("fp32", "bf16", "int8"))
        lines += [f"Measured peaks ({hw['threads']} threads, best of {hw['probe_s']} s each): matmul GFLOP/s "
                  f"{peaks}; memory bandwidth {hw['bandwidth_gb_s']:.1f} GB/s (array copy).", ""]
    lines += [
        "| configuration | engine | median ms/frame | p99 ms/frame | frames/s | Kaggle Dice | GFLOP/frame "
        "| GFLOP/s | % of peak | bound | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in result["rows"]:
        dice = "n/a" if r["kaggle_dice"] is None else f"{r['kaggle_dice']:.4f}"
        gf = "n/a" if r.get("gflop_per_frame") is None else f"{r['gflop_per_frame']:.2f}"
        ach = "n/a" if r.get("achieved_gflops") is None else f"{r['achieved_gflops']:.1f}"
        frac = "n/a" if r.get("fraction_of_peak") is None else f"{100 * r['fraction_of_peak']:.1f} % {r['peak_dtype']}"
        lines.append(f"| {r['name']} | {r['engine']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['frames_per_s']:.2f} | {dice} | {gf} | {ach} | {frac} | {r.get('bound') or 'n/a'} "
                     f"| {r['note']} |")
    lines += ["", f"**Speed-up of our cascade ({result['chosen_cascade']}) over the baseline: "
                  f"{result['speedup_vs_baseline']}x frames/s** (target {result['target_speedup']}x).", "",
              f"Line speed (one surface, {strip_text(result['line_speed'])}, frames "
              f"{FRAME_WIDTH} px across x {FRAME_LENGTH_PX} px along the strip):", "",
              "| strip m/s | pixel mm | frames across | frames/s needed | keeps up | machines like this needed |",
              "|---:|---:|---:|---:|---|---:|"]
    for t in result["line_speed"]:
        lines.append(f"| {t['speed_m_s']:g} | {t['pixel_mm']:g} | {t.get('frames_across', 1)} | "
                     f"{t['frames_per_s_needed']:.1f} | "
                     f"{'yes' if t['keeps_up'] else 'no'} | {t['machines_like_this_needed']} |")
    return "\n".join(lines) + "\n"
