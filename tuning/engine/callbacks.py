"""Keras callbacks the search adds to every trial."""

from __future__ import annotations

import math
import os

import keras
import keras_tuner as kt
import numpy as np

from tuning.host import interrupt


class FailOnNaN(keras.callbacks.Callback):
    """Ends a trial whose loss became NaN or infinite as FAILED.

    keras-tuner 1.4.8 scores such a trial by its last val_accuracy (chance level) and marks it
    COMPLETED; raising `FailedTrialError` marks it FAILED instead, with this message as its reason.
    Checked once per epoch, so batches keep being dispatched asynchronously.
    """

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise kt.errors.FailedTrialError(
                    f"{key} became {float(value)} at epoch {epoch + 1}"
                )


class StopOnInterrupt(keras.callbacks.Callback):
    """Stops at the next epoch end after a Ctrl-C that TensorFlow swallowed
    (`tuning.host.interrupt`)."""

    def on_epoch_end(self, epoch, logs=None):
        interrupt.raise_if_interrupted()


class StopAtTimeBudget(keras.callbacks.Callback):
    """Stops a trial at the first batch end after the budget is spent (its reserve kept).

    Keras then validates the part of the epoch trained and ends the fit, so the trial is
    scored on what it learnt by the budget's end: stopping at an epoch end instead ran a search
    over its budget by up to one epoch (minutes for a large model on a CPU).
    """

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.clock.batch_trained()
        if self.clock.is_spent():
            self.model.stop_training = True


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback (which logs the learning rate in effect every epoch, so a
    fine-tuning trial shows its two phases' rates), plus, when a trial ends, a superclass
    confusion image of its validation set (20x20, rows: true, columns: predicted, each row
    normalised), under the trial's "validation" run in TensorBoard's Images tab.

    Named `TensorBoard` on purpose: keras-tuner recognises the callback by its class name to give
    each trial its own log directory and its HParams session.

    Args:
        validation_for: model -> a dataset of (inputs, fine labels) that `model` takes (images,
            or a feature cache's activations at the model's input layer).
        fine_to_coarse: the group (superclass, or the class itself) of each fine label.
    """

    def __init__(self, validation_for, fine_to_coarse, **kwargs):
        super().__init__(**kwargs)
        self.validation_for, self.fine_to_coarse = validation_for, fine_to_coarse
        self.epochs_seen = 0

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.epochs_seen = epoch + 1

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.epochs_seen:
            self._write_confusion()

    def _write_confusion(self) -> None:
        import tensorflow as tf
        from sklearn.metrics import confusion_matrix

        # Eager calls: `predict` would trace a new function per trial and TensorFlow would
        # print retracing warnings after the fifth.
        true, predicted = [], []
        for x, y in self.validation_for(self.model):
            predicted.append(np.argmax(self.model(x, training=False), axis=1))
            true.append(np.asarray(y))
        true, predicted = np.concatenate(true), np.concatenate(predicted)
        coarse = self.fine_to_coarse
        groups = range(int(coarse.max()) + 1)
        matrix = confusion_matrix(coarse[true], coarse[predicted], labels=groups)
        image = confusion_image(matrix)
        writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "validation"))
        with writer.as_default():
            tf.summary.image("validation_superclass_confusion", image[None], step=self.epochs_seen)
        writer.close()


def confusion_image(matrix: np.ndarray, cell: int = 8) -> np.ndarray:
    """A confusion matrix as an RGB picture: rows normalised, viridis colours, `cell` px squares."""
    from matplotlib import colormaps

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    colours = colormaps["viridis"](rows)[..., :3]
    return np.kron(colours, np.ones((cell, cell, 1))).astype(np.float32)


def search_callbacks(config, hypermodel, fit_kwargs: dict, names, clock=None) -> list:
    """What every trial of a search trains with: TensorBoard (with the HParams and the confusion
    image), early stopping on val accuracy, NaN as a failure, Ctrl-C and the time budget.

    `names` are the data's classes: the confusion image is over their superclasses, or over the
    classes themselves where the data has none."""
    from tuning.data.pipeline import validation_for

    grouping = names.fine_to_coarse if names.has_superclasses else np.arange(len(names.fine))
    callbacks = [
        TensorBoard(
            validation_for(hypermodel, fit_kwargs),
            grouping,
            log_dir=str(config.run_dir / "tensorboard"),
            write_graph=False,
        ),
        keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max"),
        FailOnNaN(),
        StopOnInterrupt(),
    ]
    return callbacks + ([StopAtTimeBudget(clock)] if clock is not None else [])
