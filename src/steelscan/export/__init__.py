"""Export and runtime: model bundles, ONNX (fp32 / int8) export with parity checks,
and the ONNX Runtime runner.

    write_bundle, load_bundle, resolve_model   (bundle.py)
    export_bundle                              (exporter.py: the `steelscan export` pipeline)
    OnnxRunner                                 (onnx_runner.py)
"""

from __future__ import annotations

from .bundle import ENGINES, load_bundle, read_manifest, resolve_model, shipped_models, write_bundle
from .onnx_runner import OnnxRunner

__all__ = ["ENGINES", "load_bundle", "read_manifest", "resolve_model", "shipped_models", "write_bundle",
           "OnnxRunner", "export_bundle"]


def export_bundle(*args, **kwargs):
    """See steelscan.export.exporter.export_bundle (imported lazily: it pulls in torch)."""
    from .exporter import export_bundle as _export
    return _export(*args, **kwargs)
