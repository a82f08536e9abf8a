"""VGG-16 as a backbone: ImageNet weights from Keras, a local file, or none; its own preprocessing."""

from __future__ import annotations

import warnings

import keras
from keras import layers

VGG_BLOCKS = 5


class BackboneError(ValueError):
    """VGG-16 weights that cannot be had or do not fit (a usage error, not a failed trial)."""


@keras.saving.register_keras_serializable(package="cifar_tune")
class VGG16Preprocess(layers.Layer):
    """`keras.applications.vgg16.preprocess_input` as a layer: RGB 0-255 -> BGR, mean-centred.

    A layer rather than a `Lambda` so that saved models reload with `safe_mode=True`.
    """

    def call(self, inputs):
        return keras.applications.vgg16.preprocess_input(inputs)


def vgg16_base(weights: str, input_size: int) -> keras.Model:
    """VGG-16 without its top, frozen.

    Args:
        weights: "imagenet" (Keras download, cached in ~/.keras/models), "none" (random), or a path
            to a VGG-16 no-top weights file.
        input_size: side of the square input.
    """
    shape = (input_size, input_size, 3)
    try:
        if weights == "imagenet":
            base = keras.applications.VGG16(include_top=False, weights="imagenet",
                                             input_shape=shape)
        else:
            base = keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
            if weights != "none":
                with warnings.catch_warnings():  # a mismatch raises below; its warnings repeat it
                    warnings.simplefilter("ignore")
                    base.load_weights(weights)
    except Exception as error:  # download failures are bare Exceptions; bad files vary
        raise BackboneError(_explain(weights, error)) from None
    base.trainable = False
    return base


def vgg16_features(inputs, weights: str, input_size: int):
    """Resizes (when `input_size` is not 32), preprocesses and runs the frozen VGG-16 base.

    The base is called with `training=False` so that any normalisation inside it stays in inference
    mode when its layers are unfrozen later (keras-io's transfer-learning guide).
    """
    x = inputs
    if input_size != inputs.shape[1]:
        x = layers.Resizing(input_size, input_size, name="upscale")(x)
    x = VGG16Preprocess(name="vgg16_preprocess")(x)
    return vgg16_base(weights, input_size)(x, training=False)


def unfreeze_top_blocks(base: keras.Model, blocks: int) -> None:
    """Makes the top `blocks` of VGG-16's five convolution blocks trainable (0 freezes all)."""
    if not 0 <= blocks <= VGG_BLOCKS:
        raise ValueError(f"Expected `blocks` in [0, {VGG_BLOCKS}]. Received: {blocks}")
    trainable = {f"block{VGG_BLOCKS - i}" for i in range(blocks)}
    base.trainable = blocks > 0
    for layer in base.layers:
        layer.trainable = layer.name.split("_")[0] in trainable


def _explain(weights: str, error: Exception) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if weights == "imagenet":
        return (f"could not download the VGG-16 ImageNet weights ({detail}); offline? use "
                f"--weights PATH (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) or --weights none")
    return (f"--weights {weights}: not VGG-16 no-top weights that fit this model "
            f"({type(error).__name__}: {detail[:200]})")
