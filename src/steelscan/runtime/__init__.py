"""Runtime: load what inspects (bundles, run folders, thresholds) and build the one inspector
that every caller uses (predict, evaluate, tune, the service, the line runner, the demo)."""

from .inspector import build_inspector

__all__ = ["build_inspector"]
