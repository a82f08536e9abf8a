"""The contenders of `benchmarks.search_quality` that are not cifar-tune's command line.

    python contenders.py NAME FOLDER SEED DATA.npz REPO MAX_EPOCHS FACTOR [evaluate]

Run as a script, also by another venv's Python (AutoKeras's): it needs only numpy, Keras and the
contender's own package, reads the split the orchestrator saved (`allow_pickle=False`), and
leaves its results in FOLDER (keras-tuner's `trial.json` files, or Keras's `epochs.csv` log and
the model of its last epoch). With `evaluate`, after the search was stopped, it loads the model
the contender hands its user (keras-tuner's best model, the seed run's last epoch, AutoKeras's
exported model) and prints its accuracy on the test images as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np

LAST_EPOCH = "last_epoch.keras"


def main(
    name: str,
    folder: str,
    seed: str,
    data: str,
    repo: str,
    max_epochs: str,
    factor: str,
    evaluate: str = "",
) -> None:
    sys.path.insert(0, repo)
    with np.load(data, allow_pickle=False) as arrays:
        x, y, x_val, y_val = (arrays[k] for k in ("x_train", "y_train", "x_val", "y_val"))
        x_test, y_test = arrays["x_test"], arrays["y_test"]
    keras.utils.set_random_seed(int(seed))
    if evaluate:
        if name == "autokeras":
            predicted = autokeras_predictions(folder, int(seed), x, y, x_test)
        else:
            model, scale = handed_model(name, folder, int(seed), int(max_epochs), int(factor))
            probabilities = model.predict(x_test / scale, batch_size=256, verbose=0)
            predicted = np.argmax(probabilities, axis=1)
        accuracy = float(np.mean(predicted.ravel().astype(int) == y_test.ravel()))
        print(json.dumps({"test_accuracy": accuracy}))
    elif name == "hyperresnet":
        hyper_resnet(x, y, x_val, y_val, folder, int(seed), int(max_epochs), int(factor))
    elif name == "seed":
        seed_cnn(x, y, x_val, y_val, folder)
    elif name == "autokeras":
        classifier = _autokeras(folder, int(seed))
        classifier.fit(x, y, validation_data=(x_val, y_val), epochs=int(max_epochs), verbose=0)
    else:
        raise SystemExit(f"unknown contender {name!r}")


def handed_model(name: str, folder: str, seed: int, max_epochs: int, factor: int):
    """(the model the stopped contender hands its user, the scale its inputs are divided by)
    for the keras-tuner contenders."""
    if name == "hyperresnet":
        return _hyper_resnet_tuner(folder, seed, max_epochs, factor).get_best_models(1)[0], 255.0
    if name == "seed":
        import search_spaces  # noqa: F401  (registers the layers the model is made of)

        return keras.saving.load_model(Path(folder) / LAST_EPOCH, safe_mode=True), 1.0
    raise SystemExit(f"unknown contender {name!r}")


def autokeras_predictions(folder: str, seed: int, x, y, x_test):
    """The labels AutoKeras's best trial predicts for `x_test`, as its `predict` would give them.

    A stopped search has no exported model yet, and its graph learns its input shapes from the
    data: so the classifier first analyses a slice of the training data as its `fit` does, then
    loads the best trial's model and that trial's pipeline (its label decoding).
    """
    from autokeras import pipeline as pipeline_module

    classifier = _autokeras(folder, seed)
    dataset, _ = classifier._check_and_adapt(x=x[:512], y=y[:512], validation_data=None)
    classifier._analyze_data(dataset)
    classifier._build_hyper_pipeline()
    tuner = classifier.tuner
    best = tuner.oracle.get_best_trials(1)[0]
    tuner._prepare_model_build(best.hyperparameters, x=dataset[0], y=dataset[1])
    model = tuner.load_model(best)
    pipeline = pipeline_module.load_pipeline(tuner._pipeline_path(best.trial_id))
    inputs = pipeline.transform_x(x_test)
    return np.asarray(pipeline.postprocess(model.predict(inputs, batch_size=256, verbose=0)))


def _hyper_resnet_tuner(folder: str, seed: int, max_epochs: int, factor: int):
    import keras_tuner as kt

    return kt.Hyperband(
        kt.applications.HyperResNet(input_shape=(32, 32, 3), classes=100),
        objective="val_accuracy",
        max_epochs=max_epochs,
        factor=factor,
        seed=seed,
        directory=folder,
        project_name="hyperresnet",
    )


def _autokeras(folder: str, seed: int):
    import autokeras as ak

    return ak.ImageClassifier(
        max_trials=10_000, directory=folder, project_name="autokeras", seed=seed
    )


def hyper_resnet(x, y, x_val, y_val, folder: str, seed: int, max_epochs: int, factor: int) -> None:
    """keras-tuner's HyperResNet under its Hyperband, as its docs write it (pixels scaled to
    [0, 1], one-hot labels: HyperResNet compiles with categorical cross-entropy)."""
    tuner = _hyper_resnet_tuner(folder, seed, max_epochs, factor)
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
        callbacks=[
            keras.callbacks.CSVLogger(str(Path(folder) / "epochs.csv")),
            keras.callbacks.ModelCheckpoint(str(Path(folder) / LAST_EPOCH)),
        ],
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
