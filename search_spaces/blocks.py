"""Pieces the search spaces share: the backbone HyperModel, the classifier head, compilation."""

from __future__ import annotations

import contextlib
import json

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import with_backbone
from search_spaces.training import SmoothedCrossentropy, make_optimizer

NUM_CLASSES = 100


class BackboneHyperModel(kt.HyperModel):
    """A HyperModel over a frozen backbone that can train on its cached activations.

    `backbone` names one of `backbones.BACKBONES` (VGG-16 by default), `alpha` its width.
    Without `features`, models take images and run the backbone in every step, as plain
    keras-tuner does. With `features` (an object with `backbone`, `input_size`, `shape(layer)` and
    `dataset(layer, split, flip)`; `tuning.data.features.FeatureCache` is one), `build` makes models
    that take the backbone's activations and `fit` reads them itself: call it without `x` or
    `validation_data`. Either way `image_model` gives the trained model as one taking images.
    """

    def __init__(
        self,
        weights: str = "imagenet",
        input_size: int = 32,
        features=None,
        backbone: str = "vgg16",
        alpha: float = 1.0,
        classes: int = NUM_CLASSES,
        image_size: int = 32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weights, self.input_size, self.features = weights, input_size, features
        self.backbone, self.alpha = backbone, alpha
        self.classes, self.image_size = classes, image_size

    def cached_layers(self) -> tuple[str, ...]:
        """The backbone layers whose activations this HyperModel's trials train from."""
        raise NotImplementedError

    def image_model(self, model: keras.Model) -> keras.Model:
        """The trained model as one taking images, computing in float32."""
        with dtype_policy("float32"):
            if self.features is None:
                return float32_compiled(model)
            return with_backbone(
                float32_copy(model),
                self.features.backbone,
                self.input_size,
                model.name,
                self.image_size,
            )

    def cached_data(self, layer: str, flip: bool, args, kwargs) -> dict:
        """`fit` arguments reading activations at `layer` (flipped at random if `flip`)."""
        if args or kwargs.get("validation_data") is not None:
            raise ValueError(
                "A HyperModel on cached features reads its own data: call `fit` "
                "without `x` or `validation_data`."
            )
        return {
            "x": self.features.dataset(layer, "train", flip),
            "validation_data": self.features.dataset(layer, "validation"),
        }


def classifier_head(x, units: int, dropout: float, dense_layers: int = 1, classes=NUM_CLASSES):
    """Dense -> ReLU -> Dropout, `dense_layers` times, then the softmax over `classes`."""
    for _ in range(dense_layers):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    return predictions(x, classes)


def predictions(x, classes: int = NUM_CLASSES):
    """The softmax over `classes`, in float32 under any precision (so are the loss and the
    scores)."""
    return layers.Dense(classes, activation="softmax", name="predictions", dtype="float32")(x)


def compile_classifier(
    model: keras.Model,
    learning_rate: float,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
) -> keras.Model:
    """Sparse cross-entropy (label-smoothed if asked), tracking accuracy and top-5 accuracy.

    `optimizer` is a name of `training.OPTIMIZERS` (Adam by default), or an optimizer to keep.
    The optimizer is built here, not at the first step: Keras saves its state (moments, step
    count) with the weights but loads it only into a built optimizer. So a trial Hyperband
    promotes (rebuilt, then its parent's checkpoint loaded) goes on with its parent's optimizer
    state instead of a fresh one, and a saved model reloads without Keras's warning.
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, learning_rate, weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=(
            SmoothedCrossentropy(label_smoothing)
            if label_smoothing
            else "sparse_categorical_crossentropy"
        ),
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
    )
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return model


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's global dtype policy (what new layers compute in) set to `name` inside, restored
    after."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` itself when all its layers compute in float32, else an uncompiled float32 copy
    with the same weights (mixed precision keeps the variables in float32: nothing is rounded).

    Models are saved this way so that they load and predict alike on machines without a fast
    path for the precision they were trained in.
    """
    if all(layer.dtype_policy.name == "float32" for layer in _all_layers(model)):
        return model
    config = json.loads(json.dumps(model.get_config()), object_hook=_float32_policy)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def float32_compiled(model: keras.Model) -> keras.Model:
    """`model` in float32 (`float32_copy`) compiled with plain sparse cross-entropy, so that the
    saved file loads without our code. A float32 model keeps its optimizer and its state; a copy
    gets a fresh optimizer of the same kind and settings (the old one's state belongs to the
    old variables)."""
    copy, optimizer = float32_copy(model), model.optimizer
    if copy is not model:
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a float16 loss scaler's
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
    return compile_classifier(copy, 0.0, optimizer=optimizer)


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _float32_policy(entry: dict) -> dict:
    if entry.get("class_name") == "DTypePolicy" and "name" in entry.get("config", {}):
        return {**entry, "config": {**entry["config"], "name": "float32"}}
    return entry
