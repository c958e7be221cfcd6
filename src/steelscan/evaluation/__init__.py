"""Evaluation: how good a prediction folder is against the truth (`evaluate`), and the
self-contained HTML page that shows it (`report`)."""
