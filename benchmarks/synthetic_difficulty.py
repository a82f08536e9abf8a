"""How hard the synthetic stand-in is: a linear model on pixels vs the seed write-up's CNN.

Trains both on the standard search split of `--data synthetic` (45,000 train images) and scores
them on its 5,000 validation images after every epoch, then writes
`benchmarks/results/synthetic-difficulty-<date>.json`.

    python -m benchmarks.synthetic_difficulty [--epochs 5]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from benchmarks.machine import save_result
    from search_spaces import SEED_PRESETS, fixed_hyperparameters
    from search_spaces.blocks import compile_classifier
    from search_spaces.scratch import ScratchCNN
    from tuning.data.pipeline import to_dataset
    from tuning.data.sources import load_search_data

    data = load_search_data("synthetic", seed=args.seed)
    train = to_dataset(data.train, 128, shuffle=True, seed=args.seed)
    validation = to_dataset(data.validation, 512)

    keras.utils.set_random_seed(args.seed)
    hp = fixed_hyperparameters(SEED_PRESETS["scratch"])
    linear = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(100, "softmax"),
        ]
    )
    models = {
        "linear_on_pixels": compile_classifier(linear, 1e-3),
        "seed_cnn": ScratchCNN().build(hp),
    }
    results = {}
    for name, model in models.items():
        start = time.perf_counter()
        history = model.fit(train, validation_data=validation, epochs=args.epochs, verbose=0)
        results[name] = {
            "val_accuracy_per_epoch": [round(v, 4) for v in history.history["val_accuracy"]],
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(f"{name}: val_accuracy by epoch {results[name]['val_accuracy_per_epoch']}")

    save_result(
        "synthetic-difficulty",
        {
            "command": f"python -m benchmarks.synthetic_difficulty --epochs {args.epochs}",
            "data": data.describe(),
            "seed": args.seed,
            "epochs": args.epochs,
            "chance": 0.01,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
