"""A folder of labelled pictures, as Keras's `image_dataset_from_directory` reads one, decoded once.

Layouts: `DIR/<class>/...` or `DIR/train/<class>/...` with an optional `DIR/test/<class>/...`;
images anywhere below a class folder. Class names are the class folders' names in sorted order
(Keras's order). JPEG, PNG, BMP, GIF and WebP files of any size and mode are decoded by Pillow
(which refuses malformed files and decompression bombs), converted to RGB and resized to one
square side; other files (`.txt`, `.DS_Store`) are ignored and counted.

The first read decodes every image on all cores and keeps the uint8 arrays in the cache folder,
keyed by the folder's listing (paths, sizes, modification times) and the side: later searches,
resumes and reports read that file (`np.load`, no pickles).
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuning.errors import ConfigError, UsageError
from tuning.host.files import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CACHE_VERSION = 1  # bump when decoding changes what the cached arrays hold
CHUNK = 500  # images per task handed to a decoding process
PROGRESS_SECONDS = 10  # between progress lines while decoding


@dataclass(frozen=True)
class Listing:
    """What a folder holds: class names, (path, class index) per split, files ignored."""

    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]  # "train" and, where the folder has one, "test"
    ignored: int

    def key(self, side: int, skip_bad: bool) -> str:
        """A hash of every listed file's path, size and modification time, and the side."""
        digest = hashlib.blake2b(digest_size=12)
        digest.update(f"v{CACHE_VERSION} {side} {skip_bad}".encode())
        for split, files in sorted(self.files.items()):
            for path, label in files:
                stat = path.stat()
                digest.update(f"{split} {path} {label} {stat.st_size} {stat.st_mtime_ns}".encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Decoded:
    """One split's pictures: images (uint8, N x side x side x 3), labels, files skipped."""

    images: np.ndarray
    labels: np.ndarray
    skipped: int


def list_folder(root: Path) -> Listing:
    """The classes and image files below `root`; ConfigError (one line) for a folder that is
    missing or empty, has one class, a class without images, or a test folder naming classes
    the training folder lacks."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{{data}} {root}: no such folder")
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = _class_folders(train_root)
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise ConfigError(
            f"{{data}} {train_root}: expected a folder per class (at least 2), found {found}"
        )
    files, ignored = {}, 0
    splits = {"train": train_root}
    if train_root != root and (root / "test").is_dir():
        splits["test"] = root / "test"
        unknown = sorted(set(_class_folders(root / "test")) - set(classes))
        if unknown:
            raise ConfigError(
                f"{{data}} {root / 'test'}: classes {unknown} are not in {train_root}"
            )
    for split, folder in splits.items():
        files[split] = []
        for label, name in enumerate(classes):
            images, others = _images_below(folder / name)
            ignored += others
            if not images and split == "train":
                raise ConfigError(f"{{data}} {folder / name}: a class folder with no images")
            files[split] += [(path, label) for path in images]
    return Listing(root, tuple(classes), files, ignored)


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_below(folder: Path) -> tuple[list[Path], int]:
    """Image files anywhere below `folder` (sorted, as Keras walks them), and the others."""
    if not folder.is_dir():
        return [], 0
    images, others = [], 0
    for parent, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.lower().endswith(IMAGE_SUFFIXES):
                images.append(Path(parent) / name)
            else:
                others += 1
    return images, others


def most_common_side(listing: Listing, workers: int | None = None) -> int:
    """The longer side most images of the training split have (32 for CIFAR's)."""
    paths = [path for path, _ in listing.files["train"]]
    with _pool(workers) as pool:
        sizes = [s for chunk in pool.map(_sizes, _chunks(paths)) for s in chunk]
    counts = collections.Counter(max(size) for size in sizes if size is not None)
    if not counts:
        raise UsageError(f"{listing.root}: no image in the training folder could be read")
    return counts.most_common(1)[0][0]


def decode(
    listing: Listing,
    split: str,
    side: int,
    skip_bad: bool = False,
    log=None,
    workers: int | None = None,
) -> Decoded:
    """Every image of `split`, decoded and resized to side x side, in listing order.

    An image that cannot be decoded is a UsageError naming it, or with `skip_bad` is left out
    and counted.
    """
    files = listing.files.get(split, [])
    paths = [path for path, _ in files]
    images = np.empty((len(paths), side, side, 3), np.uint8)
    good = np.ones(len(paths), bool)
    start, done, shown = time.perf_counter(), 0, 0.0
    with _pool(workers) as pool:
        tasks = [(chunk, side) for chunk in _chunks(paths)]
        for first, (pixels, errors) in zip(
            range(0, len(paths), CHUNK), pool.map(_decode_chunk, tasks)
        ):
            for offset, error in errors:
                if not skip_bad:
                    pool.shutdown(wait=False, cancel_futures=True)  # no decoding the rest first
                    raise UsageError(
                        f"{paths[first + offset]}: not a readable image ({error}); "
                        f"pass --skip-bad-images to leave such files out"
                    )
                good[first + offset] = False
            images[first : first + len(pixels)] = pixels
            done += len(pixels)
            spent = time.perf_counter() - start
            if log and (done == len(paths) or spent - shown >= PROGRESS_SECONDS):
                shown = spent
                log(
                    f"decoding {len(paths)} {split} images: {done}/{len(paths)}, {spent:.0f} s, "
                    f"ETA {spent / done * (len(paths) - done):.0f} s"
                )
    labels = np.array([label for _, label in files], np.int64)
    return Decoded(images[good], labels[good], int((~good).sum()))


def load_decoded(
    listing: Listing,
    split: str,
    side: int,
    cache: Path,
    skip_bad: bool = False,
    log=None,
    workers: int | None = None,
) -> Decoded:
    """`decode`, read from `cache` when this listing and side were decoded before."""
    path = Path(cache) / f"{listing.key(side, skip_bad)}-{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return Decoded(f["images"], f["labels"], int(f["skipped"]))
    except (OSError, KeyError, ValueError):
        pass  # absent or damaged: decoded anew
    decoded = decode(listing, split, side, skip_bad, log, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=decoded.images, labels=decoded.labels, skipped=decoded.skipped)
    return decoded


def _pool(workers: int | None):
    """Processes started afresh (`spawn`): forking a process that runs TensorFlow's threads
    can deadlock the child on a lock one of them held."""
    import multiprocessing

    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn")
    )


def _chunks(items: list) -> list[list]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _sizes(paths: list[Path]) -> list[tuple[int, int] | None]:
    from PIL import Image

    sizes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except (OSError, ValueError, Image.DecompressionBombError):
            sizes.append(None)
    return sizes


def _decode_chunk(task: tuple[list[Path], int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """(pixels of each image, black where one failed; (offset, reason) of each failure)."""
    from PIL import Image

    paths, side = task
    pixels = np.zeros((len(paths), side, side, 3), np.uint8)
    errors = []
    for offset, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image.load()  # decodes all of it now: a truncated file fails here
                rgb = _rgb(image)
                if rgb.size != (side, side):
                    rgb = rgb.resize((side, side), Image.Resampling.BILINEAR)
                pixels[offset] = np.asarray(rgb, np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            errors.append((offset, str(error).splitlines()[0] if str(error) else "unreadable"))
    return pixels, errors


def _rgb(image):
    """RGB of any mode; transparent pixels over white, as most viewers show them."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


SUPERCLASSES_FILE = "superclasses.csv"  # class,superclass rows beside the class folders
TEST_SPLIT_SEED = 0  # a folder's held-out test split is the same for every search of it


def folder_names(root: Path, listing: Listing | None = None):
    """The classes of the folder at `root` (its `listing`, if already read), with superclasses
    from its `superclasses.csv`, or CIFAR-100's when its classes are CIFAR-100's."""
    from tuning.data.labels import LabelNames, label_names, names_with_superclasses

    listing = listing or list_folder(root)
    table = Path(root) / SUPERCLASSES_FILE
    if table.is_file():
        return names_with_superclasses(listing.classes, _pairs(table), str(table))
    cifar = label_names()
    if set(listing.classes) == set(cifar.fine):  # sorted names: CIFAR-100's own order
        return cifar
    return LabelNames(listing.classes)


def _pairs(table: Path) -> dict[str, str]:
    import csv

    try:
        rows = list(csv.reader(table.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{{data}} {table}: unreadable ({error})") from None
    rows = [row for row in rows if row and not row[0].startswith("#")]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["class", "superclass"]:
        rows = rows[1:]
    if any(len(row) != 2 for row in rows):
        raise ConfigError(f"{{data}} {table}: expected rows of class,superclass")
    return {name.strip(): group.strip() for name, group in rows}


def read_folder(root: Path, split: str, options, cache: Path, log=None):
    """(images, fine labels, superclass labels, class names) of `split` of the folder at
    `root`: its `test/` folder, or without one a stratified held-out part of the training
    images."""
    listing = list_folder(root)
    names = folder_names(root, listing)
    side = options.image_size or _cached_side(listing, cache)
    own = split if split in listing.files else "train"
    decoded = load_decoded(listing, own, side, cache, options.skip_bad, log)
    if log:
        log(
            f"{root}: {len(decoded.images)} pictures of {len(names.fine)} classes at "
            f"{side}x{side} ({listing.ignored} other files ignored, {decoded.skipped} "
            f"unreadable skipped)"
        )
    images, labels = decoded.images, decoded.labels
    if "test" not in listing.files:
        rest, held = _held_out(labels, options.test_size, root)
        index = held if split == "test" else rest
        images, labels = images[index], labels[index]
    return images, labels, names.coarse_of(labels), names


def _cached_side(listing: Listing, cache: Path) -> int:
    """`most_common_side`, kept beside the decoded arrays (it reads every file's header)."""
    path = Path(cache) / f"{listing.key(0, False)}-side.txt"
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        pass
    side = most_common_side(listing)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(str(side))
    return side


def _held_out(labels: np.ndarray, size: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the rest, the test indices): `size` images (default a sixth), each class in proportion."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(labels))
    size = size if size is not None else max(classes, len(labels) // 6)
    if not classes <= size < len(labels) - classes:
        raise ConfigError(
            f"{{test_size}} must leave each of the {classes} classes of {root} an image in "
            f"both splits: between {classes} and {len(labels) - classes - 1}. Received: {size}"
        )
    try:
        rest, held = train_test_split(
            np.arange(len(labels)), test_size=size, random_state=TEST_SPLIT_SEED, stratify=labels
        )
    except ValueError:
        raise ConfigError(
            f"{{data}} {root}: every class needs at least 2 images to hold out a test split "
            f"(or give a test/ folder)"
        ) from None
    return np.sort(rest), np.sort(held)
