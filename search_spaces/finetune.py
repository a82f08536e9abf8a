"""Transfer learning + fine-tuning (VGG-16 by default): the head, then the top blocks unfrozen."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import (
    MAX_UNFROZEN_UNITS,
    base_features,
    base_top,
    cut_layer,
    top_layer,
    unfreeze_top,
)
from search_spaces.blocks import BackboneHyperModel, classifier_head, compile_classifier

# The seed write-up's model: VGG-16 + global average pooling head, then its last block unfrozen.
SEED_PRESET = {
    "dense_units": 256,
    "dropout": 0.5,
    "head_learning_rate": 1e-3,
    "unfreeze_blocks": 1,
    "finetune_learning_rate": 1e-5,
    "flip": False,
}


class FineTune(BackboneHyperModel):
    """Frozen base -> global average pooling -> dense -> dropout -> softmax; then unfreeze.

    A new trial first trains the head on the frozen base for `head_epochs` epochs, a fixed
    warm-up outside the tuner's epoch budget; then every epoch the tuner counts (Hyperband's
    rungs, early stopping, the scores) fine-tunes: the top `unfreeze_blocks` units of the
    backbone (VGG-16's convolution blocks, the other backbones' stages: `BackboneSpec.cuts`)
    unfrozen, recompiled with the lower fine-tuning learning rate. So every rung of a search
    compares fine-tuned models, and a promoted trial (resumed at `initial_epoch` from its
    checkpoint) goes on fine-tuning without a second warm-up.

    Search space:
        dense_units: Choice 128 / 256 / 512 / 1024.
        dropout: Float 0.0-0.6, step 0.1.
        head_learning_rate: Float 1e-4-1e-2, log scale (Adam, the warm-up).
        unfreeze_blocks: Int 1-3 (VGG-16 1: block5; 2: blocks 4-5; 3: blocks 3-5; stages for the
            other backbones; batch normalisation stays frozen).
        finetune_learning_rate: Float 1e-6-1e-4, log scale (Adam, fine-tuning).
        flip: Boolean, random horizontal flips of the training images.
        head_epochs: Fixed, from the constructor (recorded so every trial shows it): the
            warm-up epochs, not counted in `epochs`.

    With a feature cache (see `BackboneHyperModel`) a model starts at the activations below its
    unfrozen blocks (copies of the backbone's top blocks, then the head). The warm-up fits the head
    alone on the base's output activations; fine-tuning fits the unfrozen blocks and the head on
    the activations below them. The frozen blocks never run in a trial.

    Args:
        weights: "imagenet", "none" or a path to the backbone's no-top weights (without a cache).
        input_size: side of the images the backbone sees.
        head_epochs: warm-up epochs of the head of each new trial.
        features: a feature cache, or None.
        backbone: a key of `backbones.BACKBONES`.
    """

    def __init__(
        self,
        weights: str = "imagenet",
        input_size: int = 32,
        head_epochs: int = 1,
        features=None,
        backbone: str = "vgg16",
        alpha: float = 1.0,
        **kwargs,
    ):
        super().__init__(weights, input_size, features, backbone, alpha, **kwargs)
        self.head_epochs = head_epochs

    def cached_layers(self) -> tuple[str, ...]:
        return tuple(cut_layer(self.backbone, units) for units in range(MAX_UNFROZEN_UNITS + 1))

    def cached_warm_up(self, model: keras.Model, learning_rate: float) -> tuple[keras.Model, str]:
        """(`model`'s head compiled at `learning_rate`, the layer whose cached activations it
        trains on): what a new trial's warm-up fits on a feature cache."""
        head = model.get_layer("head")
        return compile_classifier(head, learning_rate), top_layer(self.backbone)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        hp.Float("head_learning_rate", 1e-4, 1e-2, sampling="log")  # the warm-up's, in `fit`
        # Declared here although used in `fit`: TensorBoard's HParams config is written before fit.
        blocks = hp.Int("unfreeze_blocks", 1, MAX_UNFROZEN_UNITS)
        hp.Float("finetune_learning_rate", 1e-6, 1e-4, sampling="log")
        flip = hp.Boolean("flip")
        hp.Fixed("head_epochs", self.head_epochs)

        if self.features is None:
            inputs = keras.Input((self.image_size, self.image_size, 3), name="image")
            x = layers.RandomFlip("horizontal", dtype="float32")(inputs) if flip else inputs
            x = base_features(x, self.backbone, self.weights, self.input_size, self.alpha)
        else:
            cut = cut_layer(self.backbone, blocks)
            inputs = keras.Input(self.features.shape(cut), name=cut)
            x = base_top(self.features.backbone, cut)(inputs, training=False)
        head_inputs = keras.Input(x.shape[1:], name=top_layer(self.backbone))
        pooled = layers.GlobalAveragePooling2D()(head_inputs)
        head = keras.Model(
            head_inputs,
            classifier_head(pooled, dense_units, dropout, classes=self.classes),
            name="head",
        )
        model = keras.Model(inputs, head(x), name=f"{self.backbone}_finetune")
        # Built as in its fine-tuning phase, so that a trial Hyperband promotes (rebuilt, then its
        # parent's checkpoint loaded) gets its parent's fine-tuning optimizer state back.
        unfreeze_top(model.get_layer(self.backbone), self.backbone, blocks)
        return compile_classifier(model, hp.get("finetune_learning_rate"))

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), **kwargs):
        """Warms the head up (a new trial only), then fine-tunes epochs [initial_epoch, epochs).

        Every epoch a tuner counts, scores and promotes is a fine-tuning epoch. The warm-up runs
        without the tuner's callbacks and without validation, so its metrics never reach
        keras-tuner; the returned `History` carries `head_epochs_run` beside the fine-tuning
        epochs. A promoted trial reloads a checkpoint whose head was already warmed up.
        """
        blocks, flip = hp.get("unfreeze_blocks"), hp.get("flip")
        base = model.get_layer(self.backbone)
        warm_up = hp.get("head_epochs") if initial_epoch == 0 else 0
        if warm_up:  # a new trial; a promoted one goes on as `build` and its checkpoint left it
            unfreeze_top(base, self.backbone, 0)
            if self.features is None:
                fitted, data = compile_classifier(model, hp.get("head_learning_rate")), {}
            else:
                fitted, layer = self.cached_warm_up(model, hp.get("head_learning_rate"))
                data = self.cached_data(layer, flip, args, kwargs)
            fitted.fit(
                *([] if data else args),
                epochs=warm_up,
                **{**kwargs, **data, "validation_data": None},
            )
            unfreeze_top(base, self.backbone, blocks)
            compile_classifier(model, hp.get("finetune_learning_rate"))
        data = {}
        if self.features is not None:
            data = self.cached_data(cut_layer(self.backbone, blocks), flip, args, kwargs)
        history = model.fit(
            *([] if data else args),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=list(callbacks or ()),
            **{**kwargs, **data},
        )
        history.head_epochs_run = warm_up
        return history
