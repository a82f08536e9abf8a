"""ImageNet features (VGG-16 by default), frozen, with a trained dense head."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import base_features, top_layer
from search_spaces.blocks import BackboneHyperModel, classifier_head, compile_classifier

# The seed write-up's model: frozen VGG-16, flattened, dense 256, dropout 0.5, Adam 1e-3.
SEED_PRESET = {
    "pooling": "flatten",
    "dense_units": 256,
    "dropout": 0.5,
    "learning_rate": 1e-3,
    "flip": False,
}


class FeatureExtraction(BackboneHyperModel):
    """Frozen base (VGG-16, or another `--backbone`) -> pooling -> dense -> dropout -> softmax.

    Search space:
        pooling: Choice "flatten" / "avg" (global average) over the base's last feature map.
        dense_units: Choice 128 / 256 / 512 / 1024.
        dropout: Float 0.0-0.6, step 0.1.
        learning_rate: Float 1e-4-1e-2, log scale (Adam).
        flip: Boolean, random horizontal flips of the training images.

    With a feature cache (see `BackboneHyperModel`) a model is the head alone, on the base's
    output activations (flipped views are cached too), so a trial never runs the backbone.

    Args:
        weights: "imagenet", "none" or a path to the backbone's no-top weights (without a cache).
        input_size: side of the images the backbone sees (CIFAR's 32x32 are upscaled to it).
        features: a feature cache, or None.
        backbone: a key of `backbones.BACKBONES`.
    """

    def cached_layers(self) -> tuple[str, ...]:
        return (top_layer(self.backbone),)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        pooling = hp.Choice("pooling", ["flatten", "avg"])
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        flip = hp.Boolean("flip")

        if self.features is None:
            inputs = keras.Input((self.image_size, self.image_size, 3), name="image")
            x = layers.RandomFlip("horizontal", dtype="float32")(inputs) if flip else inputs
            x = base_features(x, self.backbone, self.weights, self.input_size, self.alpha)
        else:
            top = top_layer(self.backbone)
            inputs = x = keras.Input(self.features.shape(top), name=top)
        x = layers.Flatten()(x) if pooling == "flatten" else layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, dense_units, dropout, classes=self.classes)
        model = keras.Model(inputs, outputs, name=f"{self.backbone}_features")
        return compile_classifier(model, learning_rate)

    def fit(self, hp, model, *args, **kwargs):
        if self.features is not None:
            kwargs.update(self.cached_data(top_layer(self.backbone), hp.get("flip"), args, kwargs))
            args = ()
        return model.fit(*args, **kwargs)
