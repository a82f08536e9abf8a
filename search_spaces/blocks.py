"""Pieces the search spaces share: the classifier head, compilation, and two-phase training."""

from __future__ import annotations

import keras
from keras import layers

NUM_CLASSES = 100


def classifier_head(x, units: int, dropout: float, dense_layers: int = 1):
    """Dense -> ReLU -> Dropout, `dense_layers` times, then the 100-way softmax."""
    for _ in range(dense_layers):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    return layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)


def compile_classifier(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam on sparse cross-entropy, tracking accuracy and top-5 accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    return model


def fit_in_phases(model, phases, *args, epochs, initial_epoch=0, callbacks=(), **kwargs):
    """Trains through consecutive phases as one training session.

    Each phase is `(first_epoch, prepare)`: from `first_epoch` on, training runs after
    `prepare(model)` (which may change trainable layers and recompile). Which phase an epoch belongs
    to depends only on its index, so a trial resumed or promoted at `initial_epoch` continues in the
    right phase. Callbacks see one session: `on_train_begin` once before the first phase run,
    `on_train_end` once after the last (TensorBoard's HParams callback allows one session only).

    Returns:
        A `History` whose `history` spans every phase run.
    """
    bounds = [start for start, _ in phases[1:]] + [epochs]
    runs = [(max(start, initial_epoch), min(end, epochs), prepare)
            for (start, prepare), end in zip(phases, bounds)]
    runs = [run for run in runs if run[0] < run[1]]
    merged = None
    for i, (start, end, prepare) in enumerate(runs):
        prepare(model)
        views = [_SessionPart(cb, first=i == 0, last=i == len(runs) - 1) for cb in callbacks]
        history = model.fit(*args, epochs=end, initial_epoch=start, callbacks=views, **kwargs)
        if merged is None:
            merged = history
        else:
            merged.epoch += history.epoch
            for key, values in history.history.items():
                merged.history.setdefault(key, []).extend(values)
    return merged


class _SessionPart(keras.callbacks.Callback):
    """Shows a callback one `fit` call as part of a longer session (see `fit_in_phases`)."""

    _BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                    "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                    "on_predict_batch_begin", "on_predict_batch_end")

    def __init__(self, inner, first: bool, last: bool):
        super().__init__()
        self.inner, self.first, self.last = inner, first, last
        # Forward batch hooks only where the callback has them: Keras dispatches batches
        # asynchronously only while every callback's batch hooks are the defaults.
        for name in self._BATCH_HOOKS:
            if not getattr(getattr(inner, name), "_is_default", False):  # as Keras tells
                setattr(self, name, getattr(inner, name))

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.inner.set_params(params)

    def on_train_begin(self, logs=None):
        if self.first:
            self.inner.on_train_begin(logs)

    def on_train_end(self, logs=None):
        if self.last:
            self.inner.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.on_epoch_end(epoch, logs)

    def on_test_begin(self, logs=None):
        self.inner.on_test_begin(logs)

    def on_test_end(self, logs=None):
        self.inner.on_test_end(logs)
