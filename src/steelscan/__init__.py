"""steelscan: steel-surface defect inspection (classifier-gated ResUNet cascade)."""

__version__ = "0.1.0"
