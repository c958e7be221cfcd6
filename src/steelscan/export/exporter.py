"""`steelscan export`: training runs -> a checked model bundle (PyTorch + ONNX [+ int8]).

Steps (all in a staging folder MODEL_DIR.partial, renamed onto MODEL_DIR only when
every check passed, so a failed export never leaves a half-valid bundle behind):
1. copy weights, configs and thresholds (`write_bundle`);
2. export each model to ONNX (dynamic batch/height/width) and run it at two sizes;
3. with int8: quantize, calibrated on frames of --calib-data (else synthetic frames);
4. parity: PyTorch fp32 vs each ONNX engine on held-out frames through the whole
   cascade; the export fails when the masks disagree beyond `MIN_MASK_DICE`.
The numbers go into manifest.json under "export" and "parity"."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from ..atomic import write_json
from ..errors import ModelError
from ..defaults import FRAME_SIZE
from ..runtime.bundle import MANIFEST, ROLES, load_bundle
from .bundle import write_bundle
from .onnx_export import OPSET, check_dynamic_sizes, export_onnx
from .parity import MIN_MASK_DICE, PARITY_IMAGES, frames_from_data, measure_parity, parity_line, synthetic_frames
from .quantize import DEFAULT_CALIB_IMAGES, quantize_int8


class ParityError(ModelError):
    """An exported engine whose masks disagree with PyTorch beyond the tolerance."""


def _prepare_staging(out: Path) -> Path:
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ModelError("output folder exists and is not a model bundle; refusing to overwrite", path=out)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    return staging


def _frames(calib_data, count: int, skip: int, size: tuple[int, int]):
    """(RGB uint8 frames, source description): real frames from calib_data, else synthetic."""
    if calib_data is not None:
        images, _ = frames_from_data(calib_data, count, skip)
        return images, f"{calib_data} ({len(images)} images)"
    images, _ = synthetic_frames(count, size, first=skip)
    return images, f"synthetic ({len(images)} images {size[0]}x{size[1]}, steelscan.data.synth)"


_START = [time.perf_counter()]


def log(message: str) -> None:
    print(f"[export {time.perf_counter() - _START[0]:6.1f}s] {message}", file=sys.stderr, flush=True)


def export_bundle(out_dir: str | Path, classifier_run: str | Path | None, segmenter_run: str | Path, *,
                  thresholds=None, name: str | None = None, int8: bool = False,
                  calib_data: str | Path | None = None, calib_images: int = DEFAULT_CALIB_IMAGES,
                  parity_images: int = PARITY_IMAGES, image_size: tuple[int, int] = FRAME_SIZE,
                  min_mask_dice: dict | None = None) -> dict:
    """Build and check a bundle in `out_dir` (see module doc). Returns the manifest.

    image_size (H, W): size of generated frames when calib_data is None.
    Raises ParityError (one line with the numbers) when an engine fails parity."""
    import torch

    out = Path(out_dir)
    tolerances = {**MIN_MASK_DICE, **(min_mask_dice or {})}
    staging = _prepare_staging(out)
    t0 = _START[0] = time.perf_counter()
    manifest = write_bundle(staging, classifier_run, segmenter_run, thresholds, name or out.name)
    ref_cls, ref_seg, thr, _ = load_bundle(staging, engine="torch")
    references = {"classifier": ref_cls, "segmenter": ref_seg}
    calib = parity = None
    if int8:
        calib, calib_source = _frames(calib_data, calib_images, 0, image_size)
        calib = [im.transpose(2, 0, 1).astype("float32") / 255.0 for im in calib]
    export_info: dict = {"opset": OPSET, "torch": torch.__version__, "dynamic_axes": ["batch", "height", "width"],
                         "max_abs_prob_dynamic_check": {}}
    for role in ROLES:
        entry = manifest[role]
        if entry is None:
            continue
        runner = references[role]
        path = export_onnx(runner.model, staging / f"{role}.onnx", kind=role, in_channels=runner.in_channels)
        entry["onnx"] = path.name
        export_info["max_abs_prob_dynamic_check"][role] = check_dynamic_sizes(
            runner.model, path, kind=role, in_channels=runner.in_channels)
        log(f"{role}: ONNX opset {OPSET} written, dynamic N/H/W checked at two sizes")
        if int8:
            entry["onnx_int8"] = quantize_int8(path, staging / f"{role}.int8.onnx", calib).name
            log(f"{role}: int8 QDQ written (calibrated on {calib_source})")
    if int8:
        export_info["int8"] = {"format": "QDQ", "weights": "int8 per-channel", "activations": "uint8 per-tensor",
                               "calibration": "minmax", "calibration_data": calib_source}
    manifest["export"] = export_info
    write_json(staging / MANIFEST, manifest)

    parity_frames, parity_source = _frames(calib_data, parity_images, calib_images if int8 else 0, image_size)
    parity = {"reference": "torch fp32", "data": parity_source}
    failures = []
    for engine in ("onnx", "onnx-int8") if int8 else ("onnx",):
        cls, seg, _, _ = load_bundle(staging, engine=engine)
        result = measure_parity((ref_cls, ref_seg), (cls, seg), thr, parity_frames)
        result["min_mask_dice"] = tolerances[engine]
        result["passed"] = result["mask_dice_agreement"] >= tolerances[engine]
        parity[engine] = result
        log("parity " + parity_line(engine, result))
        if not result["passed"]:
            failures.append(parity_line(engine, result))
    manifest["parity"] = parity
    manifest["export"]["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(staging / MANIFEST, manifest)
    if failures:
        raise ParityError("parity check failed: " + "; ".join(failures) +
                          f" (bundle left for inspection in {staging})")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return manifest
