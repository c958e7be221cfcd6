"""Inference: classifier gate -> segmenter (tiled for any image size) -> post-processing
-> verdicts, defects, Kaggle submission; and the threshold search (`tune`).

Modules: runners (the model interface), thresholds, tiling, postprocess, cascade
(`Inspector`), predict (files -> outputs), tune. Loading models (bundles, run folders)
and building an Inspector from them: `steelscan.runtime.build_inspector`.
"""
