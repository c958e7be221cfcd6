"""Static int8 quantization of an exported ONNX graph (onnxruntime.quantization).

QDQ format, per-channel int8 weights, uint8 activations, min/max ranges calibrated
on real frames (the caller passes images from `--calib-data`; random noise would give
activation ranges a steel image never produces). The sigmoid output stays float."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..atomic import atomic_path
from ..errors import ModelError
from .onnx_export import INPUT_NAME

DEFAULT_CALIB_IMAGES = 16


class FrameReader:
    """onnxruntime CalibrationDataReader over float32 (3, H, W) 0..1 arrays, one per batch."""

    def __init__(self, frames: Iterable[np.ndarray], input_name: str = INPUT_NAME) -> None:
        self._frames = iter(frames)
        self.input_name = input_name

    def get_next(self) -> dict | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        return {self.input_name: np.ascontiguousarray(frame[None], dtype=np.float32)}

    def __iter__(self):  # onnxruntime >= 1.17 may iterate the reader
        return self

    def __next__(self) -> dict:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def quantize_int8(fp32_path: str | Path, out_path: str | Path, frames: Sequence[np.ndarray]) -> Path:
    """Write an int8 QDQ copy of `fp32_path` to `out_path`, calibrated on `frames`
    (float32 (3, H, W) images in 0..1; a dozen real frames is plenty for min/max)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not frames:
        raise ModelError("int8 quantization needs calibration images (none given)", field="calib-data")
    fp32_path = Path(fp32_path)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer warns per tensor
    try:
        with tempfile.TemporaryDirectory(prefix="steelscan-quant-") as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            # Symbolic shape inference cannot follow the pad-to-stride arithmetic; the
            # ONNX shape inference and graph folding it also does are enough.
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            with atomic_path(out_path) as tmp_out:
                quantize_static(
                    str(prepared), str(tmp_out), FrameReader(frames),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    # MinMax calibration keeps only per-tensor min/max outputs (ReduceMin/Max
                                    # nodes), so memory stays small without CalibMaxIntermediateOutputs
                                    # (which, in onnxruntime 1.32, drops the ranges it clears).
                    extra_options={"CalibTensorRangeSymmetric": False})
    except ModelError:
        raise
    except Exception as e:  # onnxruntime's own exception types
        raise ModelError(f"int8 quantization failed: {e.__class__.__name__}: {e}", path=fp32_path) from None
    finally:
        logging.getLogger().setLevel(quiet)
    return Path(out_path)
