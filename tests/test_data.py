import csv
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tuning.data import sources as data
from tuning.data import synthetic
from tuning.data.labels import label_names
from tuning.errors import UsageError


def _real_pictures(folder: Path):
    from PIL import Image

    rows = list(csv.DictReader((folder / "labels.csv").open()))
    images = np.stack([np.asarray(Image.open(folder / r["file"]).convert("RGB")) for r in rows])
    fine = np.array([int(r["fine_label"]) for r in rows])
    coarse = np.array([int(r["coarse_label"]) for r in rows])
    return images, fine, coarse, rows


def _write_official_dir(folder: Path, images, fine, coarse) -> Path:
    """The release's layout: pickled dicts with byte-string keys and channels-first rows."""
    root = folder / "cifar-100-python"
    root.mkdir(parents=True)
    batch = {
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
        b"fine_labels": fine.tolist(),
        b"coarse_labels": coarse.tolist(),
        b"filenames": [f"{i}.png".encode() for i in range(len(images))],
    }
    for split in ("train", "test"):
        (root / split).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def test_official_directory_reads_the_real_pictures(tmp_path, real_samples):
    images, fine, coarse, _ = _real_pictures(real_samples)
    root = _write_official_dir(tmp_path, images, fine, coarse)
    for source in (root, tmp_path):  # the folder itself or its parent
        split = data.read_split(str(source), "test")
        np.testing.assert_array_equal(split.images, images)
        np.testing.assert_array_equal(split.fine, fine)
        np.testing.assert_array_equal(split.coarse, coarse)


def test_tarball_and_npz_read_the_same_pictures(tmp_path, real_samples):
    images, fine, coarse, _ = _real_pictures(real_samples)
    root = _write_official_dir(tmp_path / "dir", images, fine, coarse)
    tarball = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname="cifar-100-python")
    npz = tmp_path / "cifar100.npz"
    np.savez(npz, x_train=images, y_train=fine[:, None], x_test=images, y_test=fine[:, None])
    for source in (tarball, npz):
        split = data.read_split(str(source), "test")
        np.testing.assert_array_equal(split.images, images)
        np.testing.assert_array_equal(split.fine, fine)
        np.testing.assert_array_equal(split.coarse, coarse)  # npz: from the official mapping


def test_shipped_label_names_match_the_real_pictures(real_samples):
    names = label_names()
    assert len(names.fine) == 100 and len(names.coarse) == 20
    for row in _real_pictures(real_samples)[3]:
        assert names.fine[int(row["fine_label"])] == row["fine_name"]
        assert names.coarse[int(row["coarse_label"])] == row["coarse_name"]
        assert names.fine_to_coarse[int(row["fine_label"])] == int(row["coarse_label"])


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_hostile_pickle_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    (root / "train").write_bytes(pickle.dumps({b"data": _Boom()}))
    with pytest.raises(UsageError, match="refused to load"):
        data.read_split(str(root), "train")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "images, fine, message",
    [
        (np.zeros((4, 32, 32), np.uint8), np.zeros(4, int), "images must be uint8"),
        (np.zeros((4, 32, 32, 3), np.float32), np.zeros(4, int), "images must be uint8"),
        (np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 1, 2, 100]), "fine labels must be"),
        (np.zeros((4, 32, 32, 3), np.uint8), np.zeros(3, int), "4 images but 3"),
    ],
)
def test_malformed_arrays_are_a_usage_error(tmp_path, images, fine, message):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=images, y_train=fine, x_test=images, y_test=fine)
    with pytest.raises(UsageError, match=message):
        data.read_split(str(path), "train")


def test_truncated_npz_is_a_usage_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4, int))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UsageError, match="unreadable"):
        data.read_split(str(bad), "train")


@pytest.mark.parametrize("kind", ["pickle", "tarball"])
def test_truncated_pickle_or_tarball_is_a_usage_error(tmp_path, kind):
    images = np.zeros((200, 32, 32, 3), np.uint8)
    root = _write_official_dir(tmp_path / "full", images, np.arange(200) % 100, np.arange(200) % 20)
    (root / "train").write_bytes((root / "train").read_bytes()[:5000])
    source = root
    if kind == "tarball":
        source = tmp_path / "cifar-100-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(root, arcname="cifar-100-python")
        source.write_bytes(source.read_bytes()[:3000])
    with pytest.raises(UsageError, match="unreadable"):
        data.read_split(str(source), "train")


def test_offline_download_names_the_local_alternatives(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] name resolution")

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", offline)
    with pytest.raises(UsageError, match="--data PATH.*--data synthetic"):
        data.read_split("keras", "train")


def test_synthetic_test_split_is_deterministic_balanced_and_named():
    images, fine, coarse = synthetic.generate("test")
    again, fine_again, _ = synthetic.generate("test")
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(fine, fine_again)
    assert images.shape == (10_000, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(fine, minlength=100).tolist() == [100] * 100
    np.testing.assert_array_equal(coarse, label_names().fine_to_coarse[fine])
    assert 40 < images.mean() < 215 and images.std() > 30  # neither blank nor saturated


def test_search_data_never_reads_the_test_split(monkeypatch):
    asked = []
    read = data.read_split

    def spy(source, split, *args):
        asked.append(split)
        return read(source, split, *args)

    monkeypatch.setattr(data, "read_split", spy)
    search = data.load_search_data("synthetic", train_size=1000, seed=3)
    assert asked == ["train"]
    assert {f for f in vars(search)} == {"train", "validation", "source", "names"}


def test_split_is_stratified_seeded_and_disjoint():
    first = data.load_search_data("synthetic", val_size=1000, train_size=2000, seed=5)
    second = data.load_search_data("synthetic", val_size=1000, train_size=2000, seed=5)
    other = data.load_search_data("synthetic", val_size=1000, train_size=2000, seed=6)
    np.testing.assert_array_equal(first.validation.images, second.validation.images)
    assert not np.array_equal(first.validation.images, other.validation.images)
    assert np.bincount(first.validation.fine, minlength=100).tolist() == [10] * 100
    assert np.bincount(first.train.fine, minlength=100).tolist() == [20] * 100
    seen = {img.tobytes() for img in first.train.images}
    assert not any(img.tobytes() in seen for img in first.validation.images)


def test_train_size_beyond_what_exists_is_a_usage_error():
    with pytest.raises(UsageError, match="train_size 60000 is more than"):
        data.load_search_data("synthetic", train_size=60_000)


def test_a_half_written_synthetic_cache_is_rebuilt_not_used():
    first = data.read_split("synthetic", "test")
    cache = data.cache_dir() / f"synthetic-v{synthetic.VERSION}-test.npz"
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    again = data.read_split("synthetic", "test")
    np.testing.assert_array_equal(first.images, again.images)
    with np.load(cache, allow_pickle=False) as rebuilt:
        assert rebuilt["images"].shape == (10_000, 32, 32, 3)


def _keras_cache_holding(tmp_path, monkeypatch, train_bytes: bytes) -> Path:
    """What `keras.utils.get_file` returns for CIFAR-100, with `train` replaced by ours."""
    import keras

    folder = tmp_path / "cifar-100-python-target"
    (folder / "cifar-100-python").mkdir(parents=True)
    (folder / "cifar-100-python" / "train").write_bytes(train_bytes)
    asked = {}

    def get_file(**kwargs):
        asked.update(kwargs)
        return str(folder)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    return asked


def test_the_keras_download_is_read_with_the_restricted_unpickler(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    asked = _keras_cache_holding(tmp_path, monkeypatch, pickle.dumps({b"data": _Boom()}))
    with pytest.raises(UsageError, match="downloaded CIFAR-100 .* unreadable .*refused to load"):
        data.read_split("keras", "train")
    assert not (tmp_path / "pwned").exists()
    assert asked["file_hash"] == data.KERAS_SHA256 and asked["extract"]  # Keras's own download


def test_the_keras_download_in_the_official_layout_is_read(tmp_path, monkeypatch):
    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    batch = {
        b"data": images.transpose(0, 3, 1, 2).reshape(2, -1),
        b"fine_labels": [3, 99],
        b"coarse_labels": [label_names().fine_to_coarse[3], label_names().fine_to_coarse[99]],
    }
    _keras_cache_holding(tmp_path, monkeypatch, pickle.dumps(batch))
    split = data.read_split("keras", "train")
    np.testing.assert_array_equal(split.images, images)
    assert split.fine.tolist() == [3, 99]
