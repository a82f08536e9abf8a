"""Folders of labelled pictures: listed as Keras lists them, decoded once, bad files named."""

import numpy as np
import pytest
from PIL import Image

from tuning.data.folders import list_folder, load_decoded, most_common_side
from tuning.errors import ConfigError, UsageError


def _picture(path, size=(32, 32), mode="RGB", color=(200, 30, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, color)
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(0)  # fully transparent: shown over white
    elif mode == "P":
        image = image.convert("P")
    image.save(path, format=fmt)
    return path


def test_classes_are_the_sorted_folder_names_and_images_are_found_anywhere_below(tmp_path):
    _picture(tmp_path / "zebra" / "a.png")
    _picture(tmp_path / "apple" / "deep" / "er" / "b.jpg")
    _picture(tmp_path / "apple" / "c.bmp")
    (tmp_path / "apple" / "notes.txt").write_text("not a picture")
    (tmp_path / "zebra" / ".DS_Store").write_bytes(b"\0")
    listing = list_folder(tmp_path)
    assert listing.classes == ("apple", "zebra") and listing.ignored == 2
    assert [(p.name, label) for p, label in listing.files["train"]] == [
        ("c.bmp", 0),
        ("b.jpg", 0),
        ("a.png", 1),
    ]
    assert "test" not in listing.files


def test_a_train_and_test_layout_keeps_the_training_classes(tmp_path):
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            _picture(tmp_path / split / name / "1.png")
    listing = list_folder(tmp_path)
    assert listing.classes == ("cat", "dog")
    assert [label for _, label in listing.files["test"]] == [0, 1]
    _picture(tmp_path / "test" / "emu" / "1.png")
    with pytest.raises(ConfigError, match=r"classes \['emu'\] are not in"):
        list_folder(tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "no such folder"),
        (lambda root: root.mkdir(), "at least 2.*found none"),
        (lambda root: _picture(root / "only" / "1.png"), "found only 'only'"),
        (lambda root: (_picture(root / "a" / "1.png"), (root / "b").mkdir()), "no images"),
    ],
)
def test_a_folder_that_is_no_dataset_is_one_line(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(ConfigError, match=message):
        list_folder(root)


def test_every_mode_and_size_decodes_to_rgb_of_one_side(tmp_path):
    _picture(tmp_path / "a" / "gray.png", (24, 24), "L")
    _picture(tmp_path / "a" / "clear.png", (48, 48), "RGBA")
    _picture(tmp_path / "b" / "palette.png", (100, 100), "P")
    _picture(tmp_path / "b" / "wide.gif", (48, 30), "P")
    _picture(tmp_path / "b" / "photo.webp", (48, 48))
    listing = list_folder(tmp_path)
    assert most_common_side(listing, workers=1) == 48
    decoded = load_decoded(listing, "train", 48, tmp_path / "cache", workers=1)
    assert decoded.images.shape == (5, 48, 48, 3) and decoded.images.dtype == np.uint8
    by_name = {p.name: i for i, (p, _) in enumerate(listing.files["train"])}
    assert (decoded.images[by_name["clear.png"]] == 255).all()  # transparent over white
    gray = decoded.images[by_name["gray.png"]]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert abs(int(decoded.images[by_name["palette.png"]][0, 0, 0]) - 200) < 8
    assert list(decoded.labels) == [0, 0, 1, 1, 1]


def test_a_corrupt_image_is_named_then_skipped_with_the_flag(tmp_path):
    _picture(tmp_path / "a" / "good.jpg")
    _picture(tmp_path / "b" / "good.jpg")
    bad = tmp_path / "b" / "cut.jpg"
    bad.write_bytes(_picture(tmp_path / "whole.jpg").read_bytes()[:200])
    (tmp_path / "whole.jpg").unlink()
    listing = list_folder(tmp_path)
    with pytest.raises(UsageError, match=r"cut\.jpg: not a readable image.*--skip-bad-images"):
        load_decoded(listing, "train", 32, tmp_path / "cache", workers=1)
    decoded = load_decoded(listing, "train", 32, tmp_path / "cache", skip_bad=True, workers=1)
    assert len(decoded.images) == 2 and decoded.skipped == 1 and list(decoded.labels) == [0, 1]


def test_many_classes_decode_in_parallel_once_then_read_from_the_cache(tmp_path):
    for c in range(150):
        _picture(tmp_path / "data" / f"class{c:03d}" / "1.png", color=(c, 0, 255 - c))
    listing = list_folder(tmp_path / "data")
    assert len(listing.classes) == 150
    first = load_decoded(listing, "train", 32, tmp_path / "cache", workers=2)
    assert [int(first.images[c, 0, 0, 0]) for c in (0, 149)] == [0, 149]
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1
    again = load_decoded(list_folder(tmp_path / "data"), "train", 32, tmp_path / "cache")
    np.testing.assert_array_equal(first.images, again.images)
    _picture(tmp_path / "data" / "class000" / "2.png")  # a file added: another listing
    assert list_folder(tmp_path / "data").key(32, False) != listing.key(32, False)
