"""The stand-in must give a search something to find: learnable, but far from trivial."""

import keras
import pytest

from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters
from search_spaces.blocks import compile_classifier
from tuning.data.pipeline import to_dataset
from tuning.data.sources import load_search_data


@pytest.mark.slow
def test_seed_cnn_beats_a_linear_model_and_stays_far_from_perfect():
    data = load_search_data("synthetic", train_size=10_000, seed=1)
    train = to_dataset(data.train, 128, shuffle=True, seed=1)
    validation = to_dataset(data.validation, 512)
    keras.utils.set_random_seed(1)
    cnn = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    linear = compile_classifier(
        keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Flatten(),
                keras.layers.Dense(100, activation="softmax"),
            ]
        ),
        1e-3,
    )
    scores = {}
    for name, model in (("cnn", cnn), ("linear", linear)):
        history = model.fit(train, validation_data=validation, epochs=6, verbose=0, shuffle=False)
        scores[name] = max(history.history["val_accuracy"])
    assert 0.05 < scores["cnn"] < 0.9, scores
    assert scores["cnn"] > scores["linear"] + 0.05, scores
