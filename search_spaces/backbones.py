"""ImageNet backbones from Keras applications: weights from Keras, a local file, or none; each with
its own preprocessing and its own unit of unfreeze depth (VGG-16's blocks, the others' stages)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras
from keras import layers, ops


@dataclass(frozen=True)
class BackboneSpec:
    """What the search spaces need to know about one `keras.applications` backbone.

    Attributes:
        name: the `--backbone` value, and the name of the backbone's model inside ours.
        application: the `keras.applications` constructor.
        preprocess: `imagenet_utils.preprocess_input` mode ("caffe", "tf"), or "none" when the
            model normalises its inputs itself (EfficientNet).
        cuts: `cuts[n]` is the layer below the top `n` units (`cuts[0]`: the base's output). Each
            is a point every path through the network crosses, so the layers above it form a
            model of their own (what fine-tuning from cached activations trains).
        unit: what one unit of unfreeze depth is.
        weights_file: Keras's no-top ImageNet weights file, named in the offline message;
            "{alpha}" and "{rows}" stand for the width and the input size where Keras keeps
            one file for each (`weights_file_for`).
        widths: the widths (Keras's `alpha`) the backbone comes in with ImageNet weights.
    """

    name: str
    application: str
    preprocess: str
    cuts: tuple[str, ...]
    unit: str
    weights_file: str
    widths: tuple[float, ...] = (1.0,)

    def weights_file_for(self, alpha: float, input_size: int) -> str:
        """The file `weights="imagenet"` downloads: MobileNetV2 has one per width and per input
        size of 96, 128, 160, 192 or 224, and takes the 224 one for any other size."""
        rows = input_size if input_size in (96, 128, 160, 192, 224) else 224
        return self.weights_file.format(alpha=float(alpha), rows=rows)

    def describe(self, alpha: float) -> str:
        return self.name if len(self.widths) == 1 else f"{self.name} (alpha {float(alpha)})"


BACKBONES = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "vgg16",
            "VGG16",
            "caffe",
            ("block5_pool", "block4_pool", "block3_pool", "block2_pool"),
            "block",
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            "resnet50",
            "ResNet50",
            "caffe",
            ("conv5_block3_out", "conv4_block6_out", "conv3_block4_out", "conv2_block3_out"),
            "stage",
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            "efficientnetb0",
            "EfficientNetB0",
            "none",
            ("top_activation", "block5c_add", "block4c_add", "block3b_add"),
            "stage",
            "efficientnetb0_notop.h5",
        ),
        BackboneSpec(
            "mobilenetv2",
            "MobileNetV2",
            "tf",
            ("out_relu", "block_12_add", "block_5_add", "block_2_add"),
            "stage",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
            (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        ),
    )
}
MAX_UNFROZEN_UNITS = 3


class BackboneError(ValueError):
    """Backbone weights that cannot be had or do not fit (a usage error, not a failed trial)."""


@keras.saving.register_keras_serializable(package="cifar_tune")
class ImageNetPreprocess(layers.Layer):
    """`keras.applications.imagenet_utils.preprocess_input` as a layer, for 0-255 RGB images.

    mode "caffe" (VGG-16, ResNet-50): RGB -> BGR, mean-centred; "tf" (MobileNetV2): scaled to
    [-1, 1]; "none": unchanged. A layer rather than a `Lambda` so that saved models reload with
    `safe_mode=True`.
    """

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        if self.mode == "none":
            return inputs
        return keras.applications.imagenet_utils.preprocess_input(inputs, mode=self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="cifar_tune")
class VGG16Preprocess(ImageNetPreprocess):
    """VGG-16's preprocessing, under the name models saved by earlier versions carry."""


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
        taps = [[(pi - oi + 1) * 3 + (pj - oj + 1) for oi, oj in positions] for pi, pj in positions]
        cin, cout = kernel.shape[2], kernel.shape[3]
        matrix = ops.take(ops.reshape(kernel, (9, cin, cout)), taps, axis=0)  # [in, out, Cin, Cout]
        matrix = ops.reshape(
            ops.transpose(matrix, (0, 2, 1, 3)), (len(positions) * cin, len(positions) * cout)
        )
        flat = ops.reshape(inputs, (-1, len(positions) * cin))
        return ops.reshape(ops.matmul(flat, matrix), (-1, height, width, cout))

    def _dense_form_fits(self) -> bool:
        return (
            tuple(self.kernel_size) == (3, 3)
            and tuple(self.strides) == (1, 1)
            and self.padding == "same"
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.data_format == "channels_last"
        )


def load_base(backbone: str, weights: str, input_size: int, alpha: float = 1.0) -> keras.Model:
    """A backbone without its top, frozen, named `backbone`.

    Args:
        backbone: a key of `BACKBONES`.
        weights: "imagenet" (Keras download, cached in ~/.keras/models), "none" (random), or a path
            to the backbone's no-top weights file.
        input_size: side of the square input.
        alpha: the width, one of the backbone's `widths` (MobileNetV2's 0.35-1.4).
    """
    spec = BACKBONES[backbone]
    if alpha not in spec.widths:
        raise BackboneError(f"{backbone} comes in widths {list(spec.widths)}. Received: {alpha}")
    build = getattr(keras.applications, spec.application)
    width = {"alpha": alpha} if len(spec.widths) > 1 else {}
    shape = (input_size, input_size, 3)
    try:
        with warnings.catch_warnings():  # MobileNetV2 warns that its weights are for 224x224
            warnings.simplefilter("ignore")
            base = build(
                include_top=False,
                weights="imagenet" if weights == "imagenet" else None,
                input_shape=shape,
                name=backbone,
                **width,
            )
            if weights not in ("imagenet", "none"):
                base.load_weights(weights)  # a mismatch raises; its warnings repeat it
    except Exception as error:  # download failures are bare Exceptions; bad files vary
        raise BackboneError(_explain(spec, weights, alpha, input_size, error)) from None
    base.trainable = False
    return base


def base_features(inputs, backbone: str, weights: str, input_size: int, alpha: float = 1.0):
    """Resizes (when `input_size` is not the images' side), preprocesses and runs a new frozen
    base.

    The base is called with `training=False` so that its batch normalisation stays in inference
    mode when its layers are unfrozen later (keras-io's transfer-learning guide).
    """
    base = load_base(backbone, weights, input_size, alpha)
    return base(_preprocess(inputs, backbone, input_size), training=False)


def cut_layer(backbone: str, unfrozen_units: int) -> str:
    """The layer below the top `unfrozen_units` units (0: the base's output)."""
    return BACKBONES[backbone].cuts[unfrozen_units]


def top_layer(backbone: str) -> str:
    """The base's output layer: the feature map a head sits on."""
    return cut_layer(backbone, 0)


def extractor(
    base: keras.Model, input_size: int, names: list[str], image_size: int = 32
) -> keras.Model:
    """Images of `image_size` -> the frozen `base`'s activations at the layers `names`, in
    that order."""
    inside = keras.Model(base.inputs, [base.get_layer(name).output for name in names])
    inputs = keras.Input((image_size, image_size, 3), name="image")
    outputs = inside(_preprocess(inputs, base.name, input_size), training=False)
    return keras.Model(inputs, outputs, name=f"{base.name}_extractor")


def with_backbone(
    model: keras.Model, base: keras.Model, input_size: int, name: str, image_size: int = 32
):
    """The image model: `base` (frozen, shared) up to `model`'s input layer, then `model`.

    `model` takes activations at one layer of `base` (its input layer carries that layer's name),
    as trained on cached features; the result takes raw images of `image_size` like an uncached
    model.
    """
    below = keras.Model(
        base.inputs, base.get_layer(model.layers[0].name).output, name=f"{base.name}_below"
    )
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = below(_preprocess(inputs, base.name, input_size), training=False)
    return keras.Model(inputs, model(x), name=name)


def base_top(base: keras.Model, cut: str) -> keras.Model:
    """New, frozen copies of `base`'s layers above `cut`, with its weights, named as `base`,
    computing in the global dtype policy (the search's precision) whatever `base` computes in.

    3x3 convolutions on maps of 2x2 or less become `SmallMapConv2D` (the same function, faster).
    """

    def copy(layer):
        small = isinstance(layer, layers.Conv2D) and max(layer.output.shape[1:3]) <= 2
        config = {**layer.get_config(), "dtype": None}  # computing in the global policy
        return (SmallMapConv2D if small else layer.__class__).from_config(config)

    above = keras.Model(base.get_layer(cut).output, base.output)
    inputs = keras.Input(above.inputs[0].shape[1:], name=cut)
    top = keras.models.clone_model(above, input_tensors=inputs, clone_function=copy)
    top = keras.Model(inputs, top.output, name=base.name)
    top.set_weights(above.get_weights())
    top.trainable = False
    return top


def _preprocess(inputs, backbone: str, input_size: int):
    x = inputs
    if input_size != inputs.shape[1]:
        x = layers.Resizing(input_size, input_size, name="upscale")(x)
    return ImageNetPreprocess(BACKBONES[backbone].preprocess, name=f"{backbone}_preprocess")(x)


def unfreeze_top(model: keras.Model, backbone: str, units: int) -> None:
    """Makes the layers of `model` (a base, or a `base_top` copy) above the top `units` units'
    cut trainable, all of a copy that starts above that cut; 0 freezes all. Batch normalisation
    stays frozen, as fine-tuning guides advise (it runs in inference mode anyway)."""
    if not 0 <= units <= MAX_UNFROZEN_UNITS:
        raise ValueError(f"Expected `units` in [0, {MAX_UNFROZEN_UNITS}]. Received: {units}")
    names = [layer.name for layer in model.layers]
    cut = cut_layer(backbone, units)
    first = names.index(cut) + 1 if cut in names else 0
    model.trainable = units > 0
    for i, layer in enumerate(model.layers):
        layer.trainable = (
            units > 0 and i >= first and not isinstance(layer, layers.BatchNormalization)
        )


def _explain(
    spec: BackboneSpec, weights: str, alpha: float, input_size: int, error: Exception
) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if weights == "imagenet":
        file = spec.weights_file_for(alpha, input_size)
        return (
            f"could not download the {spec.describe(alpha)} ImageNet weights ({detail}); "
            f"offline? use --weights PATH ({file}) or --weights none"
        )
    other_width = " (another width's file?)" if len(spec.widths) > 1 else ""
    return (
        f"--weights {weights}: not {spec.describe(alpha)} no-top weights that fit this "
        f"model{other_width} ({type(error).__name__}: {detail[:200]})"
    )
