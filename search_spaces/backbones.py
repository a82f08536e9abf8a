"""VGG-16 as a backbone: ImageNet weights from Keras, a local file, or none; its own preprocessing."""

from __future__ import annotations

import warnings

import keras
from keras import layers, ops

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


@keras.saving.register_keras_serializable(package="cifar_tune")
class SmallMapConv2D(layers.Conv2D):
    """A 3x3, stride-1, "same" Conv2D computed as one matrix product on maps of at most 2x2.

    On such a map every output position sees every input position through some tap of the kernel,
    so the convolution is a dense layer from (H*W*Cin) to (H*W*Cout) whose matrix is assembled
    from the kernel's taps. oneDNN's convolution spends most of its work on the zero padding
    there: training VGG-16's block5 on the 2x2 maps of 32x32 inputs measured 73 ms a step
    (batch 128) as convolutions and 37 ms as matrix products. Same weights, same results to float
    rounding; any other map size or configuration runs the ordinary convolution.
    """

    def convolution_op(self, inputs, kernel):
        height, width = inputs.shape[1], inputs.shape[2]
        if not (self._dense_form_fits() and height and width and height <= 2 and width <= 2):
            return super().convolution_op(inputs, kernel)
        positions = [(i, j) for i in range(height) for j in range(width)]
        taps = [[(pi - oi + 1) * 3 + (pj - oj + 1) for oi, oj in positions]
                for pi, pj in positions]
        cin, cout = kernel.shape[2], kernel.shape[3]
        matrix = ops.take(ops.reshape(kernel, (9, cin, cout)), taps, axis=0)  # [in, out, Cin, Cout]
        matrix = ops.reshape(ops.transpose(matrix, (0, 2, 1, 3)),
                             (len(positions) * cin, len(positions) * cout))
        flat = ops.reshape(inputs, (-1, len(positions) * cin))
        return ops.reshape(ops.matmul(flat, matrix), (-1, height, width, cout))

    def _dense_form_fits(self) -> bool:
        return (tuple(self.kernel_size) == (3, 3) and tuple(self.strides) == (1, 1)
                and self.padding == "same" and tuple(self.dilation_rate) == (1, 1)
                and self.groups == 1 and self.data_format == "channels_last")


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
    """Resizes (when `input_size` is not 32), preprocesses and runs a new frozen VGG-16 base.

    The base is called with `training=False` so that any normalisation inside it stays in inference
    mode when its layers are unfrozen later (keras-io's transfer-learning guide).
    """
    base = vgg16_base(weights, input_size)
    return base(_preprocess(inputs, input_size), training=False)


def cut_layer(unfrozen_blocks: int) -> str:
    """The layer below the top `unfrozen_blocks` blocks (0: the base's output, `TOP_LAYER`)."""
    return f"block{VGG_BLOCKS - unfrozen_blocks}_pool"


TOP_LAYER = cut_layer(0)


def vgg16_extractor(base: keras.Model, input_size: int, names: list[str]) -> keras.Model:
    """Images -> the frozen `base`'s activations at the layers `names`, in that order."""
    inputs = keras.Input((32, 32, 3), name="image")
    found, x = {}, _preprocess(inputs, input_size)
    for layer in base.layers[1:]:
        x = layer(x, training=False)
        if layer.name in names:
            found[layer.name] = x
        if len(found) == len(names):
            break
    return keras.Model(inputs, [found[name] for name in names], name="vgg16_extractor")


def with_backbone(model: keras.Model, base: keras.Model, input_size: int, name: str):
    """The image model: `base` (frozen, shared) up to `model`'s input layer, then `model`.

    `model` takes activations at one layer of `base` (its input layer carries that layer's name),
    as trained on cached features; the result takes raw 32x32 images like an uncached model.
    """
    cut = model.layers[0].name
    inputs = keras.Input((32, 32, 3), name="image")
    x = _preprocess(inputs, input_size)
    for layer in base.layers[1:]:
        x = layer(x, training=False)
        if layer.name == cut:
            break
    return keras.Model(inputs, model(x), name=name)


def vgg16_top(base: keras.Model, cut: str) -> keras.Model:
    """New, frozen copies of `base`'s layers above `cut`, with its weights; named "vgg16".

    Convolutions on maps of 2x2 or less become `SmallMapConv2D` (the same function, faster).
    """
    inputs = keras.Input(base.get_layer(cut).output.shape[1:], name=cut)
    above = base.layers[[layer.name for layer in base.layers].index(cut) + 1:]
    x = inputs
    for layer in above:
        small = isinstance(layer, layers.Conv2D) and max(x.shape[1], x.shape[2]) <= 2
        copy = (SmallMapConv2D if small else layer.__class__).from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    top = keras.Model(inputs, x, name="vgg16")
    top.trainable = False
    return top


def _preprocess(inputs, input_size: int):
    x = inputs
    if input_size != inputs.shape[1]:
        x = layers.Resizing(input_size, input_size, name="upscale")(x)
    return VGG16Preprocess(name="vgg16_preprocess")(x)


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
