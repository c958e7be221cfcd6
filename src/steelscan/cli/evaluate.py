"""`steelscan evaluate`: how good a prediction is, against the truth.

    steelscan evaluate --pred OUT_DIR --data DIR [--out DIR]
    steelscan evaluate --classifier runs/cls --segmenter runs/seg [--thresholds F] --data DIR --out DIR

The second form runs `steelscan predict` itself (into OUT/predictions) first. Writes
metrics.json and report.html (self-contained) into --out (default: the prediction folder).
"""

from __future__ import annotations

import argparse
import sys

from .predict import add_model_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="Kaggle Dice, image-level metrics, report.html",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pred", metavar="OUT_DIR", help="a `steelscan predict` output folder")
    p.add_argument("--data", required=True, metavar="DIR", help="Kaggle-layout data folder (the truth)")
    p.add_argument("--out", metavar="DIR", help="where metrics.json and report.html go")
    p.add_argument("--split", default="all", metavar="all|val|FILE",
                   help="which data images: all, a file of ids, or val (the runs' held-out ids)")
    p.add_argument("--worst", type=int, default=8, metavar="K", help="worst images shown in the report")
    add_model_arguments(p)
    p.set_defaults(func=run)


def _split(args, dataset) -> list[str] | None:
    from ..errors import ConfigError
    from ..runtime import check_runs
    from ..inference.tune import split_ids

    available = [r.image_id for r in dataset.records]
    if args.split == "all":
        return None
    if args.split == "val":
        if not args.segmenter:
            raise ConfigError("--split val needs --segmenter (its config.json holds the validation ids)")
        cls_cfg, seg_cfg = check_runs(args.classifier, args.segmenter)
        return split_ids("val", seg_cfg, cls_cfg, available)
    return split_ids(args.split, {}, None, available)


def run(args) -> int:
    from pathlib import Path

    from ..atomic import write_json
    from ..data.layout import open_dataset
    from ..errors import ConfigError
    from ..evaluation.evaluate import evaluate_predictions
    from ..evaluation.report import write_report

    uses_models = bool(args.classifier or args.segmenter or args.model)
    if bool(args.pred) == uses_models:
        raise ConfigError("give either --pred OUT_DIR or models (--segmenter [--classifier] / --model)")
    dataset = open_dataset(args.data)
    ids = _split(args, dataset)
    if uses_models:
        if not args.out:
            raise ConfigError("--out DIR is needed when evaluate runs the models")
        from ..inference.predict import predict_files
        from .predict import inspector_from_args

        inspector = inspector_from_args(args)
        records = {r.image_id: r for r in dataset.records}
        paths = [records[i].path for i in (ids or list(records))]
        pred_dir = Path(args.out) / "predictions"
        predict_files(inspector, paths, pred_dir, overlays=not args.no_overlays, progress=not args.quiet)
    else:
        pred_dir = Path(args.pred)
    out = Path(args.out) if args.out else pred_dir
    ev = evaluate_predictions(pred_dir, args.data, ids, progress=not getattr(args, "quiet", False))
    metrics = ev.to_json()
    metrics["pred"] = str(pred_dir)
    metrics["data"] = str(args.data)
    write_json(out / "metrics.json", metrics)
    report = write_report(ev, out / "report.html", source=f"predictions {pred_dir} · truth {args.data}",
                          worst=args.worst)
    seg, empty = metrics["segmentation"], metrics["all_empty"]
    any_d = metrics["classification"]["any_defect"]
    lines = [f"{metrics['n_images']} images",
             f"{'':<16}{'Dice':>8}{'all-empty':>11}",
             f"{'Kaggle':<16}{seg['kaggle_dice']:>8.4f}{empty['kaggle_dice']:>11.4f}"]
    for name in ev.class_names:
        lines.append(f"{name[:15]:<16}{seg['per_class'][name]:>8.4f}{empty['per_class'][name]:>11.4f}")
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    lines.append(f"dice_pos {fmt(seg['dice_pos'])}  dice_neg {fmt(seg['dice_neg'])}  |  any defect: "
                 f"precision {fmt(any_d['precision'])} recall {fmt(any_d['recall'])} F1 {fmt(any_d['f1'])} "
                 f"ROC-AUC {fmt(any_d['roc_auc'])}")
    lines += [f"note: {n}" for n in ev.notes]
    lines.append(f"wrote {out / 'metrics.json'} and {report}")
    print("\n".join(lines), file=sys.stderr)
    return 0
