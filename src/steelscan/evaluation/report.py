"""report.html: one self-contained page (inline CSS, figures embedded as base64 PNG/JPEG,
no external URL) that shows how good a prediction is: summary table, per-class Dice
against the all-empty baseline, precision-recall curves, confusion matrices, the worst
images (truth beside prediction) and the settings used.

The markup lives in Jinja2 templates beside this module (`templates/report.html` and its
`report.css`), rendered with autoescape on; this module makes the figures and hands the
template plain values."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .evaluate import Evaluation, pr_curve



def _fmt(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg(array: np.ndarray, max_width: int = 1100) -> str:
    from PIL import Image

    im = Image.fromarray(array)
    if im.width != max_width:  # small images are enlarged (nearest: masks stay crisp)
        resample = Image.BILINEAR if im.width > max_width else Image.NEAREST
        scale = max_width / im.width if im.width > max_width else max(1, max_width // im.width)
        im = im.resize((round(im.width * scale), max(1, round(im.height * scale))), resample)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(n: int) -> list[str]:
    from ..overlay import class_color

    return ["#%02x%02x%02x" % class_color(i) for i in range(n)]


def dice_figure(ev: Evaluation) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg, empty = ev.segmentation(), ev.all_empty()
    names = ev.class_names + ["Kaggle (all)"]
    pred = [seg["per_class"][n] for n in ev.class_names] + [seg["kaggle_dice"]]
    base = [empty["per_class"][n] for n in ev.class_names] + [empty["kaggle_dice"]]
    pos = [seg["per_class_pos"][n] for n in ev.class_names] + [seg["dice_pos"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 3.4))
    colors = _colors(len(ev.class_names)) + ["#263445"]
    ax.bar(x - 0.27, pred, 0.27, color=colors, label="prediction (all pairs)")
    ax.bar(x, [p if p is not None else 0 for p in pos], 0.27, color=colors, alpha=0.45, hatch="//",
           label="prediction (defect pairs only)")
    ax.bar(x + 0.27, base, 0.27, color="#b9c2cc", label="all-empty baseline")
    for xi, v in zip(x, pred):
        ax.text(xi - 0.27, v + 0.01, f"{v:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("Dice")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    return _png(fig)


def pr_figure(ev: Evaluation) -> str | None:
    if ev.scores is None:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.4, 4.2))
    series = [(n, ev.truth_present[:, c], ev.pred_present[:, c], ev.scores[:, c], col)
              for c, (n, col) in enumerate(zip(ev.class_names, _colors(len(ev.class_names))))]
    series.append(("any defect", ev.truth_present.any(1), ev.pred_present.any(1), ev.scores.max(1), "#263445"))
    for name, truth, pred, score, col in series:
        if not truth.any():
            continue
        p, r = pr_curve(truth, score)
        ax.plot(np.r_[0, r], np.r_[p[0], p], color=col, lw=2.2 if name == "any defect" else 1.5,
                label=f"{name} ({int(truth.sum())} pos)", drawstyle="steps-post")
        tp = (truth & pred).sum()
        if pred.any():  # the operating point the thresholds chose
            ax.plot(tp / truth.sum(), tp / pred.sum(), "o", color=col, ms=6, mec="white")
    ax.set_xlabel("recall (image level)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Precision-recall by class score (dot: chosen thresholds)", fontsize=10)
    return _png(fig)


def confusion_figure(ev: Evaluation, classification: dict) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["any_defect"] + ev.class_names
    fig, axes = plt.subplots(1, len(keys), figsize=(2.1 * len(keys), 2.3))
    for ax, key in zip(np.atleast_1d(axes), keys):
        m = np.array(classification[key]["confusion"])
        ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max()), 1))
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=11,
                    color="white" if v > m.max() / 2 else "#1d232b")
        ax.set_xticks([0, 1], ["clean", "defect"], fontsize=8)
        ax.set_yticks([0, 1], ["clean", "defect"], fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("truth", fontsize=8)
        ax.set_title(key.replace("_", " "), fontsize=9)
    fig.tight_layout()
    return _png(fig)


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("steelscan.evaluation", "templates"), autoescape=True,
                      undefined=StrictUndefined)
    env.filters["fmt"] = _fmt
    return env


def _worst_images(ev: Evaluation, k: int) -> list[dict]:
    """The k worst images: caption values and truth/prediction overlays as data: URIs."""
    from ..data.layout import load_image
    from ..errors import ImageError
    from ..overlay import overlay_masks

    out = []
    for i in ev.worst(k):
        per_class = ", ".join(f"{n} {d:.2f}" for n, d, t, p in zip(ev.class_names, ev.pair_dice[i],
                                                                     ev.truth_present[i], ev.pred_present[i])
                              if t or p)
        item = {"image_id": ev.image_ids[i], "mean_dice": float(ev.pair_dice[i].mean()), "per_class": per_class,
                "error": None}
        try:
            image = load_image(ev.paths[i])
        except ImageError as e:
            out.append({**item, "error": str(e)})
            continue
        h, w = image.shape[:2]
        out.append({**item, "stacked": w > 2 * h,
                    "truth": _jpeg(overlay_masks(image, ev.masks(i, "truth"))),
                    "prediction": _jpeg(overlay_masks(image, ev.masks(i, "pred")))})
    return out


def _summary_cards(seg: dict, empty: dict, any_defect: dict) -> list[dict]:
    gain = seg["kaggle_dice"] - empty["kaggle_dice"]
    cards = [("Kaggle Dice", _fmt(seg["kaggle_dice"]), ""),
             ("all-empty baseline", _fmt(empty["kaggle_dice"]), ""),
             ("gain over all-empty", f"{gain:+.4f}", "good" if gain > 0 else "bad"),
             ("defect image recall", _fmt(any_defect["recall"], 3), ""),
             ("defect image precision", _fmt(any_defect["precision"], 3), "")]
    return [{"key": k, "value": v, "css": c} for k, v, c in cards]


def _class_rows(ev: Evaluation, seg: dict, empty: dict, cls: dict) -> list[dict]:
    """One row per class and a last one for 'any defect': Dice beside the image-level metrics."""
    rows = []
    colors = _colors(len(ev.class_names)) + ["#263445"]
    for name, col in zip(ev.class_names + ["any_defect"], colors):
        m = cls[name]
        is_any = name == "any_defect"
        rows.append({"label": "all classes / any defect" if is_any else name, "color": col,
                     "positives": m["positives"],
                     "dice": seg["kaggle_dice"] if is_any else seg["per_class"][name],
                     "dice_pos": seg["dice_pos"] if is_any else seg["per_class_pos"][name],
                     "baseline": empty["kaggle_dice"] if is_any else empty["per_class"][name],
                     **{k: m[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc")}})
    return rows


def _error_lists(errors: dict) -> list[dict]:
    return [{"label": f"{key.replace('_', ' ')} — {kind.replace('_', ' ')} ({len(lists[kind])})",
             "ids": lists[kind]}
            for key, lists in errors.items() for kind in ("false_positives", "false_negatives") if lists[kind]]


def write_report(ev: Evaluation, path: str | Path, *, title: str = "steelscan evaluation",
                 source: str = "", worst: int = 8) -> Path:
    """Render the evaluation as one self-contained HTML file at `path`."""
    seg, empty, cls = ev.segmentation(), ev.all_empty(), ev.classification()
    settings = dict(ev.settings)
    thresholds = settings.pop("thresholds", None)
    page = _environment().get_template("report.html").render(
        title=title, source=source, n_images=len(ev.image_ids), n_classes=len(ev.class_names),
        notes=ev.notes, seg=seg, cards=_summary_cards(seg, empty, cls["any_defect"]),
        class_rows=_class_rows(ev, seg, empty, cls),
        dice_figure=dice_figure(ev), confusion_figure=confusion_figure(ev, cls), pr_figure=pr_figure(ev),
        error_lists=_error_lists(ev.image_errors()),
        legend=list(zip(ev.class_names, _colors(len(ev.class_names)))), worst=_worst_images(ev, worst),
        settings=[(str(k), str(v)) for k, v in settings.items()],
        thresholds=(thresholds or {}).get("classes") if isinstance(thresholds, dict) else None)
    write_text(path, page)
    return Path(path)
