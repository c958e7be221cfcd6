"""A run's story on disk: metrics.csv (one row per epoch), metrics.json (best + last), curves.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_json, write_text


def write_metrics_csv(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """All epochs so far, one row each (rewritten atomically, so a kill never leaves half a row)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(Path(run_dir) / "metrics.csv", out.getvalue())


def write_metrics_json(run_dir: Path, rows: list[dict[str, Any]], monitor: str, best_epoch: int | None,
                       extra: dict[str, Any]) -> dict[str, Any]:
    best = next((r for r in rows if r["epoch"] == best_epoch), None)
    summary = {"monitor": f"val_{monitor}", "best_epoch": best_epoch,
               "best_score": best.get(f"val_{monitor}") if best else None,
               "best": best, "last": rows[-1] if rows else None, "epochs_run": len(rows), **extra}
    write_json(Path(run_dir) / "metrics.json", summary)
    return summary


def write_curves(run_dir: Path, rows: list[dict[str, Any]], monitor: str, title: str) -> None:
    """curves.png: losses (left) and validation scores (right) per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key in ("train_loss", "val_loss"):
        ax_loss.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", ms=3, label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    score_keys = list(dict.fromkeys(k for r in rows for k in r if k.startswith("val_") and k != "val_loss"))
    for key in score_keys:   # epochs that were not validated (val_every > 1) are gaps
        ax_score.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", ms=3, label=key,
                      lw=2.5 if key == f"val_{monitor}" else 1.0)
    ax_score.set_xlabel("epoch")
    ax_score.set_ylabel("validation score")
    ax_score.set_ylim(0, 1.02)
    if score_keys:   # none yet before the first validated epoch (val_every > 1)
        ax_score.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(Path(run_dir) / "curves.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
