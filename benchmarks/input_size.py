"""Which input size transfer learning should use on real photos, and what the ImageNet weights add.

    python -m benchmarks.input_size --data ../shared/data/cifar-100-python.tar.gz \\
        --weights ../shared/data/mobilenet_v2_0.35_224_no_top.weights.h5

For `feature` and `finetune` with MobileNetV2-0.35, trains one fixed model per input size (32, 96,
128 px with the ImageNet weights, and 96 px with `--weights none`) through the CLI a user runs:
`python -m tuning search --tuner random --max-trials 1 --space FIXED.toml`, on the full training
split, each with an empty cache folder (building the cache is part of its time). The fixed models
are the settings the default 96 px searches found best (`FIXED` below: their learning rates to
two figures), so the comparison favours
96 px if anything; a search at each size would cost an hour a size. The figure is validation
accuracy: the test images are the report's alone. Writes
`benchmarks/results/input-size-<date>.json`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import RESULTS, checkout, invocation, save_result, timed_cli
from tuning.rundir.trials_table import load_trials
from tuning.space import fixing_toml

FIXED = {
    "feature": {
        "pooling": "flatten",
        "dense_units": 1024,
        "dropout": 0.4,
        "learning_rate": 2e-4,
        "flip": False,
    },
    "finetune": {
        "dense_units": 512,
        "dropout": 0.1,
        "head_learning_rate": 1.8e-4,
        "unfreeze_blocks": 1,
        "finetune_learning_rate": 7.4e-5,
        "flip": True,
    },
}
CONTENDERS = ((32, "imagenet"), (96, "imagenet"), (128, "imagenet"), (96, "none"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="real CIFAR-100 (the official archive)")
    parser.add_argument(
        "--weights", required=True, help="MobileNetV2-0.35 ImageNet weights file (or imagenet)"
    )
    parser.add_argument("--methods", nargs="+", default=list(FIXED), choices=list(FIXED))
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    args = parser.parse_args(argv)
    runs = [
        run_one(args, method, size, weights)
        for method in args.methods
        for size, weights in CONTENDERS
    ]
    save_result(
        "input-size",
        {
            "what": __doc__.split("\n\n")[2].replace("\n", " "),
            "command": invocation("benchmarks.input_size", argv),
            "checkout": checkout(),
            "data": args.data,
            "fixed_hyperparameters": FIXED,
            "runs": runs,
        },
        Path(args.results),
    )


def run_one(args, method: str, size: int, weights: str) -> dict:
    """One fixed model trained by a one-trial search; its validation accuracy and wall time."""
    with tempfile.TemporaryDirectory() as work:
        space = Path(work) / "fixed.toml"
        space.write_text(fixing_toml(FIXED[method]))
        command = [
            *("search", "--method", method, "--backbone", "mobilenetv2", "--alpha", "0.35"),
            *("--weights", args.weights if weights == "imagenet" else "none"),
            *("--input-size", str(size), "--data", args.data, "--space", str(space)),
            *("--tuner", "random", "--max-trials", "1", "--max-epochs", str(args.max_epochs)),
            *("--out", str(Path(work) / "runs"), "-q"),
        ]
        command += ["--train-size", str(args.train_size)] if args.train_size else []
        done, seconds = timed_cli(command, Path(work) / "cache")
        if done.returncode != 0:
            sys.exit(f"{method} at {size} px failed: {done.stderr.strip().splitlines()[-1]}")
        trial = load_trials(Path(work) / "runs" / method).iloc[0]
    row = {
        "method": method,
        "input_size": size,
        "weights": weights,
        "val_accuracy": round(float(trial["val_accuracy"]), 4),
        "val_top5": round(float(trial["val_top5"]), 4),
        "epochs_run": int(trial["epochs_run"]),
        "seconds": round(seconds, 1),
    }
    print(row, flush=True)
    return row


if __name__ == "__main__":
    main()
