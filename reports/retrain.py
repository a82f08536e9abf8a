"""Retrains one configuration at the full budget, keeping the best epoch by val accuracy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tuning.config import SearchConfig
from tuning.data.sources import SearchData


@dataclass
class Retrained:
    model: object  # keras.Model with its best-by-val-accuracy weights restored
    history: dict  # per-epoch metrics, train and validation
    seconds: float
    epochs: int
    seed: int


def retrain(
    config: SearchConfig,
    values: dict,
    data: SearchData,
    backbone,
    epochs: int,
    seed: int,
    fixed_epochs: int | None = None,
) -> Retrained:
    """Builds `values` with the search's own HyperModel and trains it on `data`'s training split.

    Trains as the search did: on the search's feature cache when it used one (`backbone` from
    `tuning.data.features.load_backbone`), in its precision, a learning-rate schedule spanning
    `epochs`. By default early
    stopping watches val accuracy with the search's patience and restores the best epoch's weights
    at the end (Keras keeps them in memory), so the model tested is the one validation chose.
    With `fixed_epochs` (training on train + validation, `with_validation`), validation is no
    longer held out: it trains exactly that many epochs, keeps the last weights and drops the
    validation scores from the history. The test split is not touched here.
    """
    import keras

    from search_spaces import dtype_policy, fixed_hyperparameters
    from tuning.data.features import hypermodel_for
    from tuning.data.pipeline import fit_data
    from tuning.host.precision import policy_of

    hypermodel = hypermodel_for(config, data, backbone, seed=seed, epochs=epochs)
    keras.utils.set_random_seed(seed)
    hp = fixed_hyperparameters(values)
    with dtype_policy(policy_of(config)):
        model = hypermodel.build(hp)
    callbacks = []
    if fixed_epochs is None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                "val_accuracy", patience=config.patience, mode="max", restore_best_weights=True
            )
        )
    args, kwargs = fit_data(hypermodel, data, config.batch_size, seed)
    start = time.perf_counter()
    history = hypermodel.fit(
        hp,
        model,
        *args,
        **kwargs,
        epochs=fixed_epochs or epochs,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    seconds = time.perf_counter() - start
    scores = dict(history.history)
    if fixed_epochs is not None:
        scores = {k: v for k, v in scores.items() if not k.startswith("val_")}
    return Retrained(
        hypermodel.image_model(model),
        scores,
        round(seconds, 1),
        len(history.epoch),
        seed,
    )


def with_validation(data: SearchData) -> SearchData:
    """`data` with its validation images added to the training split (kept as validation too,
    for code that needs one; its scores are then no held-out measure)."""
    import numpy as np

    from tuning.data.sources import Split

    train, validation = data.train, data.validation
    merged = Split(
        *(
            np.concatenate([getattr(train, f), getattr(validation, f)])
            for f in ("images", "fine", "coarse")
        )
    )
    return SearchData(merged, validation, data.source, data.names)


def final_epochs(trained_epochs: int | None, best_epochs: int | None, budget: int) -> int:
    """The epochs a final model trains on train + validation: those up to the search's best
    validation score when the trial ran the whole `budget` (a scheduled rate then follows the
    same curve and stops where the search peaked), else the whole budget."""
    if best_epochs and trained_epochs and trained_epochs >= budget:
        return min(best_epochs, budget)
    return budget
