"""`steelscan demo`: generate data, train, tune, evaluate, export and benchmark in one run folder.

    steelscan demo                       # synthetic steel, runs/demo/ (~9 min on 2 idle cores)
    steelscan demo --threads 1 --seed 2  # the same recipe on one thread, another seed
    steelscan demo --data DIR --out runs/mine    # the same pipeline on your Kaggle-layout data

Every step prints the `steelscan ...` command that does the same on its own. The flags below
are the fields of steelscan.demo.DemoConfig, where their defaults live.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys


def register(subparsers) -> None:
    from ..demo import DemoConfig

    p = subparsers.add_parser("demo", help="the whole pipeline on embedded synthetic data (or --data)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = DemoConfig()
    for f in dataclasses.fields(DemoConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action="store_true", default=value)
        else:
            kind = {int: int, float: float}.get(type(value), str)
            p.add_argument(flag, type=kind, default=value, metavar=f.name.upper().split("_")[-1],
                           help=f"default: {value}")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import DemoConfig, format_summary, run_demo

    cfg = DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})
    summary = run_demo(cfg)
    print(format_summary(summary))
    return 0
