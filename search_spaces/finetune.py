"""VGG-16 transfer learning + fine-tuning: the head first, then the top blocks unfrozen."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import (TOP_LAYER, cut_layer, unfreeze_top_blocks, vgg16_features,
                                     vgg16_top)
from search_spaces.blocks import (BackboneHyperModel, classifier_head, compile_classifier,
                                  fit_in_phases)

MAX_UNFROZEN_BLOCKS = 3

# The seed write-up's model: VGG-16 + global average pooling head, then its last block unfrozen.
SEED_PRESET = {"dense_units": 256, "dropout": 0.5, "head_learning_rate": 1e-3,
               "unfreeze_blocks": 1, "finetune_learning_rate": 1e-5, "flip": False}


class FineTune(BackboneHyperModel):
    """Frozen VGG-16 -> global average pooling -> dense -> dropout -> softmax; then unfreeze.

    Training has two phases, fixed by epoch index so that Hyperband's promoted trials (which
    resume at `initial_epoch`) continue in the right one: epochs [0, head_epochs) train the head
    on the frozen base; later epochs unfreeze the top `unfreeze_blocks` VGG-16 blocks and recompile
    with the lower fine-tuning learning rate.

    Search space:
        dense_units: Choice 128 / 256 / 512 / 1024.
        dropout: Float 0.0-0.6, step 0.1.
        head_learning_rate: Float 1e-4-1e-2, log scale (Adam, phase 1).
        unfreeze_blocks: Int 1-3 (1: block5; 2: blocks 4-5; 3: blocks 3-5).
        finetune_learning_rate: Float 1e-6-1e-4, log scale (Adam, phase 2).
        flip: Boolean, random horizontal flips of the training images.
        head_epochs: Fixed, from the constructor (recorded so every trial shows it).

    With a feature cache (see `BackboneHyperModel`) a model starts at the activations below its
    unfrozen blocks (copies of VGG-16's top blocks, then the head). Phase 1 fits the head alone on
    the base's output activations; phase 2 fits the unfrozen blocks and the head on the
    activations below them. The frozen blocks never run in a trial.

    Args:
        weights: "imagenet", "none" or a path to VGG-16 no-top weights (without a cache).
        input_size: side of the images VGG-16 sees.
        head_epochs: epochs of phase 1.
        features: a feature cache, or None.
    """

    CACHED_LAYERS = tuple(cut_layer(blocks) for blocks in range(MAX_UNFROZEN_BLOCKS + 1))

    def __init__(self, weights: str = "imagenet", input_size: int = 32, head_epochs: int = 1,
                 features=None, **kwargs):
        super().__init__(weights, input_size, features, **kwargs)
        self.head_epochs = head_epochs

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        head_lr = hp.Float("head_learning_rate", 1e-4, 1e-2, sampling="log")
        # Declared here although used in `fit`: TensorBoard's HParams config is written before fit.
        blocks = hp.Int("unfreeze_blocks", 1, MAX_UNFROZEN_BLOCKS)
        hp.Float("finetune_learning_rate", 1e-6, 1e-4, sampling="log")
        flip = hp.Boolean("flip")
        hp.Fixed("head_epochs", self.head_epochs)

        if self.features is None:
            inputs = keras.Input((32, 32, 3), name="image")
            x = layers.RandomFlip("horizontal")(inputs) if flip else inputs
            x = vgg16_features(x, self.weights, self.input_size)
        else:
            cut = cut_layer(blocks)
            inputs = keras.Input(self.features.shape(cut), name=cut)
            x = vgg16_top(self.features.backbone, cut)(inputs, training=False)
        head_inputs = keras.Input(x.shape[1:], name=TOP_LAYER)
        pooled = layers.GlobalAveragePooling2D()(head_inputs)
        head = keras.Model(head_inputs, classifier_head(pooled, dense_units, dropout), name="head")
        return compile_classifier(keras.Model(inputs, head(x), name="vgg16_finetune"), head_lr)

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), **kwargs):
        blocks, flip = hp.get("unfreeze_blocks"), hp.get("flip")
        head, vgg = model.get_layer("head"), model.get_layer("vgg16")

        def train_head():
            unfreeze_top_blocks(vgg, 0)
            compile_classifier(model, hp.get("head_learning_rate"))  # the rate callbacks log
            if self.features is None:
                return model, {}
            compile_classifier(head, hp.get("head_learning_rate"))
            return head, self.cached_data(TOP_LAYER, flip, args, kwargs)

        def train_top_blocks():
            unfreeze_top_blocks(vgg, blocks)
            compile_classifier(model, hp.get("finetune_learning_rate"))
            if self.features is None:
                return model, {}
            return model, self.cached_data(cut_layer(blocks), flip, args, kwargs)

        phases = [(0, train_head), (hp.get("head_epochs"), train_top_blocks)]
        return fit_in_phases(model, phases, *args, epochs=epochs, initial_epoch=initial_epoch,
                             callbacks=callbacks or (), **kwargs)
