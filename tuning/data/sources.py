"""The pictures a search runs on: CIFAR-100 from the Keras download, a local copy or the synthetic
stand-in, or a user's own folder or arrays; split for search.

Sources (`--data`): "keras" (the default: `keras.datasets.cifar100`), "synthetic" (see
`tuning.data.synthetic`), or a local path: the official `cifar-100-python/` directory, its
`.tar.gz`, an `.npz` with `x_train, y_train, x_test, y_test` (fine labels; optional
`y_train_coarse`, `y_test_coarse`, and `class_names` for a dataset other than CIFAR-100), or a
folder of class folders (`tuning.data.folders`; without a `test/` folder a stratified test split
is held out of it, `ReadOptions.test_size` images).

The search reads only `load_search_data`, which returns train and validation arrays and no test
arrays; the test split is read by the reporting module through `read_split(source, "test")`.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tuning.config import SearchConfig
from tuning.data import synthetic
from tuning.data.labels import NUM_FINE, LabelNames, label_names, names_with_superclasses
from tuning.errors import ConfigError, UsageError

BUILTIN_SOURCES = ("keras", "synthetic")
MIN_SIDE = 8  # the smallest image side a search takes
IN_MEMORY = "in-memory"  # `SearchConfig.data` of a search given arrays (`run_search(x_train=)`)
# What reading a damaged or foreign file raises (our restricted unpickler: UnpicklingError).
UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    zipfile.BadZipFile,
    tarfile.TarError,
    pickle.UnpicklingError,
)
# What keras.datasets.cifar100.load_data() downloads (Keras 3), checked by the same hash.
KERAS_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
KERAS_SHA256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"
OFFLINE_HINT = (
    "use --data PATH (a cifar-100-python/ directory, its .tar.gz or an .npz) or --data synthetic"
)


@dataclass(frozen=True)
class ReadOptions:
    """How a folder of pictures is read (other sources ignore them).

    image_size: the side images are resized to (None: the most common in the folder).
    test_size: images held out as the test split of a folder without a `test/` folder (None:
        a sixth, at least one per class).
    skip_bad: leave out (and count) files that cannot be decoded instead of refusing them.
    """

    image_size: int | None = None
    test_size: int | None = None
    skip_bad: bool = False

    @classmethod
    def of(cls, config) -> ReadOptions:
        return cls(config.image_size, config.test_size, config.skip_bad_images)


@dataclass(frozen=True)
class Split:
    """Square images (uint8, N x side x side x 3) with their fine and coarse labels (int64, N;
    coarse labels are zeros where the data has no superclasses)."""

    images: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray

    def __len__(self) -> int:
        return len(self.fine)

    def subset(self, index: np.ndarray) -> Split:
        return Split(self.images[index], self.fine[index], self.coarse[index])


@dataclass(frozen=True)
class SearchData:
    """What a search may see: a training split and a validation split carved from the train set."""

    train: Split
    validation: Split
    source: str
    names: LabelNames = field(default_factory=label_names)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[1])

    def describe(self) -> str:
        present, classes = len(np.unique(self.train.fine)), len(self.names.fine)
        held = f"{classes} classes" if present == classes else f"{present} of the {classes} classes"
        side = "" if self.image_size == 32 else f", {self.image_size}x{self.image_size}"
        return (
            f"data: {self.source} ({len(self.train)} train / "
            f"{len(self.validation)} validation images, {held}{side})"
        )


def load_search_data(
    source: str,
    val_size: int | None = None,
    train_size: int | None = None,
    seed: int = 0,
    arrays: Split | None = None,
    options: ReadOptions | None = None,
    log=None,
    names: LabelNames | None = None,
) -> SearchData:
    """Reads the train split and divides it, stratified and seeded, into train and validation.

    Args:
        source: "keras", "synthetic" or a local path.
        val_size: validation images (default 5,000, or a quarter of `train_size`, or of the
            data when it has no `train_size`, if smaller; at least one per class present).
        train_size: training images kept after the validation split (default: all the rest).
        seed: seeds both the split and the subset.
        arrays: the training images when `source` is IN_MEMORY (`split_from_arrays`).
        options: how a folder is read; log: where its decoding shows progress.
        names: the arrays' class names (default CIFAR-100's).
    """
    full = arrays if in_memory(source, arrays) else read_split(source, "train", options, log)
    if val_size is None:
        val_size = default_val_size(train_size or len(full), len(np.unique(full.fine)))
    rest, validation = stratified_split(full, val_size, seed, field="val_size")
    if train_size is not None and train_size != len(rest):
        if train_size > len(rest):
            raise ConfigError(
                f"{{train_size}} {train_size} is more than the {len(rest)} training "
                f"images left after a {val_size}-image validation split"
            )
        _, rest = stratified_split(rest, train_size, seed + 1, field="train_size")
    if names is None:
        names = label_names() if arrays is not None else source_names(source)
    return SearchData(rest, validation, describe_source(source), names)


def data_of(config: SearchConfig, arrays: Split | None = None, log=None, names=None) -> SearchData:
    """`load_search_data` as `config` asks for it (`names`: those of `arrays`)."""
    return load_search_data(
        config.data,
        config.val_size,
        config.train_size,
        config.seed,
        arrays=arrays,
        options=ReadOptions.of(config),
        log=log,
        names=names,
    )


def default_val_size(images: int, classes: int = NUM_FINE) -> int:
    """5,000, or a quarter of `images` if smaller, but one image per class at the least."""
    return min(5000, max(classes, images // 4))


def stratified_split(split: Split, size: int, seed: int, field: str) -> tuple[Split, Split]:
    """Returns (the rest, `size` images), each class in proportion; `field` is the
    `SearchConfig` field `size` came from."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(split.fine))
    if not classes <= size < len(split):
        raise ConfigError(
            f"{{{field}}} must be between {classes} (one image per class present) "
            f"and {len(split) - 1}. Received: {size}"
        )
    rest, picked = train_test_split(
        np.arange(len(split)), test_size=size, random_state=seed, stratify=split.fine
    )
    return split.subset(np.sort(rest)), split.subset(np.sort(picked))


def with_arrays(
    config: SearchConfig, x_train, y_train, class_names=None
) -> tuple[SearchConfig, Split | None, LabelNames | None]:
    """(config, None, None), or for arrays passed to `run_search` (config with data
    "in-memory", the arrays as a split, their class names: `class_names`, else CIFAR-100's)."""
    if x_train is None and y_train is None:
        return config, None, None
    if config.data not in (SearchConfig.data, IN_MEMORY):
        raise ConfigError(
            f"{{data}} {config.data!r} and x_train / y_train: search one or the other"
        )
    if x_train is None or y_train is None:
        raise UsageError("x_train and y_train go together: pass both or neither")
    names = arrays_names(class_names)
    arrays = split_from_arrays(x_train, y_train, "x_train / y_train", names)
    return replace(config, data=IN_MEMORY), arrays, names


def arrays_names(class_names) -> LabelNames:
    """The names of arrays' labels: CIFAR-100's, or `class_names` (2 or more, distinct)."""
    if class_names is None:
        return label_names()
    names = tuple(str(name) for name in class_names)
    if len(names) < 2 or len(set(names)) != len(names):
        raise UsageError(f"class_names must name 2 or more distinct classes. Received: {names}")
    return label_names() if names == label_names().fine else LabelNames(names)


def split_from_arrays(images, fine, what: str, names: LabelNames | None = None) -> Split:
    """Square uint8 images (N x side x side x 3) and fine labels indexing `names` (default
    CIFAR-100's) held in memory, validated as a file's are; coarse labels follow the names'
    superclasses."""
    names, fine = names or label_names(), np.asarray(fine)
    if (
        np.issubdtype(fine.dtype, np.integer)
        and fine.size
        and 0 <= fine.min() <= fine.max() < len(names.fine)
    ):
        coarse = names.coarse_of(fine)
    else:
        coarse = np.zeros_like(fine)  # `_validated` names what is wrong with `fine`
    return _validated(images, fine, coarse, what, names)


def in_memory(source: str, arrays: Split | None) -> bool:
    """Whether the data are `arrays` (source IN_MEMORY); ConfigError if only one says so."""
    if (source == IN_MEMORY) != (arrays is not None):
        raise ConfigError(
            f"{{data}} {source!r} with{'out' if arrays is None else ''} arrays: "
            f"a search on arrays (data={IN_MEMORY!r}) is searched and reported "
            f"with them passed in; any other data names a source"
        )
    return arrays is not None


def describe_source(source: str) -> str:
    if source == IN_MEMORY:
        return "in-memory arrays"
    if source == "synthetic":
        return f"synthetic (cifar-tune stand-in v{synthetic.VERSION})"
    if source == "keras":
        return "CIFAR-100 (keras.datasets download)"
    return f"images from {source}"  # the user's: it may hold only some of CIFAR-100's classes


def read_split(source: str, split: str, options: ReadOptions | None = None, log=None) -> Split:
    """Reads all of one split ("train" or "test") of a source, validated."""
    if split not in ("train", "test"):
        raise ValueError(f"Expected `split` to be 'train' or 'test'. Received: {split!r}")
    options, path = options or ReadOptions(), Path(source)
    if source == "synthetic":
        images, fine, coarse = _cached_synthetic(split)
    elif source == "keras":
        images, fine, coarse = _download(split)
    elif _is_folder_dataset(path):
        from tuning.data.folders import read_folder

        images, fine, coarse, names = read_folder(
            path, split, options, cache_dir() / "folders", log
        )
        return _validated(images, fine, coarse, f"{source} ({split})", names)
    else:
        images, fine, coarse = _read_local(path, split)
    return _validated(images, fine, coarse, f"{source} ({split})", source_names(source))


def source_names(source: str) -> LabelNames:
    """The class names of a source: a folder's or an `.npz`'s own, else CIFAR-100's."""
    path = Path(source)
    if source in BUILTIN_SOURCES or source == IN_MEMORY or not path.exists():
        return label_names()
    if _is_folder_dataset(path):
        from tuning.data.folders import folder_names

        return folder_names(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                if "class_names" in f:
                    return _npz_names(f, path)
        except UNREADABLE:
            pass  # reading the split names what is wrong
    return label_names()


def _npz_names(f, path: Path) -> LabelNames:
    classes = tuple(str(name) for name in f["class_names"].reshape(-1))
    if "superclass_names" not in f:
        return LabelNames(classes)
    pairs = dict(zip(classes, (str(n) for n in f["superclass_names"].reshape(-1))))
    return names_with_superclasses(classes, pairs, f"{path}: superclass_names")


def _is_folder_dataset(path: Path) -> bool:
    """A folder of class folders (or `train/` of them), not CIFAR-100's official layout."""
    if not path.is_dir() or (path / "cifar-100-python").is_dir():
        return False
    return not (path / "train").is_file()


def cache_dir() -> Path:
    """Where generated data and features are kept: $CIFAR_TUNE_CACHE or ~/.cache/cifar-tune."""
    return Path(os.environ.get("CIFAR_TUNE_CACHE", Path.home() / ".cache" / "cifar-tune"))


def _cached_synthetic(split: str):
    path = cache_dir() / f"synthetic-v{synthetic.VERSION}-{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return f["images"], f["fine"], f["coarse"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass  # absent or damaged: generate anew
    images, fine, coarse = synthetic.generate(split)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, images=images, fine=fine, coarse=coarse)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs a regeneration next time, nothing more
    return images, fine, coarse


def _download(split: str):
    """CIFAR-100 as `keras.datasets.cifar100.load_data()` fetches it (same file, checksum and
    cache folder, ~/.keras/datasets), read with our restricted unpickler instead of Keras's full
    one: a file someone else left in that folder cannot run code here."""
    import keras  # deferred: keeps `--help` and usage errors free of TensorFlow

    try:
        folder = keras.utils.get_file(
            fname="cifar-100-python-target",
            origin=KERAS_ORIGIN,
            extract=True,
            file_hash=KERAS_SHA256,
        )
    except Exception as error:  # keras raises a bare Exception for URL failures
        raise UsageError(
            f"could not download CIFAR-100 ({_first_line(error)}); offline? " + OFFLINE_HINT
        ) from None
    try:
        return _read_python_dir(Path(folder), split)
    except UNREADABLE as error:
        raise UsageError(
            f"the downloaded CIFAR-100 in {folder} is unreadable "
            f"({type(error).__name__}: {_first_line(error)}); delete it to "
            f"download it again"
        ) from None


def _read_local(path: Path, split: str):
    if not path.exists():
        raise ConfigError(
            f"{{data}} {path}: no such file or directory; expected 'keras', "
            f"'synthetic', a path to CIFAR-100 or a folder of class folders"
        )
    try:
        if path.is_dir():
            return _read_python_dir(path, split)
        if path.name.endswith((".tar.gz", ".tgz")):
            return _read_tarball(path, split)
        if path.suffix == ".npz":
            return _read_npz(path, split)
    except UsageError:
        raise
    except UNREADABLE as error:
        raise ConfigError(
            f"{{data}} {path}: unreadable CIFAR-100 {split} data "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from None
    raise ConfigError(
        f"{{data}} {path}: expected a cifar-100-python/ directory, a .tar.gz or an .npz"
    )


def _read_python_dir(path: Path, split: str):
    if (path / "cifar-100-python").is_dir():
        path = path / "cifar-100-python"
    if not (path / split).is_file():
        raise ConfigError(
            f"{{data}} {path}: no '{split}' file (expected the official "
            f"cifar-100-python/ layout: meta, train, test)"
        )
    with open(path / split, "rb") as f:
        return _from_batch(safe_unpickle(f))


def _read_tarball(path: Path, split: str):
    with tarfile.open(path, "r:gz") as tar:
        member = next(
            (m for m in tar.getmembers() if m.isfile() and Path(m.name).name == split), None
        )
        if member is None:
            raise ConfigError(f"{{data}} {path}: no '{split}' member in the archive")
        return _from_batch(safe_unpickle(io.BytesIO(tar.extractfile(member).read())))


def _read_npz(path: Path, split: str):
    prefix = "train" if split == "train" else "test"
    with np.load(path, allow_pickle=False) as f:
        images, fine = f[f"x_{prefix}"], f[f"y_{prefix}"].reshape(-1)
        coarse_key = f"y_{prefix}_coarse"
        if coarse_key in f:
            return images, fine, f[coarse_key].reshape(-1)
        names = _npz_names(f, path) if "class_names" in f else label_names()
    fine_ok = fine.astype(np.int64, copy=False)
    if fine_ok.size and (fine_ok.min() < 0 or fine_ok.max() >= len(names.fine)):
        return images, fine, np.zeros_like(fine_ok)  # _validated names the bad labels
    return images, fine, names.coarse_of(fine_ok)


def _from_batch(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official pickle: {b'data': uint8 [N, 3072] (channels first), b'fine_labels', ...}."""
    if not isinstance(batch, dict):
        raise ValueError(f"expected a dict, found {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UsageError(f"images of shape {data.shape}; expected (N, 3072) as in CIFAR-100")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch["fine_labels"]), np.asarray(batch["coarse_labels"])


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other class is refused, never imported."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell byte strings
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: CIFAR-100 files hold only "
            f"arrays, lists, dicts and strings"
        )


def safe_unpickle(file) -> object:
    """Loads a CIFAR-100 pickle (Python 2 byte strings included) without running its code."""
    return _ArraysOnlyUnpickler(file, encoding="bytes").load()


def _validated(images, fine, coarse, what: str, names: LabelNames | None = None) -> Split:
    names = names or label_names()
    images, fine, coarse = np.asarray(images), np.asarray(fine), np.asarray(coarse)
    square = images.ndim == 4 and images.shape[1] == images.shape[2] >= MIN_SIDE
    if images.dtype != np.uint8 or not square or images.shape[3:] != (3,):
        raise UsageError(
            f"{what}: images must be uint8 of shape (N, side, side, 3), side >= {MIN_SIDE}. "
            f"Received: {images.dtype} {images.shape}"
        )
    if not (len(images) == len(fine) == len(coarse)) or len(images) == 0:
        raise UsageError(
            f"{what}: {len(images)} images but {len(fine)} fine and {len(coarse)} coarse labels"
        )
    superclasses = len(names.coarse) if names.has_superclasses else 1
    for labels, count, kind in (
        (fine, len(names.fine), "fine"),
        (coarse, superclasses, "coarse"),
    ):
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= count:
            raise UsageError(
                f"{what}: {kind} labels must be integers in [0, {count - 1}]. "
                f"Received: {labels.dtype} in [{labels.min()}, {labels.max()}]"
            )
    return Split(images, fine.astype(np.int64), coarse.astype(np.int64))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
