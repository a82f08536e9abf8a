"""A CNN trained from scratch."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.blocks import classifier_head, compile_classifier, ready_to_save

MAX_FILTERS = 256

# The seed write-up's CNN: 3 conv blocks of 32/64/128, dense 256, dropout 0.5, Adam 1e-3.
SEED_PRESET = {"conv_blocks": 3, "base_filters": 32, "convs_per_block": 1, "batch_norm": False,
               "dense_layers": 1, "dense_units": 256, "dropout": 0.5, "learning_rate": 1e-3,
               "flip": False, "rotation": 0.0, "zoom": 0.0}


class ScratchCNN(kt.HyperModel):
    """Conv blocks (conv -> [batch norm] -> ReLU, then 2x2 max-pooling), a dense head, softmax.

    Search space:
        conv_blocks: Int 2-5, the number of conv blocks (each halves the feature map).
        base_filters: Choice 16 / 32 / 64, filters of the first block, doubling per block (<= 256).
        convs_per_block: Int 1-3.
        batch_norm: Boolean.
        dense_layers: Int 1-2; dense_units: Choice 128 / 256 / 512.
        dropout: Float 0.0-0.6, step 0.1, after every dense layer.
        learning_rate: Float 1e-4-1e-2, log scale (Adam).
        flip: Boolean, random horizontal flips; rotation: Choice 0 / 0.05 / 0.1 (of a full turn);
        zoom: Choice 0 / 0.1 / 0.2. Augmentation runs only while training.

    Batch norm uses momentum 0.9 (Keras: 0.99): with Hyperband's 1-epoch first rounds on small
    subsets, the slower moving averages are still far from the data when validation runs, which
    measured 1-3% val accuracy after one epoch against 11% with 0.9, and Hyperband then discards
    exactly the configurations that end best.
    """

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        conv_blocks = hp.Int("conv_blocks", 2, 5)
        base_filters = hp.Choice("base_filters", [16, 32, 64])
        convs_per_block = hp.Int("convs_per_block", 1, 3)
        batch_norm = hp.Boolean("batch_norm")
        dense_layers = hp.Int("dense_layers", 1, 2)
        dense_units = hp.Choice("dense_units", [128, 256, 512])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")

        inputs = keras.Input((32, 32, 3), name="image")
        x = augment(inputs, hp)
        x = layers.Rescaling(1 / 255)(x)
        for block in range(conv_blocks):
            filters = min(base_filters * 2 ** block, MAX_FILTERS)
            for _ in range(convs_per_block):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)(x)
                if batch_norm:
                    x = layers.BatchNormalization(momentum=0.9)(x)
                x = layers.ReLU()(x)
            x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        outputs = classifier_head(x, dense_units, dropout, dense_layers)
        return compile_classifier(keras.Model(inputs, outputs, name="scratch_cnn"), learning_rate)

    def image_model(self, model: keras.Model) -> keras.Model:
        """The trained model as one taking images: it is one already (no feature cache here)."""
        return ready_to_save(model)


def augment(x, hp: kt.HyperParameters):
    """The seed's augmentations (flip, rotation, zoom), each a searched choice."""
    flip = hp.Boolean("flip")
    rotation = hp.Choice("rotation", [0.0, 0.05, 0.1])
    zoom = hp.Choice("zoom", [0.0, 0.1, 0.2])
    if flip:
        x = layers.RandomFlip("horizontal")(x)
    if rotation:
        x = layers.RandomRotation(rotation)(x)
    if zoom:
        x = layers.RandomZoom(zoom)(x)
    return x
