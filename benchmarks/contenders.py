"""The contenders of `benchmarks.search_quality` that are not cifar-tune's command line.

    python contenders.py NAME FOLDER SEED DATA.npz REPO MAX_EPOCHS FACTOR

Run as a script, also by another venv's Python (AutoKeras's): it needs only numpy, Keras and the
contender's own package, reads the split the orchestrator saved (`allow_pickle=False`), and
leaves its results in FOLDER (keras-tuner's `trial.json` files, or Keras's `epochs.csv` log).
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np


def main(
    name: str, folder: str, seed: str, data: str, repo: str, max_epochs: str, factor: str
) -> None:
    sys.path.insert(0, repo)
    with np.load(data, allow_pickle=False) as arrays:
        x, y, x_val, y_val = (arrays[k] for k in ("x_train", "y_train", "x_val", "y_val"))
    keras.utils.set_random_seed(int(seed))
    if name == "hyperresnet":
        hyper_resnet(x, y, x_val, y_val, folder, int(seed), int(max_epochs), int(factor))
    elif name == "seed":
        seed_cnn(x, y, x_val, y_val, folder)
    elif name == "autokeras":
        import autokeras as ak

        classifier = ak.ImageClassifier(
            max_trials=10_000, directory=folder, project_name="autokeras", seed=int(seed)
        )
        classifier.fit(x, y, validation_data=(x_val, y_val), epochs=int(max_epochs), verbose=0)
    else:
        raise SystemExit(f"unknown contender {name!r}")


def hyper_resnet(x, y, x_val, y_val, folder: str, seed: int, max_epochs: int, factor: int) -> None:
    """keras-tuner's HyperResNet under its Hyperband, as its docs write it (pixels scaled to
    [0, 1], one-hot labels: HyperResNet compiles with categorical cross-entropy)."""
    import keras_tuner as kt

    tuner = kt.Hyperband(
        kt.applications.HyperResNet(input_shape=(32, 32, 3), classes=100),
        objective="val_accuracy",
        max_epochs=max_epochs,
        factor=factor,
        seed=seed,
        directory=folder,
        project_name="hyperresnet",
    )
    tuner.search(
        x / 255.0,
        keras.utils.to_categorical(y, 100),
        verbose=0,
        validation_data=(x_val / 255.0, keras.utils.to_categorical(y_val, 100)),
    )


def seed_cnn(x, y, x_val, y_val, folder: str) -> None:
    """The seed preset, one fit for as long as the budget lets it run, logging every epoch."""
    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters

    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=100_000,
        batch_size=128,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(Path(folder) / "epochs.csv"))],
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
