"""Score a prediction folder (submission.csv + results.jsonl from `steelscan predict`)
against a Kaggle-layout data folder.

Segmentation: Kaggle mean Dice over every (image, class) pair, dice_pos / dice_neg, per
class; and the same for predicting every mask empty, on the same images.
Image level (per class and for "any defect"): a class is predicted present when its
final mask is non-empty; accuracy, precision, recall, F1, the 2x2 confusion matrix, and
ROC-AUC from the per-class scores in results.jsonl (classifier probability, or the
segmenter's maximum pixel probability when there was no classifier; "any defect"
scores an image by its highest class score). Lists of image-level false positives and
false negatives. Unreadable images count as empty predictions (noted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.layout import image_size, open_dataset, read_label_table
from ..errors import DatasetError
from ..metrics import pair_dice, summarise
from ..rle import decode_rle


def _safe_div(a: float, b: float) -> float | None:
    return float(a / b) if b else None


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None with one class only."""
    y_true = np.asarray(y_true, bool)
    pos, neg = int(y_true.sum()), int((~y_true).sum())
    if pos == 0 or neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[y_true].sum() - pos * (pos + 1) / 2) / (pos * neg))


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None) -> dict:
    """Image-level metrics of one yes/no question. confusion = [[TN, FP], [FN, TP]]."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp = int((y_true & y_pred).sum())
    fp = int((~y_true & y_pred).sum())
    fn = int((y_true & ~y_pred).sum())
    tn = int((~y_true & ~y_pred).sum())
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return {"accuracy": _safe_div(tp + tn, len(y_true)), "precision": precision, "recall": recall, "f1": f1,
            "roc_auc": roc_auc(y_true, score) if score is not None else None,
            "confusion": [[tn, fp], [fn, tp]], "positives": int(y_true.sum()), "n": int(len(y_true))}


def pr_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold (high to low)."""
    order = np.argsort(-score, kind="stable")
    t = np.asarray(y_true, bool)[order]
    tp = np.cumsum(t)
    fp = np.cumsum(~t)
    last = np.r_[np.flatnonzero(np.diff(score[order])), len(t) - 1]  # end of each tie group
    precision = tp[last] / np.maximum(tp[last] + fp[last], 1)
    recall = tp[last] / max(int(t.sum()), 1)
    return precision, recall


@dataclass
class Evaluation:
    """Everything `evaluate` measured; arrays are (N, C) in `image_ids` order."""

    image_ids: list[str]
    class_names: list[str]
    pair_dice: np.ndarray
    truth_present: np.ndarray
    pred_present: np.ndarray
    scores: np.ndarray | None
    sizes: list[tuple[int, int]]
    paths: list[Path]
    pred_rles: dict[str, dict[int, str]]
    truth_rles: dict[str, dict[int, str]]
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def segmentation(self) -> dict:
        return summarise(self.pair_dice, self.truth_present, self.class_names)

    def all_empty(self) -> dict:
        return summarise((~self.truth_present).astype(np.float64), self.truth_present, self.class_names)

    def classification(self) -> dict:
        score = self.scores
        out = {name: binary_metrics(self.truth_present[:, c], self.pred_present[:, c],
                                    None if score is None else score[:, c])
               for c, name in enumerate(self.class_names)}
        out["any_defect"] = binary_metrics(self.truth_present.any(1), self.pred_present.any(1),
                                           None if score is None else score.max(1))
        return out

    def image_errors(self) -> dict:
        """Image-level false positives / negatives: for any defect, and per class."""
        ids = np.array(self.image_ids, dtype=object)
        t, p = self.truth_present, self.pred_present
        out = {"any_defect": {"false_positives": ids[~t.any(1) & p.any(1)].tolist(),
                              "false_negatives": ids[t.any(1) & ~p.any(1)].tolist()}}
        for c, name in enumerate(self.class_names):
            out[name] = {"false_positives": ids[~t[:, c] & p[:, c]].tolist(),
                         "false_negatives": ids[t[:, c] & ~p[:, c]].tolist()}
        return out

    def worst(self, k: int = 8) -> list[int]:
        """Indices of the k images with the lowest mean Dice over their classes (< 1 only)."""
        mean = self.pair_dice.mean(axis=1)
        order = np.argsort(mean, kind="stable")
        return [int(i) for i in order[:k] if mean[i] < 1.0]

    def masks(self, i: int, side: str) -> np.ndarray:
        """(C, H, W) uint8 masks of image i: side "pred" or "truth"."""
        h, w = self.sizes[i]
        rles = (self.pred_rles if side == "pred" else self.truth_rles).get(self.image_ids[i], {})
        out = np.zeros((len(self.class_names), h, w), np.uint8)
        for c, rle in rles.items():
            if rle:
                out[c - 1] = decode_rle(rle, h, w)
        return out

    def to_json(self) -> dict:
        mean = self.pair_dice.mean(axis=1)
        return {
            "n_images": len(self.image_ids),
            "class_names": self.class_names,
            "segmentation": self.segmentation(),
            "all_empty": self.all_empty(),
            "classification": self.classification(),
            "image_errors": self.image_errors(),
            "unreadable_images": self.errors,
            "per_image": [{"image_id": i, "dice_mean": round(float(m), 6),
                           "dice": [round(float(x), 6) for x in d]}
                          for i, m, d in zip(self.image_ids, mean, self.pair_dice)],
            "notes": self.notes,
            "settings": self.settings,
        }


def _read_results(pred_dir: Path) -> dict[str, dict]:
    from ..inference.predict import RESULTS_FILE, read_results

    path = pred_dir / RESULTS_FILE
    return {r["image_id"]: r for r in read_results(path)} if path.is_file() else {}


def evaluate_predictions(pred_dir: str | Path, data_dir: str | Path,
                         image_ids: Sequence[str] | None = None, progress: bool = False) -> Evaluation:
    """Score OUT_DIR/submission.csv (+ results.jsonl) against DATA_DIR's labels."""
    import json

    from tqdm import tqdm

    from ..inference.predict import SUBMISSION_FILE, SUMMARY_FILE

    pred_dir = Path(pred_dir)
    sub_path = pred_dir / SUBMISSION_FILE
    if not sub_path.is_file():
        raise DatasetError(f"no {SUBMISSION_FILE} here (run `steelscan predict` first)", path=pred_dir)
    dataset = open_dataset(data_dir)
    table = read_label_table(sub_path, strict_classes=dataset.num_classes)
    pred_rles = table.by_image()
    results = _read_results(pred_dir)
    records = {r.image_id: r for r in dataset.records}
    notes = []
    wanted = list(image_ids) if image_ids is not None else list(table.images)
    ids = [i for i in wanted if i in records and i in pred_rles]
    missing_truth = [i for i in wanted if i not in records]
    missing_pred = [i for i in wanted if i in records and i not in pred_rles]
    if missing_truth:
        notes.append(f"{len(missing_truth)} predicted image(s) are not in the data folder (ignored), "
                     f"e.g. {missing_truth[0]}")
    if missing_pred:
        notes.append(f"{len(missing_pred)} image(s) have no prediction (ignored), e.g. {missing_pred[0]}")
    if not ids:
        raise DatasetError("no image is both in the predictions and in the data folder", path=pred_dir)
    C, names = dataset.num_classes, list(dataset.class_names)
    dice = np.zeros((len(ids), C))
    truth_present = np.zeros((len(ids), C), bool)
    pred_present = np.zeros((len(ids), C), bool)
    scores = np.zeros((len(ids), C)) if results else None
    sizes, errors = [], {}
    for n, image_id in enumerate(tqdm(ids, desc="evaluate", unit="img", disable=not progress)):
        r = results.get(image_id, {})
        if r.get("error"):
            errors[image_id] = r["error"]
        h, w = (r["height"], r["width"]) if r.get("height") else image_size(records[image_id].path)
        sizes.append((h, w))
        pred = np.zeros((C, h, w), np.uint8)
        for c, rle in pred_rles[image_id].items():
            pred[c - 1] = decode_rle(rle, h, w)
        truth = dataset.masks(records[image_id], h, w)
        dice[n] = pair_dice(pred, truth)
        truth_present[n] = truth.any(axis=(1, 2))
        pred_present[n] = pred.any(axis=(1, 2))
        if scores is not None:
            cs = r.get("class_scores") or {}
            scores[n] = [cs.get(name, float(pred_present[n, c])) for c, name in enumerate(names)]
    if errors:
        notes.append(f"{len(errors)} image(s) could not be read at prediction time; scored as empty predictions")
    settings = {}
    if (pred_dir / SUMMARY_FILE).is_file():
        settings = json.loads((pred_dir / SUMMARY_FILE).read_text(encoding="utf-8")).get("settings", {})
    return Evaluation(ids, names, dice, truth_present, pred_present, scores, sizes,
                      [records[i].path for i in ids], {i: pred_rles[i] for i in ids},
                      {i: records[i].rles for i in ids}, errors, notes, settings)
