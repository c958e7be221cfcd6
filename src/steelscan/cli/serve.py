"""`steelscan serve`: the inspection web service and page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve POST /v1/inspect, the inspection history, coils (APIs and pages), /metrics",
        description="Run the inspection service. Binds 127.0.0.1 unless --host says otherwise. "
                    "Requests beyond --max-concurrency get 503 + Retry-After; uploads over "
                    "--max-upload-mb get 413; non-images 415; corrupt images 422. Without --model "
                    "the page, history, health and metrics work and POST /v1/inspect answers 503.")
    p.add_argument("--model", metavar="MODEL_DIR",
                   help="bundle folder or shipped model name (optional: without it nothing is inspected)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", default="inspections.sqlite", metavar="URL_OR_PATH",
                   help="inspection history: a SQLAlchemy URL (sqlite:///x.db, postgresql://...) or a path "
                        "meaning SQLite (default inspections.sqlite)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB")
    p.add_argument("--max-concurrency", type=int, default=2, metavar="N",
                   help="inspections run at once; more get 503 (default 2)")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                   help="auto: int8 ONNX if the bundle has it, else ONNX, else PyTorch")
    p.add_argument("--api-token-file", metavar="FILE",
                   help="file holding the bearer token that writes (PUT /v1/coils/{id}, POST /v1/coils/{id}/grade) need; else the "
                        "STEELSCAN_API_TOKEN environment variable; neither: writes answer 403")
    p.add_argument("--rules-dir", metavar="DIR", help="folder of grading rule files that POST /v1/coils/{id}/grade "
                                                   "may use (by name; default.yaml for coils no file names)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads per inspection (default cores / N)")
    p.set_defaults(func=run)


def api_token(args: argparse.Namespace) -> str | None:
    """The write token from --api-token-file (first line, stripped) or STEELSCAN_API_TOKEN; never
    printed or logged."""
    import os

    from ..errors import ConfigError

    if args.api_token_file:
        try:
            token = open(args.api_token_file, encoding="utf-8").read().strip()
        except OSError as e:
            raise ConfigError(f"cannot read the token file: {e.strerror}", path=args.api_token_file,
                              field="api-token-file") from None
        if not token:
            raise ConfigError("the token file is empty", path=args.api_token_file, field="api-token-file")
        return token
    return os.environ.get("STEELSCAN_API_TOKEN", "").strip() or None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..errors import ConfigError
    from ..service.app import create_app

    if args.max_concurrency < 1:
        raise ConfigError(f"must be at least 1, got {args.max_concurrency}", field="max-concurrency")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"must be positive, got {args.max_upload_mb}", field="max-upload-mb")
    if args.model is None:
        print("steelscan serve: no --model given: serving the pages, history, coils, health and metrics; "
              "POST /v1/inspect answers 503", file=sys.stderr)
    token = api_token(args)
    print("steelscan serve: writes (PUT /v1/coils/{id}, POST /v1/coils/{id}/grade) " + ("need the bearer token" if token else
          "are disabled (403): no --api-token-file or STEELSCAN_API_TOKEN"), file=sys.stderr)
    if args.rules_dir:
        from ..coils.rule_source import RuleSource

        RuleSource(args.rules_dir).check()   # a bad rule file: one line now, not a 409 later
    app = create_app(args.model, engine=args.engine, db_path=args.db, max_upload_mb=args.max_upload_mb,
                     max_concurrency=args.max_concurrency, threads=args.threads, api_token=token,
                     rules_dir=args.rules_dir)
    # the live page's event streams stay open: Ctrl-C closes them after a few seconds, not their max_s
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5)
    return 0
