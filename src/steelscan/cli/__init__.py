"""The `steelscan` command line: a thin shell over the library.

Each sub-command lives in its own module here and exposes `register(subparsers)`,
which adds its parser and sets `func` to a `run(args) -> int` function. Heavy
imports (torch) happen inside `run`, so `steelscan --help` stays fast.

Exit codes: 0 success, 1 the command ran and found problems (e.g. `validate`),
2 bad usage or bad input (one line on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import SteelscanError
from ..memory import keep_freed_memory

# Module names under steelscan.cli, in the order `--help` lists them.
COMMANDS = [
    "demo", "synth", "synth_coil", "validate", "import_masks", "score", "train", "tune",
    "predict", "evaluate", "export", "benchmark", "serve", "line", "coil",
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="steelscan",
        description="Steel-surface defect inspection: find and locate defects on strip images.")
    parser.add_argument("--version", action="version", version=f"steelscan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:  # a command whose module is not written yet
            if e.name and e.name.endswith(f"cli.{name}"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    keep_freed_memory()
    try:
        return int(args.func(args) or 0)
    except SteelscanError as e:
        print(f"steelscan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"steelscan {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort: one line, the traceback only on request
        if os.environ.get("STEELSCAN_DEBUG"):
            raise
        print(f"steelscan {args.command}: internal error: {e.__class__.__name__}: {e} "
              f"(set STEELSCAN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
