"""ONNX Runtime runner: the Runner protocol over an exported steelscan graph.

A Runner is a callable: float32 (N, 3, H, W) images in 0..1 -> float32 probabilities,
(N, C) for a classifier or (N, C, H, W) for a segmenter (the sigmoid is in the graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..inference.runners import to_model_channels


class OnnxRunner:
    """An onnxruntime CPU InferenceSession with full graph optimisation.

    threads: intra-op threads (None = onnxruntime's default, one per core). Inter-op
    parallelism is off: steelscan graphs are a single chain of convolutions.
    kind / num_classes / in_channels: what the bundle's manifest says; default: the
    graph's steelscan metadata, else its input and output shapes."""

    def __init__(self, path: str | Path, threads: int | None = None, *, kind: str | None = None,
                 num_classes: int | None = None, in_channels: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError("ONNX file not found", path=self.path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own exception types
            raise ModelError(f"cannot load ONNX graph: {e}", path=self.path) from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.threads = threads
        meta = self.session.get_modelmeta().custom_metadata_map
        rank = len(self.session.get_outputs()[0].shape)
        self.kind = kind or meta.get("steelscan.kind", "classifier" if rank == 2 else "segmenter")
        self.num_classes = int(num_classes or meta.get("steelscan.num_classes", 0))
        self.in_channels = int(in_channels or meta.get("steelscan.in_channels",
                                                       self.session.get_inputs()[0].shape[1]))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch: float32 (N, C, H, W) in 0..1 -> float32 probabilities."""
        x = np.ascontiguousarray(to_model_channels(batch, self.in_channels), dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.path)!r}, threads={self.threads})"
