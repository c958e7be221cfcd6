"""Export a steelscan model (float 0..1 images in, logits out) to ONNX.

The exported graph takes `image` float32 (N, C, H, W) in 0..1 and returns
`probabilities` float32 — (N, C) for a classifier, (N, C, H, W) for a segmenter — with
the sigmoid inside the graph, so an ONNX runner returns what the Runner protocol asks
for without a post-step. Batch, height and width are dynamic; the export is checked by
running the ONNX graph at two sizes."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from ..errors import ModelError

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# Export trace size (H, W) and a second, odd size that proves the axes are dynamic.
TRACE_SIZE = (256, 512)
CHECK_SIZE = (72, 200)


def _probability_module(model):
    """Wrap a logits model so its output is sigmoid(logits) (what runners return)."""
    import torch

    class WithSigmoid(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(image))

    return WithSigmoid(model).eval()


def export_onnx(model, path: str | Path, *, kind: str, in_channels: int = 3,
                opset: int = OPSET, trace_size: tuple[int, int] = TRACE_SIZE) -> Path:
    """Write `model` (torch, eval, CPU fp32) as ONNX to `path` with dynamic N, H, W.

    kind: "classifier" (output (N, C)) or "segmenter" (output (N, C, H, W)).
    Uses the TorchScript-based exporter (dynamo=False): the simplest path that keeps
    the pad-to-stride arithmetic symbolic. Returns the path."""
    import torch

    if kind not in ("classifier", "segmenter"):
        raise ModelError(f"unknown model kind {kind!r}", field="kind")
    wrapped = _probability_module(model.float().cpu().eval())
    dummy = torch.rand(1, in_channels, *trace_size)
    out_axes = {0: "batch"} if kind == "classifier" else {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic are expected
        torch.onnx.export(
            wrapped, (dummy,), buf, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: out_axes},
            do_constant_folding=True)
    write_bytes(path, with_metadata(buf.getvalue(), kind=kind, in_channels=in_channels))
    return Path(path)


def with_metadata(onnx_bytes: bytes, **fields) -> bytes:
    """Add steelscan fields (kind, in_channels, num_classes) to the graph's metadata, so
    an OnnxRunner knows what it runs without the manifest."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    output = proto.graph.output[0].type.tensor_type.shape.dim
    if len(output) >= 2 and output[1].HasField("dim_value"):
        fields.setdefault("num_classes", output[1].dim_value)
    for key, value in fields.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"steelscan.{key}", str(value)
    return proto.SerializeToString()


def check_dynamic_sizes(model, onnx_path: str | Path, *, kind: str, in_channels: int = 3,
                        sizes: tuple[tuple[int, int], ...] = (TRACE_SIZE, CHECK_SIZE),
                        batch: int = 2) -> float:
    """Run the ONNX graph and the torch model at each (H, W) in `sizes` with `batch` images;
    return the max |onnx - torch| probability difference. Raises ModelError when the graph
    refuses a size or returns the wrong shape (i.e. an axis was frozen at export)."""
    import torch

    from ..runtime.onnx_runner import OnnxRunner

    runner = OnnxRunner(onnx_path)
    wrapped = _probability_module(model.float().cpu().eval())
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in sizes:
        x = rng.random((batch, in_channels, h, w), dtype=np.float32)
        try:
            got = runner(x)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"ONNX graph fails at size {batch}x{h}x{w}: {e}", path=onnx_path) from None
        with torch.inference_mode():
            want = wrapped(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ModelError(f"ONNX output shape {got.shape} != PyTorch {want.shape} at input "
                             f"{batch}x{h}x{w} ({kind}): an axis is not dynamic", path=onnx_path)
        worst = max(worst, float(np.abs(got - want).max()))
    return worst
