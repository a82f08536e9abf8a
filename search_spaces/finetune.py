"""VGG-16 transfer learning + fine-tuning: the head first, then the top blocks unfrozen."""

from __future__ import annotations

import functools

import keras
import keras_tuner as kt
from keras import layers

from search_spaces.backbones import unfreeze_top_blocks, vgg16_features
from search_spaces.blocks import classifier_head, compile_classifier, fit_in_phases

# The seed write-up's model: VGG-16 + global average pooling head, then its last block unfrozen.
SEED_PRESET = {"dense_units": 256, "dropout": 0.5, "head_learning_rate": 1e-3,
               "unfreeze_blocks": 1, "finetune_learning_rate": 1e-5}


class FineTune(kt.HyperModel):
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
        head_epochs: Fixed, from the constructor (recorded so every trial shows it).

    Args:
        weights: "imagenet", "none" or a path to VGG-16 no-top weights.
        input_size: side of the images VGG-16 sees.
        head_epochs: epochs of phase 1.
    """

    def __init__(self, weights: str = "imagenet", input_size: int = 32, head_epochs: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.weights, self.input_size, self.head_epochs = weights, input_size, head_epochs

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        dense_units = hp.Choice("dense_units", [128, 256, 512, 1024])
        dropout = hp.Float("dropout", 0.0, 0.6, step=0.1)
        head_lr = hp.Float("head_learning_rate", 1e-4, 1e-2, sampling="log")
        # Declared here although used in `fit`: TensorBoard's HParams config is written before fit.
        hp.Int("unfreeze_blocks", 1, 3)
        hp.Float("finetune_learning_rate", 1e-6, 1e-4, sampling="log")
        hp.Fixed("head_epochs", self.head_epochs)

        inputs = keras.Input((32, 32, 3), name="image")
        x = vgg16_features(inputs, self.weights, self.input_size)
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, dense_units, dropout)
        return compile_classifier(keras.Model(inputs, outputs, name="vgg16_finetune"), head_lr)

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), **kwargs):
        phases = [
            (0, functools.partial(_train_top, blocks=0, lr=hp.get("head_learning_rate"))),
            (hp.get("head_epochs"), functools.partial(
                _train_top, blocks=hp.get("unfreeze_blocks"),
                lr=hp.get("finetune_learning_rate"))),
        ]
        return fit_in_phases(model, phases, *args, epochs=epochs, initial_epoch=initial_epoch,
                             callbacks=callbacks or (), **kwargs)


def _train_top(model: keras.Model, blocks: int, lr: float) -> None:
    unfreeze_top_blocks(model.get_layer("vgg16"), blocks)
    compile_classifier(model, lr)
