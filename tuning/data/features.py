"""Frozen-backbone activations, computed once and kept on disk: what makes VGG-16 trials fast.

Plain keras-tuner runs the frozen VGG-16 layers again in every epoch of every trial. A
`FeatureCache` runs them once per (backbone weights, input size, images) and keeps the activations
at the layers a search space trains from, for the train split (plain and horizontally flipped, so
flip augmentation stays exact) and the validation split. Later trials, resumed searches and
reports load them (`np.load`, memory-mapped, no pickles). A view small enough is held in memory;
a larger one is read batch by batch from its file (`RowReader`), so a full-size `finetune`
search holds no multi-GB copy of an early block's activations.

Files: `cache_dir()/features/<backbone>-<weights>-<size>px/<images>-<split>/<layer>[-flipped].npy`,
where <weights> and <images> are content hashes, each written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np

from tuning.data.sources import SearchData, Split, cache_dir
from tuning.errors import UsageError
from tuning.host.files import atomic_path

EXTRACT_BATCH, CHUNK = 256, 5000
HELD_BYTES = 256 * 2**20  # a view up to this size is held in memory; a larger one is streamed


class FeatureCache:
    """Activations of a frozen `backbone` for a search's train and validation splits.

    Args:
        backbone: the frozen base (e.g. `search_spaces.load_base`); its weights are hashed.
        input_size: side of the images the backbone sees.
        data: the search's splits.
        batch_size: batch size of the datasets handed to `fit`.
        seed: seeds shuffling and the choice of flipped views.
        root: cache folder (default `cache_dir() / "features"`).
        held_bytes: views up to this size are held in memory, larger ones read per batch.
    """

    def __init__(
        self,
        backbone,
        input_size: int,
        data: SearchData,
        batch_size: int,
        seed: int,
        root: Path | None = None,
        held_bytes: int = HELD_BYTES,
    ):
        self.backbone, self.input_size, self.held_bytes = backbone, input_size, held_bytes
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
            side = self.splits["train"].images.shape[1]
            model = extractor(self.backbone, self.input_size, missing, side)  # one trace for all
            for split, flipped, _ in todo:
                self._extract(model, missing, split, flipped, log)
        return time.perf_counter() - start

    def dataset(self, layer: str, split: str, flip: bool = False):
        """Batches of (activations, fine labels); train batches shuffled, views flipped at random.

        Views up to `held_bytes` are held in memory as tensors (a gather per batch: the fastest
        epoch, and the feature method's epochs take seconds); larger ones are read per batch
        from their files (`RowReader`). Only the datasets of the last layer asked for are kept:
        another layer's are made again when a trial needs them.
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

        n = len(self.splits[split])
        labels = tf.constant(self.splits[split].fine)
        index = tf.data.Dataset.range(n)
        if split == "train":
            index = index.shuffle(n, seed=self.seed, reshuffle_each_iteration=True)
        index = index.batch(self.batch_size)
        coins = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True)
        index = tf.data.Dataset.zip(index, coins.batch(self.batch_size))
        views = [self.path(layer, split)] + ([self.path(layer, split, True)] if flip else [])
        rows = self._rows(views, self.shape(layer), n)
        ds = index.map(lambda i, coin: (rows(i, coin), tf.gather(labels, i)))
        return ds.prefetch(tf.data.AUTOTUNE)

    def _rows(self, views: list[Path], shape: tuple, n: int):
        """`(index, coin) -> activations` of one batch: each row from the plain view, or with
        two views from the flipped one where its coin is odd."""
        import tensorflow as tf

        if n * 4 * int(np.prod(shape)) * len(views) <= self.held_bytes:
            held = [tf.constant(self._load(path)) for path in views]
            if len(held) == 1:
                return lambda i, coin: tf.gather(held[0], i)
            return lambda i, coin: _pick(held[0], held[1], i, coin)
        readers = [RowReader(path) for path in views]

        def read(i, coin):
            rows = tf.numpy_function(
                lambda i, coin: _read_rows(readers, i, coin), [i, coin], tf.float32, stateful=False
            )
            rows.set_shape((None, *shape))
            return rows

        return read

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
                stack.enter_context(_NpyWriter(tmp, (len(images), *self.shape(layer))))
                for tmp, layer in zip(tmps, layers)
            ]
            for first in range(0, len(images), CHUNK):
                chunk = images[first : first + CHUNK]
                chunk = chunk[:, :, ::-1] if flipped else chunk
                results = extractor.predict(
                    chunk.astype(np.float32), batch_size=EXTRACT_BATCH, verbose=0
                )
                for writer, result in zip(out, results if len(layers) > 1 else [results]):
                    writer.append(result)
                if log:
                    done, spent = first + len(chunk), time.perf_counter() - start
                    log(
                        f"caching {what}: {done}/{len(images)}, {spent:.0f} s, "
                        f"ETA {spent / done * (len(images) - done):.0f} s"
                    )

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


class _NpyWriter:
    """A float32 `.npy` file written row block by row block, in order.

    Not a memory map: the pages of a mapped file a process writes count as its resident memory
    until the kernel writes them back (2.7 GB while a full-size `finetune` cache was built);
    written with `write`, they are the page cache's.
    """

    def __init__(self, path: Path, shape: tuple):
        self.path, self.shape, self.rows = path, shape, 0
        self._file = open(path, "wb")
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._file, header)

    def append(self, rows: np.ndarray) -> None:
        self._file.write(memoryview(np.ascontiguousarray(rows, dtype="<f4")))
        self.rows += len(rows)

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        self._file.close()
        if kind is None and self.rows != self.shape[0]:
            raise ValueError(f"{self.path}: {self.rows} rows written of {self.shape[0]}")


class RowReader:
    """Rows of a float32 `.npy` file, read by position (`os.preadv`) into a fresh array.

    Not a memory map: pages of a mapped file a process has touched count as its resident
    memory, so an epoch over a 1.5 GB view would show 1.5 GB more per view, though the kernel
    could drop them. Read by position, the file's pages stay in the kernel's page cache, shared
    and reclaimable, and the process holds one batch. The header is parsed by `np.load`
    (`allow_pickle=False`, so an object array is refused before any read).
    """

    def __init__(self, path: Path):
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        if header.dtype != np.float32 or not header.flags.c_contiguous:
            raise ValueError(f"{path}: expected a C-ordered float32 array")
        self.path, self.offset = path, header.offset
        self.length, self.shape = header.shape[0], header.shape[1:]
        self.row_bytes = 4 * int(np.prod(self.shape))
        del header
        self._fd = os.open(path, os.O_RDONLY)

    def read(self, index: np.ndarray, out: np.ndarray) -> None:
        """Fills `out[j]` with row `index[j]`: one read for a run of consecutive rows (a
        validation batch), one per row otherwise."""
        if len(index) and index[-1] - index[0] + 1 == len(index) and (np.diff(index) == 1).all():
            self._read_into(out, int(index[0]))
            return
        for row, position in zip(out, index):
            self._read_into(row, int(position))

    def _read_into(self, buffer: np.ndarray, row: int) -> None:
        view = memoryview(buffer).cast("B")
        if os.preadv(self._fd, [view], self.offset + row * self.row_bytes) != view.nbytes:
            raise OSError(f"{self.path}: cut short while a search read it")

    def __del__(self):
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)


def _read_rows(readers: list[RowReader], index: np.ndarray, coin: np.ndarray) -> np.ndarray:
    out = np.empty((len(index), *readers[0].shape), np.float32)
    if len(readers) == 1:
        readers[0].read(index, out)
        return out
    flipped = coin[: len(index)] % 2 == 1
    for reader, take in zip(readers, (~flipped, flipped)):
        rows = np.empty((int(take.sum()), *reader.shape), np.float32)
        reader.read(index[take], rows)
        out[take] = rows
    return out


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


def load_backbone(config, image_side: int = 32):
    """The frozen base of a backbone method (None for "scratch") for pictures of `image_side`;
    bad weights: UsageError.

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
            size = config.input_side(image_side)
            return load_base(config.backbone, config.weights, size, config.alpha)
    except BackboneError as error:
        raise UsageError(str(error)) from None


def hypermodel_for(
    config,
    data: SearchData,
    backbone,
    seed: int | None = None,
    log=None,
    epochs: int | None = None,
    features: FeatureCache | None = None,
):
    """The HyperModel of `config.method`, on a prepared feature cache unless `config.cache` is off.

    Args:
        backbone: from `load_backbone` (None for "scratch").
        seed: seeds the cached datasets' shuffling (default: the search's seed).
        epochs: the epochs a learning-rate schedule spans (default: `config.max_epochs`).
        features: a cache an earlier HyperModel of this search prepared (its `features`), taken
            as it is: planning a search prepares it, the tuner's HyperModel then reads it.
    """
    from search_spaces import create_hypermodel

    prepare = features is None and backbone is not None and config.cache
    if prepare:
        shuffle_seed = config.seed if seed is None else seed
        size = config.input_side(data.image_size)
        features = FeatureCache(backbone, size, data, config.batch_size, shuffle_seed)
    hypermodel = create_hypermodel(
        config.method,
        config.weights,
        config.input_side(data.image_size),
        config.fine_tune_head_epochs,
        features=features,
        backbone=config.backbone,
        epochs=epochs or config.max_epochs,
        alpha=config.alpha,
        classes=len(data.names.fine),
        image_size=data.image_size,
    )
    if prepare:
        seconds = features.prepare(hypermodel.cached_layers(), log)
        if log:
            how = "reused" if seconds is None else f"built in {seconds:.0f} s"
            log(f"feature cache: {features.folder} ({how})")
    return hypermodel
