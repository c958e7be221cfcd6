"""Export: write model bundles from training runs, ONNX (fp32 / int8) export with parity
checks. Reading bundles (and the ONNX Runtime runner) is `steelscan.runtime`'s.

    write_bundle                               (bundle.py)
    export_bundle                              (exporter.py: the `steelscan export` pipeline)
"""

from __future__ import annotations

from .bundle import write_bundle

__all__ = ["write_bundle", "export_bundle"]


def export_bundle(*args, **kwargs):
    """See steelscan.export.exporter.export_bundle (imported lazily: it pulls in torch)."""
    from .exporter import export_bundle as _export
    return _export(*args, **kwargs)
