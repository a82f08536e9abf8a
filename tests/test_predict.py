"""`python -m tuning predict`: a trained model on real CIFAR-100 pictures and on users' files."""

import json

import numpy as np
import pandas as pd
from conftest import run_cli

from tuning.data.labels import label_names
from tuning.predict import Prediction, format_table, read_image


def test_predict_names_the_top5_classes_of_the_20_real_pictures(runs, real_samples):
    done = run_cli(
        "predict", "--model", runs / "finetune" / "best_model.keras", real_samples, "--json"
    )
    assert done.returncode == 0, done.stderr
    predictions = json.loads(done.stdout)
    files = pd.read_csv(real_samples / "labels.csv").file
    assert [p["image"].rsplit("/", 1)[-1] for p in predictions] == sorted(files)
    names = set(label_names().fine)
    for p in predictions:
        confidences = [c["confidence"] for c in p["top"]]
        assert len(p["top"]) == 5 and {c["name"] for c in p["top"]} <= names
        assert len({c["name"] for c in p["top"]}) == 5
        assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0001


def test_predict_table_has_one_line_per_picture(runs, real_samples):
    first, second = sorted(real_samples.glob("*.png"))[:2]
    done = run_cli(
        "predict", "--model", runs / "scratch" / "best_model.keras", first, second, "--top", "3"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == [first.name, second.name]
    assert all(line.count("%") == 3 for line in lines)


def test_pictures_that_share_a_file_name_are_told_apart_by_their_paths():
    top = (("cat", "dog"), (0.7, 0.2))
    same = [Prediction("pets/cat/0001.jpg", *top), Prediction("pets/dog/0001.jpg", *top)]
    lines = format_table(same).splitlines()
    assert [line.split()[0] for line in lines] == ["pets/cat/0001.jpg", "pets/dog/0001.jpg"]
    other = [Prediction("pets/cat/0001.jpg", *top), Prediction("pets/dog/0002.jpg", *top)]
    assert [line.split()[0] for line in format_table(other).splitlines()] == [
        "0001.jpg",
        "0002.jpg",
    ]


def test_pictures_of_any_size_and_mode_become_32x32_rgb(tmp_path):
    from PIL import Image

    big = tmp_path / "big.jpg"
    Image.fromarray(np.full((300, 200), 200, np.uint8), "L").save(big)  # greyscale JPEG
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8), "RGBA").save(small)
    for path, value in ((big, 200), (small, 0)):
        image = read_image(path)
        assert image.shape == (32, 32, 3) and image.dtype == np.float32
        np.testing.assert_allclose(image, value, atol=2)


def test_predict_refuses_bad_input_in_one_line(runs, tmp_path):
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("hello")
    model = runs / "scratch" / "best_model.keras"
    for args in (
        ["--model", model, not_a_picture],
        ["--model", model, tmp_path / "missing"],
        ["--model", tmp_path / "none.keras", not_a_picture],
        ["--model", not_a_picture, not_a_picture],
    ):
        done = run_cli("predict", *args)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_hostile_model_file_is_refused_without_running_its_code(tmp_path, real_samples):
    import keras

    marker = tmp_path / "ran"
    inputs = keras.Input((32, 32, 3))
    code = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"
    hostile = keras.Model(
        inputs,
        keras.layers.Dense(100, activation="softmax")(
            keras.layers.Flatten()(keras.layers.Lambda(eval(code))(inputs))
        ),
    )
    hostile.save(tmp_path / "hostile.keras")
    marker.unlink(missing_ok=True)  # saving traced the lambda once
    done = run_cli("predict", "--model", tmp_path / "hostile.keras", real_samples)
    assert done.returncode == 2 and "safe" in done.stderr.lower(), done.stderr
    assert not marker.exists()
