"""`python -m tuning` / `cifar-tune`: thin argparse verbs over the library.

TensorFlow is imported only inside the verbs that train, so `--help` and usage errors stay fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from tuning.config import (
    BACKBONES,
    METHODS,
    PRECISIONS,
    PRESETS,
    TUNERS,
    WIDTHS,
    SearchConfig,
    run_dir_name,
)
from tuning.engine.budget import parse_duration
from tuning.engine.cost import parse_madds
from tuning.errors import ConfigError, SearchFailed, UsageError
from tuning.host import interrupt

INTERRUPTED = "interrupted; run the same command to resume"


class OneLineErrorParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="cifar-tune",
        description="Hyperparameter search for CIFAR-100 CNNs "
        "with Keras-Tuner: search, then summarise (reports: python -m reports).",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=OneLineErrorParser)

    search = verbs.add_parser(
        "search",
        help="run or resume a search over one method",
        description="Run (or resume) a search; every trial goes to "
        "OUT/METHOD/trials.csv and TensorBoard.",
    )
    space = search.add_argument_group("Search")
    space.add_argument(
        "--method",
        required=True,
        metavar="{" + ",".join(METHODS) + "}",
        help="scratch CNN, ImageNet feature extraction, or fine-tuning",
    )
    space.add_argument("--tuner", metavar="{" + ",".join(TUNERS) + "}")
    space.add_argument(
        "--preset",
        metavar="{" + ",".join(PRESETS) + "}",
        help="train the seed write-up's fixed model (one trial of --max-epochs) "
        "into OUT/METHOD-seed instead of searching",
    )
    space.add_argument(
        "--max-epochs",
        type=int,
        help="Hyperband's largest budget; epochs per trial for the other tuners (default 9; "
        "a Hyperband search with --time-budget plans it)",
    )
    space.add_argument(
        "--min-epochs",
        type=int,
        help="Hyperband's smallest budget, its first rounds' epochs (default %(default)s)",
    )
    space.add_argument("--factor", type=int, help="Hyperband reduction factor (>= 2)")
    space.add_argument("--hyperband-iterations", type=int)
    space.add_argument("--max-trials", type=int, help="random / bayesian trials")
    space.add_argument("--patience", type=int, help="early-stopping patience (epochs)")
    space.add_argument("--seed", type=int)
    space.add_argument(
        "--space",
        metavar="FILE.toml",
        help="override searched ranges or fix values (print the defaults: python -m tuning space)",
    )
    space.add_argument(
        "--max-madds",
        type=_parsed_by(parse_madds),
        metavar="N",
        help="refuse, as a failed trial, a model costing more multiply-adds per "
        "image (e.g. 60M, 1.5G); bounds a trial's time on small budgets "
        "(default: no cap)",
    )
    space.add_argument(
        "--no-recipes",
        dest="recipes",
        action="store_false",
        help="draw every trial at random, not the space's known recipes first",
    )
    space.add_argument(
        "--time-budget",
        type=_parsed_by(parse_duration),
        metavar="DURATION",
        help="stop the search after this long (e.g. 30m, 2h; summed over the "
        "runs that resume it): no trial starts after it, the running one stops "
        "at its next epoch end (default: no limit)",
    )

    data = search.add_argument_group("Data")
    data.add_argument(
        "--data",
        help="'keras' (download, default), 'synthetic' (offline stand-in) or a path: "
        "cifar-100-python/ directory, .tar.gz, .npz, or a folder of class folders",
    )
    data.add_argument(
        "--image-size",
        type=int,
        help="side a folder's pictures are resized to (default: their most common side)",
    )
    data.add_argument(
        "--test-size",
        type=int,
        help="test images held out of a folder without a test/ folder (default: a sixth)",
    )
    data.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out a folder's files that cannot be decoded (default: refuse them)",
    )
    data.add_argument(
        "--train-size", type=int, help="keep a stratified subset of this many training images"
    )
    data.add_argument(
        "--val-size",
        type=int,
        help="validation images taken "
        "from the train set (default 5000, a quarter of --train-size if smaller)",
    )
    data.add_argument("--batch-size", type=int)

    model = search.add_argument_group("Model")
    model.add_argument(
        "--backbone",
        metavar="{" + ",".join(BACKBONES) + "}",
        help="feature, finetune: the ImageNet network (default %(default)s)",
    )
    model.add_argument(
        "--alpha",
        type=float,
        help="mobilenetv2: its width, one of "
        + ", ".join(map(str, WIDTHS["mobilenetv2"]))
        + " (Keras's alpha; default %(default)s)",
    )
    model.add_argument(
        "--weights",
        help="backbone weights: 'imagenet' "
        "(download, default), 'none' (random) or a path to a no-top .h5 file",
    )
    model.add_argument(
        "--input-size",
        type=int,
        help="side the backbone sees (default: the pictures' side, at least 32)",
    )
    model.add_argument(
        "--head-epochs",
        type=int,
        help="finetune: head-only epochs before unfreezing (default a third of --max-epochs, >= 1)",
    )
    model.add_argument(
        "--precision",
        metavar="{" + ",".join(PRECISIONS) + "}",
        help="what trials compute in: auto (default) takes mixed_float16 on a GPU of compute "
        "capability >= 7.0, mixed_bfloat16 for scratch on a CPU with AMX, float32 elsewhere",
    )
    model.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="feature, "
        "finetune: run the frozen backbone layers in every step instead of caching "
        "their activations once (slower; for when the cache does not fit on disk)",
    )

    spread = search.add_argument_group("Distributed")
    spread.add_argument(
        "--chief",
        metavar="HOST:PORT",
        help="serve this search to "
        "workers (keras-tuner's chief oracle); HOST defaults to 127.0.0.1, name "
        "another address to accept other machines",
    )
    spread.add_argument(
        "--worker",
        metavar="HOST:PORT",
        help="run trials for the chief at HOST:PORT (same command otherwise)",
    )
    spread.add_argument("--worker-id", help="this worker's name (default worker-<host>-<pid>)")
    spread.add_argument(
        "--worker-timeout",
        type=int,
        help="chief: seconds without "
        "a worker's heartbeat before its trial is run again (default %(default)s)",
    )
    spread.add_argument(
        "--distribution",
        metavar="{none,mirrored}",
        help="mirrored: tf.distribute.MirroredStrategy over this machine's GPUs "
        "inside each trial (one replica on a CPU)",
    )

    output = search.add_argument_group("Output")
    output.add_argument("--out", help="run directory (default runs/)")
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh (default: resume what OUT/METHOD holds)",
    )
    output.add_argument(
        "--force-unlock",
        action="store_true",
        help="remove the lock a search "
        "on another host left in OUT/METHOD, once you know it is gone",
    )
    output.add_argument(
        "-v", "--verbose", dest="loud", action="store_true", help="show Keras epoch bars"
    )
    output.add_argument("-q", "--quiet", action="store_true", help="no per-trial lines")
    search.set_defaults(handler=_search, **config_defaults())

    summary = verbs.add_parser("summary", help="print the best trials of a search from disk")
    summary.add_argument("--method", required=True, metavar="{" + ",".join(METHODS) + "}")
    summary.add_argument("--out", default="runs")
    summary.add_argument("--preset", default=None, metavar="{" + ",".join(PRESETS) + "}")
    summary.add_argument("--top", type=int, default=10)
    summary.set_defaults(handler=_summary)

    board = verbs.add_parser(
        "dashboard",
        help="serve TensorBoard (HParams) on 127.0.0.1",
        description="Serve TensorBoard for the searches under OUT; new "
        "trials appear while a search runs.",
    )
    board.add_argument("--out", default="runs")
    board.add_argument(
        "--method",
        default=None,
        help="one run (e.g. feature, feature-seed); default: every search under OUT",
    )
    board.add_argument("--port", type=int, default=6006)
    board.set_defaults(handler=_dashboard)

    spaces = verbs.add_parser(
        "space",
        help="print a method's default search space as TOML",
        description="Print the default search space of a method as a "
        "TOML file to copy, edit and pass to search --space.",
    )
    spaces.add_argument("--method", required=True, choices=METHODS)
    spaces.set_defaults(handler=_space)

    predict = verbs.add_parser(
        "predict",
        help="top-5 CIFAR-100 classes of your own pictures",
        description="Run a saved model on PNG/JPEG pictures of any size "
        "(resized to 32x32): the top classes of each, with confidence.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument(
        "--model", required=True, help="a saved .keras model, e.g. runs/finetune/best_model.keras"
    )
    predict.add_argument("--top", type=int, default=5, help="classes per picture (default 5)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.set_defaults(handler=_predict)
    return parser


def _parsed_by(parse):
    """An argparse `type` calling `parse`, whose ValueError becomes argparse's one-line error."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """The command line; `started` is `time.monotonic()` at the process's start (default: now),
    from which a search's `--time-budget` counts."""
    args = build_parser().parse_args(argv)
    args.started = time.monotonic() if started is None else started
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"cifar-tune {args.verb}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except SearchFailed as error:
        print(f"cifar-tune {args.verb}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cifar-tune {args.verb}: {INTERRUPTED}", file=sys.stderr)
        return 130


def one_line(error: UsageError) -> str:
    """The error as the command line says it: a `ConfigError` names flags, not fields."""
    return error.for_command_line() if isinstance(error, ConfigError) else str(error)


def config_defaults() -> dict:
    """{field: default} of `SearchConfig`: the search verb's defaults, written once."""
    return {
        f.name: f.default
        for f in dataclasses.fields(SearchConfig)
        if f.default is not dataclasses.MISSING
    }


def config_from_args(args) -> SearchConfig:
    """The `SearchConfig` of the search verb's arguments (each flag names its field)."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(SearchConfig)
        if hasattr(args, f.name)
    }
    return SearchConfig(**{**given, "verbose": 0 if args.quiet else 2 if args.loud else 1})


def _search(args) -> int:
    config = config_from_args(args)  # validates before anything heavy is imported
    from tuning.engine.search import run_search
    from tuning.host.runtime import import_tensorflow_quietly
    from tuning.rundir.lock import release_held

    with interrupt.exits_promptly(f"cifar-tune search: {INTERRUPTED}", cleanup=release_held):
        import_tensorflow_quietly()
        result = run_search(config, log=lambda line: print(line, flush=True), started=args.started)
    if result.worker:
        print(
            f"{result.worker}: done, ran {result.completed} completed and {result.failed} "
            f"failed trials; the chief writes {result.run_dir / 'trials.csv'}"
        )
        return 0
    if result.budget_spent:
        print(
            "time budget spent: no trial started after it; run the same command with a "
            "larger --time-budget to go on"
        )
    print(
        f"best trial {result.best_trial_id}: val_accuracy {result.best_val_accuracy:.4f} "
        f"({result.completed} completed, {result.failed} failed); model: "
        f"{result.run_dir / 'best_model.keras'}; trials: {result.run_dir / 'trials.csv'}"
    )
    return 0


def _summary(args) -> int:
    from tuning.rundir.trials_table import summarize

    print(summarize(Path(args.out) / run_dir_name(args.method, args.preset), top=args.top))
    return 0


def _space(args) -> int:
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tuning.space import space_toml

    print(space_toml(args.method), end="")
    return 0


def _predict(args) -> int:
    import json

    from tuning.predict import (
        format_table,
        image_paths,
        load_trained_model,
        model_class_names,
        predict_images,
    )

    if not 1 <= args.top <= 100:
        raise UsageError(f"--top must be between 1 and 100. Received: {args.top}")
    paths = image_paths(args.images)  # usage errors before TensorFlow's import
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    model = load_trained_model(args.model)
    names = model_class_names(args.model, model.output_shape[-1])
    predictions = predict_images(model, paths, top=args.top, names=names)
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=1))
    else:
        print(format_table(predictions))
    return 0


def _dashboard(args) -> int:
    from tuning.dashboard import log_dirs, serve_forever
    from tuning.host.runtime import import_tensorflow_quietly

    log_dirs(args.out, args.method)  # a usage error before TensorBoard's slow import
    import_tensorflow_quietly()
    try:
        serve_forever(args.out, args.method, args.port, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("dashboard stopped", flush=True)
    return 0
