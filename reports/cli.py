"""`python -m reports`: report on a finished search, or summarise every reported method."""

from __future__ import annotations

import argparse
import sys

from tuning.cli import OneLineErrorParser, one_line
from tuning.config import METHODS, PRESETS, run_dir_name
from tuning.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m reports",
        description="Retrain a search's best "
        "configurations, evaluate them once on the test set and write reports; "
        "`summary` puts the methods side by side.",
    )
    parser.add_argument(
        "verb",
        nargs="?",
        choices=["summary"],
        help="summary: the methods side by side (summary.md/.csv/.html in --out)",
    )
    parser.add_argument("--method", metavar="{" + ",".join(METHODS) + "}")
    parser.add_argument(
        "--preset",
        metavar="{" + ",".join(PRESETS) + "}",
        help="report the seed preset's run (OUT/METHOD-seed)",
    )
    parser.add_argument("--top", type=int, default=1, help="configurations to retrain (default 1)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="retraining budget (default: the search's --max-epochs)",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="retrain with this many seeds; metrics get mean +- std"
    )
    parser.add_argument(
        "--train-on-validation",
        action="store_true",
        help="train the final model on train + validation for the epochs the search found "
        "best (default: the training split, validation held out for early stopping)",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average the predictions for each image and its mirror",
    )
    parser.add_argument("--out", default="runs", help="the searches' run directory (default runs/)")
    parser.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.verb == "summary":
            from reports.comparison import write_summary

            print(write_summary(args.out).read_text())
            return 0
        _check(parser, args)
        from reports.report import build_report
        from tuning.host.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
        folder = build_report(
            args.out,
            run_dir_name(args.method, args.preset),
            args.top,
            args.epochs,
            args.seeds,
            log=None if args.quiet else (lambda line: print(line, flush=True)),
            train_on_validation=args.train_on_validation,
            tta=args.tta,
        )
        print(f"report: {folder / 'index.html'}")
        return 0
    except UsageError as error:
        print(f"python -m reports: error: {one_line(error)}", file=sys.stderr)
        return 2


def _check(parser, args) -> None:
    if args.method not in METHODS:
        parser.error(f"--method is required, one of {list(METHODS)}. Received: {args.method!r}")
    if args.preset is not None and args.preset not in PRESETS:
        parser.error(f"--preset must be one of {list(PRESETS)}. Received: {args.preset!r}")
    for flag in ("top", "seeds", "epochs"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"--{flag} must be a positive integer. Received: {value}")
