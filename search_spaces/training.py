"""How a scratch model trains: optimizers, learning-rate schedules, label smoothing.

A schedule is a function of the epoch index over the whole budget (the search's `--max-epochs`,
a report's `--epochs`), not of the steps one `fit` call runs: Keras passes the absolute epoch to
`LearningRateScheduler`, so a trial Hyperband promotes (resumed at `initial_epoch`, its parent's
weights and optimizer state loaded: `blocks.compile_classifier`) continues the same curve at the
rate an uninterrupted run has at that epoch. The rate
changes at epoch starts; each epoch takes the curve's value at its midpoint.
"""

from __future__ import annotations

import math

import keras

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "one_cycle")
COSINE_WARMUP = 0.1  # share of the budget warming up linearly from 0 before the cosine decay
ONE_CYCLE_PEAK_AT = 0.3  # one-cycle: up from peak / 25 until here, then cosine down to 0
ONE_CYCLE_START = 1 / 25
SGD_MOMENTUM = 0.9


def rate_at(schedule: str, peak: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch `epoch` (0-based) of an `epochs`-epoch budget."""
    if schedule == "constant":
        return peak
    t = min((epoch + 0.5) / max(epochs, 1), 1.0)
    if schedule == "cosine":
        warm = COSINE_WARMUP
        if t < warm:
            return peak * t / warm
        return peak * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))
    if schedule == "one_cycle":
        if t < ONE_CYCLE_PEAK_AT:
            return peak * (ONE_CYCLE_START + (1 - ONE_CYCLE_START) * t / ONE_CYCLE_PEAK_AT)
        return (
            peak * 0.5 * (1 + math.cos(math.pi * (t - ONE_CYCLE_PEAK_AT) / (1 - ONE_CYCLE_PEAK_AT)))
        )
    raise ValueError(f"Expected `schedule` to be one of {SCHEDULES}. Received: {schedule!r}")


def scheduler(schedule: str, peak: float, epochs: int) -> keras.callbacks.Callback:
    """Keras's `LearningRateScheduler` following `rate_at` over an `epochs`-epoch budget."""
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, _rate: rate_at(schedule, peak, epoch, epochs)
    )


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0):
    """Adam (no weight decay), AdamW or SGD with Nesterov momentum 0.9, with Keras's decoupled
    weight decay (each step shrinks weights by `learning_rate * weight_decay`) on kernels only:
    biases and batch-norm scales and offsets are not decayed."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=weight_decay
        )
    else:
        raise ValueError(f"Expected `optimizer` to be one of {OPTIMIZERS}. Received: {name!r}")
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer labels with label smoothing (Keras's sparse cross-entropy
    has no smoothing): the true class gets 1 - s + s / classes, every other s / classes."""

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        from keras import ops

        labels = ops.one_hot(ops.cast(ops.reshape(y_true, [-1]), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            labels, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
