"""Data layer: Kaggle layout reader/writer, validation, importers, synthetic steel, splits."""
