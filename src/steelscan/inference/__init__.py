"""Inference: classifier gate -> segmenter (tiled for any image size) -> post-processing
-> verdicts, defects, Kaggle submission; and the threshold search (`tune`).

Modules: runners (the model interface), thresholds, tiling, postprocess, cascade
(`Inspector`), loading (run folders / bundles, checked), predict (files -> outputs), tune.
"""
