"""Retrains one configuration at the full budget, keeping the best epoch by val accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tuning.config import SearchConfig
from tuning.data import SearchData


@dataclass
class Retrained:
    model: object  # keras.Model with its best-by-val-accuracy weights restored
    history: dict  # per-epoch metrics, train and validation
    seconds: float
    epochs: int
    seed: int


def retrain(
    config: SearchConfig, values: dict, data: SearchData, backbone, epochs: int, seed: int
) -> Retrained:
    """Builds `values` with the search's own HyperModel and trains it on the search's split.

    Trains as the search did: on the search's feature cache when it used one (`backbone` from
    `tuning.features.load_backbone`). Early stopping watches val accuracy with the search's
    patience and restores the best epoch's weights at the end (Keras keeps them in memory), so the
    model tested is the one validation chose. The test split is not touched here.
    """
    import keras

    from search_spaces import fixed_hyperparameters
    from tuning.features import hypermodel_for
    from tuning.pipeline import fit_data

    hypermodel = hypermodel_for(config, data, backbone, seed=seed, epochs=epochs)
    keras.utils.set_random_seed(seed)
    hp = fixed_hyperparameters(values)
    model = hypermodel.build(hp)
    stop = keras.callbacks.EarlyStopping(
        "val_accuracy", patience=config.patience, mode="max", restore_best_weights=True
    )
    args, kwargs = fit_data(hypermodel, data, config.batch_size, seed)
    start = time.perf_counter()
    history = hypermodel.fit(
        hp, model, *args, **kwargs, epochs=epochs, callbacks=[stop], verbose=0, shuffle=False
    )
    seconds = time.perf_counter() - start
    return Retrained(
        hypermodel.image_model(model),
        dict(history.history),
        round(seconds, 1),
        len(history.epoch),
        seed,
    )
