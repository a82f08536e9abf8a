"""Frozen-backbone activations, computed once and kept on disk: what makes VGG-16 trials fast.

Plain keras-tuner runs the frozen VGG-16 layers again in every epoch of every trial. A
`FeatureCache` runs them once per (backbone weights, input size, images) and keeps the activations
at the layers a search space trains from, for the train split (plain and horizontally flipped, so
flip augmentation stays exact) and the validation split. Later trials, resumed searches and
reports load them (`np.load`, memory-mapped, no pickles).

Files: `cache_dir()/features/<backbone>-<weights>-<size>px/<images>-<split>/<layer>[-flipped].npy`,
where <weights> and <images> are content hashes, each written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from tuning.data.sources import SearchData, Split, cache_dir
from tuning.errors import UsageError
from tuning.host.files import atomic_path

EXTRACT_BATCH, CHUNK = 256, 5000


class FeatureCache:
    """Activations of a frozen `backbone` for a search's train and validation splits.

    Args:
        backbone: the frozen base (e.g. `search_spaces.load_base`); its weights are hashed.
        input_size: side of the images the backbone sees.
        data: the search's splits.
        batch_size: batch size of the datasets handed to `fit`.
        seed: seeds shuffling and the choice of flipped views.
        root: cache folder (default `cache_dir() / "features"`).
    """

    def __init__(
        self,
        backbone,
        input_size: int,
        data: SearchData,
        batch_size: int,
        seed: int,
        root: Path | None = None,
    ):
        self.backbone, self.input_size = backbone, input_size
        self.splits = {"train": data.train, "validation": data.validation}
        self.batch_size, self.seed = batch_size, seed
        root = Path(root) if root is not None else cache_dir() / "features"
        self.folder = root / f"{backbone.name}-{weights_hash(backbone)}-{input_size}px"
        self._images = {split: images_hash(images) for split, images in self.splits.items()}
        self._datasets, self._held_layer = {}, None

    def shape(self, layer: str) -> tuple:
        return tuple(self.backbone.get_layer(layer).output.shape[1:])

    def path(self, layer: str, split: str, flipped: bool = False) -> Path:
        name = f"{layer}-flipped.npy" if flipped else f"{layer}.npy"
        return self.folder / f"{self._images[split]}-{split}" / name

    def prepare(self, layers, log=None) -> float | None:
        """Computes the activations at `layers` not on disk yet, in float32 whatever the search
        trains in: the cache stays exact, and shared by searches of any precision. Returns
        seconds spent, or None."""
        views = [
            (split, flipped)
            for split in self.splits
            for flipped in (False, True)
            if not flipped or split == "train"
        ]
        todo = [
            (
                split,
                flipped,
                [
                    layer
                    for layer in layers
                    if not self._readable(self.path(layer, split, flipped), len(self.splits[split]))
                ],
            )
            for split, flipped in views
        ]
        todo = [(split, flipped, missing) for split, flipped, missing in todo if missing]
        if not todo:
            return None
        self._check_space(todo)
        from search_spaces import dtype_policy
        from search_spaces.backbones import extractor

        missing = [layer for layer in layers if any(layer in m for _, _, m in todo)]
        start = time.perf_counter()
        with dtype_policy("float32"):
            model = extractor(self.backbone, self.input_size, missing)  # one trace for all
            for split, flipped, _ in todo:
                self._extract(model, missing, split, flipped, log)
        return time.perf_counter() - start

    def dataset(self, layer: str, split: str, flip: bool = False):
        """Batches of (activations, fine labels); train batches shuffled, views flipped at random.

        The datasets hold their arrays in memory (as tensors: per-batch reads from the
        memory-mapped files would slow the cached epoch), so only the views of the last layer
        asked for are kept: a `finetune` search over 1-3 unfrozen blocks would otherwise hold
        every layer's train views (plain and flipped) at once, several GB at full size. Another
        layer's views are read again from disk when a trial needs them.
        """
        if layer != self._held_layer:
            self._datasets.clear()
            self._held_layer = layer
        key = (split, flip and split == "train")
        if key not in self._datasets:
            self._datasets[key] = self._make_dataset(layer, split, flip and split == "train")
        return self._datasets[key]

    def _make_dataset(self, layer: str, split: str, flip: bool):
        import tensorflow as tf

        labels = tf.constant(self.splits[split].fine)
        plain = tf.constant(self._load(self.path(layer, split)))
        if split != "train":
            ds = tf.data.Dataset.from_tensor_slices((plain, labels)).batch(self.batch_size)
            return ds.prefetch(tf.data.AUTOTUNE)
        n = len(self.splits[split])
        index = tf.data.Dataset.range(n).shuffle(n, seed=self.seed, reshuffle_each_iteration=True)
        index = index.batch(self.batch_size)
        if not flip:
            ds = index.map(lambda i: (tf.gather(plain, i), tf.gather(labels, i)))
        else:
            flipped = tf.constant(self._load(self.path(layer, split, flipped=True)))
            coins = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip(index, coins.batch(self.batch_size)).map(
                lambda i, coin: (_pick(plain, flipped, i, coin), tf.gather(labels, i))
            )
        return ds.prefetch(tf.data.AUTOTUNE)

    def _extract(self, extractor, layers: list[str], split: str, flipped: bool, log) -> None:
        images = self.splits[split].images
        paths = [self.path(layer, split, flipped) for layer in layers]
        what = f"{self.backbone.name} activations ({', '.join(layers)}) of the {split} images" + (
            ", flipped" if flipped else ""
        )
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:  # every file renamed into place, or none
            tmps = [stack.enter_context(atomic_path(path)) for path in paths]
            out = [
                np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.float32, shape=(len(images), *self.shape(layer))
                )
                for tmp, layer in zip(tmps, layers)
            ]
            for first in range(0, len(images), CHUNK):
                chunk = images[first : first + CHUNK]
                chunk = chunk[:, :, ::-1] if flipped else chunk
                results = extractor.predict(
                    chunk.astype(np.float32), batch_size=EXTRACT_BATCH, verbose=0
                )
                for array, result in zip(out, results if len(layers) > 1 else [results]):
                    array[first : first + len(chunk)] = result
                if log:
                    done, spent = first + len(chunk), time.perf_counter() - start
                    log(
                        f"caching {what}: {done}/{len(images)}, {spent:.0f} s, "
                        f"ETA {spent / done * (len(images) - done):.0f} s"
                    )
            for array in out:
                array.flush()
            del out

    def _load(self, path: Path) -> np.ndarray:
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def _readable(self, path: Path, length: int) -> bool:
        try:
            array = self._load(path)
        except (OSError, ValueError):
            return False  # absent, or cut short: computed anew
        return len(array) == length and array.dtype == np.float32

    def _check_space(self, todo) -> None:
        needed = sum(
            len(self.splits[split]) * 4 * int(np.prod(self.shape(layer)))
            for split, _, layers in todo
            for layer in layers
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.folder).free
        if needed > free:
            raise UsageError(
                f"the feature cache needs {needed / 1e9:.1f} GB in {self.folder} but "
                f"{free / 1e9:.1f} GB are free: set CIFAR_TUNE_CACHE to a larger disk,"
                f" lower --input-size or pass --no-cache"
            )


def _pick(plain, flipped, index, coin):
    import tensorflow as tf

    take_flipped = tf.equal(coin[: tf.size(index)] % 2, 1)
    return tf.where(
        tf.reshape(take_flipped, [-1] + [1] * (len(plain.shape) - 1)),
        tf.gather(flipped, index),
        tf.gather(plain, index),
    )


def weights_hash(model) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def images_hash(split: Split) -> str:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.ascontiguousarray(split.images).tobytes())
    digest.update(np.ascontiguousarray(split.fine).tobytes())
    return digest.hexdigest()


def load_backbone(config):
    """The frozen base of a backbone method (None for "scratch"); bad weights: UsageError.

    Built right after seeding with the search's seed, so that `--weights none` gives the same
    random base (and so the same cache) in the search and in its reports.
    """
    if config.method == "scratch":
        return None
    import keras

    from search_spaces import BackboneError, dtype_policy, load_base

    keras.utils.set_random_seed(config.seed)
    try:
        with dtype_policy("float32"):  # its cache is exact and shared by every precision
            return load_base(config.backbone, config.weights, config.input_size, config.alpha)
    except BackboneError as error:
        raise UsageError(str(error)) from None


def hypermodel_for(
    config, data: SearchData, backbone, seed: int | None = None, log=None, epochs: int | None = None
):
    """The HyperModel of `config.method`, on a prepared feature cache unless `config.cache` is off.

    Args:
        backbone: from `load_backbone` (None for "scratch").
        seed: seeds the cached datasets' shuffling (default: the search's seed).
        epochs: the epochs a learning-rate schedule spans (default: `config.max_epochs`).
    """
    from search_spaces import create_hypermodel

    features = None
    if backbone is not None and config.cache:
        shuffle_seed = config.seed if seed is None else seed
        features = FeatureCache(backbone, config.input_size, data, config.batch_size, shuffle_seed)
    hypermodel = create_hypermodel(
        config.method,
        config.weights,
        config.input_size,
        config.fine_tune_head_epochs,
        features=features,
        backbone=config.backbone,
        epochs=epochs or config.max_epochs,
        alpha=config.alpha,
    )
    if features is not None:
        seconds = features.prepare(hypermodel.cached_layers(), log)
        if log:
            how = "reused" if seconds is None else f"built in {seconds:.0f} s"
            log(f"feature cache: {features.folder} ({how})")
    return hypermodel
