"""Pieces the search spaces share: the classifier head, compilation, and two-phase training."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import with_backbone

NUM_CLASSES = 100


class BackboneHyperModel(kt.HyperModel):
    """A HyperModel over a frozen backbone that can train on its cached activations.

    `backbone` names one of `backbones.BACKBONES` (VGG-16 by default).
    Without `features`, models take images and run the backbone in every step, as plain
    keras-tuner does. With `features` (an object with `backbone`, `input_size`, `shape(layer)` and
    `dataset(layer, split, flip)`; `tuning.features.FeatureCache` is one), `build` makes models
    that take the backbone's activations and `fit` reads them itself: call it without `x` or
    `validation_data`. Either way `image_model` gives the trained model as one taking images.
    """

    def __init__(self, weights: str = "imagenet", input_size: int = 32, features=None,
                 backbone: str = "vgg16", **kwargs):
        super().__init__(**kwargs)
        self.weights, self.input_size, self.features = weights, input_size, features
        self.backbone = backbone

    def cached_layers(self) -> tuple[str, ...]:
        """The backbone layers whose activations this HyperModel's trials train from."""
        raise NotImplementedError

    def image_model(self, model: keras.Model) -> keras.Model:
        ready_to_save(model)
        if self.features is None:
            return model
        return with_backbone(model, self.features.backbone, self.input_size, model.name)

    def cached_data(self, layer: str, flip: bool, args, kwargs) -> dict:
        """`fit` arguments reading activations at `layer` (train views flipped at random if `flip`)."""
        if args or kwargs.get("validation_data") is not None:
            raise ValueError("A HyperModel on cached features reads its own data: call `fit` "
                             "without `x` or `validation_data`.")
        return {"x": self.features.dataset(layer, "train", flip),
                "validation_data": self.features.dataset(layer, "validation")}


def classifier_head(x, units: int, dropout: float, dense_layers: int = 1):
    """Dense -> ReLU -> Dropout, `dense_layers` times, then the 100-way softmax."""
    for _ in range(dense_layers):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    return layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)


def ready_to_save(model: keras.Model) -> keras.Model:
    """Builds any optimizer of `model` or its sub-models that never stepped (e.g. compiled for a
    phase that did not run), so that the saved file reloads without Keras's warning about
    skipping its variables."""
    for part in [model, *(layer for layer in model.layers if isinstance(layer, keras.Model))]:
        optimizer = getattr(part, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(part.trainable_variables)
    return model


def compile_classifier(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam on sparse cross-entropy, tracking accuracy and top-5 accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    return model


def fit_in_phases(model, phases, *args, epochs, initial_epoch=0, callbacks=(), **kwargs):
    """Trains `model` through consecutive phases as one training session.

    Each phase is `(first_epoch, prepare)`: from `first_epoch` on, training runs after
    `fitted, overrides = prepare()`, which may change trainable layers and recompile; `fitted` is
    the model to fit (`model`, or a part of it such as its head) and `overrides` replaces `fit`
    arguments (e.g. `x` and `validation_data` read from a feature cache). Which phase an epoch
    belongs to depends only on its index, so a trial resumed or promoted at `initial_epoch`
    continues in the right phase. Callbacks see one session of `model`: `on_train_begin` once
    before the first phase run, `on_train_end` once after the last (TensorBoard's HParams callback
    allows one session only).

    Returns:
        A `History` whose `history` spans every phase run.
    """
    bounds = [start for start, _ in phases[1:]] + [epochs]
    runs = [(max(start, initial_epoch), min(end, epochs), prepare)
            for (start, prepare), end in zip(phases, bounds)]
    runs = [run for run in runs if run[0] < run[1]]
    merged = None
    for i, (start, end, prepare) in enumerate(runs):
        fitted, overrides = prepare()
        views = [_SessionPart(cb, model, first=i == 0, last=i == len(runs) - 1)
                 for cb in callbacks]
        history = fitted.fit(*([] if "x" in overrides else args), epochs=end, initial_epoch=start,
                             callbacks=views, **{**kwargs, **overrides})
        if merged is None:
            merged = history
        else:
            merged.epoch += history.epoch
            for key, values in history.history.items():
                merged.history.setdefault(key, []).extend(values)
    return merged


class _SessionPart(keras.callbacks.Callback):
    """Shows a callback one `fit` call as part of a longer session of `session` (`fit_in_phases`).

    The callback always sees `session`, even while a part of it is fitted, so checkpoints and
    restored weights cover the whole model; a stop it requests stops the part being fitted.
    """

    _BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                    "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                    "on_predict_batch_begin", "on_predict_batch_end")

    def __init__(self, inner, session, first: bool, last: bool):
        super().__init__()
        self.inner, self.session, self.first, self.last = inner, session, first, last
        # Forward batch hooks only where the callback has them: Keras dispatches batches
        # asynchronously only while every callback's batch hooks are the defaults.
        for name in self._BATCH_HOOKS:
            if not getattr(getattr(inner, name), "_is_default", False):  # as Keras tells
                setattr(self, name, getattr(inner, name))

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(self.session)

    def set_params(self, params):
        super().set_params(params)
        self.inner.set_params(params)

    def on_train_begin(self, logs=None):
        self.session.stop_training = False
        if self.first:
            self.inner.on_train_begin(logs)

    def on_train_end(self, logs=None):
        if self.last:
            self.inner.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.on_epoch_end(epoch, logs)
        if self.session.stop_training:
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self.inner.on_test_begin(logs)

    def on_test_end(self, logs=None):
        self.inner.on_test_end(logs)
