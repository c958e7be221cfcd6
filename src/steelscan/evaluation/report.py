"""report.html: one self-contained page (inline CSS, figures embedded as base64 PNG/JPEG,
no external URL) that shows how good a prediction is: summary table, per-class Dice
against the all-empty baseline, precision-recall curves, confusion matrices, the worst
images (truth beside prediction) and the settings used."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .evaluate import Evaluation, pr_curve

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d232b}
header{background:#1d2733;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#b8c4d2;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:18px 0;padding:16px 22px}
h2{font-size:17px;margin:0 0 12px;color:#263445}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{flex:1;min-width:150px;background:#f0f3f7;border-radius:6px;padding:10px 14px}
.card .v{font-size:26px;font-weight:650}.card .k{font-size:12px;color:#5a6878;text-transform:uppercase;letter-spacing:.04em}
.good{color:#11803a}.bad{color:#b3261e}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{padding:6px 9px;border-bottom:1px solid #e3e7ec;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f0f3f7;font-weight:600}
img{max-width:100%;display:block}
.fig{margin:6px 0 4px}
.worst{border-top:1px solid #e3e7ec;padding:10px 0}
.worst .cap{font-size:13px;margin-bottom:6px}
.pair{display:flex;gap:8px;flex-wrap:wrap}.pair>div{flex:1;min-width:280px}
.lbl{font-size:12px;color:#5a6878;margin:2px 0}
.note{background:#fff5d6;border-left:4px solid #e0a800;padding:6px 10px;font-size:13px;margin:6px 0}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
details{font-size:13px;margin:4px 0}summary{cursor:pointer}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
"""


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


def worst_images_html(ev: Evaluation, k: int) -> str:
    from ..data.layout import load_image
    from ..errors import ImageError
    from ..overlay import overlay_masks

    parts = []
    for i in ev.worst(k):
        image_id = ev.image_ids[i]
        per_class = ", ".join(f"{n} {d:.2f}" for n, d, t, p in zip(ev.class_names, ev.pair_dice[i],
                                                                     ev.truth_present[i], ev.pred_present[i])
                              if t or p)
        cap = (f"<b>{html.escape(image_id)}</b> — mean Dice {ev.pair_dice[i].mean():.3f}"
               f" <span class=mono>({html.escape(per_class)})</span>")
        try:
            image = load_image(ev.paths[i])
        except ImageError as e:
            parts.append(f"<div class=worst><div class=cap>{cap}</div><div class=note>{html.escape(str(e))}</div></div>")
            continue
        truth = overlay_masks(image, ev.masks(i, "truth"))
        pred = overlay_masks(image, ev.masks(i, "pred"))
        h, w = image.shape[:2]
        style = "" if w <= 2 * h else " style='flex-direction:column'"
        parts.append(f"<div class=worst><div class=cap>{cap}</div><div class=pair{style}>"
                     f"<div><div class=lbl>truth</div><img src='{_jpeg(truth)}' alt='truth'></div>"
                     f"<div><div class=lbl>prediction</div><img src='{_jpeg(pred)}' alt='prediction'></div>"
                     f"</div></div>")
    return "\n".join(parts) or "<p>Every image scored a perfect Dice.</p>"


def _summary_cards(seg: dict, empty: dict, any_defect: dict) -> str:
    gain = seg["kaggle_dice"] - empty["kaggle_dice"]
    cards = [("Kaggle Dice", _fmt(seg["kaggle_dice"]), ""),
             ("all-empty baseline", _fmt(empty["kaggle_dice"]), ""),
             ("gain over all-empty", f"{gain:+.4f}", "good" if gain > 0 else "bad"),
             ("defect image recall", _fmt(any_defect["recall"], 3), ""),
             ("defect image precision", _fmt(any_defect["precision"], 3), "")]
    return "<div class=cards>" + "".join(
        f"<div class=card><div class=k>{k}</div><div class='v {c}'>{v}</div></div>" for k, v, c in cards) + "</div>"


def _class_table(ev: Evaluation, seg: dict, empty: dict, cls: dict) -> str:
    rows = []
    colors = _colors(len(ev.class_names)) + ["#263445"]
    for name, col in zip(ev.class_names + ["any_defect"], colors):
        m = cls[name]
        is_any = name == "any_defect"
        dice = seg["kaggle_dice"] if is_any else seg["per_class"][name]
        dpos = seg["dice_pos"] if is_any else seg["per_class_pos"][name]
        base = empty["kaggle_dice"] if is_any else empty["per_class"][name]
        label = "all classes / any defect" if is_any else html.escape(name)
        rows.append(f"<tr><td><span class=swatch style='background:{col}'></span>{label}</td>"
                    f"<td>{m['positives']}</td><td>{_fmt(dice)}</td><td>{_fmt(dpos)}</td><td>{_fmt(base)}</td>"
                    f"<td>{_fmt(m['accuracy'], 3)}</td><td>{_fmt(m['precision'], 3)}</td>"
                    f"<td>{_fmt(m['recall'], 3)}</td><td>{_fmt(m['f1'], 3)}</td><td>{_fmt(m['roc_auc'], 3)}</td></tr>")
    head = ("<tr><th>class</th><th>defect images</th><th>Dice</th><th>Dice (defect pairs)</th>"
            "<th>all-empty Dice</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th>ROC-AUC</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _settings_html(ev: Evaluation) -> str:
    s = dict(ev.settings)
    thresholds = s.pop("thresholds", None)
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td class=mono style='text-align:left'>"
                   f"{html.escape(str(v))}</td></tr>" for k, v in s.items())
    out = f"<table>{rows}</table>" if rows else "<p>No summary.json beside the predictions.</p>"
    classes = (thresholds or {}).get("classes") if isinstance(thresholds, dict) else None
    if classes:
        head = "<tr><th>class</th><th>label threshold</th><th>pixel threshold</th><th>min component px</th><th>min area px</th></tr>"
        body = "".join(f"<tr><td>{html.escape(c['name'])}</td><td>{c['label_threshold']:.2f}</td>"
                       f"<td>{c['pixel_threshold']:.2f}</td><td>{c['min_component']}</td><td>{c['min_area']}</td></tr>"
                       for c in classes)
        out += f"<h2 style='margin-top:14px'>Thresholds</h2><table>{head}{body}</table>"
    return out


def _legend(ev: Evaluation) -> str:
    return "<p style='font-size:13px'>" + " &nbsp; ".join(
        f"<span class=swatch style='background:{c}'></span>{html.escape(n)}"
        for n, c in zip(ev.class_names, _colors(len(ev.class_names)))) + "</p>"


def _error_lists(errors: dict) -> str:
    parts = []
    for key, lists in errors.items():
        for kind in ("false_positives", "false_negatives"):
            ids = lists[kind]
            if ids:
                label = f"{key.replace('_', ' ')} — {kind.replace('_', ' ')} ({len(ids)})"
                parts.append(f"<details><summary>{html.escape(label)}</summary><p class=mono>"
                             f"{html.escape(', '.join(ids))}</p></details>")
    return "".join(parts) or "<p>No image-level errors.</p>"


def write_report(ev: Evaluation, path: str | Path, *, title: str = "steelscan evaluation",
                 source: str = "", worst: int = 8) -> Path:
    """Render the evaluation as one self-contained HTML file at `path`."""
    seg, empty, cls = ev.segmentation(), ev.all_empty(), ev.classification()
    pr = pr_figure(ev)
    notes = "".join(f"<div class=note>{html.escape(n)}</div>" for n in ev.notes)
    body = f"""<header><h1>{html.escape(title)}</h1>
<p>{len(ev.image_ids)} images · {len(ev.class_names)} classes · {html.escape(source)}</p></header>
<main>
<section><h2>Summary</h2>{notes}{_summary_cards(seg, empty, cls['any_defect'])}
<p style="font-size:13px;color:#5a6878">Kaggle Dice is the mean over every (image, class) pair, an empty
prediction on a clean pair scoring 1; the all-empty baseline predicts no defect anywhere on the same images.
Dice positive pairs: {_fmt(seg['dice_pos'])} ({seg['n_pos']} pairs) · negative pairs: {_fmt(seg['dice_neg'])}
({seg['n_neg']} pairs).</p>
{_class_table(ev, seg, empty, cls)}</section>
<section><h2>Dice per class</h2><img class=fig src="{dice_figure(ev)}" alt="Dice per class"></section>
<section><h2>Image-level decisions</h2>
<p style="font-size:13px;color:#5a6878">A class counts as predicted on an image when its final mask is not empty.</p>
<img class=fig src="{confusion_figure(ev, cls)}" alt="confusion matrices">
<div class=pair style="margin-top:10px">
<div>{f'<img class=fig src="{pr}" alt="precision-recall curves">' if pr else '<p>No class scores (results.jsonl missing).</p>'}</div>
<div><h2 style="font-size:15px">False positives / negatives (images)</h2>{_error_lists(ev.image_errors())}</div></div></section>
<section><h2>Worst images (truth vs prediction)</h2>{_legend(ev)}{worst_images_html(ev, worst)}</section>
<section><h2>Settings</h2>{_settings_html(ev)}</section>
</main>"""
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")
    write_text(path, page)
    return Path(path)
