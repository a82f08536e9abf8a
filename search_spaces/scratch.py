"""A CNN trained from scratch."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.blocks import (
    NUM_CLASSES,
    classifier_head,
    compile_classifier,
    dtype_policy,
    float32_compiled,
    predictions,
)
from search_spaces.training import OPTIMIZERS, SCHEDULES, scheduler

MAX_FILTERS = 256
CROP_SHIFT = 4 / 32  # of the side: CIFAR's 4-pixel padded crop, at any image size

# The seed write-up's CNN: 3 conv blocks of 32/64/128, dense 256, dropout 0.5, Adam 1e-3.
SEED_PRESET = {
    "architecture": "plain",
    "conv_blocks": 3,
    "base_filters": 32,
    "convs_per_block": 1,
    "batch_norm": False,
    "dense_layers": 1,
    "dense_units": 256,
    "dropout": 0.5,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "schedule": "constant",
    "label_smoothing": 0.0,
    "crop": False,
    "flip": False,
    "rotation": 0.0,
    "zoom": 0.0,
}

# Known recipes, drawn as a search's first trials (`tuning.engine.recipes`); unnamed values:
# defaults. In the order they won on real CIFAR-100 (benchmarks/README.md, "Recipes on real
# photos"): conv groups with Adam on a one-cycle rate, label smoothing and flip, the best at 1,
# 3 and 9 epochs on 10,000 images and at 15 on the full split, at about the batch-norm CNN's
# time per epoch; then, as they ranked before conv groups were measured, a ResNet-8-like net
# with Nesterov SGD on a one-cycle rate, weight decay, label smoothing, crop + flip; the
# batch-norm CNN with the same training, at a quarter of the cost; the batch-norm CNN with Adam
# and flip alone, the best Adam run (crop lowered Adam's accuracy at that budget).
_SGD = {
    "optimizer": "sgd",
    "sgd_learning_rate": 0.1,
    "weight_decay": 5e-4,
    "schedule": "one_cycle",
    "label_smoothing": 0.1,
    "crop": True,
    "flip": True,
    "rotation": 0.0,
    "zoom": 0.0,
}
_BN_CNN = {
    "architecture": "plain",
    "conv_blocks": 3,
    "base_filters": 32,
    "convs_per_block": 1,
    "batch_norm": True,
    "dense_layers": 1,
    "dense_units": 256,
    "dropout": 0.3,
}
RECIPES = {
    "conv_groups_adam_one_cycle_flip": {
        **_BN_CNN,
        **_SGD,
        "architecture": "conv_groups",
        "convs_per_block": 2,
        "dropout": 0.0,
        "optimizer": "adam",
        "learning_rate": 3e-3,
        "crop": False,
    },
    "resnet8_w32_sgd_one_cycle": {
        **_SGD,
        "architecture": "residual",
        "residual_stages": 3,
        "blocks_per_stage": 1,
        "residual_width": 32,
        "dropout": 0.0,
    },
    "bn_cnn_sgd_one_cycle": {**_BN_CNN, **_SGD, "sgd_learning_rate": 0.05},
    "bn_cnn_adam_one_cycle_flip": {
        **_BN_CNN,
        **_SGD,
        "optimizer": "adam",
        "learning_rate": 3e-3,
        "crop": False,
    },
}


class ScratchCNN(kt.HyperModel):
    """A CNN trained from scratch: plain conv blocks (the seed's kind), airbench's conv groups or
    residual stages.

    Plain: conv blocks (conv -> [batch norm] -> ReLU, then 2x2 max-pooling), a dense head.
    Conv groups (KellerJordan/cifar10-airbench's shape): in each group a conv, 2x2 max-pooling,
    batch norm and ReLU, then the group's further convs (conv-bn-relu) at the pooled size, so
    they cost a quarter; global average pooling -> dropout -> softmax. They share the plain
    blocks' count, widths and convs per block.
    Residual: a 3x3 stem, then stages of basic blocks (two 3x3 convs with batch norm and an
    identity or 1x1 projection shortcut), stride 2 between stages, widths doubling per stage;
    global average pooling -> dropout -> softmax. 4 stages x 2 blocks x width 64 is ResNet-18's
    CIFAR shape.

    Search space:
        architecture: Choice plain / conv_groups / residual.
        plain and conv_groups: conv_blocks Int 2-5 (each halves the feature map); base_filters
            Choice 16 / 32 / 64 (doubling per block, <= 256); convs_per_block Int 1-3.
        plain only: batch_norm Boolean (conv groups always have it); dense_layers Int 1-2;
            dense_units Choice 128 / 256 / 512.
        residual only: residual_stages Int 2-4; blocks_per_stage Int 1-2; residual_width
            Choice 16 / 32 / 64 (the first stage's; the width multiplier).
        dropout: Float 0.0-0.6, step 0.1 (after every dense layer; otherwise before the
            softmax).
        optimizer: Choice adam / adamw / sgd (Nesterov momentum 0.9), see `training`.
        learning_rate: Float 1e-4-1e-2, log (Adam, AdamW); sgd_learning_rate: Float
            1e-2-3e-1, log (SGD). The peak rate of the schedule.
        weight_decay: Float 1e-5-1e-2, log (AdamW, SGD; decoupled, kernels only).
        schedule: Choice constant / cosine (10% linear warm-up) / one_cycle, over
            `schedule_epochs` (the search's --max-epochs), see `training.rate_at`.
        label_smoothing: Choice 0 / 0.1.
        crop: Boolean, random crop with 4-pixel zero padding (shifts of up to 4 pixels);
        flip: Boolean, random horizontal flips; rotation: Choice 0 / 0.05 / 0.1 (of a full
        turn); zoom: Choice 0 / 0.1 / 0.2. Augmentation runs only while training.

    Every hyperparameter is declared in every trial (one branch's are unused by the other):
    keras-tuner's conditional scopes would not match the unconditional values of a `--space`
    file or a preset.

    Batch norm uses momentum 0.9 (Keras: 0.99): with Hyperband's 1-epoch first rounds on small
    subsets, the slower moving averages are still far from the data when validation runs, which
    measured 1-3% val accuracy after one epoch against 11% with 0.9, and Hyperband then discards
    exactly the configurations that end best.

    Args:
        schedule_epochs: the epochs a learning-rate schedule spans.
    """

    recipes = RECIPES

    def __init__(
        self, schedule_epochs: int = 9, classes: int = NUM_CLASSES, image_size: int = 32, **kwargs
    ):
        super().__init__(**kwargs)
        self.schedule_epochs, self.classes, self.image_size = schedule_epochs, classes, image_size

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        architecture = hp.Choice("architecture", ["plain", "conv_groups", "residual"])
        plain = {
            "conv_blocks": hp.Int("conv_blocks", 2, 5),
            "base_filters": hp.Choice("base_filters", [16, 32, 64]),
            "convs_per_block": hp.Int("convs_per_block", 1, 3),
            "batch_norm": hp.Boolean("batch_norm"),
            "dense_layers": hp.Int("dense_layers", 1, 2),
            "dense_units": hp.Choice("dense_units", [128, 256, 512]),
        }
        residual = {
            "stages": hp.Int("residual_stages", 2, 4),
            "blocks": hp.Int("blocks_per_stage", 1, 2),
            "width": hp.Choice("residual_width", [16, 32, 64]),
        }
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        optimizer = hp.Choice("optimizer", list(OPTIMIZERS))
        adaptive_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        sgd_rate = hp.Float("sgd_learning_rate", 1e-2, 3e-1, sampling="log")
        weight_decay = hp.Float("weight_decay", 1e-5, 1e-2, sampling="log")
        hp.Choice("schedule", list(SCHEDULES))  # used in `fit`, declared for the HParams config
        label_smoothing = hp.Choice("label_smoothing", [0.0, 0.1])

        inputs = keras.Input((self.image_size, self.image_size, 3), name="image")
        x = layers.Rescaling(1 / 255)(augment(inputs, hp))
        if architecture == "plain":
            x = plain_features(
                x,
                plain["conv_blocks"],
                plain["base_filters"],
                plain["convs_per_block"],
                plain["batch_norm"],
            )
            outputs = classifier_head(
                x, plain["dense_units"], dropout, plain["dense_layers"], self.classes
            )
        else:
            x = (
                group_features(
                    x, plain["conv_blocks"], plain["base_filters"], plain["convs_per_block"]
                )
                if architecture == "conv_groups"
                else residual_features(x, **residual)
            )
            outputs = predictions(layers.Dropout(dropout)(x), self.classes)
        model = keras.Model(inputs, outputs, name=f"scratch_{architecture}")
        return compile_classifier(
            model,
            sgd_rate if optimizer == "sgd" else adaptive_rate,
            optimizer,
            weight_decay,
            label_smoothing,
        )

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        """Fits with the learning rate following the trial's schedule over `schedule_epochs`."""
        peak = hp.get("sgd_learning_rate" if hp.get("optimizer") == "sgd" else "learning_rate")
        schedule = scheduler(hp.get("schedule"), peak, self.schedule_epochs)
        return model.fit(*args, callbacks=[*(callbacks or ()), schedule], **kwargs)

    def image_model(self, model: keras.Model) -> keras.Model:
        """The trained model as one taking images (it is one already: no feature cache here),
        in float32 with plain sparse cross-entropy as its loss (`blocks.float32_compiled`)."""
        with dtype_policy("float32"):
            return float32_compiled(model)


def plain_features(x, conv_blocks: int, base_filters: int, convs_per_block: int, batch_norm: bool):
    """Conv blocks of doubling width, each ending in 2x2 max-pooling; flattened."""
    for block in range(conv_blocks):
        filters = min(base_filters * 2**block, MAX_FILTERS)
        for _ in range(convs_per_block):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    return layers.Flatten()(x)


def group_features(x, groups: int, base_filters: int, convs_per_group: int):
    """Conv groups of doubling width, each pooling after its first conv; global average pooled.

    Pooling before batch norm and the later convs is airbench's order. On real CIFAR-100 (the
    search's full split, 15 epochs, 2 cores) 3 groups of two convs from 32 filters reached 55.4%
    validation accuracy against 49.9% for the plain batch-norm CNN with the same training, in
    37 s an epoch against 35 (benchmarks/README.md, "Recipes on real photos").
    """
    for group in range(groups):
        filters = min(base_filters * 2**group, MAX_FILTERS)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(layers.MaxPooling2D()(x))
        x = layers.ReLU()(x)
        for _ in range(convs_per_group - 1):
            x = conv_bn(x, filters, 3, 1, relu=True)
    return layers.GlobalAveragePooling2D()(x)


def residual_features(x, stages: int, blocks: int, width: int):
    """A 3x3 stem, then `stages` stages of `blocks` basic blocks; global average pooled."""
    x = conv_bn(x, width, 3, 1, relu=True)
    for stage in range(stages):
        for block in range(blocks):
            x = basic_block(x, width * 2**stage, 2 if stage and not block else 1)
    return layers.GlobalAveragePooling2D()(x)


def basic_block(x, filters: int, stride: int):
    """ResNet's basic block: conv-bn-relu, conv-bn, plus the shortcut, then relu."""
    y = conv_bn(x, filters, 3, stride, relu=True)
    y = conv_bn(y, filters, 3, 1, relu=False)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, stride, relu=False)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def conv_bn(x, filters: int, size: int, stride: int, relu: bool):
    x = layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x) if relu else x


def augment(x, hp: kt.HyperParameters):
    """Random crop with 4-pixel padding (as a shift of up to 4 pixels with zeros: the same
    pictures) and the seed's flip, rotation and zoom, each a searched choice.

    The layers compute in float32 under any precision: CPUs have no fast bfloat16 image ops,
    and in bfloat16 they cost the first recipe most of mixed precision's gain
    (benchmarks/README.md).
    """
    crop = hp.Boolean("crop")
    flip = hp.Boolean("flip")
    rotation = hp.Choice("rotation", [0.0, 0.05, 0.1])
    zoom = hp.Choice("zoom", [0.0, 0.1, 0.2])
    if crop:
        x = layers.RandomTranslation(
            CROP_SHIFT,
            CROP_SHIFT,
            fill_mode="constant",
            interpolation="nearest",
            dtype="float32",
        )(x)
    if flip:
        x = layers.RandomFlip("horizontal", dtype="float32")(x)
    if rotation:
        x = layers.RandomRotation(rotation, dtype="float32")(x)
    if zoom:
        x = layers.RandomZoom(zoom, dtype="float32")(x)
    return x
