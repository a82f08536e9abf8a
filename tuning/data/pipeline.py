"""`tf.data` pipelines fed from uint8 arrays: casting in `map` keeps every `fit` call fast.

Models receive float32 pixels in [0, 255] and normalise inside themselves (rescaling, or VGG-16's
own preprocessing), so a saved model takes raw images.
"""

from __future__ import annotations

from tuning.data.sources import Split


def to_dataset(split: Split, batch_size: int, shuffle: bool = False, seed: int = 0):
    """Batches of (float32 images [B, 32, 32, 3] in 0-255, fine labels), prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.images, split.fine))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def fit_data(hypermodel, data, batch_size: int, seed: int) -> tuple[tuple, dict]:
    """(args, kwargs) giving `hypermodel.fit` its data: the images, unless it reads a cache."""
    if getattr(hypermodel, "features", None) is not None:
        return (), {}
    return (
        (to_dataset(data.train, batch_size, shuffle=True, seed=seed),),
        {"validation_data": to_dataset(data.validation, batch_size)},
    )


def validation_for(hypermodel, fit_kwargs: dict):
    """model -> the validation set as `model` takes it: the images `fit_data` gave `fit`, or the
    feature cache's activations at the layer its input layer is named after."""
    features = getattr(hypermodel, "features", None)
    if features is None:
        images = fit_kwargs["validation_data"]
        return lambda model: images
    return lambda model: features.dataset(model.layers[0].name, "validation")
