"""VGG-16 ImageNet features, frozen, with a trained dense head."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import vgg16_features
from search_spaces.blocks import classifier_head, compile_classifier

# The seed write-up's model: frozen VGG-16, flattened, dense 256, dropout 0.5, Adam 1e-3.
SEED_PRESET = {"pooling": "flatten", "dense_units": 256, "dropout": 0.5, "learning_rate": 1e-3}


class FeatureExtraction(kt.HyperModel):
    """Frozen VGG-16 base -> pooling -> dense -> dropout -> softmax.

    Search space:
        pooling: Choice "flatten" / "avg" (global average) over the base's last feature map.
        dense_units: Choice 128 / 256 / 512 / 1024.
        dropout: Float 0.0-0.6, step 0.1.
        learning_rate: Float 1e-4-1e-2, log scale (Adam).

    Args:
        weights: "imagenet", "none" or a path to VGG-16 no-top weights.
        input_size: side of the images VGG-16 sees (CIFAR's 32x32 are upscaled to it).
    """

    def __init__(self, weights: str = "imagenet", input_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.weights, self.input_size = weights, input_size

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        pooling = hp.Choice("pooling", ["flatten", "avg"])
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")

        inputs = keras.Input((32, 32, 3), name="image")
        x = vgg16_features(inputs, self.weights, self.input_size)
        x = layers.Flatten()(x) if pooling == "flatten" else layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, dense_units, dropout)
        model = keras.Model(inputs, outputs, name="vgg16_features")
        return compile_classifier(model, learning_rate)
