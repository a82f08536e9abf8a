"""Transfer learning + fine-tuning (VGG-16 by default): the head first, then the top blocks unfrozen."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import (MAX_UNFROZEN_UNITS, base_features, base_top, cut_layer,
                                     top_layer, unfreeze_top)
from search_spaces.blocks import (BackboneHyperModel, classifier_head, compile_classifier,
                                  fit_in_phases)

# The seed write-up's model: VGG-16 + global average pooling head, then its last block unfrozen.
SEED_PRESET = {"dense_units": 256, "dropout": 0.5, "head_learning_rate": 1e-3,
               "unfreeze_blocks": 1, "finetune_learning_rate": 1e-5, "flip": False}


class FineTune(BackboneHyperModel):
    """Frozen base -> global average pooling -> dense -> dropout -> softmax; then unfreeze.

    Training has two phases, fixed by epoch index so that Hyperband's promoted trials (which
    resume at `initial_epoch`) continue in the right one: epochs [0, head_epochs) train the head
    on the frozen base; later epochs unfreeze the top `unfreeze_blocks` units of the backbone
    (VGG-16's convolution blocks, the other backbones' stages: `BackboneSpec.cuts`) and recompile
    with the lower fine-tuning learning rate.

    Search space:
        dense_units: Choice 128 / 256 / 512 / 1024.
        dropout: Float 0.0-0.6, step 0.1.
        head_learning_rate: Float 1e-4-1e-2, log scale (Adam, phase 1).
        unfreeze_blocks: Int 1-3 (VGG-16 1: block5; 2: blocks 4-5; 3: blocks 3-5; stages for the
            other backbones; batch normalisation stays frozen).
        finetune_learning_rate: Float 1e-6-1e-4, log scale (Adam, phase 2).
        flip: Boolean, random horizontal flips of the training images.
        head_epochs: Fixed, from the constructor (recorded so every trial shows it).

    With a feature cache (see `BackboneHyperModel`) a model starts at the activations below its
    unfrozen blocks (copies of the backbone's top blocks, then the head). Phase 1 fits the head alone on
    the base's output activations; phase 2 fits the unfrozen blocks and the head on the
    activations below them. The frozen blocks never run in a trial.

    Args:
        weights: "imagenet", "none" or a path to the backbone's no-top weights (without a cache).
        input_size: side of the images the backbone sees.
        head_epochs: epochs of phase 1.
        features: a feature cache, or None.
        backbone: a key of `backbones.BACKBONES`.
    """

    def __init__(self, weights: str = "imagenet", input_size: int = 32, head_epochs: int = 1,
                 features=None, backbone: str = "vgg16", **kwargs):
        super().__init__(weights, input_size, features, backbone, **kwargs)
        self.head_epochs = head_epochs

    def cached_layers(self) -> tuple[str, ...]:
        return tuple(cut_layer(self.backbone, units) for units in range(MAX_UNFROZEN_UNITS + 1))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        head_lr = hp.Float("head_learning_rate", 1e-4, 1e-2, sampling="log")
        # Declared here although used in `fit`: TensorBoard's HParams config is written before fit.
        blocks = hp.Int("unfreeze_blocks", 1, MAX_UNFROZEN_UNITS)
        hp.Float("finetune_learning_rate", 1e-6, 1e-4, sampling="log")
        flip = hp.Boolean("flip")
        hp.Fixed("head_epochs", self.head_epochs)

        if self.features is None:
            inputs = keras.Input((32, 32, 3), name="image")
            x = layers.RandomFlip("horizontal")(inputs) if flip else inputs
            x = base_features(x, self.backbone, self.weights, self.input_size)
        else:
            cut = cut_layer(self.backbone, blocks)
            inputs = keras.Input(self.features.shape(cut), name=cut)
            x = base_top(self.features.backbone, cut)(inputs, training=False)
        head_inputs = keras.Input(x.shape[1:], name=top_layer(self.backbone))
        pooled = layers.GlobalAveragePooling2D()(head_inputs)
        head = keras.Model(head_inputs, classifier_head(pooled, dense_units, dropout), name="head")
        return compile_classifier(keras.Model(inputs, head(x), name=f"{self.backbone}_finetune"), head_lr)

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), **kwargs):
        blocks, flip = hp.get("unfreeze_blocks"), hp.get("flip")
        head, base = model.get_layer("head"), model.get_layer(self.backbone)

        def train_head():
            unfreeze_top(base, self.backbone, 0)
            compile_classifier(model, hp.get("head_learning_rate"))  # the rate callbacks log
            if self.features is None:
                return model, {}
            compile_classifier(head, hp.get("head_learning_rate"))
            return head, self.cached_data(top_layer(self.backbone), flip, args, kwargs)

        def train_top_blocks():
            unfreeze_top(base, self.backbone, blocks)
            compile_classifier(model, hp.get("finetune_learning_rate"))
            if self.features is None:
                return model, {}
            return model, self.cached_data(cut_layer(self.backbone, blocks), flip, args, kwargs)

        phases = [(0, train_head), (hp.get("head_epochs"), train_top_blocks)]
        return fit_in_phases(model, phases, *args, epochs=epochs, initial_epoch=initial_epoch,
                             callbacks=callbacks or (), **kwargs)
