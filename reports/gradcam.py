"""Grad-CAM (Selvaraju et al., 2017): where in a picture a model looked for the class it predicted.

The heatmap of class c over a feature map A is ReLU(sum_k w_k A_k), with w_k the mean over
positions of d(score_c)/d(A_k), score_c the class's score before the softmax, as in the paper:
the softmax probability's gradient vanishes as the model grows confident (at float32's 1.0 it is
exactly 0), which would leave a confident prediction a blank map. Which map: the last one of
side 4 to 16 in the model (nested
backbones included, pooling skipped). At CIFAR's 32x32, VGG-16's last convolutions see 2x2 maps
and every backbone ends at 1x1, whose heatmaps would be 4 squares or one; with
`--input-size 224` the last convolution layer's 14x14 (or 7x7) map is the one used, as in the
paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES = (4, 16)


@dataclass(frozen=True)
class GradCam:
    heatmaps: np.ndarray  # [N, 32, 32] in [0, 1]
    predicted: np.ndarray  # [N] class explained (the model's top class)
    confidence: np.ndarray  # [N]
    layer: str  # the feature map's layer


def feature_map_layer(model):
    """The last layer (searching nested models in call order) whose output is a 4-16 side map;
    pooling layers only shrink the map before them, so that map is preferred."""
    import keras

    skipped = (
        keras.Model,
        keras.layers.InputLayer,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
    )
    found = None
    for layer in _layers_in_order(model):
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if isinstance(layer, skipped) or shape is None or len(shape) != 4:
            continue
        if SIDES[0] <= min(shape[1], shape[2]) <= SIDES[1]:
            found = layer
    if found is None:
        raise ValueError(f"{model.name} has no feature map of side {SIDES[0]}-{SIDES[1]}")
    return found


def grad_cam(model, images: np.ndarray) -> GradCam:
    """Heatmaps of the top class of each of `images` (0-255 RGB, [N, 32, 32, 3]) under `model`.

    Records the feature map by wrapping its layer's `call` for one forward pass under a
    gradient tape, which reaches layers inside nested backbones as well as top-level ones.
    """
    import keras
    import tensorflow as tf

    layer, output = feature_map_layer(model), softmax_layer(model)
    seen = {}
    original = layer.call

    def recorded(*args, **kwargs):
        seen["map"] = original(*args, **kwargs)
        tape.watch(seen["map"])
        return seen["map"]

    layer.call = recorded
    output.activation = keras.activations.linear  # the model gives class scores, not probabilities
    try:
        with tf.GradientTape() as tape:
            logits = model(tf.constant(images, tf.float32), training=False)
            predicted = tf.argmax(logits, axis=1)
            score = tf.gather(logits, predicted, batch_dims=1)
        gradients = tape.gradient(score, seen["map"])
    finally:
        del layer.call  # back to the class's own method
        output.activation = keras.activations.softmax
    probabilities = tf.nn.softmax(logits)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * seen["map"], axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    cam /= np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)
    return GradCam(cam, predicted.numpy(), tf.reduce_max(probabilities, axis=1).numpy(), layer.name)


def softmax_layer(model):
    """The last layer (nested models searched) ending in a softmax: the classifier output."""
    import keras

    found = [
        layer
        for layer in _layers_in_order(model)
        if getattr(layer, "activation", None) is keras.activations.softmax
    ]
    if not found:
        raise ValueError(f"{model.name} has no softmax output layer")
    return found[-1]


def _layers_in_order(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers_in_order(layer)
