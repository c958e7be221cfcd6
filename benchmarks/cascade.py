"""Cascade vs Kaggle baseline benchmark: writes benchmarks/results/benchmark.{json,md}.

    .venv/bin/python benchmarks/cascade.py [--model MODEL_DIR] [--data DIR] [--frames N] ...

A thin wrapper over `steelscan benchmark` (same flags); the defaults write the
committed result files."""

from __future__ import annotations

import sys
from pathlib import Path

from steelscan.cli import main

RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--json" not in args:
        args += ["--json", str(RESULTS / "benchmark.json")]
    if "--markdown" not in args:
        args += ["--markdown", str(RESULTS / "benchmark.md")]
    sys.exit(main(["benchmark", *args]))
