"""Candidate scratch recipes on real photos, each trained at the budgets a search gives a trial.

    python -m benchmarks.recipes --data ../shared/data/cifar-100-python.tar.gz

Every candidate is one fixed point of the `scratch` space, trained in one `fit` per budget (1, 3
and 9 epochs by default), its learning-rate schedule spanning that budget, on the same seeded
split (10,000 training / 2,500 validation images). Validation accuracy and seconds after each
epoch go to `benchmarks/results/<name>-<date>.json` (`--name`, default recipes), rewritten after
every run, so a stopped benchmark keeps what it measured. Candidates run in the order given,
cheapest first by default. `--precisions` and `--train-seeds` repeat each run per precision and
training seed (the split stays `--seed`'s), runs then named `candidate/precision/seed N`:

    python -m benchmarks.recipes --data PATH --candidates resnet_3x1_w32_sgd --epochs 9 \
        --precisions float32 mixed_bfloat16 --train-seeds 1 2 3 --name precision-accuracy
"""

from __future__ import annotations

import argparse
import time

from benchmarks.machine import save_result
from search_spaces.scratch import RECIPES
from tuning.config import PRECISIONS

# The recipes, and the variations of them that lost (each recorded in full in the results).
_RESNET = RECIPES["resnet8_w32_sgd_one_cycle"]
_ADAM_FLIP = RECIPES["bn_cnn_adam_one_cycle_flip"]
_AUGMENTED = {**_ADAM_FLIP, "crop": True}
CANDIDATES = {
    "bn_cnn": {**_ADAM_FLIP, "flip": False},
    "bn_cnn_flip": _ADAM_FLIP,
    "bn_cnn_flip_dropout05": {**_ADAM_FLIP, "dropout": 0.5},
    "bn_cnn_crop_flip": _AUGMENTED,
    "bn_cnn_crop_flip_cosine": {**_AUGMENTED, "schedule": "cosine"},
    "bn_cnn_crop_flip_sgd": RECIPES["bn_cnn_sgd_one_cycle"],
    "bn_cnn_crop_flip_adamw": {**_AUGMENTED, "optimizer": "adamw", "weight_decay": 1e-2},
    "resnet_3x1_w16_sgd": {**_RESNET, "residual_width": 16},
    "bn_cnn_2conv_crop_flip": {**_AUGMENTED, "convs_per_block": 2},
    "bn_cnn_w64_crop_flip": {**_AUGMENTED, "base_filters": 64},
    "resnet_3x1_w32_sgd": _RESNET,
    "conv_groups_flip": RECIPES["conv_groups_adam_one_cycle_flip"],
}


def main(argv=None) -> None:
    args = parse_args(argv)
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tuning.data.sources import load_search_data

    data = load_search_data(args.data, args.val_size, args.train_size, args.seed)
    print(data.describe(), flush=True)
    record = {
        "what": (
            "Validation accuracy of fixed scratch configurations, each trained in one fit per "
            "budget with its schedule spanning that budget; [seconds since the fit began, "
            "val_accuracy] after each epoch."
        ),
        "data": data.describe(),
        "seed": args.seed,
        "batch_size": args.batch_size,
        "candidates": {name: CANDIDATES[name] for name in args.candidates},
        "runs": {},
    }
    repeated = len(args.precisions) > 1 or args.train_seeds != [args.seed]
    for name in args.candidates:
        for precision in args.precisions:
            for seed in args.train_seeds:
                run = f"{name}/{precision}/seed {seed}" if repeated else name
                for epochs in args.epochs:
                    curve = train(CANDIDATES[name], epochs, data, args, precision, seed)
                    record["runs"].setdefault(run, {})[str(epochs)] = curve
                    print(f"{run}, {epochs} epochs: {curve[-1]}", flush=True)
                    if repeated:
                        record["mean_final_val_accuracy"] = final_means(record["runs"])
                    save_result(args.name, record)


def final_means(runs: dict) -> dict:
    """{"candidate/precision": {epochs: mean of the seeds' val accuracy after the last epoch}}."""
    finals = {}
    for run, budgets in runs.items():
        group = run.rsplit("/seed ", 1)[0]
        for epochs, curve in budgets.items():
            finals.setdefault(group, {}).setdefault(epochs, []).append(curve[-1][1])
    return {
        group: {epochs: round(sum(v) / len(v), 4) for epochs, v in budgets.items()}
        for group, budgets in finals.items()
    }


def train(
    values: dict, epochs: int, data, args, precision="float32", seed=None
) -> list[list[float]]:
    """[[seconds, val_accuracy] after each epoch] of `values` trained for `epochs`."""
    import keras

    from search_spaces import dtype_policy, fixed_hyperparameters
    from search_spaces.scratch import ScratchCNN
    from tuning.data.pipeline import to_dataset

    seed = args.seed if seed is None else seed
    keras.utils.set_random_seed(seed)
    hypermodel = ScratchCNN(schedule_epochs=epochs)
    hp = fixed_hyperparameters(values)
    with dtype_policy(precision):
        model = hypermodel.build(hp)
    start = time.perf_counter()
    curve = []
    stamp = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: curve.append(
            [round(time.perf_counter() - start, 1), round(float(logs["val_accuracy"]), 4)]
        )
    )
    hypermodel.fit(
        hp,
        model,
        to_dataset(data.train, args.batch_size, shuffle=True, seed=seed),
        validation_data=to_dataset(data.validation, args.batch_size),
        epochs=epochs,
        callbacks=[stamp],
        verbose=0,
        shuffle=False,  # the dataset shuffles itself
    )
    keras.backend.clear_session()
    return curve


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__)
    parser.add_argument("--data", required=True, help="real CIFAR-100 (a path)")
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 9])
    parser.add_argument(
        "--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES)
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["float32"], choices=list(PRECISIONS[1:])
    )
    parser.add_argument("--train-seeds", type=int, nargs="+", help="default: --seed")
    parser.add_argument("--name", default="recipes", help="the results file's name")
    args = parser.parse_args(argv)
    args.train_seeds = args.train_seeds or [args.seed]
    return args


if __name__ == "__main__":
    main()
