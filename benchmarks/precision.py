"""float32 against `--precision auto` (`tuning.host.precision`), side by side in fresh processes.

    python -m benchmarks.precision          # 3 rounds of alternate fresh processes
    python -m benchmarks.precision --against mixed_bfloat16   # where auto picks float32

Each round runs one fresh process per setting, in alternating order (`alternate_rounds`):
`float32`, and `auto`, what a search picks on this machine (mixed_bfloat16 on AMX CPUs, float32
on the others: there both settings run the same computation; the `finetune` row in what a
`finetune` search picks, float32 on AMX too). Each process times, after a warm-up
epoch, the fastest of `--epochs` training epochs in images per second (batch 128, synthetic
images: speed does not depend on what the pictures show): the seed's scratch CNN, the
ResNet-8-like recipe (the row "first_recipe", first when this benchmark was written) and the
recipe a `scratch` search draws first today (`search_first_recipe`; 5,000 images each), a
cached `finetune` epoch (VGG-16 block5 unfrozen on cached block4 output, random weights, 5,000
images, validation included), and, for the record, the frozen backbone's extraction of the
feature cache in each precision (5,000 images; searches build it in float32 whatever they train
in: the cache stays exact and shared). Writes `benchmarks/results/<--name>-<date>.json`
(default `precision`) with every run, the medians, auto's speed-up per row
and this machine's CPU features. `--against mixed_bfloat16` times that policy in auto's place, to
decide auto on a host kind where it picks float32 (an AVX-512 BF16 CPU without AMX, say).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import add_round_arguments, alternate_rounds, invocation, row_medians
from benchmarks.onednn import finetune_cached_throughput, seed_cnn, throughput

ROWS = {  # row: training images
    "seed_scratch_cnn": 5000,
    "first_recipe": 5000,
    "search_first_recipe": 5000,
    "finetune_cached_epoch": 5000,
    "feature_extraction": 5000,
}
AGAINST = ("auto", "mixed_bfloat16")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_round_arguments(parser, 3, ROWS)
    parser.add_argument("--against", choices=AGAINST, default="auto", help="timed beside float32")
    parser.add_argument("--name", default="precision", help="the results file's name")
    parser.add_argument("--one", choices=("float32", *AGAINST), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(time_rows(args.one, args)))
        return
    settings, key = ("float32", args.against), f"{args.against}_over_float32"
    with tempfile.TemporaryDirectory() as cache:
        runs = alternate_rounds(settings, args.rounds, lambda name: _fresh(name, cache, args))
    medians = row_medians(runs, args.rows)
    speedup = {
        row: round(medians[args.against][row] / medians["float32"][row], 2) for row in args.rows
    }
    print(json.dumps({"images_per_second": medians, key: speedup}, indent=1))
    from benchmarks.machine import save_result

    name = args.name + ("" if args.against == "auto" else f"-{args.against}")
    save_result(
        name + ("-tiny" if args.scale != 1 else ""),
        {
            "command": invocation("benchmarks.precision", argv).strip(),
            "auto_chose": choose_here(),
            "search_first_recipe": _recipe_name("search_first_recipe"),
            "batch_size": 128,
            "seed": args.seed,
            "timed_epochs_per_process": args.epochs,
            "training_images": {row: _images(row, args.scale) for row in args.rows},
            "runs": runs,
            "median_images_per_second": medians,
            key: speedup,
        },
        folder=Path(args.results),
    )


def time_rows(setting: str, args) -> dict:
    """Images per second of each row in `setting`'s policy (this process's global policy)."""
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from search_spaces import dtype_policy
    from tuning.host.precision import choose

    choice = choose(setting)
    keras.mixed_precision.set_global_policy(choice.policy)
    result = {"policy": choice.policy, "why": choice.why}
    for row in args.rows:
        images = _images(row, args.scale)
        if row == "finetune_cached_epoch":  # in the policy a finetune search takes
            finetune = choose(setting, method="finetune")
            result["finetune_policy"] = finetune.policy
            with dtype_policy(finetune.policy):
                result[row] = finetune_cached_throughput(images, args)
        elif row == "feature_extraction":
            result[row] = _extraction(images, args.seed)
        else:
            model = seed_cnn() if row == "seed_scratch_cnn" else _recipe(_recipe_name(row))
            result[row] = throughput(model, images, args.seed, args.epochs)
    return result


def choose_here() -> dict:
    """What `--precision auto` picks on this machine, and why."""
    from tuning.host.precision import choose

    choice = choose("auto")
    return {"policy": choice.policy, "why": choice.why}


def _recipe_name(row: str) -> str:
    """The row "first_recipe" measures the ResNet-8-like recipe in every results file, whatever
    the recipes' order; "search_first_recipe" the one a `scratch` search draws first today."""
    from search_spaces.scratch import RECIPES

    return "resnet8_w32_sgd_one_cycle" if row == "first_recipe" else next(iter(RECIPES))


def _recipe(name: str):
    """The `scratch` recipe `name`, built in the global policy."""
    from search_spaces import create_hypermodel, fixed_hyperparameters
    from search_spaces.scratch import RECIPES

    return create_hypermodel("scratch").build(fixed_hyperparameters(RECIPES[name]))


def _extraction(images: int, seed: int) -> float:
    """Images per second of VGG-16's frozen layers (random weights) over `images` images, in
    the global policy, after a warm-up pass."""
    import keras
    import numpy as np

    from search_spaces.backbones import extractor, load_base

    keras.utils.set_random_seed(seed)
    base = load_base("vgg16", "none", 32)
    model = extractor(base, 32, [base.layers[-1].name])
    x = np.random.default_rng(seed).integers(0, 256, (images, 32, 32, 3)).astype("float32")
    model.predict(x[:256], batch_size=128, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=128, verbose=0)
    return round(images / (time.perf_counter() - start), 1)


def _images(row: str, scale: float) -> int:
    return max(256, int(ROWS[row] * scale))


def _fresh(setting: str, cache: str, args) -> dict:
    command = [sys.executable, "-m", "benchmarks.precision", "--one", setting, "--cache", cache]
    command += ["--seed", str(args.seed), "--scale", str(args.scale)]
    command += ["--epochs", str(args.epochs), "--rows", *args.rows]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
