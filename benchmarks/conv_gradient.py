"""Does the flipped-kernel input gradient (issue 7) speed up convolution training on this CPU?

Part 1 times, per feature-map size (batch 128, 3x3, stride 1, "same", float32, median of 3 after a
warm-up): a forward convolution, TensorFlow's stock input gradient (`Conv2DBackpropInput`) and the
flipped-kernel forward convolution that computes the same gradient, with their relative error.
Part 2 trains VGG-16 (block5 trainable; all trainable) and the seed's scratch CNN with stock
`Conv2D` and with `FastConv2D`, in images per second. Writes
`benchmarks/results/conv-gradient[-onednn-off]-<date>.json`.

    python -m benchmarks.conv_gradient                            # cifar-tune's default: oneDNN on
    TF_ENABLE_ONEDNN_OPTS=0 python -m benchmarks.conv_gradient    # oneDNN off (TensorFlow's own
                                                                  # default on AVX2 CPUs)

The JSON records oneDNN as TensorFlow reports it (`tuning.host.cpu.onednn_on`). Measured: with
oneDNN on, the stock input gradient is as fast as a forward convolution and `FastConv2D` wins
nothing, so it is kept here as evidence, not in the search spaces; turning oneDNN on is the fix
(`benchmarks.onednn`).
"""

from __future__ import annotations

import functools
import statistics
import time

import keras
from keras import layers

SIZES = ((2, 512, 512), (4, 512, 512), (4, 128, 256), (8, 256, 256), (16, 128, 128), (32, 64, 64))


class FastConv2D(layers.Conv2D):
    """`keras.layers.Conv2D` with the fast input gradient where it applies (see the module)."""

    def convolution_op(self, inputs, kernel):
        if not self._fast_gradient_applies():
            return super().convolution_op(inputs, kernel)
        return _same_conv_fast_input_grad(inputs, kernel)

    def _fast_gradient_applies(self) -> bool:
        return (
            self.padding == "same"
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.data_format == "channels_last"
            and all(k % 2 == 1 for k in self.kernel_size)
            and _on_tensorflow_cpu()
        )


@functools.cache
def _on_tensorflow_cpu() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def _same_conv_fast_input_grad(inputs, kernel):
    import tensorflow as tf

    @tf.custom_gradient
    def conv(x, k):
        def grad(dy):
            flipped = tf.transpose(tf.reverse(k, axis=[0, 1]), [0, 1, 3, 2])
            dx = tf.nn.conv2d(dy, flipped, strides=1, padding="SAME")
            dk = tf.raw_ops.Conv2DBackpropFilter(
                input=x,
                filter_sizes=tf.shape(k),
                out_backprop=dy,
                strides=[1, 1, 1, 1],
                padding="SAME",
            )
            return dx, dk

        return tf.nn.conv2d(x, k, strides=1, padding="SAME"), grad

    return conv(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))


def with_fast_convs(model: keras.Model) -> keras.Model:
    """A copy of `model` whose `Conv2D` layers are `FastConv2D`, with the same weights."""

    def clone(layer):
        if type(layer) is layers.Conv2D:
            return FastConv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _median_ms(fn, repeats=3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def kernel_timings(batch=128) -> list[dict]:
    import tensorflow as tf

    rows = []
    for side, cin, cout in SIZES:
        x = tf.random.normal((batch, side, side, cin))
        k = tf.random.normal((3, 3, cin, cout))
        dy = tf.random.normal((batch, side, side, cout))
        forward = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
        stock = tf.function(
            lambda: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x),
                filter=k,
                out_backprop=dy,
                strides=[1, 1, 1, 1],
                padding="SAME",
            )
        )
        flipped = tf.function(
            lambda: tf.nn.conv2d(dy, tf.transpose(tf.reverse(k, [0, 1]), [0, 1, 3, 2]), 1, "SAME")
        )
        error = float(tf.norm(stock() - flipped()) / tf.norm(stock()))
        rows.append(
            {
                "feature_map": f"{side}x{side}, {cin}->{cout}",
                "forward_ms": _median_ms(forward),
                "stock_input_grad_ms": _median_ms(stock),
                "flipped_kernel_forward_ms": _median_ms(flipped),
                "relative_error": float(f"{error:.2e}"),
            }
        )
        print(rows[-1], flush=True)
    return rows


def training_throughput(images=1024, batch=128) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters
    from search_spaces.backbones import unfreeze_top

    rng = np.random.default_rng(0)
    ds = (
        tf.data.Dataset.from_tensor_slices(
            (
                rng.uniform(0, 255, (images, 32, 32, 3)).astype("float32"),
                rng.integers(0, 100, images),
            )
        )
        .batch(batch)
        .cache()
    )

    def vgg(blocks):
        def build(fast):
            base = keras.applications.VGG16(
                include_top=False, weights=None, input_shape=(32, 32, 3)
            )
            base = with_fast_convs(base) if fast else base
            if blocks == 5:  # the whole network
                base.trainable = True
            else:
                unfreeze_top(base, "vgg16", blocks)
            inputs = keras.Input((32, 32, 3))
            x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
            return keras.Model(inputs, keras.layers.Dense(100, activation="softmax")(x))

        return build

    def scratch(fast):
        model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
        return with_fast_convs(model) if fast else model

    rows = []
    for name, build in (
        ("vgg16_block5_trainable", vgg(1)),
        ("vgg16_all_trainable", vgg(5)),
        ("seed_scratch_cnn", scratch),
    ):
        row = {"model": name}
        for fast in (False, True):
            model = build(fast)
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(ds, epochs=1, verbose=0)  # warm-up: tracing and first allocations
            start = time.perf_counter()
            model.fit(ds, epochs=2, verbose=0)
            row["fast" if fast else "stock"] = round(2 * images / (time.perf_counter() - start), 1)
        row["speedup"] = round(row["fast"] / row["stock"], 2)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from benchmarks.machine import save_result
    from tuning.host.cpu import ONEDNN, onednn_on, user_setting

    onednn = onednn_on()  # as TensorFlow reports it, whatever the environment says
    setting = f"{ONEDNN}={user_setting()} " if user_setting() is not None else ""
    save_result(
        "conv-gradient" + ("" if onednn else "-onednn-off"),
        {
            "command": setting + "python -m benchmarks.conv_gradient",
            "onednn": onednn,
            "kernels_batch_128": kernel_timings(),
            "training_images_per_second": training_throughput(),
        },
    )


if __name__ == "__main__":
    main()
