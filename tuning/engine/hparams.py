"""The TensorBoard HParams experiment config: every searched domain and the validation metrics.

keras-tuner writes each trial's values (through `hparams_api.KerasCallback`) when a TensorBoard
callback is passed to `search`; the config written here declares the domains and metrics so that the
dashboard's table, parallel-coordinates and scatter views line every trial up.
"""

from __future__ import annotations

from pathlib import Path

METRICS = (
    ("epoch_accuracy", "validation", "val_accuracy"),
    ("epoch_loss", "validation", "val_loss"),
    ("epoch_accuracy", "train", "accuracy"),
    ("epoch_loss", "train", "loss"),
)


def write_hparams_config(log_dir: Path, space) -> None:
    """Writes the config once into `log_dir` (a resumed search keeps the first one).

    Args:
        log_dir: the TensorBoard directory whose subdirectories are the trials.
        space: the tuner's `keras_tuner.HyperParameters` with every searched hyperparameter.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    from tuning.host.internals import hparams_of

    log_dir = Path(log_dir)
    if any(log_dir.glob("events.out.tfevents.*")):
        return
    hparams = hparams_of(space, hparams_api)
    metrics = [
        hparams_api.Metric(tag, group=group, display_name=name) for tag, group, name in METRICS
    ]
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()
