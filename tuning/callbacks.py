"""Keras callbacks the search adds to every trial."""

from __future__ import annotations

import math

import keras
import keras_tuner as kt

from tuning import interrupt


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
                raise kt.errors.FailedTrialError(f"{key} became {float(value)} at epoch {epoch + 1}")


class StopOnInterrupt(keras.callbacks.Callback):
    """Stops at the next epoch end after a Ctrl-C that TensorFlow swallowed (`tuning.interrupt`)."""

    def on_epoch_end(self, epoch, logs=None):
        interrupt.raise_if_interrupted()
