"""What this CPU can do at most: short probes of matmul throughput per dtype and of memory
bandwidth, so a benchmark row can say how far from the hardware it is.

- fp32: the faster of `torch.mm` and onnxruntime's MatMul (engines use both); bf16: `torch.mm`
  (only when torch runs it natively);
- int8: the faster of `torch._int_mm` (int8 x int8 -> int32) and onnxruntime's MatMulInteger
  (what the onnx-int8 engine runs);
- bandwidth: copying a large array (bytes read + bytes written per second).
Each probe runs for about `seconds` after one warm-up call and keeps its best repeat: the
peak, not the mean. On a loaded machine every number is low; the probe says what it saw."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

MATMUL_N = 1024  # square matrix side for the matmul probes (fits in L2/L3 blocking, big enough to saturate)
COPY_BYTES = 256 * 2 ** 20  # bandwidth probe array: far larger than any CPU cache


def _best_rate(fn: Callable[[], None], work: float, seconds: float) -> float:
    """work / (fastest call time), calling fn for about `seconds` after one warm-up."""
    fn()
    best, end = float("inf"), time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() >= end:
            return work / best


def matmul_peak(dtype: str, seconds: float = 0.3, n: int = MATMUL_N, threads: int | None = None) -> float | None:
    """Best GFLOP/s (2 n^3 per call) of an n x n matmul in fp32 | bf16 | int8; None where this
    build cannot run that dtype."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    work = 2.0 * n ** 3 / 1e9
    try:
        if dtype in ("fp32", "bf16"):
            tdtype = torch.float32 if dtype == "fp32" else torch.bfloat16
            a, b = torch.rand(n, n).to(tdtype), torch.rand(n, n).to(tdtype)
            rate = _best_rate(lambda: torch.mm(a, b), work, seconds)
            return max(rate, _onnx_peak("fp32", n, work, seconds, threads) or 0.0) if dtype == "fp32" else rate
        if dtype == "int8":
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            try:
                torch_rate = _best_rate(lambda: torch._int_mm(a, b), work, seconds)
            except (RuntimeError, AttributeError, NotImplementedError):
                torch_rate = None
            # our int8 engine is onnxruntime: its kernels (VNNI) are often far faster than torch's
            rates = [r for r in (torch_rate, _onnx_peak("int8", n, work, seconds, threads)) if r]
            return max(rates, default=None)
    except (RuntimeError, TypeError, NotImplementedError):
        return None
    raise ValueError(f"unknown dtype {dtype!r} (fp32, bf16, int8)")


def _onnx_peak(dtype: str, n: int, work: float, seconds: float, threads: int | None) -> float | None:
    """An n x n matmul through onnxruntime: MatMul (fp32) or MatMulInteger (uint8 x int8 -> int32)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    if dtype == "int8":
        op, types = "MatMulInteger", (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)
        feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8),
                "b": rng.integers(-128, 127, (n, n), dtype=np.int8)}
    else:
        op, types = "MatMul", (TensorProto.FLOAT,) * 3
        feed = {"a": rng.random((n, n), dtype=np.float32), "b": rng.random((n, n), dtype=np.float32)}
    node = helper.make_node(op, ["a", "b"], ["c"])
    graph = helper.make_graph([node], f"{dtype}_probe",
                              [helper.make_tensor_value_info("a", types[0], [n, n]),
                               helper.make_tensor_value_info("b", types[1], [n, n])],
                              [helper.make_tensor_value_info("c", types[2], [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return _best_rate(lambda: session.run(None, feed), work, seconds)


def memory_bandwidth(seconds: float = 0.3, nbytes: int = COPY_BYTES) -> float:
    """Best GB/s of copying an `nbytes` array into another (counts the read and the write)."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    return _best_rate(lambda: np.copyto(dst, src), 2.0 * src.nbytes / 1e9, seconds)


def probe_peaks(seconds: float = 0.3, threads: int | None = None) -> dict:
    """{"gflops": {"fp32", "bf16", "int8": GFLOP/s or None}, "bandwidth_gb_s": GB/s,
    "probe_s": seconds per probe, "threads": threads used}."""
    import torch

    gflops = {d: matmul_peak(d, seconds, threads=threads) for d in ("fp32", "bf16", "int8")}
    return {"gflops": {d: None if v is None else round(v, 1) for d, v in gflops.items()},
            "bandwidth_gb_s": round(memory_bandwidth(seconds), 2), "probe_s": seconds,
            "threads": threads or torch.get_num_threads()}


def roofline(flops_per_frame: float, bytes_per_frame: float, frames_per_s: float, peak_gflops: float | None,
             bandwidth_gb_s: float) -> dict:
    """Where a measured row sits against this machine's roofline.

    achieved_gflops: FLOPs actually done per second; fraction_of_peak: against the dtype's
    matmul peak; bound: "bandwidth" when the work's arithmetic intensity (FLOPs/byte) is under
    the machine balance (peak / bandwidth), else "compute"; attainable_gflops: min(peak,
    intensity x bandwidth), the roof over this row."""
    achieved = flops_per_frame * frames_per_s / 1e9
    intensity = flops_per_frame / bytes_per_frame if bytes_per_frame else 0.0
    out = {"achieved_gflops": round(achieved, 2), "intensity_flop_per_byte": round(intensity, 2),
           "fraction_of_peak": None, "attainable_gflops": None, "bound": None}
    if peak_gflops:
        balance = peak_gflops / bandwidth_gb_s if bandwidth_gb_s else float("inf")
        attainable = min(peak_gflops, intensity * bandwidth_gb_s)
        out.update(fraction_of_peak=round(achieved / peak_gflops, 4), attainable_gflops=round(attainable, 1),
                   bound="bandwidth" if intensity < balance else "compute")
    return out
