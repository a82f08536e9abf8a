"""oneDNN as TensorFlow would choose it against cifar-tune's default, side by side.

    python -m benchmarks.onednn            # 5 rounds of alternate fresh processes

Each round runs one fresh process per setting, in alternating order (successive runs on these
machines vary by up to 30%, and a noisy neighbour can halve one epoch's speed):
- `tensorflow`: TF_ENABLE_ONEDNN_OPTS set to what TensorFlow alone chooses on this CPU ("0" on
  AVX2-only CPUs: what a user of plain Keras gets there);
- `cifar_tune`: the variable unset, so `import tuning` decides (oneDNN on).
Each process times every row's training epochs after a warm-up epoch (tracing, oneDNN's first
primitives), from each epoch's start to its end, and keeps the fastest of `--epochs`, in images
per second: the seed's scratch CNN
(5,000 synthetic images), VGG-16 with block5 trainable (2,048 images), VGG-16 all trainable (512
images), and a cached `finetune` epoch (block5 unfrozen on cached block4 output, 5,000 images,
validation included). Batch 128, random VGG-16 weights (the computation of ImageNet's). The
report compares medians over rounds. Writes `benchmarks/results/onednn-<date>.json` with every
run, the medians, cifar-tune's speed-up per row and this machine's CPU features.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import add_round_arguments, alternate_rounds, invocation, row_medians
from tuning.host.cpu import ONEDNN, OURS, tensorflow_enables_onednn

ROWS = {  # row: training images
    "seed_scratch_cnn": 5000,
    "vgg16_block5_trainable": 2048,
    "vgg16_all_trainable": 512,
    "finetune_cached_epoch": 5000,
}
SETTINGS = ("tensorflow", "cifar_tune")
BATCH = 128


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_round_arguments(parser, 5, ROWS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(time_rows(args)))
        return
    with tempfile.TemporaryDirectory() as cache:
        runs = alternate_rounds(
            SETTINGS, args.rounds, lambda name: _in_fresh_process(name, cache, args)
        )
    medians = row_medians(runs, args.rows)
    speedup = {
        row: round(medians["cifar_tune"][row] / medians["tensorflow"][row], 2) for row in args.rows
    }
    print(
        json.dumps({"images_per_second": medians, "cifar_tune_over_tensorflow": speedup}, indent=1)
    )
    from benchmarks.machine import save_result

    save_result(
        "onednn" + ("-tiny" if args.scale != 1 else ""),
        {
            "command": invocation("benchmarks.onednn", argv).strip(),
            "settings": {
                "tensorflow": f"{ONEDNN}={_tensorflow_choice()}: what TensorFlow alone "
                f"chooses on this CPU",
                "cifar_tune": f"{ONEDNN} unset: cifar-tune's default",
            },
            "seed": args.seed,
            "batch_size": BATCH,
            "timed_epochs_per_process": args.epochs,
            "training_images": {row: _images(row, args.scale) for row in args.rows},
            "runs": runs,
            "median_images_per_second": medians,
            "cifar_tune_over_tensorflow": speedup,
        },
        folder=Path(args.results),
    )


def time_rows(args) -> dict:
    """Images per second of each row, under the oneDNN setting this process started with."""
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tuning.host.cpu import onednn_on

    result = {"onednn": onednn_on()}
    for row in args.rows:
        images = _images(row, args.scale)
        if row == "finetune_cached_epoch":
            result[row] = finetune_cached_throughput(images, args)
        else:
            model = (
                seed_cnn()
                if row == "seed_scratch_cnn"
                else _vgg16(1 if row == "vgg16_block5_trainable" else 5)
            )
            result[row] = throughput(model, images, args.seed, args.epochs)
    return result


def _images(row: str, scale: float) -> int:
    return max(2 * BATCH, int(ROWS[row] * scale))


def seed_cnn():
    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters

    return create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))


def _vgg16(blocks: int):
    """VGG-16 (random weights) -> average pooling -> softmax; the top `blocks` blocks trainable."""
    import keras

    from search_spaces.backbones import unfreeze_top

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    if blocks == 5:
        base.trainable = True
    else:
        unfreeze_top(base, "vgg16", blocks)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(100, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def throughput(model, images: int, seed: int, epochs: int) -> float:
    """Training images per second of the fastest of `epochs` epochs over `images` synthetic
    images, after a warm-up epoch, all in one `fit`: timed from each epoch's start to its end,
    so not counting the end of `fit` (in TensorFlow 2.21 a tf.data iterator's teardown waits for
    its autotuning thread's next wake-up, up to seconds; benchmarks/README.md)."""
    import tensorflow as tf

    from benchmarks.speed import EpochTimer
    from tuning.data.sources import load_search_data

    train = load_search_data("synthetic", seed=seed, train_size=images, val_size=1000).train
    dataset = (
        tf.data.Dataset.from_tensor_slices((train.images.astype("float32"), train.fine))
        .batch(BATCH)
        .cache()
    )
    timer = EpochTimer()
    model.fit(dataset, epochs=1 + epochs, verbose=0, callbacks=[timer])
    return round(images / min(timer.seconds[1:]), 1)


def finetune_cached_throughput(images: int, args) -> float:
    """Training images per second of the fastest of `--epochs` cached `finetune` epochs, block5
    unfrozen, validation included (as a search spends them); the cache is shared by every
    process of the run."""
    from benchmarks.speed import FINETUNE_HP, epoch_seconds, feature_cache
    from search_spaces import dtype_policy, fixed_hyperparameters
    from tuning.data.sources import load_search_data

    data = load_search_data(
        "synthetic", seed=args.seed, train_size=images, val_size=max(100, images // 4)
    )
    with dtype_policy("float32"):  # as searches build it, whatever they train in
        cache, _ = feature_cache("finetune", data, args.seed, Path(args.cache))
    seconds = epoch_seconds(
        "finetune",
        fixed_hyperparameters(FINETUNE_HP),
        data,
        args.seed,
        cache,
        timed=max(2, args.epochs),
    )
    return round(images / min(seconds), 1)


def _tensorflow_choice() -> str:
    return "1" if tensorflow_enables_onednn() else "0"


def _in_fresh_process(name: str, cache: str, args) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.onednn",
        "--one",
        "--cache",
        cache,
        "--seed",
        str(args.seed),
        "--scale",
        str(args.scale),
        "--epochs",
        str(args.epochs),
        "--rows",
        *args.rows,
    ]
    env = {k: v for k, v in os.environ.items() if k not in (ONEDNN, OURS)}  # cifar-tune decides
    if name == "tensorflow":
        env[ONEDNN] = _tensorflow_choice()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
