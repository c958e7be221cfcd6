"""Runtime: load what inspects (bundles, run folders, thresholds) and build the one inspector
that every caller uses (predict, evaluate, tune, the benchmark, the service, the line runner,
the demo).

    build_inspector                         (inspector.py: THE call)
    load_bundle, resolve_model, read_manifest, shipped_model, shipped_models, fastest_engine, model_info
                                            (bundle.py: reading bundles; export writes them)
    check_runs, load_runs                   (runs.py: training run folders)
    OnnxRunner                              (onnx_runner.py)
"""

from .bundle import (ENGINES, fastest_engine, load_bundle, model_info, read_manifest, resolve_model, shipped_model,
                     shipped_models)
from .inspector import build_inspector, default_tile
from .onnx_runner import OnnxRunner
from .runs import check_runs, load_runs

__all__ = ["build_inspector", "default_tile", "ENGINES", "fastest_engine", "load_bundle", "model_info",
           "read_manifest", "resolve_model", "shipped_model", "shipped_models", "check_runs", "load_runs", "OnnxRunner"]

